"""radview: an offline radiology viewer with an embedded AI assistant."""

__version__ = "0.1.0"

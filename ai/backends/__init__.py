"""Inference backends. Only ``keras_backend`` imports TensorFlow, inside its functions.

A backend module offers ``load_model(spec) -> LoadedModel`` and ``device_name()``; the AI
process picks it from :data:`BACKENDS` by the weights' suffix and imports it lazily.
"""

from __future__ import annotations

import importlib

#: weights file suffix -> backend module (imported only when such a model loads)
BACKENDS = {".keras": "ai.backends.keras_backend", ".h5": "ai.backends.keras_backend"}


def backend_for(weights_file: str):
    """The backend module for a weights file name (imported now)."""
    for suffix, module in BACKENDS.items():
        if weights_file.endswith(suffix):
            return importlib.import_module(module)
    raise ValueError(f"no backend for weights file {weights_file!r}")

"""radview's AI assistant: model specs, inference, CAM, training (no Qt, no VTK).

TensorFlow is imported lazily, only by the backend, only when a model loads.
"""

"""Segmentation of one 2D image, with the masks on the image's own pixel grid.

Runs inside the AI process. Used today by ``lung_crop`` (the classifier's preprocessing asks
a lung segmentation model for the lung bounding box); the full Segment request (label maps
for the viewer) builds on :func:`segment_probabilities`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from ai.classify import to_batch
from ai.model_spec import ModelSpec


def segment_probabilities(image2d: np.ndarray, meta: Mapping, spec: ModelSpec, model):
    """Per-label probabilities float32 (labels, rows, cols) on the input image's grid.

    The model's per-pixel softmax (1, H, W, labels) is mapped back through the inverse of
    the spec's preprocessing (linear interpolation; areas cut away or padded get 0).
    """
    if spec.task != "segmentation":
        raise ValueError(f"model {spec.name!r} is a {spec.task} model, not a segmenter")
    pipeline = spec.pipeline()
    x, record = pipeline.forward(np.asarray(image2d, dtype=np.float32), meta)
    out = np.asarray(model.predict(to_batch(x, spec.input.channels)), dtype=np.float32)
    if out.ndim != 4 or out.shape[-1] != len(spec.labels):
        raise ValueError(
            f"model {spec.name!r} gives output {out.shape}, expected (1, H, W, {len(spec.labels)})"
        )
    return np.stack([pipeline.inverse_map(out[0, :, :, c], record) for c in range(out.shape[-1])])


def foreground_mask(image2d: np.ndarray, meta: Mapping, spec: ModelSpec, model) -> np.ndarray:
    """Bool mask (rows, cols): pixels whose background (label 0) probability is below 0.5.

    Outside the area the preprocessing kept, every probability maps back to 0, so those
    pixels would count as foreground: they are set to False.
    """
    probs = segment_probabilities(image2d, meta, spec, model)
    covered = probs.sum(axis=0) > 0.5
    return (probs[0] < 0.5) & covered


def make_segmenter(get_model: Callable[[str], tuple[ModelSpec, object]]):
    """A ``context["segment"]`` for :mod:`ai.transforms` ``lung_crop`` steps.

    ``get_model(name) -> (spec, model)`` loads (or returns the cached) segmentation model.
    The image handed in by lung_crop is already in display orientation, so it is passed as
    MONOCHROME2 (a ``to_display`` step in the segmenter's spec then leaves it alone).
    """

    def segment(name: str, image: np.ndarray) -> np.ndarray:
        spec, model = get_model(name)
        meta = {"photometric": "MONOCHROME2", "modality": "OT"}
        return foreground_mask(image, meta, spec, model)

    return segment

"""Classification of one 2D image with its class activation map, on the image's own grid.

:func:`classify_image` runs inside the AI process (it calls the backend); the viewer and the
CLI call it through :class:`ai.process.client.AIClient`. :func:`image_from_volume` turns a
loaded :class:`viewer.core.volume.Volume` into the ``(image2d, meta)`` pair both take.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from ai import cam as cam_math
from ai.model_spec import ModelSpec

Progress = Callable[[float, str], None]

#: ITU-R BT.601 luma weights for RGB pictures
LUMA = (0.299, 0.587, 0.114)


class Cancelled(Exception):
    """The request was cancelled by the caller."""


@dataclass
class Prediction:
    """One classification.

    ``probabilities`` maps each class to its probability (softmax output, sums to 1).
    ``cam`` is float32 (rows, cols) in 0..1 on the input image's own pixel grid (the same
    rows and columns as the 2D image given to the classifier), explaining ``cam_class``;
    None when no CAM was asked for or the spec has none. ``timings_s``: seconds per stage.
    """

    model: str
    version: str
    device: str
    probabilities: dict[str, float]
    label: str
    cam: np.ndarray | None = None
    cam_class: str | None = None
    timings_s: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict:
        """Small JSON-able summary (no map)."""
        return {
            "model": {"name": self.model, "version": self.version, "device": self.device},
            "label": self.label,
            "probabilities": dict(self.probabilities),
            "cam_class": self.cam_class,
        }


def to_batch(x: np.ndarray, channels: int) -> np.ndarray:
    """(H, W) → (1, H, W, channels) float32, the gray image repeated for 3 channels."""
    batch = np.asarray(x, dtype=np.float32)[np.newaxis, :, :, np.newaxis]
    return np.repeat(batch, channels, axis=3) if channels > 1 else batch


def classify_image(
    image2d: np.ndarray,
    meta: Mapping,
    spec: ModelSpec,
    model,
    *,
    context: Mapping | None = None,
    cam: bool = True,
    cam_class: str | None = None,
    device: str = "",
    progress: Progress | None = None,
    check_cancel: Callable[[], None] | None = None,
) -> Prediction:
    """Classify one image (rows, cols) in modality units; ``meta`` as in ai.transforms.

    ``model`` is a backend model (``predict``, ``predict_with_cam``, ``predict_with_gradcam``).
    ``context`` holds ``segment`` for lung_crop steps. ``cam_class`` None explains the
    predicted class. ``check_cancel()`` is called between stages and raises Cancelled.
    """
    report = progress or (lambda f, m: None)
    check = check_cancel or (lambda: None)
    if spec.task != "classification":
        raise ValueError(f"model {spec.name!r} is a {spec.task} model, not a classifier")
    image = np.asarray(image2d, dtype=np.float32)
    if image.ndim != 2:
        raise ValueError(f"expected one 2D image (rows, cols), got shape {image.shape}")
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    report(0.1, "preprocessing")
    pipeline = spec.pipeline(context)
    x, record = pipeline.forward(image, meta)
    batch = to_batch(x, spec.input.channels)
    times["preprocess"] = time.perf_counter() - t0
    check()

    report(0.4, "predicting")
    t1 = time.perf_counter()
    want = spec.classes.index(cam_class) if cam_class is not None else None
    heat = None
    if cam and spec.cam is not None and spec.cam.method == "cam":
        probs, heat, index = model.predict_with_cam(
            batch, want, spec.cam.conv_layer, spec.cam.dense_layer
        )
    elif cam and spec.cam is not None:
        probs, heat, index = model.predict_with_gradcam(batch, want, spec.cam.conv_layer)
    else:
        probs, index = model.predict(batch), None
    probs = np.asarray(probs, dtype=np.float64).reshape(-1)
    if probs.shape[0] != len(spec.classes):
        raise ValueError(
            f"model {spec.name!r} gives {probs.shape[0]} outputs for {len(spec.classes)} classes"
        )
    times["predict"] = time.perf_counter() - t1
    check()

    cam_map = None
    if heat is not None:
        report(0.8, "mapping the activation map")
        t2 = time.perf_counter()
        on_input = cam_math.resize_to_input(heat, spec.input.height, spec.input.width)
        cam_map = pipeline.inverse_map(on_input, record)  # float32, a new array
        np.clip(cam_map, 0.0, 1.0, out=cam_map)
        times["cam"] = time.perf_counter() - t2
    label = spec.classes[int(np.argmax(probs))]
    report(1.0, "done")
    return Prediction(
        model=spec.name,
        version=spec.version,
        device=device,
        probabilities={c: float(p) for c, p in zip(spec.classes, probs)},
        label=label,
        cam=cam_map,
        cam_class=spec.classes[index] if index is not None and cam_map is not None else None,
        timings_s=times,
    )


def image_from_volume(volume, index: int | None = None) -> tuple[np.ndarray, dict]:
    """(image2d float32 (rows, cols), meta) from a ``viewer.core.volume.Volume``.

    A radiograph (1 × rows × cols) gives its image; a stack (CT) gives slice ``index``
    (default: the middle slice, k = n // 2); an RGB picture gives its luminance
    (ITU-R BT.601). ``meta``: photometric (MONOCHROME1 when the volume is displayed
    inverted), modality, slice_index, pixel_spacing_mm (rows, cols).
    """
    array = volume.array
    n = array.shape[0]
    k = n // 2 if index is None else int(index)
    if not 0 <= k < n:
        raise IndexError(f"slice {k} is outside 0..{n - 1}")
    plane = array[k]
    if plane.ndim == 3:  # colour (rows, cols, 3)
        image = np.tensordot(plane[..., :3].astype(np.float32), np.asarray(LUMA, np.float32), 1)
    else:
        image = plane.astype(np.float32)
    meta = {
        "photometric": "MONOCHROME1" if volume.invert_display else "MONOCHROME2",
        "modality": volume.modality or "OT",
        "slice_index": k,
        "pixel_spacing_mm": tuple(float(s) for s in volume.geometry.spacing[1:3]),
    }
    return np.ascontiguousarray(image, dtype=np.float32), meta

"""Preprocessing steps built from a model's ``model.json``, each with an inverse for maps.

A model's ``preprocessing`` list (data, never code) becomes a :class:`Pipeline` of small
steps (see ``resources/models/README.md`` for the table of ops). The pipeline takes one 2D
image, a radiograph or one CT slice, as float32 ``(rows, cols)`` in modality units, and
returns the model input ``(height, width)`` float32 plus a :class:`TransformRecord` that
says what each step did. :meth:`Pipeline.inverse_map` uses that record to put a map computed
in the model's input space (a CAM, mask probabilities) back onto the original pixel grid.

Pixel frame: arrays are indexed (row, column); pixel (r, c) has its centre at continuous
coordinate (r, c), so the image covers [-0.5, rows - 0.5] × [-0.5, cols - 0.5]. Resizing
maps pixel centres with the "half-pixel" convention (no corner alignment): output pixel o
samples input coordinate ``(o + 0.5) * n_in / n_out - 0.5`` on each axis.

Resampling (:func:`resample_linear`, in :mod:`ai.resample`) is linear for images and for
maps, values beyond the last pixel centre clamped to the edge pixel: SimpleITK when an axis
shrinks, numpy (same values, faster) when both grow. When an image shrinks by a factor of 2
or more on an axis, it is first block-averaged by the integer part of that factor
(SimpleITK ``BinShrink``) so that a 2500-pixel radiograph brought to 256 pixels is not
aliased; the linear resample does the rest.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ai import resample as _resample

#: percentiles are computed on a regular subsample of at most this many pixels
PERCENTILE_MAX_PIXELS = 1 << 20

Segmenter = Callable[[str, np.ndarray], np.ndarray]


class TransformError(ValueError):
    """A preprocessing list or step that cannot be built or applied (one-line message)."""


# --------------------------------------------------------------------------- resampling


def _sitk():
    import SimpleITK

    return SimpleITK


def resample_linear(array: np.ndarray, shape: tuple[int, int], antialias: bool = True):
    """:func:`ai.resample.resample_linear` (linear, half-pixel centres, edge values beyond
    the last centres, block-averaged when shrinking with ``antialias``); float32. A size
    that cannot be produced raises TransformError."""
    try:
        return _resample.resample_linear(array, shape, antialias)
    except _resample.ResizeError as exc:
        raise TransformError(str(exc)) from None


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class StepRecord:
    """What one step did: its op, input and output shapes (rows, cols) and its numbers."""

    op: str
    in_shape: tuple[int, int]
    out_shape: tuple[int, int]
    data: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TransformRecord:
    """The records of a pipeline run, in forward order; ``in_shape`` is the original grid."""

    in_shape: tuple[int, int]
    steps: tuple[StepRecord, ...]

    @property
    def out_shape(self) -> tuple[int, int]:
        return self.steps[-1].out_shape if self.steps else self.in_shape


# --------------------------------------------------------------------------- steps


def _rescale01(image: np.ndarray, low: float, span: float) -> np.ndarray:
    """``clip((image - low) / span, 0, 1)`` as float32, in one new array (in-place steps)."""
    out = np.subtract(image, np.float32(low), dtype=np.float32)
    out /= np.float32(span)
    return np.clip(out, 0.0, 1.0, out=out)


class Step:
    """One preprocessing op. Subclasses set ``op`` and ``params`` (name -> type, required)."""

    op: str = ""
    #: parameter name -> (accepted types, required)
    params: dict[str, tuple[tuple[type, ...], bool]] = {}
    #: the step runs only for these ``meta["modality"]`` values (model.json ``"modalities"``,
    #: allowed on every step); empty = always. A skipped step is the identity both ways.
    modalities: tuple[str, ...] = ()

    def applies_to(self, meta: Mapping) -> bool:
        return not self.modalities or str(meta.get("modality") or "") in self.modalities

    def forward(self, image: np.ndarray, meta: Mapping, context: Mapping) -> tuple:
        """Return (image, record data dict)."""
        raise NotImplementedError

    def inverse_map(self, map_hw: np.ndarray, rec: StepRecord) -> np.ndarray:
        """Map an array on this step's output grid back onto its input grid (identity here)."""
        return map_hw


_NUM = (int, float)


class ToDisplay(Step):
    """MONOCHROME1 (``meta["photometric"]``) is inverted as max + min - x, so bone is bright."""

    op = "to_display"
    params = {"invert_monochrome1": ((bool,), False)}

    def __init__(self, invert_monochrome1: bool = True):
        self.invert = invert_monochrome1

    def forward(self, image, meta, context):
        if self.invert and str(meta.get("photometric", "")).upper() == "MONOCHROME1":
            lo, hi = float(np.min(image)), float(np.max(image))
            return (hi + lo) - image, {"inverted": True}
        return image, {"inverted": False}


class Window(Step):
    """DICOM linear window (PS3.3 C.11.2.1.2.1) from modality units to 0..1."""

    op = "window"
    params = {"center": (_NUM, True), "width": (_NUM, True)}

    def __init__(self, center: float, width: float):
        if width < 1:
            raise TransformError(f"window: width must be >= 1, got {width}")
        self.center, self.width = float(center), float(width)

    def forward(self, image, meta, context):
        c, w = self.center - 0.5, self.width - 1.0
        if w <= 0:
            return (image > c).astype(np.float32), {}
        return _rescale01(image, c - 0.5 * w, w), {}


class PercentileScale(Step):
    """Maps the ``low`` and ``high`` percentiles (percent) of the image to 0 and 1, clipped.

    Percentiles come from a regular subsample of at most PERCENTILE_MAX_PIXELS pixels. A
    constant image gives zeros.
    """

    op = "percentile_scale"
    params = {"low": (_NUM, True), "high": (_NUM, True)}

    def __init__(self, low: float, high: float):
        if not 0 <= low < high <= 100:
            raise TransformError(
                f"percentile_scale: need 0 <= low < high <= 100, got {low}, {high}"
            )
        self.low, self.high = float(low), float(high)

    def forward(self, image, meta, context):
        step = max(1, math.ceil(math.sqrt(image.size / PERCENTILE_MAX_PIXELS)))
        lo, hi = (float(v) for v in np.percentile(image[::step, ::step], [self.low, self.high]))
        if hi <= lo:
            return np.zeros_like(image), {"low": lo, "high": hi}
        return _rescale01(image, lo, hi - lo), {"low": lo, "high": hi}


class Clip(Step):
    """Clips values to [low, high]."""

    op = "clip"
    params = {"low": (_NUM, True), "high": (_NUM, True)}

    def __init__(self, low: float, high: float):
        if low > high:
            raise TransformError(f"clip: low {low} > high {high}")
        self.low, self.high = float(low), float(high)

    def forward(self, image, meta, context):
        return np.clip(image, self.low, self.high), {}


class LungCrop(Step):
    """Crops to the bounding box of the lungs found by segmentation model ``model``.

    ``context["segment"](model, image)`` is called with the current image (0..1 when the step
    follows ``window`` or ``percentile_scale``) and returns a bool mask (rows, cols) on that
    grid. The box is widened by ``margin`` × its height (top and bottom) and × its width
    (left and right), clipped to the image. No lung found: the whole image is kept.
    The record's ``box`` is (row0, row1, col0, col1), half-open, in input pixels.
    """

    op = "lung_crop"
    params = {"model": ((str,), True), "margin": (_NUM, False)}

    def __init__(self, model: str, margin: float = 0.0):
        if margin < 0:
            raise TransformError(f"lung_crop: margin must be >= 0, got {margin}")
        self.model, self.margin = model, float(margin)

    def forward(self, image, meta, context):
        mask = _segment_mask(self.op, self.model, image, context)
        rows, cols = image.shape
        r_any, c_any = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        if r_any.size == 0:
            box = (0, rows, 0, cols)
        else:
            r0, r1, c0, c1 = r_any[0], r_any[-1] + 1, c_any[0], c_any[-1] + 1
            dr, dc = self.margin * (r1 - r0), self.margin * (c1 - c0)
            box = (
                max(0, int(math.floor(r0 - dr))),
                min(rows, int(math.ceil(r1 + dr))),
                max(0, int(math.floor(c0 - dc))),
                min(cols, int(math.ceil(c1 + dc))),
            )
        r0, r1, c0, c1 = box
        return image[r0:r1, c0:c1], {"box": box, "found": bool(r_any.size)}

    def inverse_map(self, map_hw, rec):
        r0, r1, c0, c1 = rec.data["box"]
        out = np.zeros(rec.in_shape, dtype=np.float32)
        out[r0:r1, c0:c1] = map_hw
        return out


def _segment_mask(op: str, model: str, image: np.ndarray, context: Mapping) -> np.ndarray:
    """The segmenter's bool lung mask of ``image`` (checked to be on the image's grid)."""
    segment = (context or {}).get("segment")
    if segment is None:
        raise TransformError(f"{op} needs a segmenter for model {model!r}")
    mask = np.asarray(segment(model, image), dtype=bool)
    if mask.shape != image.shape:
        raise TransformError(
            f"{op}: mask shape {mask.shape} differs from image shape {image.shape}"
        )
    return mask


def dilate_mask(mask: np.ndarray, radius: float) -> np.ndarray:
    """``mask`` grown by a disc of ``radius`` pixels (Euclidean distance <= radius)."""
    mask = np.asarray(mask, dtype=bool)
    if radius <= 0 or not mask.any():
        return mask.copy()
    sitk = _sitk()
    dist = sitk.SignedMaurerDistanceMap(
        sitk.GetImageFromArray(mask.astype(np.uint8)),
        insideIsPositive=False,
        squaredDistance=False,
        useImageSpacing=False,
    )
    return sitk.GetArrayFromImage(dist) <= radius


class LungMask(Step):
    """Sets the image to 0 outside the (dilated) lungs found by segmentation model ``model``.

    ``context["segment"](model, image)`` is called as for ``lung_crop``. The mask is grown by
    a disc of radius ``dilate`` × max(rows, cols) pixels (a fraction of the image size, not
    millimetres: many radiographs carry no usable pixel spacing), then the image is multiplied
    by it (outside -> 0; meant for images already scaled to 0..1). No lung found: the image is
    left unchanged. The grid does not change, so the inverse for maps is the identity.
    The record holds ``found``, ``radius`` (pixels) and ``kept`` (fraction of pixels kept).
    """

    op = "lung_mask"
    params = {"model": ((str,), True), "dilate": (_NUM, False)}

    def __init__(self, model: str, dilate: float = 0.0):
        if not 0 <= dilate <= 1:
            raise TransformError(f"lung_mask: dilate must be in 0..1, got {dilate}")
        self.model, self.dilate = model, float(dilate)

    def forward(self, image, meta, context):
        mask = _segment_mask(self.op, self.model, image, context)
        radius = self.dilate * max(image.shape)
        if not mask.any():
            return image, {"found": False, "radius": radius, "kept": 1.0}
        mask = dilate_mask(mask, radius)
        out = np.where(mask, image, np.float32(0)).astype(np.float32)
        return out, {"found": True, "radius": radius, "kept": float(mask.mean())}


class Resize(Step):
    """Resizes to ``height`` × ``width`` (aspect not kept); inverse resizes back."""

    op = "resize"
    params = {"height": ((int,), True), "width": ((int,), True)}

    def __init__(self, height: int, width: int):
        if height < 1 or width < 1:
            raise TransformError(f"{self.op}: height and width must be >= 1")
        self.height, self.width = height, width

    def forward(self, image, meta, context):
        return resample_linear(image, (self.height, self.width)), {}

    def inverse_map(self, map_hw, rec):
        return resample_linear(map_hw, rec.in_shape, antialias=False)


class Letterbox(Resize):
    """Resizes keeping the aspect ratio to fit ``height`` × ``width``; pads with 0, centred.

    The record's ``inner`` is (row0, col0, rows, cols) of the resized image in the output.
    Inverse: cut out ``inner`` and resize it back to the input grid.
    """

    op = "letterbox"

    def forward(self, image, meta, context):
        rows, cols = image.shape
        scale = min(self.height / rows, self.width / cols)
        nr = min(self.height, max(1, round(rows * scale)))
        nc = min(self.width, max(1, round(cols * scale)))
        top, left = (self.height - nr) // 2, (self.width - nc) // 2
        out = np.zeros((self.height, self.width), dtype=np.float32)
        out[top : top + nr, left : left + nc] = resample_linear(image, (nr, nc))
        return out, {"inner": (top, left, nr, nc)}

    def inverse_map(self, map_hw, rec):
        top, left, nr, nc = rec.data["inner"]
        return resample_linear(map_hw[top : top + nr, left : left + nc], rec.in_shape, False)


#: op name -> step class; the only ops a model.json may name
STEPS: dict[str, type[Step]] = {
    cls.op: cls
    for cls in (ToDisplay, Window, PercentileScale, Clip, LungMask, LungCrop, Resize, Letterbox)
}


# --------------------------------------------------------------------------- pipeline


def build_step(spec: Mapping[str, Any]) -> Step:
    """One step from its model.json entry, e.g. ``{"op": "letterbox", "height": 256, ...}``."""
    if not isinstance(spec, Mapping) or "op" not in spec:
        raise TransformError(f"preprocessing step must be an object with an 'op': {spec!r}")
    op = spec["op"]
    cls = STEPS.get(op)
    if cls is None:
        raise TransformError(f"unknown preprocessing op {op!r} (known: {', '.join(STEPS)})")
    kwargs = {k: v for k, v in spec.items() if k not in ("op", "modalities")}
    modalities = spec.get("modalities")
    if modalities is not None and (
        not isinstance(modalities, list | tuple)
        or not modalities
        or not all(isinstance(m, str) and m for m in modalities)
    ):
        raise TransformError(f"{op}: 'modalities' must be a non-empty list of modality codes")
    for name in kwargs:
        if name not in cls.params:
            raise TransformError(f"{op}: unknown parameter {name!r}")
    for name, (types, required) in cls.params.items():
        if name not in kwargs:
            if required:
                raise TransformError(f"{op}: missing parameter {name!r}")
            continue
        value = kwargs[name]
        # bool is an int in Python: only accept it where bool is asked for
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            want = "/".join(t.__name__ for t in types)
            raise TransformError(f"{op}: parameter {name!r} must be {want}, got {value!r}")
    step = cls(**kwargs)
    step.modalities = tuple(modalities) if modalities is not None else ()
    return step


class Pipeline:
    """Steps applied in order; ``context`` is handed to each step (``segment``: lung_crop/mask)."""

    def __init__(self, steps: Sequence[Step], context: Mapping | None = None):
        self.steps = list(steps)
        self.context = dict(context or {})

    def __repr__(self) -> str:
        return f"Pipeline({[s.op for s in self.steps]})"

    @property
    def needs_segmenter(self) -> list[str]:
        """Names of the segmentation models the ``lung_crop``/``lung_mask`` steps need."""
        return [s.model for s in self.steps if isinstance(s, LungCrop | LungMask)]

    def forward(self, image: np.ndarray, meta: Mapping) -> tuple[np.ndarray, TransformRecord]:
        """Apply the steps to ``image`` (rows, cols) in modality units.

        ``meta``: at least ``photometric`` ("MONOCHROME1"/"MONOCHROME2") and ``modality``.
        Returns the model input (height, width) float32 and the record for the inverse.
        """
        x = np.asarray(image, dtype=np.float32)
        if x.ndim != 2 or x.size == 0:
            raise TransformError(f"expected a non-empty 2D image, got shape {x.shape}")
        start = (int(x.shape[0]), int(x.shape[1]))
        records = []
        for step in self.steps:
            shape_in = (int(x.shape[0]), int(x.shape[1]))
            if not step.applies_to(meta):
                records.append(StepRecord(step.op, shape_in, shape_in, {"skipped": True}))
                continue
            x, data = step.forward(x, meta, self.context)
            x = np.asarray(x, dtype=np.float32)
            records.append(StepRecord(step.op, shape_in, (int(x.shape[0]), int(x.shape[1])), data))
        return np.ascontiguousarray(x), TransformRecord(start, tuple(records))

    def inverse_map(self, map_hw: np.ndarray, record: TransformRecord) -> np.ndarray:
        """Put a map on the model-input grid (height, width) back on the original grid.

        Linear interpolation; areas the forward pass cut away (lung_crop) or padded
        (letterbox) get 0. Returns float32 (rows, cols) of the original image.
        """
        m = np.asarray(map_hw, dtype=np.float32)
        if m.shape != record.out_shape:
            raise TransformError(f"map shape {m.shape} is not the output shape {record.out_shape}")
        for step, rec in zip(reversed(self.steps), reversed(record.steps)):
            if rec.data.get("skipped"):
                continue
            m = np.asarray(step.inverse_map(m, rec), dtype=np.float32)
        return m


def build_pipeline(steps: Sequence[Mapping[str, Any]], context: Mapping | None = None) -> Pipeline:
    """Build a :class:`Pipeline` from a model.json ``preprocessing`` list.

    ``context`` may hold ``"segment"``: ``segment(model_name, image) -> bool mask (rows, cols)``,
    required at run time by ``lung_crop`` steps. Unknown ops or parameters raise
    :class:`TransformError` with a one-line message.
    """
    if not isinstance(steps, Sequence) or isinstance(steps, str | bytes):
        raise TransformError("preprocessing must be a list of steps")
    return Pipeline([build_step(s) for s in steps], context)


def output_shape(steps: Sequence[Mapping[str, Any]]) -> tuple[int, int] | None:
    """The fixed (height, width) the last resize/letterbox step produces, or None."""
    shape = None
    for s in steps:
        if s.get("op") in ("resize", "letterbox"):
            shape = (int(s["height"]), int(s["width"]))
        elif s.get("op") == "lung_crop":
            shape = None
    return shape

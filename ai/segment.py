"""Segmentation: one 2D image's per-label probabilities, or a whole volume's label map.

Runs inside the AI process (the viewer and the CLI call it through
:class:`ai.process.client.AIClient`); :func:`volume_input` prepares a loaded
``viewer.core.volume.Volume`` for it on the caller's side.

* :func:`segment_probabilities` — one image (rows, cols) → float32 (labels, rows, cols) on
  the image's own grid. Used by ``lung_crop`` / ``lung_mask`` and the 2D Segment request.
* :func:`segment_volume` — a volume (k, j, i) → uint8 labels (k, j, i) on the same grid:
  a network model runs slice by slice in batches of ``spec.batch_size``, each slice's
  per-label probabilities are mapped back through the inverse of the spec's preprocessing
  and the label is their argmax (pixels the preprocessing cut away or padded get 0); a
  ``classical`` model (``spec.method``, e.g. ``ct_lungs``) runs its function on the whole
  volume. Then the spec's postprocessing: ``within_lungs`` sets labels outside the lung
  mask of another model to 0, on CT (Hounsfield units) only.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping

import numpy as np

from ai.classify import LUMA, Cancelled, to_batch
from ai.model_spec import CLASSICAL_METHODS, ModelSpec

Progress = Callable[[float, str], None]
#: ``get_helper(name) -> (spec, model)``: loads (or returns the cached) model of that name
GetHelper = Callable[[str], tuple[ModelSpec, object]]


class ClassicalModel:
    """A ``classical`` model: a radview function from the fixed :data:`CLASSICAL_METHODS`.

    ``run(volume, meta, progress, cancelled)`` → uint8 labels (k, j, i). The function is
    ``f(hu, spacing, progress=None, cancelled=None, direction=None)`` with ``spacing`` the
    (k, j, i) voxel size in mm and ``direction`` the 3x3 LPS direction (columns i, j, k).
    """

    def __init__(self, spec: ModelSpec):
        if spec.method not in CLASSICAL_METHODS:
            raise ValueError(f"model {spec.name!r}: unknown classical method {spec.method!r}")
        module, function = CLASSICAL_METHODS[spec.method]
        self.spec = spec
        self.function = getattr(importlib.import_module(module), function)

    def run(
        self,
        volume: np.ndarray,
        meta: Mapping,
        progress: Progress | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> np.ndarray:
        spec = self.spec
        modality = str(meta.get("modality") or "")
        if spec.modalities and modality not in spec.modalities:
            raise ValueError(
                f"model {spec.name!r} works on {'/'.join(spec.modalities)} images in their own "
                f"units; this input is {modality or 'of unknown modality'}"
            )
        spacing = tuple(float(s) for s in meta.get("spacing_mm", (1.0, 1.0, 1.0)))
        direction = np.asarray(meta.get("direction", np.eye(3)), dtype=float).reshape(3, 3)
        labels = self.function(
            volume, spacing, progress=progress, cancelled=cancelled, direction=direction
        )
        labels = np.asarray(labels)
        if labels.shape != volume.shape[:3]:
            raise ValueError(f"model {spec.name!r} gave labels {labels.shape} for {volume.shape}")
        if labels.size and int(labels.max()) >= len(spec.labels):
            raise ValueError(
                f"model {spec.name!r} gave label {int(labels.max())}, "
                f"more than its {len(spec.labels) - 1} labels"
            )
        return labels.astype(np.uint8, copy=False)


def classical_model(spec: ModelSpec) -> ClassicalModel:
    """The runnable of a ``classical`` spec (imports its module: never TensorFlow)."""
    return ClassicalModel(spec)


def one_hot(labels2d: np.ndarray, n_labels: int) -> np.ndarray:
    """float32 (labels, rows, cols): 1 where the label is, 0 elsewhere."""
    return (np.arange(n_labels)[:, None, None] == labels2d[None]).astype(np.float32)


def segment_probabilities(
    image2d: np.ndarray, meta: Mapping, spec: ModelSpec, model, context: Mapping | None = None
):
    """Per-label probabilities float32 (labels, rows, cols) on the input image's grid.

    The model's per-pixel softmax (1, H, W, labels) is mapped back through the inverse of
    the spec's preprocessing (linear interpolation; areas cut away or padded get 0). A
    classical model's labels come back as 0/1 probabilities.
    """
    if spec.task != "segmentation":
        raise ValueError(f"model {spec.name!r} is a {spec.task} model, not a segmenter")
    if spec.is_classical:
        image = np.asarray(image2d, dtype=np.float32)[np.newaxis]
        rows_cols = meta.get("pixel_spacing_mm", (1.0, 1.0))
        meta = {**meta, "spacing_mm": (1.0, *rows_cols)}
        return one_hot(model.run(image, meta)[0], len(spec.labels))
    probs = _probabilities(np.asarray(image2d, np.float32)[np.newaxis], meta, spec, model, context)
    return probs[0]


def _probabilities(
    images: np.ndarray, meta: Mapping, spec: ModelSpec, model, context: Mapping | None
) -> list[np.ndarray]:
    """For a batch of 2D images (n, rows, cols): n arrays (labels, rows, cols) float32."""
    pipeline = spec.pipeline(context)
    inputs, records = [], []
    for image in images:
        x, record = pipeline.forward(np.asarray(image, dtype=np.float32), meta)
        inputs.append(to_batch(x, spec.input.channels))
        records.append(record)
    out = np.asarray(model.predict(np.concatenate(inputs)), dtype=np.float32)
    want = (len(images), spec.input.height, spec.input.width, len(spec.labels))
    if out.shape != want:
        raise ValueError(f"model {spec.name!r} gives output {out.shape}, expected {want}")
    return [
        np.stack([pipeline.inverse_map(out[n, :, :, c], rec) for c in range(out.shape[-1])])
        for n, rec in enumerate(records)
    ]


def labels_from_probabilities(probs: np.ndarray) -> np.ndarray:
    """uint8 (rows, cols): argmax over labels; 0 where no label is covered (sum < 0.5)."""
    labels = np.argmax(probs, axis=0).astype(np.uint8)
    labels[probs.sum(axis=0) < 0.5] = 0
    return labels


def foreground_mask(image2d: np.ndarray, meta: Mapping, spec: ModelSpec, model) -> np.ndarray:
    """Bool mask (rows, cols): pixels whose background (label 0) probability is below 0.5.

    Outside the area the preprocessing kept, every probability maps back to 0, so those
    pixels would count as foreground: they are set to False.
    """
    probs = segment_probabilities(image2d, meta, spec, model)
    covered = probs.sum(axis=0) > 0.5
    return (probs[0] < 0.5) & covered


#: lung_crop / lung_mask segment a copy whose long side is at most this many pixels
SEGMENTER_MAX_SIDE = 512


def block_mean(image: np.ndarray, factor: int) -> np.ndarray:
    """``image`` (rows, cols) averaged over ``factor`` × ``factor`` blocks.

    SimpleITK's BinShrink (4 ms for a 2k × 2k radiograph, numpy's reshape-mean takes 16):
    the output has rows // factor × cols // factor pixels; a last partial block is dropped.
    """
    image = np.asarray(image, dtype=np.float32)
    if factor <= 1:
        return image
    import SimpleITK as sitk

    small = sitk.BinShrink(sitk.GetImageFromArray(image), [int(factor), int(factor)])
    return sitk.GetArrayFromImage(small)


def upsample_mask(mask: np.ndarray, factor: int, shape: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour inverse of :func:`block_mean` onto ``shape``: each pixel takes its
    block's value; pixels of a dropped partial block take the last block's."""
    if factor <= 1:
        return mask
    rows, cols = int(shape[0]), int(shape[1])
    extra_r = max(0, rows - mask.shape[0] * factor)
    extra_c = max(0, cols - mask.shape[1] * factor)
    big = np.repeat(np.repeat(mask, factor, axis=0), factor, axis=1)  # 1.4 ms vs 9 indexed
    if extra_r or extra_c:
        big = np.pad(big, ((0, extra_r), (0, extra_c)), mode="edge")
    return big[:rows, :cols]


def make_segmenter(get_model: GetHelper, max_side: int = SEGMENTER_MAX_SIDE):
    """A ``context["segment"]`` for :mod:`ai.transforms` ``lung_crop`` steps.

    ``get_model(name) -> (spec, model)`` loads (or returns the cached) segmentation model.
    The image handed in by lung_crop is already in display orientation, so it is passed as
    MONOCHROME2 (a ``to_display`` step in the segmenter's spec then leaves it alone).

    A radiograph larger than ``max_side`` pixels is first averaged over integer blocks so
    its long side is at most ``max_side`` (the lung models work at 256², so nothing they
    could use is lost), segmented, and the bool mask is blown back up (nearest neighbour)
    to the image's grid: this saves ~60 ms per 2k × 2k radiograph over segmenting and
    mapping probabilities back at full resolution.
    """

    def segment(name: str, image: np.ndarray) -> np.ndarray:
        spec, model = get_model(name)
        meta = {"photometric": "MONOCHROME2", "modality": "OT"}
        factor = max(1, -(-max(image.shape) // max_side))
        small = block_mean(image, factor)
        return upsample_mask(foreground_mask(small, meta, spec, model), factor, image.shape)

    return segment


# ------------------------------------------------------------------------------ volumes


def volume_input(volume) -> tuple[np.ndarray, dict]:
    """(array, meta) for :func:`segment_volume` from a ``viewer.core.volume.Volume``.

    ``array`` (k, j, i): int16 kept as is (Hounsfield units for CT), anything else float32;
    a colour picture gives its luminance (ITU-R BT.601). ``meta``: photometric, modality,
    spacing_mm (k, j, i), pixel_spacing_mm (rows, cols), direction (3x3 nested list, LPS
    columns i, j, k).
    """
    array = volume.array
    if array.ndim == 4:
        array = np.tensordot(array[..., :3].astype(np.float32), np.asarray(LUMA, np.float32), 1)
    elif array.dtype != np.int16:
        array = array.astype(np.float32)
    g = volume.geometry
    meta = {
        "photometric": "MONOCHROME1" if volume.invert_display else "MONOCHROME2",
        "modality": volume.modality or "OT",
        "spacing_mm": tuple(float(s) for s in g.spacing),
        "pixel_spacing_mm": tuple(float(s) for s in g.spacing[1:3]),
        "direction": np.asarray(g.direction, dtype=float).tolist(),
    }
    return np.ascontiguousarray(array), meta


def lung_restriction(spec: ModelSpec, meta: Mapping) -> str | None:
    """The model whose lung mask restricts ``spec``'s labels on this input, or None.

    ``within_lungs`` applies to CT only (the lung methods work in Hounsfield units); on
    other inputs (a PNG of a CT slice, a radiograph) the labels are left as they are.
    """
    if spec.lungs_model is None or str(meta.get("modality") or "") != "CT":
        return None
    return spec.lungs_model


def restrict_to_mask(
    labels: np.ndarray,
    mask: np.ndarray,
    dilate_mm: float = 0.0,
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
    touching: bool = False,
) -> np.ndarray:
    """Set ``labels`` (k, j, i, in place) to 0 outside ``mask`` (bool, same shape).

    ``dilate_mm`` > 0 first grows the mask by that Euclidean distance in millimetres
    (``spacing``: voxel size (k, j, i) in mm; SimpleITK's Maurer distance map), so findings
    a threshold lung mask leaves out (consolidation against the chest wall) are kept within
    that margin. With ``touching``, what is left is then kept only where its connected piece
    (26-connectivity, any non-zero label) reaches into ``mask`` itself: islands in the
    margin that do not touch the lung are removed. Returns ``labels``.
    """
    if labels.shape != mask.shape:
        raise ValueError(f"mask shape {mask.shape} does not match labels {labels.shape}")
    inside = np.asarray(mask, dtype=bool)
    keep = inside
    if dilate_mm > 0 and inside.any():
        import SimpleITK as sitk

        image = sitk.GetImageFromArray(inside.view(np.uint8))
        image.SetSpacing([float(s) for s in reversed(spacing)])
        distance = sitk.SignedMaurerDistanceMap(
            image, insideIsPositive=False, squaredDistance=False, useImageSpacing=True
        )
        keep = sitk.GetArrayViewFromImage(distance) <= dilate_mm
    labels[~keep] = 0
    if touching and labels.any():
        import SimpleITK as sitk

        found = sitk.GetImageFromArray((labels > 0).view(np.uint8))
        pieces = sitk.GetArrayFromImage(sitk.ConnectedComponent(found, True))  # 26-connected
        reached = np.zeros(int(pieces.max()) + 1, dtype=bool)
        reached[np.unique(pieces[inside])] = True
        reached[0] = False
        labels[~reached[pieces]] = 0
    return labels


def segment_volume(
    volume: np.ndarray,
    meta: Mapping,
    spec: ModelSpec,
    model,
    out: np.ndarray,
    *,
    get_helper: GetHelper | None = None,
    progress: Progress | None = None,
    check_cancel: Callable[[], None] | None = None,
    cancel_requested: Callable[[], bool] | None = None,
) -> dict:
    """Label ``volume`` (k, j, i) into ``out`` (uint8, same shape); see the module docstring.

    ``model``: a backend model (``predict``) or a :class:`ClassicalModel`. ``get_helper``
    loads the models named by the pre- and postprocessing (``lung_crop``, ``within_lungs``).
    ``progress(fraction, message)`` reports "slice n/N" after each batch; ``check_cancel()``
    is called between batches and raises Cancelled; ``cancel_requested()`` (no raise) is
    what a classical method polls. Returns ``{"restricted_to": model name or None}``.
    """
    report = progress or (lambda f, m: None)
    if spec.task != "segmentation":
        raise ValueError(f"model {spec.name!r} is a {spec.task} model, not a segmenter")
    if volume.ndim != 3 or volume.size == 0:
        raise ValueError(f"expected a volume (k, j, i), got shape {volume.shape}")
    if out.shape != volume.shape or out.dtype != np.uint8:
        raise ValueError(f"output must be uint8 {volume.shape}, got {out.dtype} {out.shape}")
    helper = lung_restriction(spec, meta)
    share = 0.7 if helper else 1.0
    _labels_into(
        volume,
        meta,
        spec,
        model,
        out,
        get_helper,
        _scaled(report, 0.0, share),
        check_cancel,
        cancel_requested,
    )
    if helper:
        if get_helper is None:
            raise ValueError(f"model {spec.name!r} needs model {helper!r} for within_lungs")
        lung_spec, lung_model = get_helper(helper)
        lungs = np.zeros(volume.shape, np.uint8)
        try:
            _labels_into(
                volume,
                meta,
                lung_spec,
                lung_model,
                lungs,
                get_helper,
                _scaled(report, share, 1.0, f"{helper}: "),
                check_cancel,
                cancel_requested,
            )
        except ValueError as exc:  # e.g. no lungs found: say which step failed
            raise ValueError(f"restricting to the lungs ({helper}): {exc}") from None
        step = next(s for s in spec.postprocessing if s["op"] == "within_lungs")
        spacing = tuple(meta.get("spacing_mm", (1.0, 1.0, 1.0)))
        restrict_to_mask(out, lungs != 0, step["dilate_mm"], spacing, step["touching"])
    report(1.0, "done")
    return {"restricted_to": helper}


def _scaled(report: Progress, start: float, stop: float, prefix: str = "") -> Progress:
    return lambda f, m: report(start + (stop - start) * float(f), prefix + m)


def _labels_into(
    volume, meta, spec, model, out, get_helper, report, check_cancel, cancel_requested
) -> None:
    """One model's labels (no postprocessing) into ``out``."""
    check = check_cancel or (lambda: None)
    if spec.is_classical:
        asked = {"cancel": False}

        def cancelled() -> bool:
            asked["cancel"] = asked["cancel"] or bool(cancel_requested and cancel_requested())
            return asked["cancel"]

        try:
            out[...] = model.run(volume, meta, report, cancelled)
        except Exception:
            if asked["cancel"]:
                raise Cancelled("cancelled") from None
            raise
        if asked["cancel"]:
            raise Cancelled("cancelled")
        check()
        return
    context = {"segment": make_segmenter(get_helper)} if get_helper else None
    n, batch = volume.shape[0], max(1, int(spec.batch_size))
    report(0.0, f"slice 0/{n}")
    for start in range(0, n, batch):
        stop = min(n, start + batch)
        probs = _probabilities(volume[start:stop], meta, spec, model, context)
        for k, p in zip(range(start, stop), probs, strict=True):
            out[k] = labels_from_probabilities(p)
        report(stop / n, f"slice {stop}/{n}")
        check()

"""Rules and helpers shared by the label-map editing modules (package-internal).

:mod:`viewer.core.editing` (region operations), :mod:`viewer.core.brush` and
:mod:`viewer.core.interpolation` all apply Slicer's masking rules through these helpers
(documented in :mod:`viewer.core.editing`): a locked segment is never modified, ``overwrite``
decides whether painting replaces other unlocked labels, erasing clears only the given
label, and every change goes through :func:`_commit` as an edit cropped to its box.
This module is the bottom of the three (it imports none of them), so they never import each
other in a cycle.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from viewer.core.history import Edit, UndoStack, diff_edit
from viewer.core.labelmap import BBox, LabelMap, bbox_slices, clip_bbox


def _check_label(labelmap: LabelMap, label: int) -> int:
    """``label`` as an int; ValueError unless it is an unlocked segment of the map."""
    label = int(label)
    if not 1 <= label <= 255:
        raise ValueError(f"label must be 1..255, got {label}")
    segment = labelmap.segments.get(label)
    if segment is None:
        raise ValueError(f"label {label} is not a segment of this label map")
    if segment.locked:
        raise ValueError(f"segment {segment.name!r} is locked")
    return label


def _protected(labelmap: LabelMap, label: int, overwrite: bool) -> np.ndarray:
    """Lookup table: True for label values that painting ``label`` must leave alone."""
    lut = np.zeros(256, dtype=bool)
    if not overwrite:
        lut[:] = True
        lut[0] = lut[label] = False
    lut[labelmap.locked_labels()] = True
    return lut


def _painted(old: np.ndarray, mask: np.ndarray, label: int, protected: np.ndarray) -> np.ndarray:
    if protected.any():
        mask = mask & ~np.take(protected, old)
    return np.where(mask, np.uint8(label), old)


def _erased(old: np.ndarray, mask: np.ndarray, label: int) -> np.ndarray:
    return np.where(mask & (old == label), np.uint8(0), old)


def _commit(
    labelmap: LabelMap, stack: UndoStack, bbox: BBox, new: np.ndarray, name: str
) -> Edit | None:
    edit = diff_edit(labelmap.labels, bbox, new)
    if edit is not None:
        stack.apply(edit, name)
    return edit


def _image_array(image, labelmap: LabelMap) -> np.ndarray:
    arr = np.asarray(getattr(image, "array", image))
    if arr.shape != labelmap.shape:
        raise ValueError(f"image shape {arr.shape} does not match the label map {labelmap.shape}")
    return arr


def _hu_range(hu_range) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in hu_range)
    except (TypeError, ValueError):
        raise ValueError(f"HU range must be (low, high), got {hu_range!r}") from None
    if not lo <= hi:
        raise ValueError(f"HU range low {lo} is above high {hi}")
    return lo, hi


def _check_axis(axis: int) -> int:
    if axis not in (0, 1, 2):
        raise ValueError(f"axis must be 0 (k), 1 (j) or 2 (i), got {axis!r}")
    return int(axis)


def _tight_bbox(mask: np.ndarray, offset=(0, 0, 0)) -> BBox | None:
    """Bounding box of the True voxels of ``mask`` (shifted by ``offset``); None if none."""
    box = []
    for axis in range(mask.ndim):
        other = tuple(a for a in range(mask.ndim) if a != axis)
        hit = np.flatnonzero(mask.any(axis=other))
        if hit.size == 0:
            return None
        box.append((int(hit[0]) + offset[axis], int(hit[-1]) + 1 + offset[axis]))
    return tuple(box)  # type: ignore[return-value]


def _pad(bbox: BBox, pad, shape) -> BBox:
    return clip_bbox(tuple((a - p, b + p) for (a, b), p in zip(bbox, pad, strict=True)), shape)


def _label_mask(labelmap: LabelMap, label: int, pad=(0, 0, 0)):
    """(bbox, mask of ``label`` inside it): the label's bounding box grown by ``pad``
    voxels per axis (clipped); (None, None) when the label has no voxel."""
    box = _tight_bbox(labelmap.labels == label)
    if box is None:
        return None, None
    box = _pad(box, pad, labelmap.shape)
    return box, labelmap.labels[bbox_slices(box)] == label


def _distance_mm(mask: np.ndarray, spacing) -> np.ndarray:
    """Distance in mm from each voxel centre to the nearest True voxel centre (0 on True
    voxels); ``spacing`` in array order. Huge values when ``mask`` has no True voxel."""
    img = sitk.GetImageFromArray(mask.astype(np.uint8))
    img.SetSpacing(tuple(float(s) for s in reversed(spacing)))
    dist = sitk.SignedMaurerDistanceMap(
        img, insideIsPositive=False, squaredDistance=False, useImageSpacing=True
    )
    return np.maximum(sitk.GetArrayViewFromImage(dist), 0.0)

"""Mask correction: brush, eraser, flood fill, islands, margin, threshold, fill between slices.

The logic half of 3D Slicer's Segment Editor (no widget here, DESIGN.md): each operation
computes an :class:`~viewer.core.history.Edit` cropped to the voxels that really change and
applies it through an :class:`~viewer.core.history.UndoStack`, so that

* every operation is ONE undo step (a whole brush drag from press to release included);
* only the operation's bounding box is read, written and announced
  (``labelmap.changed(bbox)``);
* it returns the applied edit, or None when nothing changed.

Rules shared by every operation (Slicer's masking settings, with its defaults):

* a locked segment is never modified: painting with or erasing a locked label raises
  ValueError, and voxels holding any locked label keep it;
* ``overwrite=True`` (default): painting replaces other (unlocked) labels, as Slicer's
  "Modify other segments: overwrite all"; ``overwrite=False`` paints on background only;
* erasing (``erase=True``) clears only voxels of the given label (Slicer's eraser erases the
  selected segment only);
* geometry is in millimetres on the label map's (anisotropic) spacing; points are array
  indices ``(k, j, i)``, fractional values allowed; ``axis`` is the array axis normal to the
  edited plane: 0 = k (the acquisition / axial plane), 1 = j, 2 = i.

Images (``image``) are the volume's modality values (HU for CT): a ``Volume`` or a
``(k, j, i)`` array of the label map's shape. HU ranges are inclusive ``(low, high)``.

This module holds the region operations and re-exports the brush
(:class:`~viewer.core.brush.Brush`) and fill between slices
(:func:`~viewer.core.interpolation.interpolate_slices`), so every tool is importable from
here; the shared helpers live in :mod:`viewer.core.edit_rules`.
"""

from __future__ import annotations

import math

import numpy as np
import SimpleITK as sitk

from viewer.core.brush import Brush
from viewer.core.edit_rules import (
    _check_axis,
    _check_label,
    _commit,
    _distance_mm,
    _erased,
    _hu_range,
    _image_array,
    _label_mask,
    _painted,
    _protected,
    _tight_bbox,
)
from viewer.core.history import Edit, UndoStack
from viewer.core.interpolation import interpolate_slices
from viewer.core.labelmap import BBox, LabelMap, bbox_slices, clip_bbox

__all__ = [
    "Brush",
    "clear_segment",
    "fill_holes",
    "flood_fill",
    "grow_shrink",
    "interpolate_slices",
    "keep_largest_island",
    "paint_mask",
    "remove_small_islands",
    "replace_label",
    "threshold",
]


def paint_mask(
    labelmap: LabelMap,
    stack: UndoStack,
    label: int,
    mask: np.ndarray,
    *,
    bbox: BBox | None = None,
    erase: bool = False,
    overwrite: bool = True,
    name: str | None = None,
) -> Edit | None:
    """Paint (or erase) ``label`` where ``mask`` is True, as one undo step.

    ``mask`` has the label map's shape, or the shape of ``bbox`` when one is given (the
    mask then covers only that box).
    """
    label = _check_label(labelmap, label)
    bbox = bbox or tuple((0, n) for n in labelmap.shape)
    if mask.shape != tuple(b - a for a, b in bbox):
        raise ValueError(f"mask shape {mask.shape} does not match the box {bbox}")
    old = labelmap.labels[bbox_slices(bbox)]
    mask = mask.astype(bool, copy=False)
    if erase:
        new = _erased(old, mask, label)
    else:
        new = _painted(old, mask, label, _protected(labelmap, label, overwrite))
    segment = labelmap.segments[label].name
    return _commit(labelmap, stack, bbox, new, name or f"{'Erase' if erase else 'Paint'} {segment}")


# -- region operations ---------------------------------------------------------------------------


def flood_fill(
    labelmap: LabelMap,
    stack: UndoStack,
    seed_kji,
    label: int,
    image,
    hu_range: tuple[float, float] | None = None,
    tolerance: float | None = None,
    axis: int | None = None,
    *,
    overwrite: bool = True,
) -> Edit | None:
    """Paint the region connected to ``seed_kji`` (face connectivity) whose image values are
    within ``hu_range``, or within the seed's value ± ``tolerance`` (give one of the two).

    2D in the slice through the seed normal to ``axis``, or 3D when ``axis`` is None
    (SimpleITK ConnectedThreshold). None when the seed's own value is out of range.
    """
    label = _check_label(labelmap, label)
    arr = _image_array(image, labelmap)
    seed = tuple(int(round(float(v))) for v in seed_kji)
    if len(seed) != 3 or clip_bbox(tuple((v, v + 1) for v in seed), labelmap.shape) is None:
        raise ValueError(f"seed {tuple(seed_kji)} is outside the volume {labelmap.shape}")
    if (hu_range is None) == (tolerance is None):
        raise ValueError("flood_fill needs either hu_range or tolerance")
    if hu_range is None:
        if not tolerance >= 0:
            raise ValueError(f"tolerance must be >= 0, got {tolerance!r}")
        lo, hi = float(arr[seed]) - tolerance, float(arr[seed]) + tolerance
    else:
        lo, hi = _hu_range(hu_range)
    if np.issubdtype(arr.dtype, np.integer):  # the filter casts its bounds to the pixel type
        info = np.iinfo(arr.dtype)
        lo, hi = max(math.ceil(lo), int(info.min)), min(math.floor(hi), int(info.max))
    if not lo <= arr[seed] <= hi:
        return None
    if axis is None:
        plane, plane_seed = arr, seed
    else:
        axis = _check_axis(axis)
        plane = np.take(arr, seed[axis], axis=axis)
        plane_seed = tuple(v for d, v in enumerate(seed) if d != axis)
    filled = sitk.ConnectedThreshold(
        sitk.GetImageFromArray(np.ascontiguousarray(plane)),
        seedList=[tuple(reversed(plane_seed))],
        lower=lo,
        upper=hi,
        replaceValue=1,
    )
    mask = sitk.GetArrayViewFromImage(filled).astype(bool)
    if axis is not None:
        mask = np.expand_dims(mask, axis)
    offset = [0, 0, 0] if axis is None else [seed[axis] if d == axis else 0 for d in range(3)]
    bbox = _tight_bbox(mask, offset)
    local = tuple(slice(a - o, b - o) for (a, b), o in zip(bbox, offset, strict=True))
    return paint_mask(
        labelmap, stack, label, mask[local], bbox=bbox, overwrite=overwrite, name="Flood fill"
    )


def threshold(
    labelmap: LabelMap,
    stack: UndoStack,
    label: int,
    image,
    hu_range: tuple[float, float],
    within_mask=None,
    *,
    overwrite: bool = True,
) -> Edit | None:
    """Add to ``label`` every voxel whose image value is within ``hu_range``.

    ``within_mask`` limits it: a boolean array of the map's shape, or a label (e.g. the
    lungs) whose voxels form the editable area. Voxels out of range are left as they are
    (to replace a segment by a threshold, ``clear_segment`` first inside one
    ``stack.group``).
    """
    label = _check_label(labelmap, label)
    lo, hi = _hu_range(hu_range)
    arr = _image_array(image, labelmap)
    mask = (arr >= lo) & (arr <= hi)
    if within_mask is not None:
        if isinstance(within_mask, (int, np.integer)):
            within_mask = labelmap.labels == int(within_mask)
        within_mask = np.asarray(within_mask, dtype=bool)
        if within_mask.shape != labelmap.shape:
            raise ValueError(
                f"within_mask shape {within_mask.shape} does not match {labelmap.shape}"
            )
        mask &= within_mask
    bbox = _tight_bbox(mask)
    if bbox is None:
        return None
    return paint_mask(
        labelmap, stack, label, mask[bbox_slices(bbox)], bbox=bbox, overwrite=overwrite,
        name="Threshold",
    )  # fmt: skip


def replace_label(labelmap: LabelMap, stack: UndoStack, label: int, new_label: int) -> Edit | None:
    """Turn every voxel of ``label`` into ``new_label`` (0 clears; a segment merges into
    another). Both must be unlocked."""
    label = _check_label(labelmap, label)
    if new_label != 0:
        new_label = _check_label(labelmap, new_label)
    bbox, mask = _label_mask(labelmap, label)
    if bbox is None or new_label == label:
        return None
    new = labelmap.labels[bbox_slices(bbox)].copy()
    new[mask] = new_label
    name = "Clear" if new_label == 0 else "Merge"
    return _commit(labelmap, stack, bbox, new, f"{name} {labelmap.segments[label].name}")


def clear_segment(labelmap: LabelMap, stack: UndoStack, label: int) -> Edit | None:
    """Erase every voxel of ``label`` (the segment stays in the table)."""
    return replace_label(labelmap, stack, label, 0)


def _remove_components(labelmap, stack, label, full_connectivity, keep, name) -> Edit | None:
    """Clear the connected components of ``label`` that ``keep(relabelled)`` rejects."""
    label = _check_label(labelmap, label)
    bbox, mask = _label_mask(labelmap, label)
    if bbox is None:
        return None
    components = sitk.ConnectedComponent(
        sitk.GetImageFromArray(mask.astype(np.uint8)), bool(full_connectivity)
    )
    removed = mask & ~keep(components)
    return paint_mask(labelmap, stack, label, removed, bbox=bbox, erase=True, name=name)


def remove_small_islands(
    labelmap: LabelMap,
    stack: UndoStack,
    label: int,
    min_size_mm3: float | None = None,
    *,
    min_voxels: int | None = None,
    full_connectivity: bool = False,
) -> Edit | None:
    """Clear the connected pieces of ``label`` smaller than ``min_size_mm3`` (or
    ``min_voxels``). Connectivity: faces (6), or faces+edges+corners (26) with
    ``full_connectivity``."""
    if (min_size_mm3 is None) == (min_voxels is None):
        raise ValueError("remove_small_islands needs either min_size_mm3 or min_voxels")
    if min_voxels is None:
        min_voxels = math.ceil(min_size_mm3 / (labelmap.geometry.voxel_volume_ml * 1000.0) - 1e-9)
    if not min_voxels >= 0:
        raise ValueError(f"minimum island size must be >= 0, got {min_size_mm3 or min_voxels!r}")
    min_voxels = int(min_voxels)

    def keep(components):
        relabelled = sitk.RelabelComponent(components, minimumObjectSize=min_voxels)
        return sitk.GetArrayFromImage(relabelled) > 0

    return _remove_components(
        labelmap, stack, label, full_connectivity, keep, "Remove small islands"
    )


def keep_largest_island(
    labelmap: LabelMap, stack: UndoStack, label: int, *, full_connectivity: bool = False
) -> Edit | None:
    """Clear every connected piece of ``label`` but the largest."""

    def keep(components):
        return sitk.GetArrayFromImage(sitk.RelabelComponent(components)) == 1

    return _remove_components(
        labelmap, stack, label, full_connectivity, keep, "Keep largest island"
    )


def fill_holes(
    labelmap: LabelMap,
    stack: UndoStack,
    label: int,
    axis: int | None = None,
    *,
    overwrite: bool = False,
) -> Edit | None:
    """Fill the holes of ``label``: regions not of ``label`` that it encloses completely
    (in 3D, or slice by slice in the planes normal to ``axis``; SimpleITK BinaryFillhole).

    By default only background voxels are filled: a hole often holds another segment (a
    nodule inside a lung); ``overwrite=True`` fills over other unlocked labels too.
    """
    label = _check_label(labelmap, label)
    bbox, mask = _label_mask(labelmap, label)
    if bbox is None:
        return None
    if axis is None:
        filled = sitk.GetArrayFromImage(
            sitk.BinaryFillhole(sitk.GetImageFromArray(mask.astype(np.uint8)))
        )
    else:
        axis = _check_axis(axis)
        planes = [
            sitk.GetArrayFromImage(sitk.BinaryFillhole(sitk.GetImageFromArray(p.astype(np.uint8))))
            for p in np.moveaxis(mask, axis, 0)
        ]
        filled = np.moveaxis(np.stack(planes), 0, axis)
    holes = filled.astype(bool) & ~mask
    return paint_mask(
        labelmap, stack, label, holes, bbox=bbox, overwrite=overwrite, name="Fill holes"
    )


def grow_shrink(
    labelmap: LabelMap, stack: UndoStack, label: int, margin_mm: float, *, overwrite: bool = True
) -> Edit | None:
    """Grow (``margin_mm`` > 0) or shrink (< 0) ``label`` by a margin in millimetres (Slicer's
    Margin effect): exact Euclidean dilation/erosion by a ball of that radius on the
    anisotropic spacing (voxel centres within the margin). Voxels outside the volume count
    as neither inside nor outside (a segment touching the edge does not shrink from it)."""
    label = _check_label(labelmap, label)
    margin = float(margin_mm)
    if not math.isfinite(margin):
        raise ValueError(f"margin must be a number of mm, got {margin_mm!r}")
    if margin == 0:
        return None
    spacing = labelmap.geometry.spacing
    pad = [math.ceil(abs(margin) / s) + 1 for s in spacing]
    bbox, mask = _label_mask(labelmap, label, pad)
    if bbox is None:
        return None
    tol = 1e-6 * abs(margin)
    if margin > 0:
        added = ~mask & (_distance_mm(mask, spacing) <= margin + tol)
        return paint_mask(
            labelmap, stack, label, added, bbox=bbox, overwrite=overwrite, name="Grow"
        )
    if mask.all():
        return None
    removed = mask & (_distance_mm(~mask, spacing) <= -margin + tol)
    return paint_mask(labelmap, stack, label, removed, bbox=bbox, erase=True, name="Shrink")

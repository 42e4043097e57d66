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
"""

from __future__ import annotations

import math

import numpy as np
import SimpleITK as sitk

from viewer.core.history import Edit, UndoStack, diff_edit
from viewer.core.labelmap import BBox, LabelMap, bbox_slices, clip_bbox

# -- shared rules ------------------------------------------------------------------------------


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


# -- brush -------------------------------------------------------------------------------------


class Brush:
    """Paint brush / eraser: a disc of ``radius_mm`` in the plane normal to array ``axis``,
    or a sphere (an ellipsoid in voxels on anisotropic spacing) with ``sphere=True``.

    ``press(kji)`` starts a stroke (opens an undo group), each ``move(kji)`` paints the
    capsule joining the previous point to the new one (voxels whose centre lies within
    ``radius_mm`` of the segment, so a fast drag leaves no gap), ``release()`` ends it: the
    whole stroke is one undo step. A disc paints on the slice nearest the point's ``axis``
    coordinate; a move onto another slice starts a new disc there, it does not join across
    slices. The voxel nearest each point is always painted, however small the radius.

    ``erase=True`` clears voxels of ``label`` only. ``hu_range`` (with ``image``) limits
    painting or erasing to voxels whose image value is within the range (threshold brush).
    Each move reads and writes only the box of its new capsule. Settings (attributes of the
    same names) may change between strokes; they are checked at each press.
    """

    def __init__(
        self,
        labelmap: LabelMap,
        stack: UndoStack,
        *,
        label: int,
        radius_mm: float,
        axis: int = 0,
        sphere: bool = False,
        erase: bool = False,
        hu_range: tuple[float, float] | None = None,
        image=None,
        overwrite: bool = True,
    ) -> None:
        self.labelmap, self.stack = labelmap, stack
        self.label, self.radius_mm, self.axis = label, radius_mm, axis
        self.sphere, self.erase, self.overwrite = sphere, erase, overwrite
        self.hu_range, self.image = hu_range, image
        self._last: np.ndarray | None = None
        self._active = False
        self._prepare()

    @property
    def active(self) -> bool:
        """True between press() and release()."""
        return self._active

    def press(self, kji) -> Edit | None:
        """Start a stroke at ``kji`` and paint there."""
        if self._active:
            self.release()
        self._prepare()
        verb = "Erase" if self.erase else "Paint"
        self.stack.begin(f"{verb} {self.labelmap.segments[self._label].name}")
        self._active = True
        self._last = None
        return self._stroke_to(kji)

    def move(self, kji) -> Edit | None:
        """Extend the stroke to ``kji``; returns the edit applied by this move (or None)."""
        if not self._active:
            raise RuntimeError("Brush.move() before press()")
        return self._stroke_to(kji)

    def release(self) -> None:
        """End the stroke: everything since press() becomes one undo step."""
        if self._active:
            self._active = False
            self._last = None
            self.stack.end()

    # -- internals -------------------------------------------------------------------------
    def _prepare(self) -> None:
        self._label = _check_label(self.labelmap, self.label)
        self._axis = _check_axis(self.axis)
        r = float(self.radius_mm)
        if not (math.isfinite(r) and r > 0):
            raise ValueError(
                f"brush radius must be a positive number of mm, got {self.radius_mm!r}"
            )
        self._spacing = np.asarray(self.labelmap.geometry.spacing, dtype=float)
        self._r = r
        self._range = None
        self._image = None
        if self.hu_range is not None:
            if self.image is None:
                raise ValueError("a threshold brush (hu_range) needs the image")
            self._range = _hu_range(self.hu_range)
            self._image = _image_array(self.image, self.labelmap)
        self._protect = _protected(self.labelmap, self._label, self.overwrite)

    def _stroke_to(self, kji) -> Edit | None:
        p = np.asarray(kji, dtype=float).reshape(3)
        if not np.all(np.isfinite(p)):
            raise ValueError(f"brush point must be finite, got {kji!r}")
        if not self.sphere:
            p[self._axis] = round(p[self._axis])
        start = self._last
        if start is None or (not self.sphere and start[self._axis] != p[self._axis]):
            start = p
        self._last = p
        return self._paint_capsule(start, p)

    def _paint_capsule(self, a: np.ndarray, b: np.ndarray) -> Edit | None:
        s, r = self._spacing, self._r
        box = []
        for ax in range(3):
            if not self.sphere and ax == self._axis:
                box.append((int(a[ax]), int(a[ax]) + 1))
            else:
                ext = r / s[ax]
                lo = math.floor(min(a[ax], b[ax]) - ext)
                box.append((lo, math.ceil(max(a[ax], b[ax]) + ext) + 1))
        bbox = clip_bbox(tuple(box), self.labelmap.shape)
        if bbox is None:
            return None
        # mm offsets of the box's voxel centres from a, one broadcastable vector per axis
        # (float32: half the memory traffic of float64, ~1e-5 mm error at 20 mm)
        grid = [
            ((np.arange(lo, hi) - a[ax]) * s[ax])
            .astype(np.float32)
            .reshape([-1 if d == ax else 1 for d in range(3)])
            for ax, (lo, hi) in enumerate(bbox)
        ]
        # squared distance to the segment a-b: |g|^2 - t (2 g.d - t |d|^2), t = clip(g.d/|d|^2)
        seg = (b - a) * s
        length2 = float(seg @ seg)
        dist2 = grid[0] ** 2 + grid[1] ** 2 + grid[2] ** 2
        if length2 > 0:
            d = seg.astype(np.float32)
            gd = grid[0] * d[0] + grid[1] * d[1] + grid[2] * d[2]
            t = np.clip(gd * np.float32(1 / length2), 0.0, 1.0)
            gd *= 2.0
            gd -= t * np.float32(length2)
            gd *= t
            dist2 -= gd
        mask = dist2 <= r * r * (1 + 1e-5)  # float32: ties at exactly r stay in
        for q in (a, b):  # the voxels nearest the points, whatever the radius
            near = tuple(int(round(q[ax])) - lo for ax, (lo, _) in enumerate(bbox))
            if all(0 <= n < m for n, m in zip(near, mask.shape, strict=True)):
                mask[near] = True
        region = bbox_slices(bbox)
        if self._range is not None:
            values = self._image[region]
            mask &= (values >= self._range[0]) & (values <= self._range[1])
        old = self.labelmap.labels[region]
        if self.erase:
            new = _erased(old, mask, self._label)
        else:
            new = _painted(old, mask, self._label, self._protect)
        return _commit(self.labelmap, self.stack, bbox, new, "Brush")


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


# -- fill between slices -----------------------------------------------------------------------


def _signed_distance(plane: np.ndarray, spacing) -> np.ndarray:
    """Signed distance (mm): < 0 inside (minus the distance to the nearest outside pixel),
    > 0 outside (distance to the nearest inside pixel); never 0, so a shape is its own
    zero level set exactly. ``plane`` is padded by the caller so both sides exist."""
    return _distance_mm(plane, spacing) - _distance_mm(~plane, spacing)


def _pieces(plane: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected pieces of a 2D mask: (label image 1..n, n)."""
    pieces = sitk.ConnectedComponent(sitk.GetImageFromArray(plane.astype(np.uint8)), True)
    arr = sitk.GetArrayFromImage(pieces)
    return arr, int(arr.max())


def _matched_groups(pa: np.ndarray, pb: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Pair the pieces of two drawn slices: (part of a, part of b) per object.

    One piece on each side: one object, however far it drifted. Otherwise pieces that
    overlap (in-plane) belong to one object; a piece without partner is an object that
    ends between the slices (its other side is empty).
    """
    la, na = _pieces(pa)
    lb, nb = _pieces(pb)
    if na == 1 and nb == 1:
        return [(pa, pb)]
    parent = list(range(na + nb))  # union-find: a pieces 0..na-1, b pieces na..

    def root(n: int) -> int:
        while parent[n] != n:
            n = parent[n]
        return n

    both = (la > 0) & (lb > 0)
    for i, j in set(zip(la[both].tolist(), lb[both].tolist(), strict=True)):
        parent[root(i - 1)] = root(na + j - 1)
    groups: dict[int, list[int]] = {}
    for n in range(na + nb):
        groups.setdefault(root(n), []).append(n)
    return [
        (np.isin(la, [n + 1 for n in g if n < na]), np.isin(lb, [n - na + 1 for n in g if n >= na]))
        for g in groups.values()
    ]


def _shifted(arr: np.ndarray, offset, fill: float) -> np.ndarray:
    """``arr`` moved by integer ``offset`` pixels; uncovered pixels get ``fill``."""
    out = np.full_like(arr, fill)
    src = tuple(slice(max(0, -o), max(0, n - max(0, o))) for o, n in zip(offset, arr.shape))
    dst = tuple(slice(max(0, o), max(0, n - max(0, -o))) for o, n in zip(offset, arr.shape))
    out[dst] = arr[src]
    return out


def _blends(pa: np.ndarray, pb: np.ndarray, spacing, steps: int):
    """Interpolated masks for the ``steps - 1`` slices between masks ``pa`` and ``pb`` that
    are ``steps`` slices apart, padded by the returned margin (pixels per axis): carried
    shapes may leave the masks' box by up to their move."""
    objects = []
    for ga, gb in _matched_groups(pa, pb):
        centre = [np.argwhere(g).mean(axis=0) if g.any() else None for g in (ga, gb)]
        centre = [c if c is not None else centre[1 - side] for side, c in enumerate(centre)]
        objects.append((ga, gb, centre, np.round(centre[1] - centre[0]).astype(int)))
    margin = np.max([np.abs(o[3]) for o in objects], axis=0) + 1  # +1: both sides exist
    pad = [(m, m) for m in margin]
    shape = tuple(n + 2 * m for n, m in zip(pa.shape, margin))
    far = float(np.sum(np.asarray(spacing) * shape)) * 10  # outside everything
    out = [np.zeros(shape, bool) for _ in range(steps - 1)]
    for ga, gb, centre, move in objects:
        sdf = []
        for g, c in zip((ga, gb), centre):
            if g.any():
                sdf.append(_signed_distance(np.pad(g, pad), spacing))
            else:  # an object ending here shrinks to its centroid at this slice
                grid = np.ogrid[: shape[0], : shape[1]]
                sdf.append(
                    np.sqrt(sum(((grid[d] - c[d] - margin[d]) * spacing[d]) ** 2 for d in (0, 1)))
                )
        for n in range(1, steps):
            w = n / steps
            at = np.round(w * move).astype(int)  # where the blend sits, relative to a
            blend = (1 - w) * _shifted(sdf[0], at, far) + w * _shifted(sdf[1], at - move, far)
            out[n - 1] |= blend < 0
    return out, margin


def interpolate_slices(
    labelmap: LabelMap, stack: UndoStack, label: int, axis: int = 0, *, overwrite: bool = True
) -> Edit | None:
    """Fill the empty slices between drawn slices of ``label`` along ``axis`` (Slicer's
    "Fill between slices").

    Shape-based interpolation (Raya & Udupa 1990) with object matching, after ITK's
    MorphologicalContourInterpolator (used by Slicer; not wrapped by this SimpleITK build):
    the pieces of two neighbouring drawn slices are paired into objects (one piece on each
    side: one object; otherwise pieces that overlap); each object's signed distance maps
    (mm, in-plane spacing) are aligned on their centroids, blended linearly by slice
    position and placed at the interpolated centroid, so a disc growing from r1 to r2
    passes through the intermediate radii and a lesion drifting across slices is carried
    along. A piece without partner shrinks to its centroid towards the other slice.
    Only slices with no voxel of ``label`` strictly between drawn ones change; drawn slices
    and everything outside the first..last drawn span stay as they are.
    Returns None when fewer than two slices are drawn or no slice lies between them.
    """
    label = _check_label(labelmap, label)
    axis = _check_axis(axis)
    bbox, mask = _label_mask(labelmap, label)
    if bbox is None:
        return None
    planes = np.moveaxis(mask, axis, 0)
    drawn = np.flatnonzero(planes.reshape(planes.shape[0], -1).any(axis=1))
    gaps = [(int(a), int(b)) for a, b in zip(drawn[:-1], drawn[1:], strict=True) if b - a > 1]
    if not gaps:
        return None
    spacing = [s for d, s in enumerate(labelmap.geometry.spacing) if d != axis]
    blended = {}
    for a, b in gaps:
        planes_ab, margin = _blends(planes[a], planes[b], spacing, b - a)
        for n, plane in enumerate(planes_ab):
            blended[a + 1 + n] = (plane, margin)
    widest = np.max([m for _, m in blended.values()], axis=0)
    reach = list(widest - 1)
    reach.insert(axis, 0)
    target = _pad(bbox, reach, labelmap.shape)
    old = labelmap.labels[bbox_slices(target)]
    new_planes = np.moveaxis(old.copy(), axis, 0)
    plane_box = [r for d, r in enumerate(zip(bbox, target)) if d != axis]
    protect = _protected(labelmap, label, overwrite)
    window = tuple(
        slice(m + t0 - b0, m + t1 - b0) for m, ((b0, _), (t0, t1)) in zip(widest, plane_box)
    )
    for index, (plane, margin) in blended.items():
        plane = np.pad(plane, [(w - m, w - m) for w, m in zip(widest, margin)])
        new_planes[index] = _painted(new_planes[index], plane[window], label, protect)
    new = np.moveaxis(new_planes, 0, axis)
    return _commit(labelmap, stack, target, new, "Fill between slices")

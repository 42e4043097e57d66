"""Fill between slices: shape-based interpolation of a segment across undrawn slices.

Part of the label-map editing tools (:mod:`viewer.core.editing` documents the rules shared
by every operation). The fill is one undo step, cropped to the voxels that change.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from viewer.core.edit_rules import (
    _check_axis,
    _check_label,
    _commit,
    _distance_mm,
    _label_mask,
    _pad,
    _painted,
    _protected,
)
from viewer.core.history import Edit, UndoStack
from viewer.core.labelmap import LabelMap, bbox_slices

__all__ = ["interpolate_slices"]


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

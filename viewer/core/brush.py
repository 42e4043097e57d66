"""Paint brush / eraser: discs, spheres and the capsules joining a drag's points.

Part of the label-map editing tools (:mod:`viewer.core.editing` documents the rules shared
by every operation: locked segments, ``overwrite``, erasing, mm geometry, ``(k, j, i)``
points). A whole drag from press to release is one undo step.
"""

from __future__ import annotations

import math

import numpy as np

from viewer.core.edit_rules import (
    _check_axis,
    _check_label,
    _commit,
    _erased,
    _hu_range,
    _image_array,
    _painted,
    _protected,
)
from viewer.core.history import Edit, UndoStack
from viewer.core.labelmap import LabelMap, bbox_slices, clip_bbox

__all__ = ["Brush"]


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

"""The working grid of :mod:`ai.ct_lungs` and the mask helpers its steps share.

:class:`Grid` maps the full ``(k, j, i)`` grid to a coarse one of about :data:`WORK_MM`
per voxel (block means) and back (:meth:`Grid.refine`); the functions are SimpleITK
morphology, slice-wise (axial) components and hole filling, and LPS x positions.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

AIR_HU = -320.0  #: air (lung) below this
WORK_MM = 1.5  #: working grid spacing target (mm)


class Grid:
    """The working grid: block factors, coarse spacing, and index -> LPS x/z (mm)."""

    def __init__(self, shape, spacing, dcols):
        self.shape = tuple(int(n) for n in shape)
        self.f = tuple(
            max(1, int(round(WORK_MM / s))) if n >= 32 else 1
            for n, s in zip(shape, spacing, strict=True)
        )
        self.cshape = tuple(-(-n // f) for n, f in zip(self.shape, self.f, strict=True))
        self.spacing = tuple(s * f for s, f in zip(spacing, self.f, strict=True))
        self.dcols = dcols  # columns: LPS unit vectors of array axes 0, 1, 2
        self.voxel_ml = float(np.prod(self.spacing)) / 1000.0
        self.pixel_cm2 = self.spacing[1] * self.spacing[2] / 100.0

    def image(self, array) -> sitk.Image:
        img = sitk.GetImageFromArray(np.ascontiguousarray(array))
        img.SetSpacing(self.spacing[::-1])
        return img

    def lps(self, axis: int, index) -> np.ndarray:
        """LPS coordinate ``axis`` (0 x, 1 y, 2 z) relative to voxel 0, for coarse indices
        ``index`` = (..., 3) array in array order."""
        mm = np.asarray(index, dtype=float) * np.asarray(self.spacing)
        return mm @ self.dcols[axis]

    def block_mean(self, hu: np.ndarray) -> np.ndarray:
        """Coarse float32 HU (block means, values clipped to >= -1024) without full copies."""
        out = np.zeros(self.cshape, dtype=np.float32)
        fk, fj, fi = self.f
        for a in range(fk):
            for b in range(fj):
                for c in range(fi):
                    view = hu[a::fk, b::fj, c::fi]
                    out[: view.shape[0], : view.shape[1], : view.shape[2]] += np.maximum(
                        view, -1024
                    )
        counts = [np.bincount(np.arange(n) // f) for n, f in zip(self.shape, self.f, strict=True)]
        out /= counts[0][:, None, None] * counts[1][None, :, None] * counts[2][None, None, :]
        return out

    def up(self, mask: np.ndarray, box) -> np.ndarray:
        """Coarse bool ``mask`` (covering coarse ``box``) on the full grid, cut to the volume."""
        for axis, f in enumerate(self.f):
            if f > 1:
                mask = np.repeat(mask, f, axis=axis)
        full = self.full_box(box)
        return mask[tuple(slice(0, b - a) for a, b in full)]

    def full_box(self, box):
        return [
            (a * f, min(b * f, n)) for (a, b), f, n in zip(box, self.f, self.shape, strict=True)
        ]

    def refine(self, lung, hu, airway, label, out) -> None:
        """Write ``lung`` (coarse) as ``label`` into ``out`` (full grid): inside, the coarse
        mask; in a one-voxel band around its border, the full-grid voxels below AIR_HU."""
        if all(f == 1 for f in self.f):
            out[lung & (out == 0)] = label
            return
        box = bbox(lung, margin=1)
        sl = tuple(slice(a, b) for a, b in box)
        sub = lung[sl]
        radius = tuple(1 if f > 1 else 0 for f in self.f)
        core = morph(sub, radius, erode=True)
        band = morph(sub, radius, erode=False) & ~core
        if airway is not None:
            band &= ~(airway[sl] & ~sub)
        fsl = tuple(slice(a, b) for a, b in self.full_box(box))
        full = self.up(core, box) | (self.up(band, box) & (hu[fsl] < AIR_HU))
        full &= out[fsl] == 0
        out[fsl][full] = label


def bbox(mask: np.ndarray, margin=0):
    """Per-axis (start, stop) of the True voxels, grown by ``margin`` voxels (int or per axis)."""
    margins = (margin,) * 3 if np.isscalar(margin) else margin
    box = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        idx = np.flatnonzero(mask.any(axis=other))
        m = int(margins[axis])
        box.append((max(int(idx[0]) - m, 0), min(int(idx[-1]) + 1 + m, mask.shape[axis])))
    return box


def morph(mask: np.ndarray, radius, erode: bool) -> np.ndarray:
    """Binary erosion/dilation with a box of ``radius`` voxels per array axis."""
    img = sitk.GetImageFromArray(mask.astype(np.uint8))
    r = [int(v) for v in radius[::-1]]
    f = sitk.BinaryErode if erode else sitk.BinaryDilate
    return sitk.GetArrayFromImage(f(img, r, sitk.sitkBox, 0, 1, False)).astype(bool)


def dilate_box(mask: np.ndarray, grid: Grid) -> np.ndarray:
    box = bbox(mask, margin=1)
    sl = tuple(slice(a, b) for a, b in box)
    out = np.zeros_like(mask)
    radius = (1 if grid.shape[0] > 1 and grid.spacing[0] <= 3.0 else 0, 1, 1)
    out[sl] = morph(mask[sl], radius, erode=False)
    return out


def components_2d(mask: np.ndarray) -> np.ndarray:
    """Labels of the slice-by-slice (axial, 4-connected) components of ``mask``: a slice
    between each pair of slices keeps them apart in one 3D labelling."""
    nk = mask.shape[0]
    if nk == 1:
        stacked = mask.astype(np.uint8)
    else:
        stacked = np.zeros((2 * nk - 1,) + mask.shape[1:], dtype=np.uint8)
        stacked[::2] = mask
    labels = sitk.GetArrayFromImage(sitk.ConnectedComponent(sitk.GetImageFromArray(stacked)))
    return labels[::2] if nk > 1 else labels


def fill_holes_2d(mask: np.ndarray) -> np.ndarray:
    """``mask`` with the background not reaching its slice's border filled, slice by slice."""
    labels = components_2d(~mask)
    edge = np.concatenate(
        [
            labels[:, 0, :].ravel(),
            labels[:, -1, :].ravel(),
            labels[:, :, 0].ravel(),
            labels[:, :, -1].ravel(),
        ]
    )
    outside = np.zeros(int(labels.max()) + 1, dtype=bool)
    outside[edge] = True
    outside[0] = False
    return ~outside[labels]


def largest_parts(mask: np.ndarray, fraction: float) -> np.ndarray:
    """``mask`` without the 3D pieces smaller than ``fraction`` of its largest piece."""
    if not mask.any():
        return mask
    cc = sitk.ConnectedComponent(sitk.GetImageFromArray(mask.astype(np.uint8)))
    labels = sitk.GetArrayFromImage(cc)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    keep = sizes >= fraction * sizes.max()
    keep[0] = False
    return keep[labels]


def midline_x(body: np.ndarray, grid: Grid) -> np.ndarray:
    """The body's centroid LPS x (mm, relative to voxel 0) per slice; NaN without body."""
    area = body.sum(axis=(1, 2)).astype(float)
    j = (body.sum(axis=2) * np.arange(body.shape[1])).sum(axis=1)
    i = (body.sum(axis=1) * np.arange(body.shape[2])).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        idx = np.stack([np.arange(body.shape[0]), j / area, i / area], axis=1)
    return grid.lps(0, idx)


def x_of(mask: np.ndarray, grid: Grid) -> np.ndarray:
    """LPS x (mm, relative to voxel 0) of the True voxels; on a strided sample (every
    ``step``-th voxel per axis) when the array is big, for speed."""
    step = max(1, int(round(np.cbrt(mask.size / 1e6))))
    idx = np.argwhere(mask[::step, ::step, ::step]) * step if step > 1 else np.argwhere(mask)
    if not len(idx):
        idx = np.argwhere(mask)
    return grid.lps(0, idx)


def distance(mask: np.ndarray, grid: Grid) -> np.ndarray:
    """Signed distance (mm, float32) to ``mask``: >= 0 inside, minus the distance outside."""
    dist = sitk.SignedMaurerDistanceMap(
        grid.image(mask.astype(np.uint8)), insideIsPositive=True, useImageSpacing=True
    )
    return sitk.GetArrayFromImage(dist)

"""Classical lung segmentation of chest CT (HU): right and left lung masks, no model.

:func:`segment_lungs` takes a ``(k, j, i)`` array in Hounsfield units, returns uint8 labels
``1`` = right lung, ``2`` = left lung (patient sides, from the LPS x of each lung: whatever
way the columns run) and ``0`` elsewhere. It works on a whole series and on a single slice
(``k = 1``). The classical pipeline (Hu, Hoffman & Reinhardt, IEEE TMI 2001; the usual
SimpleITK recipe):

1. a working grid about 1.5 mm in each direction (block means, which also tame the noise of
   lung kernels); the result is refined back to the full grid at the end (step 7);
2. body: ``> -500 HU``, largest 3D component, holes filled slice by slice (axial);
3. air inside the body: ``< -320 HU`` within the filled body, so air that reaches the outside
   in its slice is never lung;
4. airways: the trachea is the air-filled (< -900 HU), 0.5-10 cm² component near the body's
   midline in the most superior slice that has one; it is grown in 3D at a lumen threshold
   raised in steps until the grown volume jumps (a leak into the lung) and removed with a
   one-voxel margin, which cuts the main bronchi from the lungs;
5. lungs: the biggest air components (at least 10 mL); two on either side of the midline
   are the two lungs; one component that spans both sides (lungs touching at the anterior
   or posterior junction) is eroded (distance map) until it breaks into a right and a left
   core, which are grown back inside the component (watershed on the distance map; the
   mid-sagittal plane if no erosion parts it). In inputs under 3 cm thick (single slices)
   size cannot tell bowel gas from lung: regions whose median is below -920 HU (pure gas;
   lung with its vessels is denser) are skipped and a lung needs 5 cm² per slice;
6. each lung is closed (ball of :data:`CLOSING_MM`) and its holes filled slice by slice, so
   vessels, intrapulmonary airways and enclosed lesions count as lung, as in clinical lung
   masks; pieces under 2 % of the lung are dropped;
7. on the full grid, a one-working-voxel band around each lung's border takes the
   ``< -320 HU`` voxels only, so the border keeps full resolution.

Known limits: consolidation or effusion against the chest wall is not lung to a threshold
(the infection model and :mod:`viewer.core.quantify`'s nearest-lung assignment cover that);
a lung with no air at all (complete collapse) is not found; in a single slice, a small
bowel-gas pocket under the diaphragm can still pass for a lung. Non-axial acquisitions
are handled by permuting the axes so the slice-wise steps run in the axial plane.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import SimpleITK as sitk

from ai.classify import Cancelled

RIGHT_LUNG, LEFT_LUNG = 1, 2
LABEL_NAMES = {RIGHT_LUNG: "right lung", LEFT_LUNG: "left lung"}
MODEL_NAME, MODEL_VERSION = "ct-lungs-classical", "1"

BODY_HU = -500.0  #: tissue above this is body
AIR_HU = -320.0  #: air (lung) below this
LUMEN_HU = -900.0  #: an airway lumen is mostly below this
WORK_MM = 1.5  #: working grid spacing target (mm)
CLOSING_MM = 5.0  #: closing radius that takes in vessels
THICK_MM = 10.0  #: tissue this thick reaching out of the lung is not filled in as lung
MIDLINE_MM = 30.0  #: the trachea lies this close to the body's midline
TRACHEA_CM2 = (0.5, 10.0)  #: cross-section of a trachea
AIRWAY_MAX_ML = 300.0  #: a grown airway tree larger than this has leaked into the lung
MIN_ML = 10.0  #: smallest lung of a volume
THIN_CM, THIN_MIN_CM2 = 3.0, 5.0  #: inputs thinner than this (cm): smallest lung section
GAS_HU = -920.0  #: in thin inputs, air regions with a median below this are gas, not lung

Progress = Callable[[float, str], None]


def segment_lungs(
    hu: np.ndarray,
    spacing,
    progress: Progress | None = None,
    cancelled: Callable[[], bool] | None = None,
    direction=None,
) -> np.ndarray:
    """Right (1) and left (2) lung labels of a CT in HU; see the module docstring.

    hu: ``(k, j, i)`` array of Hounsfield units (int16 or float; values below -1024, such as
    the -3024 outside the reconstruction circle, count as air).
    spacing: ``(sk, sj, si)`` voxel spacing in mm.
    direction: 3x3, columns = unit LPS vectors of the i, j and k axes (VolumeGeometry's
    convention); identity when None. Decides which way is superior and which lung is right.
    progress: ``progress(fraction, message)``; cancelled: polled between steps, raises
    :class:`ai.classify.Cancelled` when it returns True.

    Returns uint8 ``(k, j, i)``. Raises ValueError (one line) when the input is not a CT in
    HU or no lung is found.
    """
    hu = np.asarray(hu)
    if hu.ndim != 3 or min(hu.shape) < 1:
        raise ValueError(f"expected a (k, j, i) volume, got shape {hu.shape}")
    if hu.shape[1] < 16 or hu.shape[2] < 16:
        raise ValueError(f"slices of {hu.shape[1]}x{hu.shape[2]} pixels are too small")
    spacing = tuple(float(s) for s in spacing)
    if len(spacing) != 3 or not all(np.isfinite(spacing)) or min(spacing) <= 0:
        raise ValueError(f"spacing must be three positive mm values, got {spacing}")
    d = np.eye(3) if direction is None else np.asarray(direction, dtype=float).reshape(3, 3)
    if not np.issubdtype(hu.dtype, np.number) or hu.dtype == bool:
        raise ValueError(f"expected HU values, got dtype {hu.dtype}")
    lo = float(hu.min())
    if not np.isfinite(lo) or lo > -500:
        raise ValueError(
            f"no air in the image (lowest value {lo:g}): not a CT in Hounsfield units?"
        )

    def step(fraction: float, message: str) -> None:
        if cancelled is not None and cancelled():
            raise Cancelled("lung segmentation cancelled")
        if progress is not None:
            progress(fraction, message)

    # Slice-wise steps run in the axial plane: put the array axis closest to LPS z first.
    cols = [2, 1, 0]  # direction column of array axes k, j, i
    zaxis = int(np.argmax([abs(d[2, c]) for c in cols]))
    if hu.shape[0] == 1:  # one slice: its own plane, whatever the orientation
        zaxis = 0
    perm = [zaxis] + [a for a in range(3) if a != zaxis]
    hu_p = np.transpose(hu, perm)
    sp = tuple(spacing[a] for a in perm)
    dcols = np.stack([d[:, cols[a]] for a in perm], axis=1)  # LPS of axes 0, 1, 2 (array order)
    grid = _Grid(hu_p.shape, sp, dcols)

    step(0.0, "working grid")
    work = grid.block_mean(hu_p)
    step(0.1, "body")
    body = _body(work, grid)
    air = (work < AIR_HU) & body
    step(0.25, "airways")
    airway = _airway(work, air, body, grid)
    if airway is not None:
        air &= ~_dilate_box(airway, grid)
    step(0.45, "lungs")
    coarse = _pick_lungs(work, air, body, grid)
    step(0.6, "closing")
    out = np.zeros(hu_p.shape, dtype=np.uint8)
    for n, (label, mask) in enumerate(coarse):
        step(0.6 + 0.2 * n, f"{LABEL_NAMES[label]}")
        lung = _close_and_fill(mask, grid)
        grid.refine(lung, hu_p, airway, label, out)
    step(1.0, "done")
    return np.ascontiguousarray(np.transpose(out, np.argsort(perm)))


def segment_volume(volume, progress: Progress | None = None, cancelled=None):
    """:func:`segment_lungs` of a :class:`viewer.core.volume.Volume` as a ``LabelMap``
    (segments "right lung" / "left lung", provenance AUTOMATIC, this module as the model)."""
    from viewer.core.labelmap import LabelMap, Provenance

    if volume.is_color:
        raise ValueError("a colour image is not a CT")
    g = volume.geometry
    labels = segment_lungs(volume.array, g.spacing, progress, cancelled, g.direction)
    prov = Provenance("AUTOMATIC", MODEL_NAME, MODEL_VERSION)
    return LabelMap.from_names(g, labels, dict(LABEL_NAMES), prov)


class _Grid:
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
        box = _bbox(lung, margin=1)
        sl = tuple(slice(a, b) for a, b in box)
        sub = lung[sl]
        radius = tuple(1 if f > 1 else 0 for f in self.f)
        core = _morph(sub, radius, erode=True)
        band = _morph(sub, radius, erode=False) & ~core
        if airway is not None:
            band &= ~(airway[sl] & ~sub)
        fsl = tuple(slice(a, b) for a, b in self.full_box(box))
        full = self.up(core, box) | (self.up(band, box) & (hu[fsl] < AIR_HU))
        full &= out[fsl] == 0
        out[fsl][full] = label


def _bbox(mask: np.ndarray, margin=0):
    """Per-axis (start, stop) of the True voxels, grown by ``margin`` voxels (int or per axis)."""
    margins = (margin,) * 3 if np.isscalar(margin) else margin
    box = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        idx = np.flatnonzero(mask.any(axis=other))
        m = int(margins[axis])
        box.append((max(int(idx[0]) - m, 0), min(int(idx[-1]) + 1 + m, mask.shape[axis])))
    return box


def _morph(mask: np.ndarray, radius, erode: bool) -> np.ndarray:
    """Binary erosion/dilation with a box of ``radius`` voxels per array axis."""
    img = sitk.GetImageFromArray(mask.astype(np.uint8))
    r = [int(v) for v in radius[::-1]]
    f = sitk.BinaryErode if erode else sitk.BinaryDilate
    return sitk.GetArrayFromImage(f(img, r, sitk.sitkBox, 0, 1, False)).astype(bool)


def _dilate_box(mask: np.ndarray, grid: _Grid) -> np.ndarray:
    box = _bbox(mask, margin=1)
    sl = tuple(slice(a, b) for a, b in box)
    out = np.zeros_like(mask)
    radius = (1 if grid.shape[0] > 1 and grid.spacing[0] <= 3.0 else 0, 1, 1)
    out[sl] = _morph(mask[sl], radius, erode=False)
    return out


def _components_2d(mask: np.ndarray) -> np.ndarray:
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


def _fill_holes_2d(mask: np.ndarray) -> np.ndarray:
    """``mask`` with the background not reaching its slice's border filled, slice by slice."""
    labels = _components_2d(~mask)
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


def _largest_parts(mask: np.ndarray, fraction: float) -> np.ndarray:
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


def _body(work: np.ndarray, grid: _Grid) -> np.ndarray:
    """The patient's body, its holes (lungs, airways, bowel) filled slice by slice."""
    cc = sitk.ConnectedComponent(grid.image((work > BODY_HU).astype(np.uint8)))
    labels = sitk.GetArrayFromImage(cc)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    if sizes.max() == 0:
        raise ValueError(f"no body found: nothing above {BODY_HU:g} HU")
    return _fill_holes_2d(labels == int(np.argmax(sizes)))


def _midline_x(body: np.ndarray, grid: _Grid) -> np.ndarray:
    """The body's centroid LPS x (mm, relative to voxel 0) per slice; NaN without body."""
    area = body.sum(axis=(1, 2)).astype(float)
    j = (body.sum(axis=2) * np.arange(body.shape[1])).sum(axis=1)
    i = (body.sum(axis=1) * np.arange(body.shape[2])).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        idx = np.stack([np.arange(body.shape[0]), j / area, i / area], axis=1)
    return grid.lps(0, idx)


def _airway(work, air, body, grid: _Grid) -> np.ndarray | None:
    """The trachea and the bronchi connected to it (coarse bool), or None if not found."""
    labels = _components_2d(air)
    n = int(labels.max())
    if n == 0:
        return None
    flat = labels.ravel()
    inside = flat > 0
    lab = flat[inside]
    k, j, i = np.unravel_index(np.flatnonzero(inside), labels.shape)
    area = np.bincount(lab, minlength=n + 1).astype(float)
    area[0] = 1.0
    lumen = np.bincount(lab, weights=work.ravel()[inside] < LUMEN_HU, minlength=n + 1) / area
    cen = np.stack([np.bincount(lab, weights=v, minlength=n + 1) / area for v in (k, j, i)], 1)
    mid = _midline_x(body, grid)
    kk = cen[:, 0].round().astype(int)
    off = np.abs(grid.lps(0, cen) - mid[np.clip(kk, 0, len(mid) - 1)])
    cm2 = area * grid.pixel_cm2
    ok = (cm2 >= TRACHEA_CM2[0]) & (cm2 <= TRACHEA_CM2[1]) & (lumen >= 0.5) & (off < MIDLINE_MM)
    ok[0] = False
    if not ok.any():
        return None
    up = grid.dcols[2, 0] >= 0  # does increasing k point superior?
    cand = np.flatnonzero(ok)
    top = cand[np.argmax(cen[cand, 0] if up else -cen[cand, 0])]
    same = cand[kk[cand] == kk[top]]
    seed = same[np.argmax(area[same])]
    sk, sj, si = np.nonzero(labels == seed)
    seeds = [(int(x), int(y), int(z)) for z, y, x in zip(sk, sj, si, strict=True)]
    masked = np.where(air, work, np.float32(1000.0))
    img = grid.image(masked)
    best, previous = None, 0.0
    for t in np.arange(LUMEN_HU - 60, LUMEN_HU + 41, 20.0):
        grown = sitk.GetArrayFromImage(sitk.ConnectedThreshold(img, seeds, -2000.0, float(t)))
        ml = float(grown.sum()) * grid.voxel_ml
        if ml > AIRWAY_MAX_ML or (best is not None and ml > 2.0 * previous + 5.0):
            break
        best, previous = grown.astype(bool), ml
    if best is None:  # leaked at once (emphysema, noise): remove the seed slice's trachea only
        best = labels == seed
    return best


def _pick_lungs(
    work, air: np.ndarray, body: np.ndarray, grid: _Grid
) -> list[tuple[int, np.ndarray]]:
    """[(label, coarse mask)] of the lungs among the 3D air components."""
    cc = sitk.ConnectedComponent(grid.image(air.astype(np.uint8)))
    labels = sitk.GetArrayFromImage(cc)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    thickness_cm = grid.shape[0] * grid.spacing[0] / 10.0
    thin = thickness_cm < THIN_CM
    min_ml = THIN_MIN_CM2 * thickness_cm if thin else MIN_ML
    if thin:  # a few slices: bowel gas can be as big as a lung; it is purer air
        for value in np.argsort(sizes)[::-1][:12]:
            if sizes[value] and np.median(work[labels == value]) < GAS_HU:
                sizes[value] = 0
    if sizes.max() * grid.voxel_ml < min_ml:
        what = f"{THIN_MIN_CM2:g} cm²" if thin else f"{MIN_ML:g} mL"
        raise ValueError(f"no lungs found: no lung-like air region inside the body reaches {what}")
    mid = float(np.nanmean(_midline_x(body, grid)))
    order = np.argsort(sizes)[::-1]
    first = labels == order[0]
    x_first = _x_of(first, grid) - mid
    right_share = float(np.mean(x_first < -10.0))
    left_share = float(np.mean(x_first > 10.0))
    lungs: list[np.ndarray] = []
    if min(right_share, left_share) >= 0.1:  # one component across the midline
        lungs = _split(first, grid, mid)
    else:
        lungs = [first]
        side = np.sign(np.mean(x_first))
        for value in order[1:]:
            if sizes[value] < 0.02 * sizes[order[0]] or sizes[value] * grid.voxel_ml < min_ml:
                break
            other = labels == value
            if np.sign(np.mean(_x_of(other, grid) - mid)) == -side:
                lungs.append(other)
                break
    result = []
    for mask in lungs:
        label = RIGHT_LUNG if np.mean(_x_of(mask, grid)) < mid else LEFT_LUNG
        result.append((label, mask))
    if len(result) == 2 and result[0][0] == result[1][0]:  # both on one side: by centroid
        xs = [np.mean(_x_of(m, grid)) for _, m in result]
        result = [(RIGHT_LUNG if x == min(xs) else LEFT_LUNG, m) for x, (_, m) in zip(xs, result)]
    return result


def _x_of(mask: np.ndarray, grid: _Grid) -> np.ndarray:
    """LPS x (mm, relative to voxel 0) of the True voxels; on a strided sample (every
    ``step``-th voxel per axis) when the array is big, for speed."""
    step = max(1, int(round(np.cbrt(mask.size / 1e6))))
    idx = np.argwhere(mask[::step, ::step, ::step]) * step if step > 1 else np.argwhere(mask)
    if not len(idx):
        idx = np.argwhere(mask)
    return grid.lps(0, idx)


def _split(mask: np.ndarray, grid: _Grid, mid: float) -> list[np.ndarray]:
    """Two lungs joined at a junction: erode (distance map) until a right and a left core
    appear, grow them back inside ``mask`` (watershed). Falls back to the midline plane."""
    box = _bbox(mask, margin=1)
    sl = tuple(slice(a, b) for a, b in box)
    sub = mask[sl]
    img = grid.image(sub.astype(np.uint8))
    dist = sitk.SignedMaurerDistanceMap(img, insideIsPositive=True, useImageSpacing=True)
    dist_np = sitk.GetArrayFromImage(dist)
    offset = np.array([a for a, _ in box])
    for t in (1.5, 3.0, 4.5, 6.0, 8.0, 10.0, 13.0, 16.0, 20.0):
        cores = sitk.RelabelComponent(
            sitk.ConnectedComponent(grid.image((dist_np > t).astype(np.uint8)))
        )
        core_np = sitk.GetArrayFromImage(cores)
        sizes = np.bincount(core_np.ravel())
        if len(sizes) < 3 or sizes[2] < 0.1 * sizes[1]:
            continue
        x1 = np.mean(_x_of(core_np == 1, grid) + grid.lps(0, offset)) - mid
        x2 = np.mean(_x_of(core_np == 2, grid) + grid.lps(0, offset)) - mid
        if np.sign(x1) == np.sign(x2):
            continue
        markers = sitk.GetImageFromArray(np.where(core_np <= 2, core_np, 0).astype(np.uint32))
        markers.CopyInformation(img)
        ws = sitk.MorphologicalWatershedFromMarkers(
            sitk.InvertIntensity(dist, 0), markers, markWatershedLine=False, fullyConnected=True
        )
        ws_np = sitk.GetArrayFromImage(ws)
        out = []
        for value in (1, 2):
            part = np.zeros_like(mask)
            part[sl] = (ws_np == value) & sub
            out.append(part)
        return out
    axes = [grid.lps(0, np.outer(np.arange(a, b), np.eye(3)[n])) for n, (a, b) in enumerate(box)]
    x = axes[0][:, None, None] + axes[1][None, :, None] + axes[2][None, None, :] - mid
    out = []
    for right in (True, False):
        part = np.zeros_like(mask)
        part[sl] = sub & ((x < 0) if right else (x >= 0))
        out.append(part)
    return out


def _close_and_fill(mask: np.ndarray, grid: _Grid) -> np.ndarray:
    """Closing with a ball of CLOSING_MM, then slice-wise hole filling except for tissue
    thicker than THICK_MM that reaches the outside in 3D (a diaphragm dome ringed by lung in
    a slice, the hilum), then pieces under 2 % dropped. Coarse grid; the morphology uses
    distance maps, so balls are exact in mm whatever the spacing."""
    margin = [int(np.ceil(THICK_MM / s)) + 1 for s in grid.spacing]
    box = _bbox(mask, margin=margin)
    sl = tuple(slice(a, b) for a, b in box)
    lung = mask[sl]
    dist = _distance(lung, grid)  # > 0 inside, -mm to the lung outside

    def opening_of_rest(radius: float) -> np.ndarray:
        return _distance(dist < -radius, grid) >= -radius

    closed = ~opening_of_rest(CLOSING_MM) | lung
    thick = opening_of_rest(THICK_MM) & ~lung
    labels = sitk.GetArrayFromImage(sitk.ConnectedComponent(grid.image(thick.astype(np.uint8))))
    edge = np.concatenate(
        [
            labels[0].ravel(),
            labels[-1].ravel(),
            labels[:, 0].ravel(),
            labels[:, -1].ravel(),
            labels[:, :, 0].ravel(),
            labels[:, :, -1].ravel(),
        ]
    )
    reaches_out = np.zeros(int(labels.max()) + 1, dtype=bool)
    reaches_out[edge] = True
    reaches_out[0] = False
    closed |= _fill_holes_2d(closed) & ~reaches_out[labels]
    closed = _largest_parts(closed, 0.02)
    out = np.zeros_like(mask)
    out[sl] = closed
    return out


def _distance(mask: np.ndarray, grid: _Grid) -> np.ndarray:
    """Signed distance (mm, float32) to ``mask``: >= 0 inside, minus the distance outside."""
    dist = sitk.SignedMaurerDistanceMap(
        grid.image(mask.astype(np.uint8)), insideIsPositive=True, useImageSpacing=True
    )
    return sitk.GetArrayFromImage(dist)

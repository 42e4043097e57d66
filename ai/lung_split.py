"""Lung picking for :mod:`ai.ct_lungs`: which air components are the right and left lung.

The biggest air components (at least :data:`MIN_ML`) on either side of the midline are the
two lungs; one component that spans both sides (lungs touching at the anterior or posterior
junction) is split by :func:`split_junction`. Inputs under :data:`THIN_CM` thick skip pure
gas (median below :data:`GAS_HU`) and need :data:`THIN_MIN_CM2` per slice.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from ai.lung_grid import Grid, bbox, midline_x, x_of

RIGHT_LUNG, LEFT_LUNG = 1, 2
MIN_ML = 10.0  #: smallest lung of a volume
THIN_CM, THIN_MIN_CM2 = 3.0, 5.0  #: inputs thinner than this (cm): smallest lung section
GAS_HU = -920.0  #: in thin inputs, air regions with a median below this are gas, not lung


def pick_lungs(work, air: np.ndarray, body: np.ndarray, grid: Grid) -> list[tuple[int, np.ndarray]]:
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
    mid = float(np.nanmean(midline_x(body, grid)))
    order = np.argsort(sizes)[::-1]
    first = labels == order[0]
    x_first = x_of(first, grid) - mid
    right_share = float(np.mean(x_first < -10.0))
    left_share = float(np.mean(x_first > 10.0))
    lungs: list[np.ndarray] = []
    if min(right_share, left_share) >= 0.1:  # one component across the midline
        lungs = split_junction(first, grid, mid)
    else:
        lungs = [first]
        side = np.sign(np.mean(x_first))
        for value in order[1:]:
            if sizes[value] < 0.02 * sizes[order[0]] or sizes[value] * grid.voxel_ml < min_ml:
                break
            other = labels == value
            if np.sign(np.mean(x_of(other, grid) - mid)) == -side:
                lungs.append(other)
                break
    result = []
    for mask in lungs:
        label = RIGHT_LUNG if np.mean(x_of(mask, grid)) < mid else LEFT_LUNG
        result.append((label, mask))
    if len(result) == 2 and result[0][0] == result[1][0]:  # both on one side: by centroid
        xs = [np.mean(x_of(m, grid)) for _, m in result]
        result = [(RIGHT_LUNG if x == min(xs) else LEFT_LUNG, m) for x, (_, m) in zip(xs, result)]
    return result


def split_junction(mask: np.ndarray, grid: Grid, mid: float) -> list[np.ndarray]:
    """Two lungs joined at a junction: erode (distance map) until a right and a left core
    appear, grow them back inside ``mask`` (watershed). Falls back to the midline plane."""
    box = bbox(mask, margin=1)
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
        x1 = np.mean(x_of(core_np == 1, grid) + grid.lps(0, offset)) - mid
        x2 = np.mean(x_of(core_np == 2, grid) + grid.lps(0, offset)) - mid
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

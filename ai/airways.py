"""Airway search for :mod:`ai.ct_lungs`: the trachea and the bronchi connected to it.

The trachea is the air-filled (< :data:`LUMEN_HU`), 0.5-10 cm² component near the body's
midline in the most superior slice that has one; it is grown in 3D at a lumen threshold
raised in steps until the grown volume jumps (a leak into the lung). The caller removes it
with a one-voxel margin, which cuts the main bronchi from the lungs.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from ai.lung_grid import Grid, components_2d, midline_x

LUMEN_HU = -900.0  #: an airway lumen is mostly below this
MIDLINE_MM = 30.0  #: the trachea lies this close to the body's midline
TRACHEA_CM2 = (0.5, 10.0)  #: cross-section of a trachea
AIRWAY_MAX_ML = 300.0  #: a grown airway tree larger than this has leaked into the lung


def find_airway(work, air, body, grid: Grid) -> np.ndarray | None:
    """The trachea and the bronchi connected to it (coarse bool), or None if not found."""
    labels = components_2d(air)
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
    mid = midline_x(body, grid)
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

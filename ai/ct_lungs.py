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

from ai.airways import AIRWAY_MAX_ML, LUMEN_HU, MIDLINE_MM, TRACHEA_CM2, find_airway
from ai.classify import Cancelled
from ai.lung_grid import (
    AIR_HU,
    WORK_MM,
    Grid,
    bbox,
    dilate_box,
    distance,
    fill_holes_2d,
    largest_parts,
)
from ai.lung_split import (
    GAS_HU,
    LEFT_LUNG,
    MIN_ML,
    RIGHT_LUNG,
    THIN_CM,
    THIN_MIN_CM2,
    pick_lungs,
)

__all__ = [
    "AIRWAY_MAX_ML",
    "AIR_HU",
    "BODY_HU",
    "CLOSING_MM",
    "GAS_HU",
    "LABEL_NAMES",
    "LEFT_LUNG",
    "LUMEN_HU",
    "MIDLINE_MM",
    "MIN_ML",
    "MODEL_NAME",
    "MODEL_VERSION",
    "Progress",
    "RIGHT_LUNG",
    "THICK_MM",
    "THIN_CM",
    "THIN_MIN_CM2",
    "TRACHEA_CM2",
    "WORK_MM",
    "segment_lungs",
    "segment_volume",
]

LABEL_NAMES = {RIGHT_LUNG: "right lung", LEFT_LUNG: "left lung"}
MODEL_NAME, MODEL_VERSION = "ct-lungs-classical", "1"

BODY_HU = -500.0  #: tissue above this is body
CLOSING_MM = 5.0  #: closing radius that takes in vessels
THICK_MM = 10.0  #: tissue this thick reaching out of the lung is not filled in as lung

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
    grid = Grid(hu_p.shape, sp, dcols)

    step(0.0, "working grid")
    work = grid.block_mean(hu_p)
    step(0.1, "body")
    body = _body(work, grid)
    air = (work < AIR_HU) & body
    step(0.25, "airways")
    airway = find_airway(work, air, body, grid)
    if airway is not None:
        air &= ~dilate_box(airway, grid)
    step(0.45, "lungs")
    coarse = pick_lungs(work, air, body, grid)
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


def _body(work: np.ndarray, grid: Grid) -> np.ndarray:
    """The patient's body, its holes (lungs, airways, bowel) filled slice by slice."""
    cc = sitk.ConnectedComponent(grid.image((work > BODY_HU).astype(np.uint8)))
    labels = sitk.GetArrayFromImage(cc)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    if sizes.max() == 0:
        raise ValueError(f"no body found: nothing above {BODY_HU:g} HU")
    return fill_holes_2d(labels == int(np.argmax(sizes)))


def _close_and_fill(mask: np.ndarray, grid: Grid) -> np.ndarray:
    """Closing with a ball of CLOSING_MM, then slice-wise hole filling except for tissue
    thicker than THICK_MM that reaches the outside in 3D (a diaphragm dome ringed by lung in
    a slice, the hilum), then pieces under 2 % dropped. Coarse grid; the morphology uses
    distance maps, so balls are exact in mm whatever the spacing."""
    margin = [int(np.ceil(THICK_MM / s)) + 1 for s in grid.spacing]
    box = bbox(mask, margin=margin)
    sl = tuple(slice(a, b) for a, b in box)
    lung = mask[sl]
    dist = distance(lung, grid)  # > 0 inside, -mm to the lung outside

    def opening_of_rest(radius: float) -> np.ndarray:
        return distance(dist < -radius, grid) >= -radius

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
    closed |= fill_holes_2d(closed) & ~reaches_out[labels]
    closed = largest_parts(closed, 0.02)
    out = np.zeros_like(mask)
    out[sl] = closed
    return out

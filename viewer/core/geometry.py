"""Volume geometry in patient LPS millimetres.

Conventions used everywhere in radview:

* arrays are indexed ``(k, j, i)`` = (slice, row, column);
* ``shape`` and ``spacing`` are given in that same array order, spacing in millimetres
  (slice spacing, distance between rows, distance between columns);
* ``origin`` is the LPS position (mm) of the centre of voxel ``(0, 0, 0)``;
* ``direction`` is a 3x3 matrix whose *columns* are unit vectors in LPS: column 0 is the
  direction of increasing ``i`` (DICOM ImageOrientationPatient[0:3], PS3.3 C.7.6.2.1.1),
  column 1 of increasing ``j`` (IOP[3:6]) and column 2 of increasing ``k``.

So the LPS position of voxel (k, j, i) is ``origin + direction @ (i*si, j*sj, k*sk)``.
This is ITK's convention with spacing listed in array order instead of (x, y, z).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

_LPS_LETTERS = (("R", "L"), ("A", "P"), ("I", "S"))


@dataclass(frozen=True)
class VolumeGeometry:
    """Voxel grid of a volume in LPS millimetres (see the module docstring)."""

    shape: tuple[int, int, int]
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: np.ndarray = field(default_factory=lambda: np.eye(3))

    def __post_init__(self) -> None:
        d = np.asarray(self.direction, dtype=float).reshape(3, 3)
        d.setflags(write=False)
        object.__setattr__(self, "direction", d)
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        object.__setattr__(self, "spacing", tuple(float(s) for s in self.spacing))
        object.__setattr__(self, "origin", tuple(float(s) for s in self.origin))

    # -- matrices --------------------------------------------------------------------------
    @property
    def spacing_xyz(self) -> tuple[float, float, float]:
        """Spacing in (i, j, k) order, as ITK and NIfTI list it."""
        return self.spacing[2], self.spacing[1], self.spacing[0]

    @property
    def size_xyz(self) -> tuple[int, int, int]:
        return self.shape[2], self.shape[1], self.shape[0]

    def ijk_to_lps_matrix(self) -> np.ndarray:
        """4x4 affine mapping homogeneous (i, j, k, 1) to LPS millimetres."""
        m = np.eye(4)
        m[:3, :3] = self.direction * np.asarray(self.spacing_xyz)[None, :]
        m[:3, 3] = self.origin
        return m

    def ijk_to_ras_matrix(self) -> np.ndarray:
        """4x4 affine mapping (i, j, k, 1) to RAS millimetres (the NIfTI/nibabel frame)."""
        return np.diag([-1.0, -1.0, 1.0, 1.0]) @ self.ijk_to_lps_matrix()

    # -- conversions -----------------------------------------------------------------------
    def index_to_lps(self, kji) -> np.ndarray:
        """LPS mm of array index (k, j, i); accepts an (..., 3) array of indices."""
        kji = np.asarray(kji, dtype=float)
        ijk = kji[..., ::-1]
        return np.asarray(self.origin) + (ijk * np.asarray(self.spacing_xyz)) @ self.direction.T

    def lps_to_index(self, lps) -> np.ndarray:
        """Continuous array index (k, j, i) of LPS mm point(s)."""
        lps = np.asarray(lps, dtype=float) - np.asarray(self.origin)
        ijk = lps @ np.linalg.inv(self.direction).T / np.asarray(self.spacing_xyz)
        return ijk[..., ::-1]

    # -- descriptions ----------------------------------------------------------------------
    def is_orthonormal(self, tol: float = 1e-4) -> bool:
        d = self.direction
        return bool(np.allclose(d.T @ d, np.eye(3), atol=tol))

    def axis_letters(self) -> tuple[str, str, str]:
        """For axes i, j, k: the LPS letter each points toward (e.g. ('L', 'P', 'S'))."""
        return tuple(orientation_letter(self.direction[:, a]) for a in range(3))

    @property
    def voxel_volume_ml(self) -> float:
        sk, sj, si = self.spacing
        return sk * sj * si / 1000.0


def orientation_letter(vector, threshold: float = 0.5) -> str:
    """Letters (most significant first) of the LPS direction a vector points to.

    ``(1, 0, 0)`` -> ``"L"``; an oblique vector gives e.g. ``"LA"``. Components smaller than
    ``threshold`` times the largest are ignored.
    """
    v = np.asarray(vector, dtype=float)
    order = np.argsort(-np.abs(v))
    biggest = abs(v[order[0]]) or 1.0
    letters = []
    for axis in order:
        if abs(v[axis]) >= threshold * biggest and abs(v[axis]) > 1e-6:
            letters.append(_LPS_LETTERS[axis][1 if v[axis] > 0 else 0])
    return "".join(letters)

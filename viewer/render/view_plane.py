"""Where a 2D view looks: screen axes in patient LPS millimetres, and how slices step.

Radiological convention (the patient is seen from the feet or from the front):

* ``axial``: seen from the feet; patient's right on screen left, anterior up;
* ``coronal``: seen from the front; patient's right on screen left, superior up;
* ``sagittal``: seen from the patient's left; anterior on screen left, superior up;
* ``image``: the volume's own acquisition plane as stored (row 0 at the top, column 0 on the
  left), which is how projection radiographs and oblique acquisitions are read.

Every vector here is a unit vector in LPS (x toward the patient's left, y posterior,
z superior). The camera looks along ``dop = up x right`` (into the screen).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from viewer.core.geometry import VolumeGeometry, orientation_letter
from viewer.core.volume import Volume

__all__ = ["ORIENTATIONS", "SliceAxis", "ViewPlane", "default_orientation", "is_projection",
           "view_plane"]

ORIENTATIONS = ("axial", "coronal", "sagittal", "image")

#: (screen right, screen up, slice normal = direction of increasing slice position), LPS
_PATIENT_PLANES = {
    "axial": ((1.0, 0.0, 0.0), (0.0, -1.0, 0.0), (0.0, 0.0, 1.0)),
    "coronal": ((1.0, 0.0, 0.0), (0.0, 0.0, 1.0), (0.0, 1.0, 0.0)),
    "sagittal": ((0.0, 1.0, 0.0), (0.0, 0.0, 1.0), (1.0, 0.0, 0.0)),
}

#: modalities whose single images are cross-sections with a real patient geometry
_CROSS_SECTIONAL = {"CT", "MR", "PT", "NM"}


def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=float)
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


def is_projection(volume: Volume) -> bool:
    """True for a single projection image (radiograph, picture) without patient geometry."""
    return volume.geometry.shape[0] == 1 and volume.modality.upper() not in _CROSS_SECTIONAL


def default_orientation(volume: Volume) -> str:
    """``image`` for a single image (radiograph or one slice), ``axial`` for a volume."""
    return "image" if volume.geometry.shape[0] == 1 else "axial"


@dataclass(frozen=True)
class ViewPlane:
    """Screen axes of one 2D view, in LPS.

    right, up: LPS unit vectors pointing to the screen's right and top edges.
    normal: direction in which the slice position increases (axial +S, coronal +P,
    sagittal +L, image: the volume's k axis); parallel to the viewing direction.
    """

    orientation: str
    right: np.ndarray
    up: np.ndarray
    normal: np.ndarray

    @property
    def dop(self) -> np.ndarray:
        """Direction of projection: from the viewer into the screen (LPS unit vector)."""
        return np.cross(self.up, self.right)

    def edge_letters(self) -> dict[str, str]:
        """Orientation letters at the screen edges, e.g. axial: left R, right L, top A."""
        return {
            "left": orientation_letter(-self.right),
            "right": orientation_letter(self.right),
            "top": orientation_letter(self.up),
            "bottom": orientation_letter(-self.up),
        }

    def position_label(self) -> str:
        """Name of the LPS coordinate the slice position is ("x", "y", "z"), else "d"."""
        axis = int(np.argmax(np.abs(self.normal)))
        return "xyz"[axis] if abs(self.normal[axis]) > 0.999 else "d"


def view_plane(orientation: str, geometry: VolumeGeometry) -> ViewPlane:
    """The ViewPlane for an orientation name (see the module docstring)."""
    if orientation in _PATIENT_PLANES:
        right, up, normal = (np.asarray(v) for v in _PATIENT_PLANES[orientation])
        return ViewPlane(orientation, right, up, normal)
    if orientation != "image":
        raise ValueError(f"unknown orientation {orientation!r} (one of {', '.join(ORIENTATIONS)})")
    d = np.asarray(geometry.direction, dtype=float)
    right = _unit(d[:, 0])
    down = d[:, 1] - np.dot(d[:, 1], right) * right  # orthogonalised (sheared grids)
    up = -_unit(down)
    normal = np.cross(up, right)  # = i x j: the acquisition normal
    if np.dot(normal, d[:, 2]) < 0:  # left-handed grid: slice position follows k anyway
        normal = -normal
    return ViewPlane("image", right, up, normal)


class SliceAxis:
    """Slice positions of a volume along a view normal.

    Positions are millimetres along ``plane.normal`` (the dot product of an LPS point with
    it). ``step_mm`` is the spacing of the volume axis best aligned with the normal (its
    exact slice spacing when the view is parallel to the acquisition planes); positions
    snap to the voxel centres of that axis. ``index`` numbers slices along that array axis,
    0-based, as stored.
    """

    def __init__(self, geometry: VolumeGeometry, plane: ViewPlane):
        self.geometry = geometry
        self.normal = np.asarray(plane.normal, dtype=float)
        d = np.asarray(geometry.direction, dtype=float)
        cos = np.abs([np.dot(_unit(d[:, a]), self.normal) for a in range(3)])  # i, j, k
        ijk_axis = int(np.argmax(cos))
        self.array_axis = 2 - ijk_axis  # position of that axis in (k, j, i)
        self.count = int(geometry.shape[self.array_axis])
        self.step_mm = float(geometry.spacing[self.array_axis])
        self._base = float(np.dot(geometry.origin, self.normal))
        corners = _corner_centres(geometry)
        along = corners @ self.normal
        self.lo, self.hi = float(along.min()), float(along.max())

    def snap(self, position_mm: float) -> float:
        """Nearest voxel-centre position inside the volume (mm along the normal)."""
        pos = min(max(float(position_mm), self.lo), self.hi)
        n = round((pos - self._base) / self.step_mm)
        snapped = self._base + n * self.step_mm
        if snapped > self.hi + 1e-6:
            snapped -= self.step_mm
        elif snapped < self.lo - 1e-6:
            snapped += self.step_mm
        return snapped

    def index(self, point_lps) -> int:
        """0-based slice index (along ``array_axis``) of the slice through an LPS point."""
        kji = self.geometry.lps_to_index(np.asarray(point_lps, dtype=float))
        return int(min(max(round(float(kji[self.array_axis])), 0), self.count - 1))


def _corner_centres(geometry: VolumeGeometry) -> np.ndarray:
    """LPS positions (8, 3) of the centres of the volume's corner voxels."""
    k, j, i = (s - 1 for s in geometry.shape)
    idx = np.array([[a, b, c] for a in (0, k) for b in (0, j) for c in (0, i)], dtype=float)
    return geometry.index_to_lps(idx)


def corner_edges(geometry: VolumeGeometry) -> np.ndarray:
    """LPS positions (8, 3) of the volume's outer corners (voxel edges, index -0.5, n-0.5)."""
    k, j, i = (s - 0.5 for s in geometry.shape)
    idx = np.array([[a, b, c] for a in (-0.5, k) for b in (-0.5, j) for c in (-0.5, i)])
    return geometry.index_to_lps(idx)

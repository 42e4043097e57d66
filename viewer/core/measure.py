"""Measurements in millimetres: lengths, angles, ROI statistics, and the measurement list.

Every point is an LPS position in millimetres (see ``viewer.core.geometry``). Slice planes
are named by the view orientation in PATIENT axes, whatever the acquisition:

=========  ===============  ======================  ==========================
name       normal (LPS)     in-plane axes (u, v)    slice position
=========  ===============  ======================  ==========================
axial      S (z)            L (x), P (y)            z in mm
coronal    P (y)            L (x), S (z)            y in mm
sagittal   L (x)            P (y), S (z)            x in mm
=========  ===============  ======================  ==========================
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from viewer.core.events import Signal
from viewer.core.volume import Volume

#: orientation -> (u, v, normal) LPS axis numbers (0 = x/L, 1 = y/P, 2 = z/S)
PLANE_AXES: dict[str, tuple[int, int, int]] = {
    "axial": (0, 1, 2),
    "coronal": (0, 2, 1),
    "sagittal": (1, 2, 0),
}
KINDS = {"length": 2, "angle": 3, "ellipse": 2, "rectangle": 2}  # kind -> number of points
_EPS = 1e-6  # mm: voxel centres this close to an ROI edge count as inside


def plane_axes(orientation: str) -> tuple[int, int, int]:
    """``(u, v, normal)`` LPS axis numbers of a view orientation (see the module table)."""
    try:
        return PLANE_AXES[orientation]
    except KeyError:
        raise ValueError(
            f"unknown orientation {orientation!r}: use {', '.join(PLANE_AXES)}"
        ) from None


def slice_position_mm(orientation: str, lps) -> float:
    """Position (mm) of an LPS point along the normal of a view plane (z for axial...)."""
    return float(np.asarray(lps, dtype=float)[plane_axes(orientation)[2]])


def length_mm(p, q) -> float:
    """Distance in mm between two LPS points (mm)."""
    return float(np.linalg.norm(np.asarray(q, dtype=float) - np.asarray(p, dtype=float)))


def angle_deg(a, vertex, b) -> float:
    """Angle a-vertex-b in degrees (0..180) between two arms given by LPS points (mm)."""
    u = np.asarray(a, dtype=float) - np.asarray(vertex, dtype=float)
    v = np.asarray(b, dtype=float) - np.asarray(vertex, dtype=float)
    nu, nv = np.linalg.norm(u), np.linalg.norm(v)
    if nu == 0 or nv == 0:
        raise ValueError("an angle needs two arms of non-zero length")
    cos = float(np.dot(u, v) / (nu * nv))
    return math.degrees(math.acos(max(-1.0, min(1.0, cos))))


@dataclass(frozen=True)
class RoiStats:
    """Statistics of the modality values inside an ROI on one slice.

    ``mean``, ``sd`` (population SD), ``min``, ``max`` in ``unit`` ("HU" for CT, "" for
    stored values); NaN when ``count`` is 0. ``count``: voxels (or samples, for oblique
    volumes) whose centre lies inside the shape. ``area_mm2``: the geometric area of the
    drawn shape (pi*a*b for an ellipse), not ``count`` times the pixel area.
    """

    mean: float
    sd: float
    min: float
    max: float
    count: int
    area_mm2: float
    unit: str


def roi_stats(volume: Volume, orientation: str, corner_a, corner_b, shape: str = "ellipse"):
    """Statistics inside an ellipse or rectangle drawn on a view plane.

    ``orientation``: "axial", "coronal" or "sagittal" (patient axes). ``corner_a``,
    ``corner_b``: opposite corners (LPS mm) of the ROI's bounding box on that plane; the
    slice is the one through their mean position along the plane normal. ``shape``:
    "ellipse" (inscribed in the box) or "rectangle". Returns :class:`RoiStats`.

    Sampling is nearest-neighbour on the voxel grid. When the volume's axes follow patient
    axes (direction a signed permutation matrix, the usual case) the voxels of the nearest
    slice whose centres lie inside the shape are taken exactly. For an oblique volume a
    square grid centred on the ROI, at the finer in-plane voxel spacing, is laid on the
    plane; each sample takes the nearest voxel (``lps_to_index`` rounded) and ``count`` is
    the number of samples. Parts of the ROI outside the volume contribute nothing. A ROI of
    zero width or height contains nothing.
    """
    if volume.is_color:
        raise ValueError("ROI statistics need a grayscale volume")
    if shape not in ("ellipse", "rectangle"):
        raise ValueError(f"unknown ROI shape {shape!r}: use ellipse or rectangle")
    u, v, n = plane_axes(orientation)
    a, b = np.asarray(corner_a, dtype=float), np.asarray(corner_b, dtype=float)
    centre = (a + b) / 2
    half_u, half_v = abs(b[u] - a[u]) / 2, abs(b[v] - a[v]) / 2
    if shape == "ellipse":
        area = math.pi * half_u * half_v
    else:
        area = 4 * half_u * half_v
    if half_u == 0 or half_v == 0:
        values = np.empty(0)
    elif _is_axis_aligned(volume.geometry.direction):
        values = _aligned_values(volume, (u, v, n), centre, half_u, half_v, shape)
    else:
        values = _oblique_values(volume, (u, v, n), centre, half_u, half_v, shape)
    unit = "HU" if volume.modality.upper() == "CT" else ""
    if values.size == 0:
        nan = float("nan")
        return RoiStats(nan, nan, nan, nan, 0, area, unit)
    values = values.astype(np.float64)
    return RoiStats(
        mean=float(values.mean()),
        sd=float(values.std()),
        min=float(values.min()),
        max=float(values.max()),
        count=int(values.size),
        area_mm2=area,
        unit=unit,
    )


def _is_axis_aligned(direction: np.ndarray, tol: float = 1e-4) -> bool:
    big = np.abs(direction) > 1 - tol
    return bool((big.sum(axis=0) == 1).all() and (big.sum(axis=1) == 1).all())


def _inside(du: np.ndarray, dv: np.ndarray, half_u: float, half_v: float, shape: str):
    """Mask of offsets (mm from the ROI centre) inside the shape, edges included."""
    if shape == "rectangle":
        return (np.abs(du) <= half_u + _EPS) & (np.abs(dv) <= half_v + _EPS)
    return (du / half_u) ** 2 + (dv / half_v) ** 2 <= 1 + _EPS


def _aligned_values(volume, axes, centre, half_u, half_v, shape) -> np.ndarray:
    """Exact voxel selection for a volume whose i, j, k follow patient axes."""
    g = volume.geometry
    d = g.direction
    dim = {}  # LPS axis -> array dimension (0 = k, 1 = j, 2 = i)
    for p in axes:
        dim[p] = 2 - int(np.argmax(np.abs(d[p])))
    u, v, n = axes
    index = g.lps_to_index(centre)
    slice_index = int(np.rint(index[dim[n]]))
    if not 0 <= slice_index < g.shape[dim[n]]:
        return np.empty(0)
    picks: list = [None, None, None]
    picks[dim[n]] = slice_index
    offsets = {}
    for p, half in ((u, half_u), (v, half_v)):
        a = dim[p]
        step = g.spacing[a]
        lo = int(math.floor(index[a] - half / step)) - 1
        hi = int(math.ceil(index[a] + half / step)) + 1
        lo, hi = max(lo, 0), min(hi, g.shape[a] - 1)
        if lo > hi:
            return np.empty(0)
        picks[a] = slice(lo, hi + 1)
        offsets[p] = (np.arange(lo, hi + 1) - index[a]) * step  # mm from the centre, +-
    block = volume.array[tuple(picks)]
    if dim[u] < dim[v]:
        du, dv = offsets[u][:, None], offsets[v][None, :]
    else:
        du, dv = offsets[u][None, :], offsets[v][:, None]
    return block[_inside(du, dv, half_u, half_v, shape)]


def _oblique_values(volume, axes, centre, half_u, half_v, shape) -> np.ndarray:
    """Nearest-voxel samples of a square grid on the plane, for oblique volumes."""
    g = volume.geometry
    u, v, n = axes
    normal_dim = 2 - int(np.argmax(np.abs(g.direction[n])))
    step = min(s for a, s in enumerate(g.spacing) if a != normal_dim)
    grids = []
    for half in (half_u, half_v):
        count = int(math.floor(2 * half / step + 1e-9)) + 1
        grids.append((np.arange(count) - (count - 1) / 2) * step)
    du, dv = np.meshgrid(grids[0], grids[1], indexing="ij")
    keep = _inside(du, dv, half_u, half_v, shape)
    points = np.repeat(centre[None, :], int(keep.sum()), axis=0)
    points[:, u] += du[keep]
    points[:, v] += dv[keep]
    index = np.rint(g.lps_to_index(points)).astype(np.int64)
    ok = ((index >= 0) & (index < np.asarray(g.shape))).all(axis=1)
    k, j, i = index[ok].T
    return volume.array[k, j, i]


def _new_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Measurement:
    """One measurement drawn on a slice.

    ``kind``: "length" (2 points), "angle" (3 points: arm end, vertex, arm end),
    "ellipse" or "rectangle" (2 opposite corners of the bounding box). ``points``: LPS mm.
    ``orientation``: the view plane it was drawn on (module table). ``position_mm``: the
    slice position along that plane's normal (mm); by default the mean of the points'.
    ``id``: unique string, kept when the measurement is edited (``dataclasses.replace``).
    """

    kind: str
    points: tuple[tuple[float, float, float], ...]
    orientation: str
    position_mm: float | None = None
    label: str = ""
    id: str = field(default_factory=_new_id)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown measurement kind {self.kind!r}: use {', '.join(KINDS)}")
        points = tuple(tuple(float(c) for c in p) for p in self.points)
        if len(points) != KINDS[self.kind] or any(len(p) != 3 for p in points):
            raise ValueError(f"a {self.kind} needs {KINDS[self.kind]} LPS points (x, y, z)")
        object.__setattr__(self, "points", points)
        normal = plane_axes(self.orientation)[2]
        if self.position_mm is None:
            position = sum(p[normal] for p in points) / len(points)
        else:
            position = float(self.position_mm)
        object.__setattr__(self, "position_mm", position)

    def value(self) -> float:
        """Length in mm, angle in degrees, area in mm² for ROIs."""
        if self.kind == "length":
            return length_mm(*self.points)
        if self.kind == "angle":
            return angle_deg(*self.points)
        u, v, _ = plane_axes(self.orientation)
        a, b = self.points
        w, h = abs(b[u] - a[u]), abs(b[v] - a[v])
        return math.pi * w * h / 4 if self.kind == "ellipse" else w * h

    def stats(self, volume: Volume) -> RoiStats:
        """ROI statistics of an ellipse or rectangle on its own slice."""
        if self.kind not in ("ellipse", "rectangle"):
            raise ValueError(f"a {self.kind} has no ROI statistics")
        normal = plane_axes(self.orientation)[2]
        corners = [list(p) for p in self.points]
        for c in corners:
            c[normal] = self.position_mm
        return roi_stats(volume, self.orientation, corners[0], corners[1], self.kind)

    def summary(self, volume: Volume | None = None) -> str:
        """Overlay text: "12.3 mm", "45.0°", or for ROIs two lines
        "mean 40.2 HU, SD 3.1" / "min 12, max 85 HU, 113.1 mm²"."""
        if self.kind == "length":
            return f"{self.value():.1f} mm"
        if self.kind == "angle":
            return f"{self.value():.1f}°"
        if volume is None or volume.is_color:
            return f"{self.value():.1f} mm²"
        s = self.stats(volume)
        unit = f" {s.unit}" if s.unit else ""
        if s.count == 0:
            return f"no voxels, {s.area_mm2:.1f} mm²"
        return (f"mean {s.mean:.1f}{unit}, SD {s.sd:.1f}\n"
                f"min {s.min:.4g}, max {s.max:.4g}{unit}, {s.area_mm2:.1f} mm²")


class MeasurementList:
    """The measurements of the open study; emits ``changed()`` after every change."""

    def __init__(self) -> None:
        self._items: dict[str, Measurement] = {}
        self.changed = Signal("measurements.changed")

    def add(self, measurement: Measurement) -> Measurement:
        if measurement.id in self._items:
            raise ValueError(f"measurement {measurement.id} is already in the list")
        self._items[measurement.id] = measurement
        self.changed.emit()
        return measurement

    def update(self, measurement: Measurement) -> None:
        """Replace the measurement with the same id (after its handles were moved)."""
        if measurement.id not in self._items:
            raise KeyError(measurement.id)
        self._items[measurement.id] = measurement
        self.changed.emit()

    def remove(self, measurement: Measurement | str) -> None:
        """Remove by measurement or id; KeyError if absent."""
        key = measurement if isinstance(measurement, str) else measurement.id
        del self._items[key]
        self.changed.emit()

    def clear(self) -> None:
        if self._items:
            self._items.clear()
            self.changed.emit()

    def get(self, measurement_id: str) -> Measurement | None:
        return self._items.get(measurement_id)

    def for_slice(
        self, orientation: str, position_mm: float, tol: float = 0.5
    ) -> list[Measurement]:
        """Measurements drawn on this view plane within ``tol`` mm of ``position_mm``.

        Pass half the slice spacing along the normal as ``tol`` so that each measurement
        shows on exactly the slice it was drawn on.
        """
        plane_axes(orientation)
        return [
            m
            for m in self._items.values()
            if m.orientation == orientation and abs(m.position_mm - position_mm) <= tol
        ]

    def __iter__(self) -> Iterator[Measurement]:
        return iter(list(self._items.values()))

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, measurement: object) -> bool:
        key = measurement if isinstance(measurement, str) else getattr(measurement, "id", None)
        return key in self._items

    def extend(self, measurements: Sequence[Measurement]) -> None:
        """Add several at once (one ``changed``), e.g. when restoring a saved study."""
        new = {m.id: m for m in measurements}
        if set(new) & set(self._items):
            raise ValueError("some measurements are already in the list")
        if new:
            self._items.update(new)
            self.changed.emit()

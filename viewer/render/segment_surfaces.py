"""SegmentSurfaces: smoothed surfaces of a label map's segments in the 3D view.

One ``vtkSurfaceNets3D`` pass (VTK >= 9.3) extracts the boundaries of all labelled segments
at once, with its built-in constrained smoothing (points stay within a fraction of a voxel
of the voxel faces, so a smoothed surface never drifts a voxel away from the mask). The
pass runs on the label voxels' index grid; the points are then mapped to LPS millimetres
with the label map's geometry (direction included; left-handed grids get their triangles
reversed), so the surfaces sit where the volume rendering draws the same voxels. The mesh
is split per segment (a face between two segments belongs to both), one actor each.

Rebuilding is on demand: :meth:`SegmentSurfaces.refresh` rebuilds only when the voxels
changed since the last build (the GUI calls it when a stroke ends), never per brush move,
and at most once per ``min_interval_s`` (otherwise it returns False and the surfaces stay
``dirty``; call again after ``wait_s()``). A whole 300 x 512 x 512 chest takes about a
second, so the GUI may rather build on a worker thread: ``labels, geometry, version =
surfaces.snapshot()`` on the GUI thread, ``label_surfaces(labels, geometry)`` on the worker
(pure VTK filters, no rendering), ``surfaces.set_surfaces(result, version)`` back on the GUI
thread. Colour, visibility and opacity follow the segment table immediately without a
rebuild. 3D opacity = ``min(1, 2 x segment.opacity) x`` :attr:`opacity` (the
default segment opacity 0.5 gives opaque surfaces, as in Slicer's 3D view).
"""

from __future__ import annotations

import time

import numpy as np
from vtkmodules.util.numpy_support import numpy_to_vtk, numpy_to_vtkIdTypeArray, vtk_to_numpy
from vtkmodules.vtkCommonCore import vtkPoints
from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkImageData, vtkPolyData
from vtkmodules.vtkFiltersCore import vtkPolyDataNormals, vtkSurfaceNets3D
from vtkmodules.vtkRenderingCore import vtkActor, vtkPolyDataMapper

from viewer.core.geometry import VolumeGeometry
from viewer.core.labelmap import BBox, LabelMap, segment_for

__all__ = ["SegmentSurfaces", "label_surfaces"]


def label_surfaces(
    labels: np.ndarray,
    geometry: VolumeGeometry,
    values=None,
    smoothing_iterations: int = 16,
) -> dict[int, vtkPolyData]:
    """Triangle surfaces (LPS mm, with point normals) per label value.

    labels: uint8 (k, j, i) array on ``geometry``; values: the labels wanted (default all
    non-zero ones present); smoothing_iterations: constrained smoothing passes (0 = the
    blocky voxel boundary). Labels without voxels are left out of the result. Pure: no
    rendering, so a worker thread may run it on a copy of the labels (see SegmentSurfaces).
    """
    labels = np.asarray(labels)
    if labels.shape != geometry.shape:
        raise ValueError(f"labels {labels.shape} do not match the geometry {geometry.shape}")
    wanted = range(1, 256) if values is None else sorted({int(v) for v in values} - {0})
    # one voxel of background all round closes segments that touch the volume's edge
    padded = np.zeros(tuple(n + 2 for n in labels.shape), dtype=np.uint8)
    padded[1:-1, 1:-1, 1:-1] = labels
    grid = vtkImageData()
    grid.SetDimensions(*padded.shape[::-1])
    grid.SetOrigin(-1.0, -1.0, -1.0)  # index coordinates of the unpadded grid
    grid.GetPointData().SetScalars(numpy_to_vtk(padded.reshape(-1), deep=0))
    nets = vtkSurfaceNets3D()
    nets.SetInputData(grid)
    nets.SetBackgroundLabel(0)
    for n, value in enumerate(wanted):
        nets.SetLabel(n, value)
    nets.SetOutputMeshTypeToTriangles()
    nets.SetSmoothing(smoothing_iterations > 0)
    nets.SetNumberOfIterations(max(int(smoothing_iterations), 0))
    nets.Update()
    out = nets.GetOutput()
    if out.GetNumberOfCells() == 0:
        return {}
    ijk = vtk_to_numpy(out.GetPoints().GetData()).astype(np.float64)
    affine = np.asarray(geometry.ijk_to_lps_matrix(), dtype=float)
    lps = ijk @ affine[:3, :3].T + affine[:3, 3]
    tris = vtk_to_numpy(out.GetPolys().GetConnectivityArray()).reshape(-1, 3)
    if np.linalg.det(affine[:3, :3]) < 0:  # keep the winding outward on left-handed grids
        tris = tris[:, [0, 2, 1]]
    sides = vtk_to_numpy(out.GetCellData().GetArray("BoundaryLabels")).reshape(-1, 2)
    counts = np.bincount(sides.reshape(-1).astype(np.intp), minlength=256)
    present = set(np.flatnonzero(counts).tolist()) & set(wanted)
    result = {}
    for value in sorted(present):
        # surface nets orients a face outward from its first label: turn the faces that
        # have this segment second, so that the whole surface faces out of the segment
        first = tris[sides[:, 0] == value]
        second = tris[sides[:, 1] == value][:, [0, 2, 1]]
        cells = np.concatenate([first, second])
        if len(cells):
            result[value] = _polydata(lps, cells)
    return result


def _polydata(lps: np.ndarray, tris: np.ndarray) -> vtkPolyData:
    """Triangles over the points they use (compacted), with smooth point normals."""
    used = np.zeros(len(lps), dtype=bool)
    used[tris.reshape(-1)] = True
    new_id = np.cumsum(used, dtype=np.int64) - 1
    points = vtkPoints()
    points.SetData(numpy_to_vtk(np.ascontiguousarray(lps[used]), deep=1))
    conn = new_id[tris.reshape(-1)]
    offsets = np.arange(0, len(conn) + 1, 3, dtype=np.int64)
    cells = vtkCellArray()
    cells.SetData(numpy_to_vtkIdTypeArray(offsets, deep=1), numpy_to_vtkIdTypeArray(conn, deep=1))
    poly = vtkPolyData()
    poly.SetPoints(points)
    poly.SetPolys(cells)
    normals = vtkPolyDataNormals()
    normals.SetInputData(poly)
    normals.SplittingOff()
    normals.ConsistencyOff()  # already consistent: every face points out of the segment
    normals.ComputePointNormalsOn()
    normals.Update()
    result = vtkPolyData()
    result.ShallowCopy(normals.GetOutput())
    return result


class SegmentSurfaces:
    """Surfaces of a label map's segments in a VolumeView (``volume_view.renderer``).

    ``set_labelmap(labelmap | None)``; ``refresh(force=False) -> bool`` rebuilds when the
    voxels changed (returns whether it did); ``set_visible``, ``set_opacity``.
    ``actors``: label -> vtkActor of the current build. ``build_seconds``: last build time.
    """

    def __init__(
        self,
        volume_view,
        *,
        smoothing_iterations: int = 16,
        opacity: float = 1.0,
        min_interval_s: float = 1.0,
    ):
        self.view = volume_view
        self.renderer = volume_view.renderer
        self.smoothing_iterations = int(smoothing_iterations)
        self.min_interval_s = float(min_interval_s)
        self._last_build = -float("inf")  # time.monotonic() at the end of the last build
        self.opacity = float(opacity)
        self.visible = True
        self.labelmap: LabelMap | None = None
        self.actors: dict[int, vtkActor] = {}
        self.dirty = False
        self.version = 0  # bumped by every voxel change
        self.build_seconds = 0.0

    def set_labelmap(self, labelmap: LabelMap | None, *, build: bool = True) -> None:
        """Show the surfaces of ``labelmap`` (built now unless ``build`` is False), or none."""
        if self.labelmap is not None:
            self.labelmap.unwatch(self._on_changed, self._on_segments_changed)
        self.labelmap = labelmap
        self._clear()
        if labelmap is not None:
            labelmap.watch(self._on_changed, self._on_segments_changed)
            self.dirty = True
            if build:
                self.refresh(force=True)
        self._request_render()

    def refresh(self, force: bool = False) -> bool:
        """Rebuild the surfaces if the voxels changed since the last build; returns whether
        it did.

        Throttled: within ``min_interval_s`` of the previous build it does nothing (the
        surfaces stay :attr:`dirty`; call again after :meth:`wait_s`) unless ``force``.
        Cost: one surface-nets pass over the whole label volume (about 1 s for a
        300 x 512 x 512 chest, benchmarks/labelmap_render.py); call it when a stroke ends,
        never per mouse move, or build off the GUI thread with :meth:`snapshot`.
        """
        if self.labelmap is None or not (self.dirty or force):
            return False
        if not force and self.wait_s() > 0:
            return False
        start = time.perf_counter()
        labelmap = self.labelmap
        surfaces = label_surfaces(
            labelmap.labels, labelmap.geometry, None, self.smoothing_iterations
        )
        self.set_surfaces(surfaces, self.version)
        self.build_seconds = time.perf_counter() - start
        return True

    def wait_s(self) -> float:
        """Seconds until :meth:`refresh` may rebuild again (0 = now)."""
        return max(0.0, self._last_build + self.min_interval_s - time.monotonic())

    def snapshot(self) -> tuple[np.ndarray, VolumeGeometry, int]:
        """(labels copy, geometry, version) for building off the GUI thread:
        ``set_surfaces(label_surfaces(labels, geometry), version)`` when it is done."""
        if self.labelmap is None:
            raise ValueError("no label map shown")
        return self.labelmap.labels.copy(), self.labelmap.geometry, self.version

    def set_surfaces(self, surfaces: dict[int, vtkPolyData], version: int) -> None:
        """Show surfaces built from the voxels as they were at ``version`` (GUI thread).

        The surfaces stay marked dirty if the voxels changed since that version."""
        self._clear()
        for value, poly in surfaces.items():
            mapper = vtkPolyDataMapper()
            mapper.SetInputData(poly)
            mapper.ScalarVisibilityOff()
            actor = vtkActor()
            actor.SetMapper(mapper)
            self.actors[value] = actor
            self.renderer.AddActor(actor)
        self.dirty = version != self.version
        self._last_build = time.monotonic()
        self._apply_segments()
        self._request_render()

    def set_visible(self, visible: bool) -> None:
        self.visible = bool(visible)
        self._apply_segments()
        self._request_render()

    def set_opacity(self, opacity: float) -> None:
        """Global 3D opacity 0..1 (multiplies each segment's)."""
        self.opacity = min(max(float(opacity), 0.0), 1.0)
        self._apply_segments()
        self._request_render()

    def bounds(self, label: int) -> tuple[float, ...] | None:
        """LPS bounds (x0, x1, y0, y1, z0, z1) of one segment's surface, None if not built."""
        actor = self.actors.get(label)
        return None if actor is None else tuple(actor.GetMapper().GetInput().GetBounds())

    def close(self) -> None:
        self.set_labelmap(None)

    # -- internals -------------------------------------------------------------------------
    def _clear(self) -> None:
        for actor in self.actors.values():
            self.renderer.RemoveActor(actor)
        self.actors = {}

    def _apply_segments(self) -> None:
        if self.labelmap is None:
            return
        for value, actor in self.actors.items():
            seg = self.labelmap.segments.get(value) or segment_for(f"segment {value}", value)
            prop = actor.GetProperty()
            alpha = min(1.0, 2.0 * seg.opacity) * self.opacity
            prop.SetColor(*(c / 255.0 for c in seg.color))
            prop.SetOpacity(alpha)
            shown = self.visible and seg.visible and alpha > 0
            actor.SetVisibility(shown)

    def _on_changed(self, _bbox: BBox | None) -> None:
        self.version += 1
        self.dirty = True  # rebuilt by refresh(), never per edit

    def _on_segments_changed(self) -> None:
        self._apply_segments()
        self._request_render()

    def _request_render(self) -> None:
        request = getattr(self.view, "request_render", None)
        if request is not None:
            request()

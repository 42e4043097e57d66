"""SegmentSurfaces: smoothed surfaces of a label map's segments in the 3D view.

One ``vtkSurfaceNets3D`` pass (VTK >= 9.3) extracts the boundaries of all labelled segments
at once, with its built-in constrained smoothing (points stay within a fraction of a voxel
of the voxel faces, so a smoothed surface never drifts a voxel away from the mask). The
pass runs on the label voxels' index grid; the points are then mapped to LPS millimetres
with the label map's geometry (direction included; left-handed grids get their triangles
reversed), so the surfaces sit where the volume rendering draws the same voxels. The mesh
is split per segment (a face between two segments belongs to both), one actor each.

Rebuilding is on demand: :meth:`SegmentSurfaces.refresh` rebuilds only when the voxels
changed since the last build (the GUI calls it when a stroke ends, or on a timer), never
per brush move. Colour, visibility and opacity follow the segment table immediately
without a rebuild. 3D opacity = ``min(1, 2 x segment.opacity) x`` :attr:`opacity` (the
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

from viewer.core.labelmap import BBox, LabelMap

__all__ = ["SegmentSurfaces", "label_surfaces"]


def label_surfaces(
    labelmap: LabelMap,
    labels=None,
    smoothing_iterations: int = 16,
) -> dict[int, vtkPolyData]:
    """Triangle surfaces (LPS mm, with point normals) of ``labels`` (default: all present).

    smoothing_iterations: constrained smoothing passes (0 = the blocky voxel boundary).
    Labels without voxels are left out of the result.
    """
    array = labelmap.labels
    counts = np.bincount(array.reshape(-1), minlength=256)
    present = [int(v) for v in np.nonzero(counts)[0] if v]
    wanted = present if labels is None else [int(v) for v in labels if int(v) in present]
    if not wanted:
        return {}
    grid = vtkImageData()
    grid.SetDimensions(*labelmap.geometry.size_xyz)
    scalars = numpy_to_vtk(array.reshape(-1), deep=0)
    grid.GetPointData().SetScalars(scalars)
    nets = vtkSurfaceNets3D()
    nets.SetInputData(grid)
    nets.SetBackgroundLabel(0)
    for n, value in enumerate(wanted):
        nets.SetLabel(n, value)
    nets.SetOutputStyleToDefault()
    nets.SetOutputMeshTypeToTriangles()
    nets.SetSmoothing(smoothing_iterations > 0)
    nets.SetNumberOfIterations(max(int(smoothing_iterations), 0))
    nets.Update()
    out = nets.GetOutput()
    if out.GetNumberOfCells() == 0:
        return {}
    ijk = vtk_to_numpy(out.GetPoints().GetData()).astype(np.float64)
    affine = np.asarray(labelmap.geometry.ijk_to_lps_matrix(), dtype=float)
    lps = ijk @ affine[:3, :3].T + affine[:3, 3]
    tris = vtk_to_numpy(out.GetPolys().GetConnectivityArray()).reshape(-1, 3)
    if np.linalg.det(affine[:3, :3]) < 0:  # keep outward winding on left-handed grids
        tris = tris[:, [0, 2, 1]]
    sides = vtk_to_numpy(out.GetCellData().GetArray("BoundaryLabels")).reshape(-1, 2)
    result = {}
    for value in wanted:
        cells = tris[(sides[:, 0] == value) | (sides[:, 1] == value)]
        if len(cells):
            result[value] = _polydata(lps, cells)
    return result


def _polydata(lps: np.ndarray, tris: np.ndarray) -> vtkPolyData:
    """Triangles over the points they use (compacted), with smooth point normals."""
    used, inverse = np.unique(tris.reshape(-1), return_inverse=True)
    points = vtkPoints()
    points.SetData(numpy_to_vtk(np.ascontiguousarray(lps[used]), deep=1))
    conn = inverse.astype(np.int64)
    offsets = np.arange(0, len(conn) + 1, 3, dtype=np.int64)
    cells = vtkCellArray()
    cells.SetData(numpy_to_vtkIdTypeArray(offsets, deep=1), numpy_to_vtkIdTypeArray(conn, deep=1))
    poly = vtkPolyData()
    poly.SetPoints(points)
    poly.SetPolys(cells)
    normals = vtkPolyDataNormals()
    normals.SetInputData(poly)
    normals.SplittingOff()
    normals.ConsistencyOn()
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

    def __init__(self, volume_view, *, smoothing_iterations: int = 16, opacity: float = 1.0):
        self.view = volume_view
        self.renderer = volume_view.renderer
        self.smoothing_iterations = int(smoothing_iterations)
        self.opacity = float(opacity)
        self.visible = True
        self.labelmap: LabelMap | None = None
        self.actors: dict[int, vtkActor] = {}
        self.dirty = False
        self.build_seconds = 0.0

    def set_labelmap(self, labelmap: LabelMap | None) -> None:
        """Show the surfaces of ``labelmap`` (built now), or none."""
        if self.labelmap is not None:
            for signal, slot in (
                (self.labelmap.changed, self._on_changed),
                (self.labelmap.segments_changed, self._on_segments_changed),
            ):
                try:
                    signal.disconnect(slot)
                except ValueError:
                    pass
        self.labelmap = labelmap
        self._clear()
        if labelmap is not None:
            labelmap.changed.connect(self._on_changed)
            labelmap.segments_changed.connect(self._on_segments_changed)
            self.dirty = True
            self.refresh()
        self._request_render()

    def refresh(self, force: bool = False) -> bool:
        """Rebuild the surfaces if the voxels changed since the last build (or ``force``).

        Cost: one surface-nets pass over the whole label volume (measured in
        benchmarks/labelmap_render.py); call it when a stroke ends, not per mouse move.
        """
        if self.labelmap is None or not (self.dirty or force):
            return False
        start = time.perf_counter()
        surfaces = label_surfaces(self.labelmap, None, self.smoothing_iterations)
        self._clear()
        for value, poly in surfaces.items():
            mapper = vtkPolyDataMapper()
            mapper.SetInputData(poly)
            mapper.ScalarVisibilityOff()
            actor = vtkActor()
            actor.SetMapper(mapper)
            self.actors[value] = actor
            self.renderer.AddActor(actor)
        self.dirty = False
        self._apply_segments()
        self.build_seconds = time.perf_counter() - start
        self._request_render()
        return True

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
            seg = self.labelmap.segments.get(value)
            prop = actor.GetProperty()
            alpha = (min(1.0, 2.0 * seg.opacity) if seg is not None else 1.0) * self.opacity
            if seg is not None:
                prop.SetColor(*(c / 255.0 for c in seg.color))
            prop.SetOpacity(alpha)
            shown = self.visible and (seg is None or seg.visible) and alpha > 0
            actor.SetVisibility(shown)

    def _on_changed(self, _bbox: BBox | None) -> None:
        self.dirty = True  # rebuilt by refresh(), never per edit

    def _on_segments_changed(self) -> None:
        self._apply_segments()
        self._request_render()

    def _request_render(self) -> None:
        request = getattr(self.view, "request_render", None)
        if request is not None:
            request()

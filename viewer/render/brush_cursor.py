"""BrushCursor: the brush's footprint drawn at the mouse position in a SliceView.

The footprint is a disc of ``radius_mm`` millimetres in the view plane around the brush
centre (LPS mm), drawn as a closed outline of world-space points on the shown slice, so
zoom and pan move it with the image. The views show millimetres square (non-square pixels
are stretched, see SliceView), so a disc of r mm is a circle of ``r / mm_per_pixel``
screen pixels whatever the voxel spacing; :meth:`set_radii_mm` draws an ellipse for
brushes whose footprint is not round in mm (semi-axes along the screen's right and up).
The centre is projected along the view normal onto the shown slice at every render, so the
cursor follows scrolling. Colour: the active segment's (``Segment.color``, 0..255).
"""

from __future__ import annotations

import numpy as np
from vtkmodules.vtkCommonCore import vtkPoints
from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkPolyData
from vtkmodules.vtkRenderingCore import vtkActor, vtkPolyDataMapper

__all__ = ["BrushCursor"]

N_POINTS = 96  # points on the outline (smooth at any practical radius)
LIFT_PX = 0.05  # drawn this many pixels toward the camera: over the image and label layers


class BrushCursor:
    """The brush outline in ``view`` (a SliceView); hidden until a position is set.

    ``set_position(lps)``, ``set_radius_mm(r)``, ``set_color((r, g, b))`` (0..255),
    ``set_visible(b)``. It never renders by itself: the caller renders (or calls
    ``view.request_render()``), as for every change to a view.
    """

    def __init__(self, view, radius_mm: float = 5.0, color=(255, 255, 0), line_width=1.5):
        self.view = view
        self.radii_mm = (float(radius_mm), float(radius_mm))
        self.position: np.ndarray | None = None
        self.visible = True
        self._points = vtkPoints()
        self._points.SetNumberOfPoints(N_POINTS)
        lines = vtkCellArray()
        lines.InsertNextCell(N_POINTS + 1)
        for n in range(N_POINTS + 1):
            lines.InsertCellPoint(n % N_POINTS)
        poly = vtkPolyData()
        poly.SetPoints(self._points)
        poly.SetLines(lines)
        mapper = vtkPolyDataMapper()
        mapper.SetInputData(poly)
        self.actor = vtkActor()
        self.actor.SetMapper(mapper)
        self.actor.SetPickable(False)
        prop = self.actor.GetProperty()
        prop.SetLineWidth(line_width)
        prop.LightingOff()
        self.set_color(color)
        self.actor.VisibilityOff()
        view.renderer.AddActor(self.actor)
        self._key: tuple | None = None
        self._observer = view.renderer.AddObserver("StartEvent", self._before_render, -1.0)

    def set_position(self, lps) -> None:
        """Brush centre in LPS mm (None hides the cursor, e.g. when the mouse leaves)."""
        self.position = None if lps is None else np.asarray(lps, dtype=float).copy()
        self._update()

    def set_radius_mm(self, radius_mm: float) -> None:
        """Brush radius in millimetres, in the plane shown (a circle on screen)."""
        if not radius_mm > 0:
            raise ValueError(f"brush radius must be > 0 mm, got {radius_mm}")
        self.set_radii_mm(radius_mm, radius_mm)

    def set_radii_mm(self, along_right: float, along_up: float) -> None:
        """Ellipse semi-axes in mm along the screen's right and up axes."""
        if not (along_right > 0 and along_up > 0):
            raise ValueError("brush radii must be > 0 mm")
        self.radii_mm = (float(along_right), float(along_up))
        self._update()

    def set_color(self, color) -> None:
        """RGB 0..255 (as ``Segment.color``)."""
        self.color = tuple(int(c) for c in color)
        self.actor.GetProperty().SetColor(*(c / 255.0 for c in self.color))

    def set_visible(self, visible: bool) -> None:
        self.visible = bool(visible)
        self._update()

    def radius_px(self) -> float:
        """Radius along screen-right in display pixels at the view's current zoom."""
        return self.radii_mm[0] / self.view.mm_per_pixel()

    def close(self) -> None:
        self.view.renderer.RemoveActor(self.actor)
        self.view.renderer.RemoveObserver(self._observer)

    def _before_render(self, _caller=None, _event=None) -> None:
        self._update()

    def _update(self) -> None:
        """Place the outline on the shown slice (cheap; skipped when nothing moved)."""
        show = self.visible and self.position is not None
        if not show:
            if self.actor.GetVisibility():
                self.actor.VisibilityOff()
            return
        view = self.view
        plane = view.plane
        normal = np.asarray(plane.normal, dtype=float)
        mpp = view.mm_per_pixel()
        slice_mm = view.slice_position_mm()
        key = (tuple(self.position), self.radii_mm, slice_mm, mpp)
        if key != self._key:
            self._key = key
            centre = self.position + normal * (slice_mm - float(self.position @ normal))
            centre = centre + np.asarray(plane.dop, dtype=float) * -LIFT_PX * mpp
            t = np.linspace(0.0, 2.0 * np.pi, N_POINTS, endpoint=False)
            ru, rv = self.radii_mm
            pts = (
                centre + np.outer(ru * np.cos(t), plane.right) + np.outer(rv * np.sin(t), plane.up)
            )
            for n, p in enumerate(pts):
                self._points.SetPoint(n, *p)
            self._points.Modified()
        if not self.actor.GetVisibility():
            self.actor.VisibilityOn()

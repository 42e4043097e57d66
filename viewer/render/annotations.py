"""Measurement actors drawn over a slice view: length, angle, ellipse and rectangle ROIs.

Render only: the numbers come from :mod:`viewer.core.measure`; callers pass the label
text. Geometry is in world coordinates (patient LPS mm), normally points on the slice
plane (from :meth:`SliceView.display_to_lps`); the lines are 2D actors, so they stay on top
of the image and one pixel wide at any zoom. Labels are offset from an anchor point by a
few screen pixels.
"""

from __future__ import annotations

import numpy as np
from vtkmodules.vtkCommonCore import vtkPoints
from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkPolyData
from vtkmodules.vtkRenderingCore import (
    vtkActor2D,
    vtkCoordinate,
    vtkPolyDataMapper2D,
    vtkRenderer,
    vtkTextActor,
)

__all__ = ["AngleAnnotation", "EllipseRoi", "LengthAnnotation", "RectangleRoi"]

COLOUR = (1.0, 0.88, 0.2)
SELECTED_COLOUR = (0.3, 0.9, 1.0)
LABEL_OFFSET_PX = (8.0, 8.0)
ELLIPSE_POINTS = 72


class _Annotation:
    """A polyline in world coordinates plus a text label; subclasses compute the points."""

    def __init__(self, renderer: vtkRenderer, text: str = "", closed: bool = False):
        self.renderer = renderer
        self._closed = closed
        self._poly = vtkPolyData()
        self._poly.SetPoints(vtkPoints())
        self._poly.SetLines(vtkCellArray())
        world = vtkCoordinate()
        world.SetCoordinateSystemToWorld()
        mapper = vtkPolyDataMapper2D()
        mapper.SetInputData(self._poly)
        mapper.SetTransformCoordinate(world)
        self.actor = vtkActor2D()
        self.actor.SetMapper(mapper)
        self.actor.GetProperty().SetLineWidth(1.5)
        self.label = vtkTextActor()
        anchor = vtkCoordinate()
        anchor.SetCoordinateSystemToWorld()
        self._anchor = anchor
        pos = self.label.GetPositionCoordinate()
        pos.SetCoordinateSystemToDisplay()
        pos.SetReferenceCoordinate(anchor)
        pos.SetValue(*LABEL_OFFSET_PX)
        prop = self.label.GetTextProperty()
        prop.SetFontFamilyToArial()
        prop.SetFontSize(13)
        prop.ShadowOn()
        self.set_selected(False)
        self.set_text(text)
        renderer.AddViewProp(self.actor)
        renderer.AddViewProp(self.label)

    def _set_polyline(self, points: np.ndarray, anchor) -> None:
        pts = vtkPoints()
        for p in points:
            pts.InsertNextPoint(*(float(v) for v in p))
        lines = vtkCellArray()
        ids = list(range(len(points))) + ([0] if self._closed and len(points) > 2 else [])
        lines.InsertNextCell(len(ids))
        for i in ids:
            lines.InsertCellPoint(i)
        self._poly.SetPoints(pts)
        self._poly.SetLines(lines)
        self._poly.Modified()
        self._anchor.SetValue(*(float(v) for v in anchor))

    def set_text(self, text: str) -> None:
        """The label (e.g. "42.3 mm" or "mean 35 HU, 12.1 cm²"); empty hides it."""
        self.text = str(text)
        self.label.SetInput(self.text)
        self.label.SetVisibility(bool(self.text))

    def set_selected(self, selected: bool) -> None:
        colour = SELECTED_COLOUR if selected else COLOUR
        self.actor.GetProperty().SetColor(*colour)
        self.label.GetTextProperty().SetColor(*colour)

    def set_visible(self, visible: bool) -> None:
        self.actor.SetVisibility(bool(visible))
        self.label.SetVisibility(bool(visible) and bool(self.text))

    def remove(self) -> None:
        self.renderer.RemoveViewProp(self.actor)
        self.renderer.RemoveViewProp(self.label)


def _p(v) -> np.ndarray:
    return np.asarray(v, dtype=float).reshape(3)


class LengthAnnotation(_Annotation):
    """A straight line p0-p1 (LPS mm) labelled at its end point."""

    def __init__(self, renderer: vtkRenderer, p0, p1, text: str = ""):
        super().__init__(renderer, text)
        self.set_points(p0, p1)

    def set_points(self, p0, p1) -> None:
        self.points = (_p(p0), _p(p1))
        self._set_polyline(np.array(self.points), self.points[1])


class AngleAnnotation(_Annotation):
    """Two rays from ``vertex`` to ``a`` and ``b`` (LPS mm), labelled at the vertex."""

    def __init__(self, renderer: vtkRenderer, a, vertex, b, text: str = ""):
        super().__init__(renderer, text)
        self.set_points(a, vertex, b)

    def set_points(self, a, vertex, b) -> None:
        self.points = (_p(a), _p(vertex), _p(b))
        self._set_polyline(np.array(self.points), self.points[1])


class EllipseRoi(_Annotation):
    """Ellipse ``centre + cos(t) * u + sin(t) * v``; u, v are half-axis vectors in LPS mm.

    For an axis-aligned ellipse in a view: ``u = rx * view.plane.right``,
    ``v = ry * view.plane.up``. Labelled at the end of ``u``.
    """

    def __init__(self, renderer: vtkRenderer, centre, u, v, text: str = ""):
        super().__init__(renderer, text, closed=True)
        self.set_geometry(centre, u, v)

    def set_geometry(self, centre, u, v) -> None:
        self.centre, self.u, self.v = _p(centre), _p(u), _p(v)
        t = np.linspace(0.0, 2 * np.pi, ELLIPSE_POINTS, endpoint=False)[:, None]
        pts = self.centre + np.cos(t) * self.u + np.sin(t) * self.v
        self._set_polyline(pts, self.centre + self.u + self.v)


class RectangleRoi(_Annotation):
    """Rectangle with opposite corners p0, p1 (LPS mm) and sides along ``right`` and ``up``.

    ``right``/``up`` are the view's screen axes (``view.plane.right``, ``view.plane.up``).
    """

    def __init__(self, renderer: vtkRenderer, p0, p1, right, up, text: str = ""):
        super().__init__(renderer, text, closed=True)
        self.right, self.up = _p(right), _p(up)
        self.set_corners(p0, p1)

    def set_corners(self, p0, p1) -> None:
        self.corners = (_p(p0), _p(p1))
        d = self.corners[1] - self.corners[0]
        du = float(np.dot(d, self.right)) * self.right
        dv = float(np.dot(d, self.up)) * self.up
        a = self.corners[0]
        pts = np.array([a, a + du, a + du + dv, a + dv])
        self._set_polyline(pts, pts[np.argmax(pts @ (self.right + self.up))])

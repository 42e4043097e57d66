"""2D overlays drawn over a slice view: corner text, edge letters, scale bar, crosshair.

Each overlay builds its VTK actors once and afterwards only changes strings, points and
positions, so updating them on every render is cheap. Text and bar positions are in
viewport pixels (origin bottom-left of the renderer's viewport); crosshair points are in
world coordinates (LPS mm) and VTK projects them on every render.
"""

from __future__ import annotations

import math

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

__all__ = ["CornerText", "Crosshair", "EdgeLetters", "ScaleBar", "font_size_for", "nice_length"]

TEXT_COLOUR = (0.92, 0.92, 0.92)
LETTER_COLOUR = (1.0, 0.85, 0.35)
PAD_PX = 6

#: crosshair colour per patient plane the line belongs to (3D Slicer's convention)
PLANE_COLOURS = {"axial": (0.95, 0.3, 0.3), "coronal": (0.35, 0.85, 0.35),
                 "sagittal": (0.95, 0.85, 0.3), "other": (0.4, 0.7, 1.0)}


def font_size_for(viewport_height_px: int) -> int:
    """Text size (points = pixels here) readable at this viewport height."""
    return int(min(18, max(11, round(viewport_height_px / 38))))


def _text_actor(justify: str, valign: str, colour=TEXT_COLOUR) -> vtkTextActor:
    actor = vtkTextActor()
    actor.GetPositionCoordinate().SetCoordinateSystemToViewport()
    prop = actor.GetTextProperty()
    prop.SetFontFamilyToArial()
    prop.SetColor(*colour)
    prop.ShadowOn()
    prop.SetShadowOffset(1, -1)
    {"left": prop.SetJustificationToLeft, "right": prop.SetJustificationToRight,
     "center": prop.SetJustificationToCentered}[justify]()
    {"top": prop.SetVerticalJustificationToTop, "bottom": prop.SetVerticalJustificationToBottom,
     "center": prop.SetVerticalJustificationToCentered}[valign]()
    actor.SetPickable(False)
    return actor


class _TextGroup:
    """Named text actors placed relative to the viewport edges; strings cached."""

    _ANCHORS: dict[str, tuple[str, str]] = {}

    def __init__(self, renderer: vtkRenderer, colour=TEXT_COLOUR, scale: float = 1.0):
        self.renderer = renderer
        self.scale = scale
        self.actors = {name: _text_actor(h, v, colour) for name, (h, v) in self._ANCHORS.items()}
        self._texts = dict.fromkeys(self.actors, "")
        for actor in self.actors.values():
            renderer.AddViewProp(actor)

    def set_text(self, name: str, text: str) -> None:
        if self._texts[name] != text:
            self._texts[name] = text
            self.actors[name].SetInput(text)

    def text(self, name: str) -> str:
        return self._texts[name]

    def set_visible(self, visible: bool) -> None:
        for actor in self.actors.values():
            actor.SetVisibility(bool(visible))

    def layout(self, width: int, height: int) -> None:
        size = max(8, round(font_size_for(height) * self.scale))
        for name, actor in self.actors.items():
            h, v = self._ANCHORS[name]
            x = {"left": PAD_PX, "right": width - PAD_PX, "center": width / 2}[h]
            y = {"bottom": PAD_PX, "top": height - PAD_PX, "center": height / 2}[v]
            actor.SetPosition(x, y)
            actor.GetTextProperty().SetFontSize(size)


class CornerText(_TextGroup):
    """Four corner text blocks: ``top_left``, ``top_right``, ``bottom_left``, ``bottom_right``."""

    _ANCHORS = {"top_left": ("left", "top"), "top_right": ("right", "top"),
                "bottom_left": ("left", "bottom"), "bottom_right": ("right", "bottom")}


class EdgeLetters(_TextGroup):
    """Orientation letters at the middle of the four edges: ``left``, ``right``, ``top``..."""

    _ANCHORS = {"left": ("left", "center"), "right": ("right", "center"),
                "top": ("center", "top"), "bottom": ("center", "bottom")}

    def __init__(self, renderer: vtkRenderer):
        super().__init__(renderer, LETTER_COLOUR, scale=1.15)
        for actor in self.actors.values():
            actor.GetTextProperty().BoldOn()

    def set_letters(self, letters: dict[str, str]) -> None:
        for name, text in letters.items():
            self.set_text(name, text)


def nice_length(max_mm: float) -> float:
    """Largest 1-2-5 x 10^n length (mm) not above ``max_mm`` (at least 0.1 mm)."""
    if max_mm <= 0.1:
        return 0.1
    exp = math.floor(math.log10(max_mm))
    for m in (5, 2, 1):
        if m * 10**exp <= max_mm + 1e-9:
            return float(m * 10**exp)
    return float(10**exp)


def format_length(mm: float) -> str:
    if mm >= 10 and abs(mm / 10 - round(mm / 10)) < 1e-9:
        return f"{mm / 10:g} cm"
    return f"{mm:g} mm"


def _polyline_actor(n_points: int, segments: list[tuple[int, int]], coordinate: vtkCoordinate,
                    colour, width: float = 1.0) -> tuple[vtkActor2D, vtkPoints]:
    points = vtkPoints()
    points.SetNumberOfPoints(n_points)
    for p in range(n_points):
        points.SetPoint(p, 0.0, 0.0, 0.0)
    lines = vtkCellArray()
    for a, b in segments:
        lines.InsertNextCell(2)
        lines.InsertCellPoint(a)
        lines.InsertCellPoint(b)
    poly = vtkPolyData()
    poly.SetPoints(points)
    poly.SetLines(lines)
    mapper = vtkPolyDataMapper2D()
    mapper.SetInputData(poly)
    mapper.SetTransformCoordinate(coordinate)
    actor = vtkActor2D()
    actor.SetMapper(mapper)
    actor.GetProperty().SetColor(*colour)
    actor.GetProperty().SetLineWidth(width)
    actor.SetPickable(False)
    return actor, points


class ScaleBar:
    """A horizontal bar with end ticks and a round length label, above the lower-right text.

    ``update(mm_per_px, width, height, bottom_px)`` picks the longest 1-2-5 length that fits
    in a quarter of the viewport width; it rebuilds nothing, only moves 6 points.
    """

    def __init__(self, renderer: vtkRenderer):
        coord = vtkCoordinate()
        coord.SetCoordinateSystemToViewport()
        self.actor, self._points = _polyline_actor(6, [(0, 1), (2, 3), (4, 5)], coord,
                                                   TEXT_COLOUR, 1.5)
        self.label = _text_actor("right", "center")
        renderer.AddViewProp(self.actor)
        renderer.AddViewProp(self.label)
        self.length_mm = 0.0
        self._state = None

    def set_visible(self, visible: bool) -> None:
        self.actor.SetVisibility(bool(visible))
        self.label.SetVisibility(bool(visible))

    def update(self, mm_per_px: float, width: int, height: int, bottom_px: float) -> None:
        state = (round(mm_per_px, 9), width, height, round(bottom_px))
        if state == self._state or mm_per_px <= 0:
            return
        self._state = state
        self.length_mm = nice_length(0.25 * width * mm_per_px)
        px = self.length_mm / mm_per_px
        x1 = width - PAD_PX - 2
        x0 = x1 - px
        y = bottom_px
        tick = 4
        for n, (x, yy) in enumerate([(x0, y), (x1, y), (x0, y - tick), (x0, y + tick),
                                     (x1, y - tick), (x1, y + tick)]):
            self._points.SetPoint(n, x, yy, 0.0)
        self._points.Modified()
        self.label.SetInput(format_length(self.length_mm))
        self.label.SetPosition(x0 - 6, y)
        self.label.GetTextProperty().SetFontSize(font_size_for(height))


def plane_name(normal) -> str:
    """Patient plane with this normal: axial (S-I), coronal (A-P), sagittal (R-L), other."""
    n = np.abs(np.asarray(normal, dtype=float))
    axis = int(np.argmax(n))
    if n[axis] < 0.9:
        return "other"
    return ("sagittal", "coronal", "axial")[axis]


class Crosshair:
    """Two thin lines through the cursor on the current slice plane, with a gap at the centre.

    The line along screen-right lies in the plane whose normal is screen-up (e.g. in an axial
    view the horizontal line is the coronal plane) and takes that plane's colour.
    ``set_position(lps, right, up, gap_mm, span_mm)``: world (LPS mm) geometry.
    """

    def __init__(self, renderer: vtkRenderer, right, up):
        coord = vtkCoordinate()
        coord.SetCoordinateSystemToWorld()
        segs = [(0, 1), (2, 3)]
        self.horizontal, self._hpts = _polyline_actor(4, segs, coord,
                                                      PLANE_COLOURS[plane_name(up)])
        self.vertical, self._vpts = _polyline_actor(4, segs, coord,
                                                    PLANE_COLOURS[plane_name(right)])
        for actor in (self.horizontal, self.vertical):
            renderer.AddViewProp(actor)
            actor.VisibilityOff()
        self.right = np.asarray(right, dtype=float)
        self.up = np.asarray(up, dtype=float)
        self.visible = False

    def set_visible(self, visible: bool) -> None:
        self.visible = bool(visible)
        self.horizontal.SetVisibility(self.visible)
        self.vertical.SetVisibility(self.visible)

    def set_position(self, lps, gap_mm: float, span_mm: float) -> None:
        c = np.asarray(lps, dtype=float)
        for pts, axis in ((self._hpts, self.right), (self._vpts, self.up)):
            pts.SetPoint(0, *(c - span_mm * axis))
            pts.SetPoint(1, *(c - gap_mm * axis))
            pts.SetPoint(2, *(c + gap_mm * axis))
            pts.SetPoint(3, *(c + span_mm * axis))
            pts.Modified()

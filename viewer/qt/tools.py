"""Mouse tools of a slice viewport: what a left drag does, and drawing measurements.

Conventions radiologists know: right drag = window/level (zoom when the zoom tool is
active), middle drag = pan, wheel = slices, ctrl+wheel = zoom, a click without a drag moves
the linked crosshair. Measurements become :class:`viewer.core.measure.Measurement` records
in the session; the viewport only draws them.

Segmentation tools (as in 3D Slicer's Segment Editor, keys chosen not to clash with the
ones above): brush (B), eraser (X), threshold brush (Shift+B: paints only where HU is in
the panel's range), flood fill (G, a click). A left drag with the brush or eraser is one
stroke (one undo step); Ctrl inverts it (the brush erases, the eraser paints); Shift+wheel
changes the brush size. The viewport reports strokes and hovering as Qt signals
(``paint_pressed``/``paint_moved``/``paint_released``/``hovered``); the segment
controller (viewer.qt.segment_controller) turns them into label-map edits.
"""

from __future__ import annotations

import numpy as np

from viewer.core.measure import Measurement
from viewer.core.windowing import WindowLevel, window_from_drag

#: tool key -> (menu text, shortcut)
TOOLS: dict[str, tuple[str, str]] = {
    "window": ("&Window/level (left drag)", "W"),
    "pan": ("&Pan (left drag)", "P"),
    "zoom": ("&Zoom (left drag)", "Z"),
    "length": ("Measure &length", "L"),
    "angle": ("Measure &angle", "A"),
    "ellipse": ("&Ellipse ROI", "E"),
    "rectangle": ("Rec&tangle ROI", "T"),
    "brush": ("&Brush (paint the active segment)", "B"),
    "eraser": ("Era&ser (erase the active segment)", "X"),
    "threshold": ("T&hreshold brush (paint within the HU range)", "Shift+B"),
    "fill": ("Flood &fill (click)", "G"),
}
MEASURE_TOOLS = ("length", "angle", "ellipse", "rectangle")
#: tools whose left drag is a brush stroke
BRUSH_TOOLS = ("brush", "eraser", "threshold")
#: tools that edit the label map with the left button (a drag or a click)
PAINT_TOOLS = (*BRUSH_TOOLS, "fill")
#: brush size steps for [ / ] and Shift+wheel: multiply or divide by this
BRUSH_STEP = 1.15
CLICK_PX = 3.0  # a press and release closer than this is a click, not a drag


def measurement_orientation(view) -> str | None:
    """The patient plane a view's measurements live in ("image" views of radiographs are
    axial planes when the image lies in one), or None when measuring is not possible."""
    name = view.plane.orientation
    if name in ("axial", "coronal", "sagittal"):
        return name
    normal = np.abs(np.asarray(view.plane.normal, dtype=float))
    for orient, axis in (("axial", 2), ("coronal", 1), ("sagittal", 0)):
        if normal[axis] > 0.999:
            return orient
    return None


class Drag:
    """State of one mouse drag in a viewport (display pixels, VTK y-up)."""

    def __init__(self, action: str, x: float, y: float, window: WindowLevel, button=None) -> None:
        self.action = action
        self.button = button
        self.x0, self.y0 = x, y
        self.x, self.y = x, y
        self.window0 = window
        self.moved = False

    def move(self, x: float, y: float) -> tuple[float, float]:
        dx, dy = x - self.x, y - self.y
        self.x, self.y = x, y
        if abs(x - self.x0) + abs(y - self.y0) > CLICK_PX:
            self.moved = True
        return dx, dy

    def window(self) -> WindowLevel:
        """Window after the drag: horizontal = width, vertical = level (screen y down)."""
        return window_from_drag(self.window0, self.x - self.x0, -(self.y - self.y0))


class MeasureDraft:
    """Points of a measurement being drawn (LPS mm on the view's slice plane)."""

    def __init__(self, kind: str, orientation: str, position_mm: float) -> None:
        self.kind = kind
        self.orientation = orientation
        self.position_mm = position_mm
        self.points: list[np.ndarray] = []

    @property
    def needed(self) -> int:
        return 3 if self.kind == "angle" else 2

    def preview(self, current) -> list[np.ndarray]:
        """The points to draw now, with ``current`` as the moving one."""
        return [*self.points, np.asarray(current, dtype=float)][: self.needed]

    def add(self, point) -> Measurement | None:
        """Add a fixed point; returns the finished measurement when complete."""
        self.points.append(np.asarray(point, dtype=float))
        if len(self.points) < self.needed:
            return None
        pts = [tuple(float(v) for v in p) for p in self.points]
        if self.kind != "angle" and np.linalg.norm(self.points[0] - self.points[1]) < 1e-6:
            return None
        return Measurement(self.kind, tuple(pts), self.orientation, self.position_mm)

"""Viewport: one VTK widget showing a SliceView (or the 3D view) and turning mouse and
wheel input into Session changes (through its ViewGrid, viewer.qt.view_grid).

With a paint tool (viewer.qt.tools.PAINT_TOOLS) the left button does not move the cursor:
the viewport emits ``paint_pressed(viewport, lps, modifiers)``, ``paint_moved(viewport,
lps)`` and ``paint_released(viewport)`` (LPS mm on the shown slice plane), and
``hovered(viewport, lps | None)`` while the mouse moves over it (None: it left), so the
segment controller can edit the label map and move the brush cursor. Shift+wheel emits
``brush_size_step(+1 | -1)``.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from vtkmodules.qt.QVTKRenderWindowInteractor import QVTKRenderWindowInteractor
from vtkmodules.vtkInteractionStyle import vtkInteractorStyleTrackballCamera, vtkInteractorStyleUser
from vtkmodules.vtkRenderingCore import vtkRenderer

from viewer.qt.tools import (
    MEASURE_TOOLS,
    PAINT_TOOLS,
    Drag,
    MeasureDraft,
    measurement_orientation,
)
from viewer.render.annotations import (
    AngleAnnotation,
    EllipseRoi,
    LengthAnnotation,
    RectangleRoi,
)
from viewer.render.slice_view import SliceView
from viewer.render.volume_view import VolumeView


class Viewport(QVTKRenderWindowInteractor):
    """One view in a VTK widget. ``kind``: axial, coronal, sagittal, image or 3d."""

    double_clicked = Signal(object)
    paint_pressed = Signal(object, object, object)  # viewport, lps, Qt.KeyboardModifiers
    paint_moved = Signal(object, object)  # viewport, lps
    paint_released = Signal(object)  # viewport
    hovered = Signal(object, object)  # viewport, lps (None: the mouse left the view)
    brush_size_step = Signal(int)  # +1 bigger, -1 smaller (Shift+wheel with a paint tool)

    def __init__(self, grid, kind: str) -> None:
        super().__init__(grid)
        self.grid = grid
        self.kind = kind
        self.renderer = vtkRenderer()
        self.renderer.SetBackground(0, 0, 0)
        window = self.GetRenderWindow()
        window.SetMultiSamples(0)  # MSAA costs 4x with software OpenGL; slices need none
        window.AddRenderer(self.renderer)
        style = vtkInteractorStyleTrackballCamera() if kind == "3d" else vtkInteractorStyleUser()
        self.GetRenderWindow().GetInteractor().SetInteractorStyle(style)
        self.view: SliceView | VolumeView | None = None
        self._drag: Drag | None = None
        self._draft: MeasureDraft | None = None
        self._painting = False
        self._preview = None
        self._annotations: dict[str, object] = {}
        self._finalized = False
        self.setFocusPolicy(Qt.StrongFocus)
        self.setMouseTracking(True)

    # -- content --------------------------------------------------------------------------
    def set_volume(self, volume, image) -> None:
        self.clear()
        if volume is None:
            return
        if self.kind == "3d":
            if volume.is_color or volume.geometry.shape[0] < 2:
                return
            self.view = VolumeView(self.renderer, image, volume=volume)
            self.view.render_request = self.update
        else:
            orientation = "image" if self.kind == "image" else self.kind
            self.view = SliceView(self.renderer, volume, image, orientation)
            self.view.render_request = self.update  # label layers: one coalesced repaint

    def clear(self) -> None:
        self._remove_annotations()
        if self.view is not None:
            self.view.close()
            self.view = None
        self.renderer.RemoveAllViewProps()

    @property
    def slice_view(self) -> SliceView | None:
        return self.view if isinstance(self.view, SliceView) else None

    def render(self) -> None:
        if self.isVisible() and not self._finalized:
            self.GetRenderWindow().Render()

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt API
        if not self._finalized:  # a render after Finalize would reopen an X connection
            super().paintEvent(event)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt API
        if not self._finalized:
            super().resizeEvent(event)

    def finalize(self) -> None:
        """Release the OpenGL context and VTK's X display connection (before the window
        goes, so nothing talks to a display that may already be gone)."""
        if not self._finalized:
            self.clear()
            self._finalized = True
            self.Finalize()

    # -- coordinates ----------------------------------------------------------------------
    def display_xy(self, event) -> tuple[float, float]:
        """Qt widget position -> VTK display pixels (origin bottom-left, device pixels)."""
        ratio = self.devicePixelRatioF()
        pos = event.position()
        return pos.x() * ratio, (self.height() - pos.y()) * ratio

    # -- input ----------------------------------------------------------------------------
    def wheelEvent(self, event) -> None:  # noqa: N802 - Qt API
        view = self.slice_view
        if view is None:
            return super().wheelEvent(event)
        steps = event.angleDelta().y() / 120.0 or event.angleDelta().x() / 120.0
        if event.modifiers() & Qt.ShiftModifier and self.grid.tool in PAINT_TOOLS:
            if steps:  # Shift turns a vertical wheel into a horizontal one on some systems
                self.brush_size_step.emit(1 if steps > 0 else -1)
        elif event.modifiers() & Qt.ControlModifier:
            view.zoom(1.1 ** steps)
            self.render()
        elif steps:
            self.grid.scroll(self, 1 if steps > 0 else -1)
        event.accept()

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt API
        self.grid.set_active(self)
        view = self.slice_view
        if view is None:
            return super().mousePressEvent(event)
        x, y = self.display_xy(event)
        tool = self.grid.tool
        if event.button() == Qt.LeftButton and tool in MEASURE_TOOLS:
            self._measure_press(view, x, y)
            return
        if event.button() == Qt.LeftButton and tool in PAINT_TOOLS:
            self._painting = True
            self.paint_pressed.emit(self, view.display_to_lps(x, y), event.modifiers())
            return
        action = {Qt.LeftButton: tool, Qt.MiddleButton: "pan",
                  Qt.RightButton: "zoom" if tool == "zoom" else "window"}.get(event.button())
        if action is not None:
            self._drag = Drag(action, x, y, self.grid.session.window, event.button())

    def mouseMoveEvent(self, event) -> None:  # noqa: N802 - Qt API
        view = self.slice_view
        if view is None:
            return super().mouseMoveEvent(event)
        x, y = self.display_xy(event)
        point = view.display_to_lps(x, y)
        self.grid.report_cursor(point)
        if self.grid.tool in PAINT_TOOLS:
            self.hovered.emit(self, point)
        if self._painting:
            self.paint_moved.emit(self, point)
            return
        if self._draft is not None:
            self._show_preview(view, self._draft.preview(point))
            self.render()
            return
        drag = self._drag
        if drag is None:
            return
        dx, dy = drag.move(x, y)
        if not drag.moved:
            return
        if drag.action == "window":
            with self.grid.driving(self):
                self.grid.session.set_window(drag.window())
        elif drag.action == "pan":
            view.pan(dx, dy)
            self.render()
        elif drag.action == "zoom":
            view.zoom(1.01 ** dy)
            self.render()

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802 - Qt API
        view = self.slice_view
        if view is None:
            return super().mouseReleaseEvent(event)
        x, y = self.display_xy(event)
        if self._painting and event.button() == Qt.LeftButton:
            self._painting = False
            self.paint_released.emit(self)
            return
        if self._draft is not None and self._draft.kind != "angle" and self._draft.points:
            self._measure_add(view, x, y)
            return
        drag, self._drag = self._drag, None
        if drag is not None and not drag.moved and drag.button == Qt.LeftButton:
            self.grid.session.set_cursor(view.display_to_lps(x, y))

    def leaveEvent(self, event) -> None:  # noqa: N802 - Qt API
        if self.grid.tool in PAINT_TOOLS:
            self.hovered.emit(self, None)
        super().leaveEvent(event)

    def mouseDoubleClickEvent(self, event) -> None:  # noqa: N802 - Qt API
        if self.grid.tool in PAINT_TOOLS and self.kind != "3d":
            self.mousePressEvent(event)  # a quick second click paints too
            return
        if self.grid.tool in MEASURE_TOOLS and self.kind != "3d":
            return
        self.double_clicked.emit(self)

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt API
        if event.key() == Qt.Key_Escape and self._draft is not None:
            self._cancel_draft()
            return
        event.ignore()  # shortcuts live in the main window's menus

    # -- measurements ---------------------------------------------------------------------
    def _measure_press(self, view: SliceView, x: float, y: float) -> None:
        orientation = measurement_orientation(view)
        if orientation is None:
            self.grid.status.emit("Measurements need a view parallel to a patient plane")
            return
        if self._draft is None:
            self._draft = MeasureDraft(self.grid.tool, orientation, view.slice_position_mm())
        self._measure_add(view, x, y)

    def _measure_add(self, view: SliceView, x: float, y: float) -> None:
        done = self._draft.add(view.display_to_lps(x, y))
        if done is not None or len(self._draft.points) >= self._draft.needed:
            self._cancel_draft()
            if done is not None:
                self.grid.session.measurements.add(done)

    def _cancel_draft(self) -> None:
        self._draft = None
        if self._preview is not None:
            self._preview.remove()
            self._preview = None
        self.render()

    def _show_preview(self, view: SliceView, points) -> None:
        if self._preview is not None:
            self._preview.remove()
        self._preview = _annotation(view, self._draft.kind, points, "")

    def sync_annotations(self) -> None:
        """Draw the session's measurements that belong to the current slice."""
        self._remove_annotations()
        view = self.slice_view
        orientation = measurement_orientation(view) if view is not None else None
        if orientation is None:
            return
        session = self.grid.session
        tol = view.axis.step_mm / 2.0 if orientation == view.plane.orientation else 0.5
        for m in session.measurements.for_slice(orientation, view.slice_position_mm(), tol):
            self._annotations[m.id] = _annotation(view, m.kind, m.points, m.summary(session.volume))

    def _remove_annotations(self) -> None:
        for ann in self._annotations.values():
            ann.remove()
        self._annotations.clear()


def _annotation(view: SliceView, kind: str, points, text: str):
    pts = [np.asarray(p, dtype=float) for p in points]
    if kind == "length" or (kind == "angle" and len(pts) == 2):
        return LengthAnnotation(view.renderer, pts[0], pts[1], text)
    if kind == "angle":
        return AngleAnnotation(view.renderer, pts[0], pts[1], pts[2], text)
    right, up = view.plane.right, view.plane.up
    if kind == "rectangle":
        return RectangleRoi(view.renderer, pts[0], pts[1], right, up, text)
    d = pts[1] - pts[0]
    centre = (pts[0] + pts[1]) / 2
    return EllipseRoi(view.renderer, centre, right * np.dot(d, right) / 2, up * np.dot(d, up) / 2,
                      text)

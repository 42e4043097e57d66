"""ViewGrid: the viewports in a layout (1x1, 1x3, 2x2), all showing the session's volume.

The grid listens to the Session (cursor, window, invert, measurements) and pushes changes
into every view; the viewports send mouse and wheel input back into the Session. The volume
becomes one vtkImageData shared by all views (no copies).
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QGridLayout, QWidget

from viewer.core.session import Session
from viewer.qt.tools import TOOLS, measurement_orientation
from viewer.qt.viewport import Viewport
from viewer.render.offscreen import capture_rgb
from viewer.render.view_plane import is_projection
from viewer.render.vtk_convert import volume_to_vtk

ORIENTATIONS = ("axial", "coronal", "sagittal", "3d")
CINE_FPS = 15
#: views linked to the one being scrolled re-render at most this often (ms): the driven
#: view gets every frame, its neighbours follow at ~20 Hz (software OpenGL)
LINKED_RENDER_MS = 50


class ViewGrid(QWidget):
    """The central area: viewports in a layout, all showing the session's volume."""

    TOOLS = TOOLS
    cursor_info = Signal(str)
    slice_file_changed = Signal(str)
    status = Signal(str)

    def __init__(self, session: Session, parent=None) -> None:
        super().__init__(parent)
        self.session = session
        self.tool = "window"
        self.layout_name = "1x3"
        self.maximised: Viewport | None = None
        self.volume = None
        self.image = None
        self.crosshair = True
        self._grid = QGridLayout(self)
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._grid.setSpacing(2)
        self.viewports = {k: Viewport(self, k) for k in (*ORIENTATIONS, "image")}
        for vp in self.viewports.values():
            vp.double_clicked.connect(self.toggle_maximise)
            vp.hide()
        self.active = self.viewports["axial"]
        self._source: Viewport | None = None  # the view the user is driving right now
        self._pending: set[Viewport] = set()
        self._linked_timer = QTimer(self)
        self._linked_timer.setSingleShot(True)
        self._linked_timer.setInterval(LINKED_RENDER_MS)
        self._linked_timer.timeout.connect(self._render_pending)
        self._cine = QTimer(self)
        self._cine.setInterval(int(1000 / CINE_FPS))
        self._cine.timeout.connect(lambda: self.scroll(self.active, 1, wrap=True))
        session.cursor_changed.connect(self._on_cursor)
        session.window_changed.connect(self._on_window)
        session.invert_changed.connect(self._on_invert)
        session.measurements.changed.connect(self._on_measurements)
        self._arrange()

    # -- volume ---------------------------------------------------------------------------
    def set_volume(self, volume) -> None:
        self._cine.stop()
        self.volume = volume
        self.image = volume_to_vtk(volume) if volume is not None else None
        self.maximised = None
        for vp in self.viewports.values():
            vp.set_volume(volume, self.image)
        self.active = self.viewports["image" if self._projection() else "axial"]
        for _, view in self.slice_views():  # no crosshair on a single radiograph
            view.show_crosshair(self.crosshair and not self._projection())
        wl = self.session.window
        self._on_window(wl)
        self._on_invert(self.session.invert)
        self._on_cursor(self.session.cursor)
        self._arrange()

    def _projection(self) -> bool:
        return self.volume is not None and (is_projection(self.volume)
                                            or self.volume.geometry.shape[0] == 1)

    def slice_views(self):
        for vp in self.viewports.values():
            if vp.slice_view is not None:
                yield vp, vp.slice_view

    # -- layout ---------------------------------------------------------------------------
    def set_layout(self, name: str) -> None:
        self.layout_name = name
        self.maximised = None
        self._arrange()

    def visible_viewports(self) -> list[Viewport]:
        if self._projection():
            return [self.viewports["image"]]
        if self.maximised is not None:
            return [self.maximised]
        if self.layout_name == "1x1":
            return [self.active if self.active.kind in ORIENTATIONS else self.viewports["axial"]]
        names = ("axial", "coronal", "sagittal") + (("3d",) if self.layout_name == "2x2" else ())
        return [self.viewports[n] for n in names]

    def _arrange(self) -> None:
        shown = self.visible_viewports()
        for vp in self.viewports.values():
            self._grid.removeWidget(vp)
            vp.setVisible(vp in shown)
        columns = 2 if self.layout_name == "2x2" and len(shown) == 4 else len(shown)
        for n, vp in enumerate(shown):
            self._grid.addWidget(vp, n // columns, n % columns)
        QTimer.singleShot(0, lambda: self.render_all(include_3d=True))

    def toggle_maximise(self, vp: Viewport) -> None:
        self.maximised = None if self.maximised is vp or self._projection() else vp
        self.set_active(vp)
        self._arrange()

    def set_active(self, vp: Viewport) -> None:
        self.active = vp

    def render_all(self, include_3d: bool = False) -> None:
        """Re-render the visible slice views (the 3D view only when asked: it ignores the
        cursor and the window, and ray casting is the slowest thing on screen).

        While the user drives one view (scrolling, cine), that view renders now and the
        others are queued and rendered together at most every LINKED_RENDER_MS.
        """
        for vp in self.visible_viewports():
            if not include_3d and vp.kind == "3d":
                continue
            if self._source is None or vp is self._source:
                vp.render()
                self._pending.discard(vp)
            else:
                self._pending.add(vp)
        if self._pending and not self._linked_timer.isActive():
            self._linked_timer.start()

    @contextmanager
    def driving(self, vp: Viewport):
        """Changes made inside render ``vp`` at once and its linked views a bit later."""
        previous, self._source = self._source, vp
        try:
            yield
        finally:
            self._source = previous

    def _render_pending(self) -> None:
        pending, self._pending = self._pending, set()
        for vp in pending:
            vp.render()

    # -- session -> views -----------------------------------------------------------------
    def _on_cursor(self, lps) -> None:
        if lps is None:
            return
        for vp, view in self.slice_views():
            view.set_cursor(lps)
            view.set_slice_lps(lps)
            vp.sync_annotations()
        self._report_slice_file()
        self.render_all()

    def _on_window(self, wl) -> None:
        for _, view in self.slice_views():
            view.set_window(wl.center, wl.width)
        self.render_all()

    def _on_invert(self, inverted: bool) -> None:
        for _, view in self.slice_views():
            view.set_invert(inverted)
        self.render_all()

    def _on_measurements(self) -> None:
        for vp, _ in self.slice_views():
            vp.sync_annotations()
        self.render_all()

    # -- actions --------------------------------------------------------------------------
    def scroll(self, vp: Viewport, n: int, wrap: bool = False) -> None:
        """Move the cursor ``n`` slices along ``vp``'s normal (so linked views follow)."""
        view = vp.slice_view
        if view is None or self.session.volume is None:
            return
        before = view.slice_position_mm()
        view.scroll(n)
        after = view.slice_position_mm()
        if after == before and wrap:
            view.scroll(-view.slice_count())
            after = view.slice_position_mm()
        cursor = np.asarray(self.session.cursor, dtype=float)
        cursor = cursor + view.plane.normal * (after - float(np.dot(cursor, view.plane.normal)))
        with self.driving(vp):
            self.session.set_cursor(cursor)

    def scroll_active(self, n: int) -> None:
        self.scroll(self.active, n)

    def set_tool(self, key: str) -> None:
        self.tool = key
        for vp in self.viewports.values():
            if vp._draft is not None:
                vp._cancel_draft()

    def set_crosshair_visible(self, visible: bool) -> None:
        self.crosshair = bool(visible)
        for _, view in self.slice_views():
            view.show_crosshair(self.crosshair)
        self.render_all()

    def toggle_cine(self) -> None:
        if self._cine.isActive() or self.active.slice_view is None:
            self._cine.stop()
        else:
            self._cine.start()

    def reset(self) -> None:
        for _, view in self.slice_views():
            view.reset_camera()
        vp3d = self.viewports["3d"]
        if vp3d.view is not None:
            vp3d.view.reset_camera()
        self.session.reset_window()
        self.render_all(include_3d=True)

    def delete_measurement(self) -> None:
        """Delete the newest measurement on the active view's slice."""
        vp = self.active
        view = vp.slice_view
        orientation = measurement_orientation(view) if view is not None else None
        if orientation is None:
            return
        tol = view.axis.step_mm / 2.0
        here = self.session.measurements.for_slice(orientation, view.slice_position_mm(), tol)
        if here:
            self.session.measurements.remove(here[-1])

    def report_cursor(self, lps) -> None:
        """Status text for the point under the mouse: LPS mm, voxel, value (HU for CT)."""
        volume = self.session.volume
        if volume is None:
            return
        k, j, i = np.round(volume.geometry.lps_to_index(lps)).astype(int)
        value = self.session.value_at(lps)
        text = f"x {lps[0]:.1f}  y {lps[1]:.1f}  z {lps[2]:.1f} mm   voxel ({i}, {j}, {k})"
        if value is not None:
            unit = " HU" if volume.modality.upper() == "CT" else ""
            shown = value if isinstance(value, tuple) else f"{value:.4g}{unit}"
            text += f"   value {shown}"
        self.cursor_info.emit(text)

    def _report_slice_file(self) -> None:
        view = self.active.slice_view
        if view is None or self.volume is None or not self.volume.files:
            return
        if len(self.volume.files) == self.volume.geometry.shape[0] and \
                view.axis.array_axis == 0:
            k = min(max(view.slice_index(), 0), len(self.volume.files) - 1)
            self.slice_file_changed.emit(self.volume.files[k])

    # -- screenshots ----------------------------------------------------------------------
    def grab_rgb(self, whole_layout: bool) -> np.ndarray:
        """Pixels of the active view, or of the visible layout tiled as on screen."""
        shown = self.visible_viewports() if whole_layout else [self.active]
        tiles = [capture_rgb(vp.GetRenderWindow()) for vp in shown]
        if len(tiles) == 1:
            return tiles[0]
        columns = 2 if len(tiles) == 4 else len(tiles)
        rows = [tiles[r * columns:(r + 1) * columns] for r in range((len(tiles) + columns - 1)
                                                                     // columns)]
        h = min(t.shape[0] for t in tiles)
        w = min(t.shape[1] for t in tiles)
        return np.vstack([np.hstack([t[:h, :w] for t in row]) for row in rows])

    def screenshot(self, path: str, whole_layout: bool) -> None:
        rgb = np.ascontiguousarray(self.grab_rgb(whole_layout))
        h, w, _ = rgb.shape
        image = QImage(rgb.data, w, h, 3 * w, QImage.Format_RGB888)
        if not image.save(path, "PNG"):
            raise OSError(f"cannot write {path}")

    def shutdown(self) -> None:
        self._cine.stop()
        for vp in self.viewports.values():
            vp.finalize()

"""SegmentViews: what the segmentation editor draws in the view grid.

* one :class:`~viewer.render.labelmap_layer.LabelMapLayer` per slice view (fill and
  outline of every visible segment); edits show up by themselves: the layer asks its view
  for a render (``SliceView.request_render`` -> the viewport's coalesced repaint) only when
  the edited box meets the shown plane;
* the brush cursor (:class:`~viewer.render.brush_cursor.BrushCursor`): a circle of the
  brush radius in the active segment's colour under the mouse, in the hovered view only;
* the segments as surfaces in the 3D view (:class:`~viewer.render.segment_surfaces.
  SegmentSurfaces`), rebuilt on a worker thread (surface nets over the whole map is the
  slow part of an edit: about 1 s for a 300 x 512 x 512 chest), ``SURFACE_DELAY_MS`` after
  the last change and only while the 3D view is on screen.

Slice views are rebuilt when a volume loads; layers and cursors follow the view they were
made for and are remade when a viewport shows a new one.
"""

from __future__ import annotations

from PySide6.QtCore import QTimer

from viewer.qt.tools import BRUSH_TOOLS
from viewer.render.brush_cursor import BrushCursor
from viewer.render.labelmap_layer import LabelMapLayer

SURFACE_DELAY_MS = 600


class SegmentViews:
    def __init__(self, controller) -> None:
        self.controller = controller
        self.views = controller.views
        self.labelmap = None
        self.visible = True
        self.outline = True
        self.opacity = 1.0
        self.layers: dict[object, LabelMapLayer] = {}  # viewport -> layer
        self.cursors: dict[object, BrushCursor] = {}  # viewport -> cursor
        self.surfaces = None
        self._building = False
        self._surface_timer = QTimer(controller)
        self._surface_timer.setSingleShot(True)
        self._surface_timer.setInterval(SURFACE_DELAY_MS)
        self._surface_timer.timeout.connect(self.refresh_surfaces)

    # -- label layers ---------------------------------------------------------------------
    def set_labelmap(self, labelmap) -> None:
        self.labelmap = labelmap
        self._drop_layers()
        self._drop_surfaces()
        if labelmap is not None:
            self.sync_layers()

    def sync_layers(self) -> None:
        """A layer on every slice view that lacks one (after a volume loaded)."""
        if self.labelmap is None:
            return
        for vp in self.views.viewports.values():
            view = vp.slice_view
            layer = self.layers.get(vp)
            if view is None or (layer is not None and layer.view is view):
                continue
            if layer is not None:
                layer.close()
            layer = LabelMapLayer(view, outline=self.outline, opacity=self.opacity)
            layer.set_labelmap(self.labelmap)
            layer.set_visible(self.visible)
            self.layers[vp] = layer

    def _drop_layers(self) -> None:
        for layer in self.layers.values():
            layer.close()
        self.layers.clear()

    def set_visible(self, visible: bool) -> None:
        self.visible = bool(visible)
        for layer in self.layers.values():
            layer.set_visible(self.visible)
        if self.surfaces is not None:
            self.surfaces.set_visible(self.visible)
        self.views.render_all(include_3d=True)

    def set_outline(self, on: bool) -> None:
        self.outline = bool(on)
        for layer in self.layers.values():
            layer.set_outline(self.outline)

    def set_opacity(self, opacity: float) -> None:
        self.opacity = float(opacity)
        for layer in self.layers.values():
            layer.set_opacity(self.opacity)

    # -- brush cursor ---------------------------------------------------------------------
    def hover(self, vp, lps) -> None:
        """The mouse is over ``vp`` at ``lps`` (None: it left the view)."""
        show = lps is not None and self.views.tool in BRUSH_TOOLS and vp.slice_view is not None
        for other, cursor in list(self.cursors.items()):
            if other is not vp and cursor.visible and cursor.position is not None:
                cursor.set_position(None)
                other.update()
        if not show:
            cursor = self.cursors.get(vp)
            if cursor is not None and cursor.position is not None:
                cursor.set_position(None)
                vp.update()
            return
        cursor = self._cursor(vp)
        cursor.set_radius_mm(self.controller.radius_mm)
        cursor.set_color(self._colour())
        cursor.set_position(lps)
        vp.update()

    def _cursor(self, vp) -> BrushCursor:
        cursor = self.cursors.get(vp)
        if cursor is None or cursor.view is not vp.slice_view:
            if cursor is not None:
                cursor.close()
            cursor = BrushCursor(vp.slice_view, self.controller.radius_mm)
            self.cursors[vp] = cursor
        return cursor

    def _colour(self) -> tuple[int, int, int]:
        lm = self.labelmap
        segment = lm.segments.get(self.controller.active_label) if lm is not None else None
        return segment.color if segment is not None else (255, 255, 0)

    def brush_changed(self) -> None:
        for vp, cursor in self.cursors.items():
            if cursor.position is not None and cursor.view is vp.slice_view:
                cursor.set_radius_mm(self.controller.radius_mm)
                cursor.set_color(self._colour())
                vp.update()

    def tool_changed(self, key: str) -> None:
        if key not in BRUSH_TOOLS:
            for vp, cursor in self.cursors.items():
                if cursor.position is not None:
                    cursor.set_position(None)
                    vp.update()

    # -- 3D surfaces ----------------------------------------------------------------------
    def schedule_surfaces(self) -> None:
        self._surface_timer.start()

    def refresh_surfaces(self) -> None:
        """Rebuild the 3D surfaces on a worker thread if the voxels changed and the 3D view
        is on screen (else when it shows up: MainWindow.set_layout schedules this)."""
        vp = self.views.viewports["3d"]
        if self.labelmap is None or vp.view is None or not vp.isVisible():
            return
        if self.surfaces is None or self.surfaces.view is not vp.view:
            from viewer.render.segment_surfaces import SegmentSurfaces

            self._drop_surfaces()
            self.surfaces = SegmentSurfaces(vp.view)
            self.surfaces.set_visible(self.visible)
            self.surfaces.set_labelmap(self.labelmap, build=False)
        if not self.surfaces.dirty or self._building:
            return
        from viewer.render.segment_surfaces import label_surfaces

        surfaces = self.surfaces
        labels, geometry, version = surfaces.snapshot()
        self._building = True

        def done(result) -> None:
            self._building = False
            if surfaces is self.surfaces:
                surfaces.set_surfaces(result, version)
                if surfaces.dirty:  # edited while building
                    self.schedule_surfaces()

        def failed(message: str) -> None:
            self._building = False
            self.controller.message.emit(f"3D surfaces: {message}")

        self.controller.window.tasks.run(
            lambda _p, _c: label_surfaces(labels, geometry), on_finished=done, on_failed=failed
        )

    def _drop_surfaces(self) -> None:
        if self.surfaces is not None:
            self.surfaces.close()
            self.surfaces = None

    def shutdown(self) -> None:
        self._surface_timer.stop()
        self._drop_layers()
        for cursor in self.cursors.values():
            cursor.close()
        self.cursors.clear()
        self._drop_surfaces()

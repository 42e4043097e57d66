"""SegmentController: the segmentation editor's logic in the viewer (3D Slicer's "Logic").

It owns what the panel, the menus and the mouse act on, and runs no widget itself:

* the session's label map (``session.labelmap``, made on the open volume's grid on the first
  edit) with its :class:`~viewer.core.history.UndoStack` (a brush stroke, a fill, a model
  run, an import are each ONE undo step);
* the active segment and the tool settings: brush radius in mm, 2D disc or 3D sphere, the
  HU range of the threshold brush and of the flood fill;
* the label layers drawn over every slice view, the brush cursor, the 3D surfaces;
* segmentation models run in the AI process through the AI controller's client (one AI
  process for the whole viewer), on a worker thread: the GUI never waits;
* quantification (``viewer.core.quantify``) recomputed on a worker after each change,
  throttled; import (DICOM SEG, NIfTI and other label volumes) and export (DICOM SEG,
  NIfTI, PNG overlay, quantification CSV/JSON).

Logic and dialogs are split: ``export_seg(path)``, ``export_nifti(path)``,
``export_png(path)``, ``export_quantification(path)`` and ``import_file(path)`` run
without a widget (the tests and the menu call the same functions) and raise ValueError /
OSError with a one-line message; the ``choose_*`` methods ask for a path with a file
dialog and report errors as a non-modal message (MainWindow.show_error).

Model results are merged into the open label map, never replace it (rule
:data:`MERGE_RULE`): running ``ct-infection`` after ``ct-lungs`` keeps both lungs and adds
ground-glass and consolidation on top of them. The run and the merge live in
:mod:`viewer.qt.segment_models`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer, Signal

from viewer.core.history import UndoStack
from viewer.core.labelmap import LabelMap
from viewer.qt.autosave import Autosave
from viewer.qt.segment_io import SegmentIO
from viewer.qt.segment_models import (  # noqa: F401  (re-exported: callers import them here)
    LUNG_CODES,
    MERGE_RULE,
    SegmentModels,
    is_lung,
    merged_labels,
)
from viewer.qt.segment_views import SegmentViews
from viewer.qt.tools import BRUSH_STEP

if TYPE_CHECKING:
    from viewer.core.editing import Brush

MIN_RADIUS_MM, MAX_RADIUS_MM = 0.5, 100.0
QUANTIFY_DELAY_MS = 250


class SegmentController(QObject):
    """See the module docstring. ``window``: the MainWindow (session, views, tasks, ai)."""

    labelmap_replaced = Signal(object)  # LabelMap | None
    segments_changed = Signal()
    active_changed = Signal(int)  # label, 0 = none
    tool_changed = Signal(str)
    brush_changed = Signal()  # radius, sphere or HU range
    history_changed = Signal()
    quantification_changed = Signal(object)  # Quantification | None
    masks_visibility_changed = Signal(bool)
    models_changed = Signal(list)  # ModelSpecs of segmentation models
    busy_changed = Signal(bool, str)  # a model runs, status text
    progress = Signal(int, int)
    message = Signal(str)  # status-bar text

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.session = window.session
        self.views = window.views
        self.stack: UndoStack | None = None
        self.active_label = 0
        self.radius_mm = 5.0
        self.sphere = False
        self.hu_range: tuple[float, float] = (-1000.0, -300.0)
        self.masks_visible = True
        self.quantification = None
        self._brush: Brush | None = None
        self._connected: LabelMap | None = None  # the map whose signals we listen to
        self._stroke_vp = None
        self._quant_generation = 0
        self._quant_task = None
        self._quant_pending = False
        self.display = SegmentViews(self)
        self.io = SegmentIO(self)
        self.models = SegmentModels(self)
        self._quant_timer = QTimer(self)
        self._quant_timer.setSingleShot(True)
        self._quant_timer.setInterval(QUANTIFY_DELAY_MS)
        self._quant_timer.timeout.connect(self._quantify)
        self.session.labelmap_changed.connect(self._on_labelmap)
        self.autosave = Autosave(self)  # after _on_labelmap: it journals with our undo stack
        for vp in self.views.viewports.values():
            vp.paint_pressed.connect(self._pressed)
            vp.paint_moved.connect(self._moved)
            vp.paint_released.connect(self._released)
            vp.hovered.connect(self.display.hover)
            vp.brush_size_step.connect(self.step_brush)
        QTimer.singleShot(0, self.refresh_models)

    # -- label map ------------------------------------------------------------------------
    @property
    def labelmap(self) -> LabelMap | None:
        return self.session.labelmap

    def ensure_labelmap(self) -> LabelMap:
        """The session's label map; an empty one on the volume's grid when there is none."""
        if self.session.labelmap is None:
            volume = self.session.volume
            if volume is None:
                raise ValueError("open an image first")
            self.session.set_labelmap(LabelMap(volume.geometry))
        return self.session.labelmap

    def _on_labelmap(self, labelmap: LabelMap | None) -> None:
        self._brush = None  # a stroke on the old map ends with it
        old, self._connected = self._connected, labelmap
        if old is not None:
            old.segments_changed.disconnect(self._segments)
            old.changed.disconnect(self._labels_changed)
        if self.stack is not None:
            self.stack.changed.disconnect(self._history)
        self.stack = None
        if labelmap is not None:
            self.stack = UndoStack(labelmap)
            self.stack.changed.connect(self._history)
            labelmap.segments_changed.connect(self._segments)
        self.display.set_labelmap(labelmap)
        if labelmap is not None:  # after the layers: they update before we render
            labelmap.changed.connect(self._labels_changed)
        labels = sorted(labelmap.segments) if labelmap is not None else []
        self.active_label = labels[0] if labels else 0
        self.labelmap_replaced.emit(labelmap)
        self.segments_changed.emit()
        self.active_changed.emit(self.active_label)
        self.history_changed.emit()
        self.schedule_refresh()

    def _labels_changed(self, _bbox) -> None:
        # the layers ask their views for a repaint; numbers and surfaces follow after a stroke
        if self._brush is None:
            self.schedule_refresh()

    def _segments(self) -> None:
        lm = self.labelmap
        if lm is not None and self.active_label not in lm.segments:
            self.active_label = min(lm.segments) if lm.segments else 0
            self.active_changed.emit(self.active_label)
        self.segments_changed.emit()
        self.schedule_refresh()

    def _history(self) -> None:
        self.history_changed.emit()

    # -- segments -------------------------------------------------------------------------
    def add_segment(self, name: str = "") -> int:
        """Add a segment (default name "Segment n") and make it the active one."""
        lm = self.ensure_labelmap()
        name = name.strip() or f"Segment {len(lm.segments) + 1}"
        label = lm.add_segment(name)
        self.set_active(label)
        return label

    def remove_segment(self, label: int) -> None:
        """Remove a segment and its voxels (clears the undo history: the panel asks first)."""
        if self.labelmap is not None and label in self.labelmap.segments:
            self.labelmap.remove_segment(label)

    def update_segment(self, label: int, **changes) -> None:
        """name, color (r, g, b 0..255), visible, opacity (0..1), locked."""
        if self.labelmap is not None and label in self.labelmap.segments:
            self.labelmap.update_segment(label, **changes)

    def set_active(self, label: int) -> None:
        if self.labelmap is not None and label in self.labelmap.segments:
            if label != self.active_label:
                self.active_label = label
                self.display.brush_changed()  # the cursor takes the segment's colour
                self.active_changed.emit(label)

    def next_segment(self, step: int = 1) -> None:
        """Make the next (step 1) or previous (-1) segment active, wrapping around."""
        lm = self.labelmap
        if lm is None or not lm.segments:
            return
        labels = sorted(lm.segments)
        pos = labels.index(self.active_label) if self.active_label in labels else -1
        self.set_active(labels[(pos + step) % len(labels)])

    def set_masks_visible(self, visible: bool) -> None:
        self.masks_visible = bool(visible)
        self.display.set_visible(self.masks_visible)
        self.masks_visibility_changed.emit(self.masks_visible)

    def toggle_masks(self) -> None:
        self.set_masks_visible(not self.masks_visible)

    def _active_for_edit(self) -> int:
        """The active segment, made (and shown) when needed; ValueError when locked."""
        lm = self.ensure_labelmap()
        if self.active_label not in lm.segments:
            self.add_segment()
        segment = lm.segments[self.active_label]
        if segment.locked:
            raise ValueError(f"{segment.name} is locked: unlock it to edit it")
        if not segment.visible:
            lm.update_segment(self.active_label, visible=True)
        return self.active_label

    # -- tools ----------------------------------------------------------------------------
    def set_tool(self, key: str) -> None:
        self.views.set_tool(key)
        self.display.tool_changed(key)
        self.tool_changed.emit(key)

    def set_radius(self, radius_mm: float) -> None:
        r = float(min(max(float(radius_mm), MIN_RADIUS_MM), MAX_RADIUS_MM))
        if r != self.radius_mm:
            self.radius_mm = r
            self.display.brush_changed()
            self.brush_changed.emit()

    def step_brush(self, step: int) -> None:
        """Bigger (step > 0) or smaller brush, by :data:`BRUSH_STEP` per step."""
        self.set_radius(self.radius_mm * BRUSH_STEP**step)

    def set_sphere(self, sphere: bool) -> None:
        if bool(sphere) != self.sphere:
            self.sphere = bool(sphere)
            self.brush_changed.emit()

    def set_hu_range(self, low: float, high: float) -> None:
        low, high = float(low), float(high)
        if low > high:
            low, high = high, low
        if (low, high) != self.hu_range:
            self.hu_range = (low, high)
            self.brush_changed.emit()

    def index_of(self, lps) -> np.ndarray:
        """Continuous voxel index (k, j, i) of an LPS point (mm)."""
        return self.session.volume.geometry.lps_to_index(np.asarray(lps, dtype=float))

    def _pressed(self, vp, lps, modifiers) -> None:
        from viewer.core import editing  # SimpleITK: loaded on the first edit, not at start-up

        view, volume = vp.slice_view, self.session.volume
        if view is None or volume is None or self._brush is not None:
            return
        tool = self.views.tool
        try:
            label = self._active_for_edit()
            if tool == "fill":
                self.fill_at(lps, view.axis.array_axis)
                return
            if tool == "threshold" and volume.is_color:
                raise ValueError("the threshold brush needs a grey-scale image")
            erase = (tool == "eraser") != bool(modifiers & Qt.ControlModifier)
            brush = editing.Brush(
                self.labelmap, self.stack, label=label, radius_mm=self.radius_mm,
                axis=view.axis.array_axis, sphere=self.sphere, erase=erase,
                hu_range=self.hu_range if tool == "threshold" else None,
                image=volume.array if tool == "threshold" else None,
            )  # fmt: skip
            self._brush, self._stroke_vp = brush, vp
            brush.press(self.index_of(lps))
        except ValueError as exc:
            self._end_stroke()
            self.message.emit(str(exc))

    def _moved(self, vp, lps) -> None:
        if self._brush is not None and vp is self._stroke_vp:
            try:
                self._brush.move(self.index_of(lps))
            except ValueError as exc:
                self.message.emit(str(exc))

    def _released(self, vp) -> None:
        if vp is self._stroke_vp:
            self._end_stroke()

    def _end_stroke(self) -> None:
        brush, self._brush, self._stroke_vp = self._brush, None, None
        if brush is not None:
            brush.release()
            self.views.render_all()
            self.schedule_refresh()

    # -- one-shot operations (each one undo step) -----------------------------------------
    def fill_at(self, lps, axis: int | None) -> None:
        """Flood fill from an LPS point: voxels connected to it whose value lies in the HU
        range, in the slice normal to ``axis`` (a disc brush) or in 3D (sphere brush)."""
        from viewer.core import editing

        volume = self.session.volume
        if volume.is_color:
            raise ValueError("flood fill needs a grey-scale image")
        label = self._active_for_edit()
        seed = np.rint(self.index_of(lps)).astype(int)
        if ((seed < 0) | (seed >= np.asarray(volume.geometry.shape))).any():
            return
        edit = editing.flood_fill(
            self.labelmap,
            self.stack,
            seed,
            label,
            volume.array,
            hu_range=self.hu_range,
            axis=None if self.sphere else axis,
        )
        if edit is None:
            lo, hi = self.hu_range
            self.message.emit(f"Nothing filled: the value there is outside {lo:g}..{hi:g} HU")

    def operate(self, operation: str, **options) -> bool:
        """Run a region operation on the active segment as one undo step: ``islands``
        (min_size_mm3), ``largest``, ``holes``, ``interpolate`` (along the active view's
        slice axis), ``margin`` (margin_mm, > 0 grows, < 0 shrinks), ``clear``. Returns
        whether voxels changed; a locked or missing segment gives a status message."""
        from viewer.core import editing

        try:
            label = self._active_for_edit()
            lm, stack = self.labelmap, self.stack
            if operation == "islands":
                edit = editing.remove_small_islands(lm, stack, label, options["min_size_mm3"])
            elif operation == "largest":
                edit = editing.keep_largest_island(lm, stack, label)
            elif operation == "holes":
                edit = editing.fill_holes(lm, stack, label, axis=self._view_axis())
            elif operation == "interpolate":
                edit = editing.interpolate_slices(lm, stack, label, axis=self._view_axis() or 0)
            elif operation == "margin":
                edit = editing.grow_shrink(lm, stack, label, options["margin_mm"])
            elif operation == "clear":
                edit = editing.clear_segment(lm, stack, label)
            else:
                raise ValueError(f"unknown operation {operation!r}")
        except ValueError as exc:
            self.message.emit(str(exc))
            return False
        if edit is None:
            self.message.emit("Nothing changed")
        return edit is not None

    def _view_axis(self) -> int | None:
        """Array axis normal to the active slice view (None: the 3D view)."""
        view = self.views.active.slice_view
        return view.axis.array_axis if view is not None else 0

    # -- undo -----------------------------------------------------------------------------
    def undo(self) -> None:
        if self._brush is not None:  # not in the middle of a stroke
            return
        if self.stack is not None and self.stack.can_undo:
            name = self.stack.undo_name
            self.stack.undo()
            self.message.emit(f"Undone: {name}")

    def redo(self) -> None:
        if self._brush is not None:
            return
        if self.stack is not None and self.stack.can_redo:
            name = self.stack.redo_name
            self.stack.redo()
            self.message.emit(f"Redone: {name}")

    def show_history(self, undo, redo, undo_text: str = "Undo", redo_text: str = "Redo") -> None:
        """Enable and name an undo and a redo control (QAction or button: the menu's and the
        panel's) after the undo history: "Undo Brush" names the step it undoes."""
        stack = self.stack
        can_undo = stack is not None and stack.can_undo
        can_redo = stack is not None and stack.can_redo
        undo.setEnabled(can_undo)
        redo.setEnabled(can_redo)
        undo.setText(f"{undo_text} {stack.undo_name}" if can_undo else undo_text)
        redo.setText(f"{redo_text} {stack.redo_name}" if can_redo else redo_text)

    # -- models (run + merge: see viewer.qt.segment_models) ------------------------------
    @property
    def model_specs(self) -> list:
        """ModelSpecs of the segmentation models (after :meth:`refresh_models`)."""
        return self.models.specs

    def refresh_models(self) -> None:
        self.models.refresh()

    def run_model(self, name: str) -> None:
        self.models.run(name)

    def cancel_model(self) -> None:
        self.models.cancel()

    @property
    def model_running(self) -> bool:
        return self.models.running

    def apply_model_result(self, model: str, version: str, labels, names: dict[int, str]) -> int:
        return self.models.apply(model, version, labels, names)

    # -- import / export (logic: no dialog; see viewer.qt.segment_io) ---------------------
    def export_seg(self, path) -> Path:
        return self.io.export_seg(path)

    def export_nifti(self, path) -> Path:
        return self.io.export_nifti(path)

    def export_png(self, path, k: int | None = None) -> Path:
        return self.io.export_png(path, k=k)

    def export_quantification(self, path) -> Path:
        return self.io.export_quantification(path)

    def import_file(self, path) -> str:
        return self.io.import_file(path)

    # -- quantification -------------------------------------------------------------------
    def schedule_refresh(self) -> None:
        """Quantification and 3D surfaces follow the labels, at most every few hundred ms."""
        self._quant_timer.start()
        self.display.schedule_surfaces()

    def _quantify(self) -> None:
        """Quantify a snapshot of the labels on a worker; one run at a time (a change during
        a run starts one more when it ends), results of outdated runs are dropped."""
        from viewer.core.quantify import quantify

        if self._quant_task is not None:
            self._quant_pending = True
            return
        self._quant_generation += 1
        generation = self._quant_generation
        lm = self.labelmap
        if lm is None or not lm.segments:
            self.quantification = None
            self.quantification_changed.emit(None)
            return
        snapshot = self.io.snapshot(lm)  # the worker never reads labels being painted

        def done(q) -> None:
            if generation == self._quant_generation and lm is self.labelmap:
                self.quantification = q
                self.quantification_changed.emit(q)

        def ended() -> None:
            self._quant_task = None
            if self._quant_pending:
                self._quant_pending = False
                self._quant_timer.start()

        self._quant_pending = False
        self._quant_task = self.window.tasks.run(
            lambda _p, _c: quantify(snapshot),
            on_finished=done,
            on_failed=lambda msg: self.message.emit(f"Quantification: {msg}"),
        )
        self._quant_task.done.connect(ended)

    def shutdown(self) -> None:
        self.cancel_model()
        self._quant_timer.stop()
        self.display.shutdown()
        self.autosave.shutdown()

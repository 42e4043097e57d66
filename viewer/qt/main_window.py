"""The main window: menus, docks (series, tags, histogram, AI, segmentation), the view grid,
status bar.

Thin: scanning and loading run in workers (viewer.qt.workers) calling viewer.core; the
views (viewer.qt.viewport) listen to the Session model.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QToolButton,
)

from viewer.core.session import Session
from viewer.core.study_index import SeriesEntry, StudyIndex, build_index, load_series
from viewer.core.windowing import PRESETS, WindowLevel, parse_window
from viewer.qt.ai_controller import AIController
from viewer.qt.anonymize_export import AnonymizeExport
from viewer.qt.panels import SeriesBrowser, TagBrowser, WindowHistogram
from viewer.qt.panels.ai_panel import AIPanel
from viewer.qt.panels.segment_panel import SegmentPanel
from viewer.qt.segment_controller import SegmentController
from viewer.qt.shortcuts import SHORTCUTS, ShortcutsDialog
from viewer.qt.tools import PAINT_TOOLS
from viewer.qt.view_grid import ViewGrid
from viewer.qt.workers import TaskRunner

MAX_RECENT = 10
LAYOUTS = (("1x1", "Layout 1\u00d71"), ("1x3", "Layout 1\u00d73"), ("2x2", "Layout 2\u00d72"))


class MainWindow(QMainWindow):
    def __init__(self, settings: QSettings | None = None) -> None:
        super().__init__()
        self.settings = settings or QSettings()
        self.session = Session()
        self.tasks = TaskRunner(self)
        self.index: StudyIndex | None = None
        self._scan_task = None
        self._load_task = None
        self.last_error = ""
        self.setWindowTitle("radview \u2014 research use only")
        self.setAcceptDrops(True)
        self.resize(1400, 900)

        self.views = ViewGrid(self.session, self)
        self.setCentralWidget(self.views)
        self.browser = SeriesBrowser()
        self.tags = TagBrowser()
        self.histogram = WindowHistogram()
        self.ai_panel = AIPanel()
        self._dock("Series", self.browser, Qt.LeftDockWidgetArea)
        ai_dock = self._dock("AI assistant", self.ai_panel, Qt.RightDockWidgetArea)
        tags_dock = self._dock("DICOM tags", self.tags, Qt.RightDockWidgetArea)
        self.tabifyDockWidget(ai_dock, tags_dock)
        ai_dock.raise_()
        self._dock("Window", self.histogram, Qt.RightDockWidgetArea)
        self.ai = AIController(self)
        self.segments = SegmentController(self)
        self.segment_panel = SegmentPanel(self.segments)
        self.segment_dock = self._dock("Segmentation", self.segment_panel,
                                       Qt.RightDockWidgetArea)
        self.tabifyDockWidget(ai_dock, self.segment_dock)
        ai_dock.raise_()
        self.segments.message.connect(lambda text: self.statusBar().showMessage(text, 6000))
        self._build_status_bar()
        self._build_menus()

        self.browser.series_activated.connect(self.load_entry)
        self.histogram.window_changed.connect(
            lambda c, w: self.session.set_window(WindowLevel(c, w))
        )
        # the histogram follows the window at most every 33 ms (it repaints a whole plot)
        self._histogram_timer = QTimer(self)
        self._histogram_timer.setSingleShot(True)
        self._histogram_timer.setInterval(33)
        self._histogram_timer.timeout.connect(self._sync_histogram)
        self.session.window_changed.connect(lambda _wl: self._histogram_timer.start()
                                            if not self._histogram_timer.isActive() else None)
        self.views.cursor_info.connect(self.cursor_label.setText)
        self.views.slice_file_changed.connect(self.tags.show_file)
        self._restore_settings()

    # -- construction ---------------------------------------------------------------------
    def _dock(self, title, widget, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock-{title}")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.cursor_label = QLabel("")
        self.notice = QLabel("Research use only \u2014 not for diagnostic use")
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.setVisible(False)
        self.cancel_button = QToolButton()
        self.cancel_button.setText("Cancel")
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(self.cancel_work)
        bar.addWidget(self.cursor_label, 1)
        bar.addPermanentWidget(self.progress)
        bar.addPermanentWidget(self.cancel_button)
        bar.addPermanentWidget(self.notice)

    def _action(self, menu, text, slot, shortcut=None, checkable=False) -> QAction:
        act = QAction(text, self)
        if shortcut:
            act.setShortcut(QKeySequence(shortcut))
        act.setCheckable(checkable)
        act.triggered.connect(slot)
        menu.addAction(act)
        return act

    def _build_menus(self) -> None:
        m = self.menuBar().addMenu("&File")
        self._action(m, "Open &folder\u2026", self.choose_folder, "Ctrl+O")
        self._action(m, "Open &file\u2026", self.choose_file, "Ctrl+Shift+O")
        self.recent_menu = m.addMenu("&Recent folders")
        m.addSeparator()
        self._action(m, "Save screenshot of the &view\u2026", lambda: self.save_screenshot(False),
                     "Ctrl+S")
        self._action(m, "Save screenshot of the &layout\u2026",
                     lambda: self.save_screenshot(True), "Ctrl+Shift+S")
        self.anonymize_export = AnonymizeExport(self, m)
        m.addSeparator()
        self._action(m, "&Quit", self.close, "Ctrl+Q")

        v = self.menuBar().addMenu("&View")
        group = QActionGroup(self)
        self.layout_actions = {}
        for name, text in LAYOUTS:
            act = self._action(v, text, lambda _=False, n=name: self.set_layout(n), checkable=True)
            group.addAction(act)
            self.layout_actions[name] = act
        v.addSeparator()
        presets = v.addMenu("Window &presets")
        self.preset_actions = {}
        for n, name in enumerate(PRESETS, 1):
            self.preset_actions[name] = self._action(
                presets, name, lambda _=False, p=name: self.apply_preset(p), str(n))
        presets.addSeparator()
        store = presets.addMenu("Save current window as")
        for n, name in enumerate(PRESETS, 1):
            self._action(store, name.title(), lambda _=False, p=name: self.store_preset(p),
                         f"Ctrl+Shift+{n}")
        self._action(presets, "Restore default presets", self.restore_presets)
        self._refresh_presets()
        self._action(v, "&Invert", self.session.toggle_invert, "I")
        self._action(v, "&Reset view", self.views.reset, "R")
        self.crosshair_action = self._action(v, "&Crosshair", self.views.set_crosshair_visible,
                                             "C", checkable=True)
        self.crosshair_action.setChecked(True)
        self._action(v, "Cine &play / stop", self.views.toggle_cine, "Space")
        self._action(v, "Next slice", lambda: self.views.scroll_active(1), "PgDown")
        self._action(v, "Previous slice", lambda: self.views.scroll_active(-1), "PgUp")

        t = self.menuBar().addMenu("&Tools")
        tools = QActionGroup(self)
        self.tool_actions = {}
        for key, (text, shortcut) in self.views.TOOLS.items():
            if key == "brush":
                t.addSeparator()
            act = self._action(t, text, lambda _=False, k=key: self.set_tool(k), shortcut,
                               checkable=True)
            tools.addAction(act)
            self.tool_actions[key] = act
        self.tool_actions["window"].setChecked(True)
        self.segments.tool_changed.connect(lambda k: self.tool_actions[k].setChecked(True))
        t.addSeparator()
        self._action(t, "Delete last measurement", self.views.delete_measurement, "Delete")
        self._build_segmentation_menu()

        h = self.menuBar().addMenu("&Help")
        self._action(h, "&Keyboard shortcuts", self.show_shortcuts, "F1")
        self._action(h, "&About radview", self.show_about)

    def _build_segmentation_menu(self) -> None:
        seg = self.segments
        m = self.menuBar().addMenu("&Segmentation")
        self.model_menu = m.addMenu("Run &model")
        seg.models_changed.connect(self._refresh_model_menu)
        m.addSeparator()
        self._action(m, "&Import DICOM SEG/NIfTI…", seg.io.choose_import)
        self._action(m, "Recover autosaved edits\u2026", seg.autosave.choose_recover)
        self._action(m, "Export DICOM &SEG…", lambda: seg.io.choose_export("seg"))
        self._action(m, "Export &NIfTI…", lambda: seg.io.choose_export("nifti"))
        self._action(m, "Export &PNG overlay…", lambda: seg.io.choose_export("png"))
        self._action(m, "Export &quantification…", lambda: seg.io.choose_export("quant"))
        m.addSeparator()
        self.undo_action = self._action(m, "&Undo", seg.undo, "Ctrl+Z")
        self.redo_action = self._action(m, "&Redo", seg.redo, "Ctrl+Y")
        self.redo_action.setShortcuts([QKeySequence("Ctrl+Y"), QKeySequence("Ctrl+Shift+Z")])
        seg.history_changed.connect(self._refresh_undo)
        m.addSeparator()
        self._action(m, "&Add segment", lambda: seg.add_segment(), "Ctrl+Shift+N")
        self._action(m, "Next segment", lambda: seg.next_segment(1), "Tab")
        self._action(m, "Previous segment", lambda: seg.next_segment(-1), "Shift+Tab")
        self.masks_action = self._action(m, "Show &masks", seg.set_masks_visible, "H",
                                         checkable=True)
        self.masks_action.setChecked(True)
        seg.masks_visibility_changed.connect(self.masks_action.setChecked)
        self._action(m, "Bigger brush", lambda: seg.step_brush(1), "]")
        self._action(m, "Smaller brush", lambda: seg.step_brush(-1), "[")
        self._refresh_undo()

    def _refresh_model_menu(self, specs) -> None:
        self.model_menu.clear()
        for spec in specs:
            act = self.model_menu.addAction(self.ai.trust.label(spec))
            act.triggered.connect(lambda _=False, n=spec.name: self._run_segmentation(n))
        self.model_menu.setEnabled(bool(specs))

    def _run_segmentation(self, name: str) -> None:
        self.segment_dock.raise_()
        self.segments.run_model(name)

    def _refresh_undo(self) -> None:
        self.segments.show_history(self.undo_action, self.redo_action, "&Undo", "&Redo")

    def set_tool(self, key: str) -> None:
        """Select a mouse tool (menus, keys, the segment panel); paint tools show the panel."""
        self.segments.set_tool(key)
        if key in PAINT_TOOLS:
            self.segment_dock.raise_()

    # -- settings -------------------------------------------------------------------------
    def _restore_settings(self) -> None:
        geometry = self.settings.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        state = self.settings.value("window/state")
        if state is not None:
            self.restoreState(state)
        self.set_layout(str(self.settings.value("view/layout", "1x3")))
        self._refresh_recent()

    def recent_folders(self) -> list[str]:
        value = self.settings.value("recent/folders", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or [])]

    def _remember(self, path: str) -> None:
        recent = [p for p in self.recent_folders() if p != path]
        self.settings.setValue("recent/folders", [path, *recent][:MAX_RECENT])
        self._refresh_recent()

    def _refresh_recent(self) -> None:
        self.recent_menu.clear()
        for path in self.recent_folders():
            act = self.recent_menu.addAction(path)
            act.triggered.connect(lambda _=False, p=path: self.open_path(p))
        self.recent_menu.setEnabled(bool(self.recent_folders()))

    # -- window presets (user values persist in the settings) -----------------------------
    def presets(self) -> dict[str, WindowLevel]:
        out = dict(PRESETS)
        for name in PRESETS:
            text = self.settings.value(f"presets/{name}")
            if text:
                try:
                    out[name] = parse_window(str(text))
                except ValueError:
                    pass  # a hand-edited bad value: keep the default
        return out

    def apply_preset(self, name: str) -> None:
        self.session.set_window(self.presets()[name])

    def store_preset(self, name: str) -> None:
        wl = self.session.window
        self.settings.setValue(f"presets/{name}", f"{wl.center:g},{wl.width:g}")
        self._refresh_presets()
        self.statusBar().showMessage(f"Preset {name} is now C {wl.center:g}, W {wl.width:g}", 5000)

    def restore_presets(self) -> None:
        self.settings.remove("presets")
        self._refresh_presets()

    def _refresh_presets(self) -> None:
        for name, wl in self.presets().items():
            self.preset_actions[name].setText(f"{name.title()} (C {wl.center:g}, W {wl.width:g})")

    def set_layout(self, name: str) -> None:
        if name not in self.layout_actions:
            name = "1x3"
        self.views.set_layout(name)
        self.segments.display.schedule_surfaces()  # the 3D view may have appeared
        self.layout_actions[name].setChecked(True)
        self.settings.setValue("view/layout", name)

    # -- opening --------------------------------------------------------------------------
    def choose_folder(self) -> None:
        start = (self.recent_folders() or [str(Path.home())])[0]
        path = QFileDialog.getExistingDirectory(self, "Open DICOM folder", start)
        if path:
            self.open_path(path)

    def choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open image", "",
            "Images (*.dcm *.DCM *.png *.jpg *.jpeg *.nii *.nii.gz *.nrrd *.mha *.mhd);;"
            "All files (*)",
        )
        if path:
            self.open_path(path)

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt API
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt API
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            self.open_path(paths[0] if len(paths) == 1 else paths)

    def open_path(self, path) -> None:
        """Scan a folder, a file, or a list of files in the background; then show the first."""
        self.cancel_work()
        shown = path if isinstance(path, str) else f"{len(path)} files"
        self._busy(f"Scanning {shown}\u2026")
        self._scan_task = self.tasks.run(
            lambda progress, cancelled: build_index(path, progress, cancelled),
            on_finished=lambda index: self._scanned(path, index),
            on_failed=self._failed,
            on_progress=self._progress,
            on_cancelled=lambda: self._idle("Scan cancelled"),
        )

    def _scanned(self, path, index: StudyIndex) -> None:
        self._scan_task = None
        self.index = index
        self.ai.results.clear()  # results are kept per image while one study is open
        self.browser.set_index(index)
        if isinstance(path, str):
            self._remember(os.path.abspath(path))
        usable = [s for s in index.series if not s.status.startswith("error")]
        msg = f"{len(index.series)} series, {len(index.skipped)} file(s) skipped"
        if index.cancelled:
            msg += " (scan cancelled)"
        self._idle(msg)
        if not usable:
            self._failed(f"No loadable images in {path}" if isinstance(path, str)
                         else "No loadable images")
            return
        self.load_entry(_best_series(usable))

    def load_entry(self, entry: SeriesEntry) -> None:
        if self._load_task is not None:
            self._load_task.cancel()
        self._busy(f"Loading {entry.description or entry.modality or entry.uid}\u2026")
        self._load_task = self.tasks.run(
            lambda progress, cancelled: load_series(entry, progress, cancelled),
            on_finished=self._loaded,
            on_failed=self._failed,
            on_progress=self._progress,
            on_cancelled=lambda: self._idle("Loading cancelled"),
        )

    def _loaded(self, volume) -> None:
        self._load_task = None
        self.session.set_volume(volume)
        self.views.set_volume(volume)
        self.histogram.set_volume(volume)
        wl = self.session.window
        self.histogram.set_window(wl.center, wl.width)
        if volume.files:
            self.tags.show_file(volume.files[len(volume.files) // 2])
        name = volume.header.get("patient_name") or ""
        self.setWindowTitle(f"radview \u2014 {name} {volume.description} \u2014 research use only")
        for w in volume.warnings:
            self.statusBar().showMessage(f"Warning: {w}", 8000)
        dims = "\u00d7".join(str(n) for n in volume.array.shape[:3][::-1])
        self._idle(f"{volume.modality} {dims}")

    def _sync_histogram(self) -> None:
        wl = self.session.window
        self.histogram.set_window(wl.center, wl.width)

    # -- status ---------------------------------------------------------------------------
    def _busy(self, text: str) -> None:
        self.statusBar().showMessage(text)
        self.progress.setRange(0, 0)
        self.progress.setVisible(True)
        self.cancel_button.setVisible(True)

    def _idle(self, text: str = "") -> None:
        self.progress.setVisible(False)
        self.cancel_button.setVisible(False)
        self.statusBar().showMessage(text, 10000)

    def _progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)

    def _failed(self, message: str) -> None:
        self._scan_task = self._load_task = None
        self._idle(message)
        self.show_error(message)

    def show_error(self, message: str) -> None:
        """A one-line error in a non-modal message box (the window stays usable)."""
        self.last_error = message
        box = QMessageBox(QMessageBox.Warning, "radview", message, QMessageBox.Ok, self)
        box.setAttribute(Qt.WA_DeleteOnClose)
        box.open()  # non-modal: the window stays usable
        self._message_box = box

    def cancel_work(self) -> None:
        for task in (self._scan_task, self._load_task):
            if task is not None:
                task.cancel()
        self._scan_task = self._load_task = None

    # -- other actions --------------------------------------------------------------------
    def save_screenshot(self, whole_layout: bool) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save screenshot", "radview.png",
                                              "PNG image (*.png)")
        if path:
            try:
                self.views.screenshot(path, whole_layout)
            except Exception as exc:  # noqa: BLE001 - reported, never fatal
                self._failed(f"Could not save the screenshot: {exc}")
            else:
                self.statusBar().showMessage(f"Saved {path}", 5000)

    def show_shortcuts(self) -> None:
        dialog = ShortcutsDialog(SHORTCUTS, self)
        dialog.setAttribute(Qt.WA_DeleteOnClose)
        dialog.open()

    def show_about(self) -> None:
        from viewer import __version__

        QMessageBox.about(
            self, "About radview",
            f"radview {__version__}\n\nOffline radiology viewer with an AI assistant.\n"
            "Research use only \u2014 not a medical device, not for diagnostic use.",
        )

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop background work and release the views (idempotent)."""
        self.cancel_work()
        self.ai.cancel()
        self.segments.shutdown()
        self.tasks.cancel_all()
        self.tasks.wait_all(3000)
        self.ai.shutdown()
        self.views.shutdown()
        QTimer.singleShot(0, lambda: None)


def _best_series(entries: list[SeriesEntry]) -> SeriesEntry:
    """The series to show first: the largest CT/MR volume, else the largest image."""

    def size(e: SeriesEntry) -> int:
        n = 1
        for v in e.shape[:3]:
            n *= v
        return n

    volumes = [e for e in entries if e.shape and e.shape[0] > 1]
    return max(volumes or entries, key=size)

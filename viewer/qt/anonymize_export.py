"""File menu: "Export anonymised copy…", "Save anonymised screenshot…" and "Anonymise mask
exports" (DICOM PS3.15 Annex E basic profile, see :mod:`viewer.core.anonymize`).

:class:`AnonymizeExport` holds this session's pseudonymisation key: the anonymised copy of
the current series or study and the mask exports made while "Anonymise mask exports" is on
use the same key, so an exported SEG references the anonymised copy's instances and carries
its pseudonym. The copy runs on a worker thread (:class:`viewer.qt.workers.TaskRunner`)
with a progress dialog that can cancel it; the summary and the burned-in-text warnings are
shown at the end. The output folder chooser never starts in a source folder, and a folder
inside the source or not empty is refused before anything is written.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QMessageBox,
    QProgressDialog,
    QPushButton,
    QWidget,
)

from viewer.core.anonymize import AnonymizeOptions, Anonymizer, AnonymizeReport, anonymize_tree
from viewer.core.anonymize.tree import check_destination_folder

OUT_DIR_KEY = "anonymize/out_dir"
SCOPES = ("series", "study")


def _source_root(files: list[str]) -> str:
    return os.path.commonpath([os.path.dirname(os.path.abspath(f)) for f in files])


def _inside(path: str, folder: str) -> bool:
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


class AnonymizeDialog(QDialog):
    """Scope (current series or study), output folder, keep dates, keep UIDs."""

    def __init__(self, parent: QWidget, start_dir: str, study_series: int) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export anonymised copy")
        self.scope = QComboBox()
        self.scope.addItem("Current series", "series")
        self.scope.addItem(f"Current study ({study_series} series)", "study")
        self.folder = QLineEdit()
        self.folder.setPlaceholderText("a new or empty folder outside the source folder")
        self._start_dir = start_dir
        browse = QPushButton("Choose\u2026")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.folder, 1)
        row.addWidget(browse)
        self.keep_dates = QCheckBox("Keep dates and times (birth date still removed)")
        self.keep_uids = QCheckBox("Keep the original UIDs")
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow("Export", self.scope)
        form.addRow("Into folder", row)
        form.addRow("", self.keep_dates)
        form.addRow("", self.keep_uids)
        form.addRow(buttons)

    def _browse(self) -> None:
        path = QFileDialog.getExistingDirectory(
            self, "Folder for the anonymised copy", self.folder.text() or self._start_dir
        )
        if path:
            self.folder.setText(path)

    def values(self) -> tuple[str, str, AnonymizeOptions]:
        options = AnonymizeOptions(self.keep_dates.isChecked(), self.keep_uids.isChecked())
        return self.scope.currentData(), self.folder.text().strip(), options


class AnonymizeExport(QObject):
    """The anonymised-export actions of ``window`` (a MainWindow), added to ``menu``."""

    def __init__(self, window, menu=None) -> None:
        super().__init__(window)
        self.window = window
        self.key: Anonymizer | None = None
        self.report: AnonymizeReport | None = None
        self.last_message = ""
        self.task = None
        self._progress: QProgressDialog | None = None
        if menu is not None:
            self.install(menu)

    def install(self, menu) -> None:
        w = self.window
        menu.addSeparator()
        w._action(menu, "Export &anonymised copy\u2026", self.choose)
        w._action(menu, "Save anonymised screenshot of the layout\u2026", self.save_screenshot)
        self.masks_action = w._action(
            menu, "Anonymise &mask exports", self.set_masks_anonymized, checkable=True
        )

    # -- what to export -------------------------------------------------------------------
    def source_files(self, scope: str) -> list[str]:
        """The files of the open series (``series``) or of every series of its study."""
        volume = self.window.session.volume
        if volume is None or not volume.files:
            raise ValueError("open a DICOM series first")
        files = list(dict.fromkeys(volume.files))
        index = self.window.index
        study = str(volume.header.get("study_uid", "") or "")
        if scope == "study" and index is not None and study:
            for entry in index.series:
                if entry.study == study:
                    files.extend(f for f in entry.files if f not in files)
        return files

    def _study_series(self) -> int:
        volume, index = self.window.session.volume, self.window.index
        study = str(volume.header.get("study_uid", "") or "") if volume is not None else ""
        if index is None or not study:
            return 1
        return len({e.uid.split("#")[0] for e in index.series if e.study == study}) or 1

    def default_folder(self) -> str:
        """The last output folder, unless it lies in a source folder; else the home folder."""
        last = str(self.window.settings.value(OUT_DIR_KEY, "") or "")
        volume = self.window.session.volume
        sources = {os.path.dirname(f) for f in (volume.files if volume is not None else [])}
        if last and os.path.isdir(last) and not any(_inside(last, s) for s in sources):
            return last
        return os.path.expanduser("~")

    def key_for(self, options: AnonymizeOptions) -> Anonymizer:
        """This session's key (a new one when the options change)."""
        if self.key is None or self.key.options != options:
            self.key = Anonymizer(options)
            self._share_key()
        return self.key

    # -- the copy -------------------------------------------------------------------------
    def choose(self) -> None:
        try:
            self.source_files("series")
        except ValueError as exc:
            self.window.show_error(str(exc))
            return
        dialog = AnonymizeDialog(self.window, self.default_folder(), self._study_series())
        if dialog.exec() != QDialog.Accepted:
            return
        scope, out, options = dialog.values()
        if not out:
            self.window.show_error("choose a folder for the anonymised copy")
            return
        self.start(scope, out, options)

    def start(self, scope: str, out: str, options: AnonymizeOptions):
        """Check OUT, then anonymise on a worker thread; returns the Task (None if refused)."""
        try:
            files = self.source_files(scope)
            src = _source_root(files)
            check_destination_folder(src, out)
        except ValueError as exc:
            self.window.show_error(str(exc))
            return None
        self.window.settings.setValue(OUT_DIR_KEY, os.path.dirname(os.path.abspath(out)))
        key = self.key_for(options)
        progress = QProgressDialog(
            "Writing the anonymised copy\u2026", "Cancel", 0, len(files), self.window
        )
        progress.setWindowModality(Qt.WindowModal)
        progress.setMinimumDuration(300)
        self._progress = progress
        self.report = None
        partial: dict[str, AnonymizeReport] = {}

        def work(report_progress, cancelled) -> AnonymizeReport:
            partial["report"] = anonymize_tree(src, out, key, report_progress, cancelled, files)
            return partial["report"]

        self.task = self.window.tasks.run(
            work,
            on_finished=self._done,
            on_failed=self._failed,
            on_progress=lambda done, total: progress.setValue(done),
            on_cancelled=lambda: self._done(
                partial.get("report") or AnonymizeReport(str(out), cancelled=True)
            ),
        )
        progress.canceled.connect(self.task.cancel)
        return self.task

    def _close_progress(self) -> None:
        if self._progress is not None:
            self._progress.reset()
            self._progress.deleteLater()
            self._progress = None
        self.task = None

    def _failed(self, message: str) -> None:
        self._close_progress()
        self.window.show_error(f"Anonymised copy failed: {message}")

    def _done(self, report: AnonymizeReport) -> None:
        self._close_progress()
        self.report = report
        lines = [report.summary()]
        lines += [
            f"Warning: {os.path.relpath(f, report.out)}: {m} ({n} file(s))"
            for f, m, n in report.grouped_warnings()
        ]
        lines += [f"Failed: {s.path}: {s.reason}" for s in report.failed[:20]]
        self.last_message = "\n".join(lines)
        self.window.statusBar().showMessage(lines[0], 10000)
        trouble = report.failed or report.warnings or report.cancelled
        icon = QMessageBox.Warning if trouble else QMessageBox.Information
        box = QMessageBox(icon, "Anonymised copy", self.last_message, QMessageBox.Ok, self.window)
        box.setAttribute(Qt.WA_DeleteOnClose)
        box.open()  # non-modal
        self._box = box

    # -- masks and screenshots ------------------------------------------------------------
    def set_masks_anonymized(self, on: bool) -> None:
        """Mask exports (DICOM SEG, NIfTI sidecar) de-identified with this session's key."""
        self.masks_action.setChecked(bool(on))
        if on and self.key is None:
            self.key = Anonymizer()
        self._share_key()

    def _share_key(self) -> None:
        on = getattr(self, "masks_action", None) is not None and self.masks_action.isChecked()
        self.window.segments.io.anonymizer = self.key if on else None

    @contextmanager
    def identity_hidden(self):
        """Corner text without patient name, ID, dates or descriptions while inside."""
        volume = self.window.session.volume
        saved = []
        for vp in self.window.views.viewports.values():
            view = vp.slice_view
            if view is None:
                continue
            saved.append((view, view.corners.text("top_left"), view.corners.text("top_right")))
            view.corners.set_text("top_left", "")
            view.corners.set_text("top_right", volume.modality if volume is not None else "")
        try:
            yield
        finally:
            for view, top_left, top_right in saved:
                view.corners.set_text("top_left", top_left)
                view.corners.set_text("top_right", top_right)
            self.window.views.render_all()

    def save_screenshot(self, path: str | None = None) -> None:
        if path is None:
            path, _ = QFileDialog.getSaveFileName(
                self.window,
                "Save anonymised screenshot",
                "radview-anonymised.png",
                "PNG image (*.png)",
            )
        if not path:
            return
        try:
            with self.identity_hidden():
                self.window.views.screenshot(path, True)
        except Exception as exc:  # noqa: BLE001 - reported, never fatal
            self.window.show_error(f"Could not save the screenshot: {exc}")
        else:
            self.window.statusBar().showMessage(f"Saved {path}", 5000)

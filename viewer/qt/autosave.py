"""Autosave of the segmentation and its recovery after a crash (Qt glue of
:mod:`viewer.core.journal` and :mod:`viewer.core.journal_recorder`).

What the user gets:

* **Where**: :func:`autosave_folder`: ``$RADVIEW_AUTOSAVE`` if set; else, when the window's
  settings are an ``.ini`` file (a portable profile, the tests), an ``autosave`` folder
  beside it; else the user's data folder, ``radview/autosave`` under Qt's
  GenericDataLocation (``~/.local/share`` or ``$XDG_DATA_HOME`` on Linux, ``%LOCALAPPDATA%``
  on Windows, ``~/Library/Application Support`` on macOS), where the user models live too.
  Never a source folder (refused; autosave then stops with a message).
* **When**: from the first edit of a series (viewing writes nothing), each finished stroke,
  fill, operation, model merge, import merge, undo, redo and segment-table change is on disk
  before the viewer goes on. A stroke still being drawn when the viewer dies is lost.
* **Closing** the segmentation (opening another series, quitting): the journal is deleted
  when nothing was edited since the last export (:meth:`Autosave.mark_saved`) and kept
  otherwise. Quitting never asks and never blocks: unexported edits stay on disk and are
  offered the next time the series is opened (a clinic loses nothing by closing, a
  crash and a quit look the same to the user).
* **Recovery**: when a series is opened and a journal of it exists that no running viewer
  holds, a non-modal box offers "Recover N edits autosaved on <time>" / "Discard" /
  "Later" (kept, offered again next time; also reachable with :meth:`choose_recover`,
  meant for a "Recover autosaved edits…" menu entry). Recover replaces the open
  segmentation (whose own journal is kept if it holds unexported edits) by the recovered
  labels, segment table and provenance; the undo history starts afresh from the recovered
  state (the edits made before the crash cannot be undone one by one). The recovered state
  is written to a new journal (fsync) before the old one is deleted. Several journals of
  one series (several sessions): the newest is offered first; after Discard the next one.

Logic (:meth:`Autosave.recover`, :meth:`Autosave.discard`, :meth:`Autosave.pending`) runs
without a dialog and raises ValueError with a one-line message.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from PySide6.QtCore import QObject, QSettings, QStandardPaths, Qt, QTimer
from PySide6.QtWidgets import QMessageBox

from viewer.core.export.atomic import source_dirs
from viewer.core.journal import JournalInfo, pending_journals, recover
from viewer.core.journal_recorder import JournalRecorder

ENV_AUTOSAVE = "RADVIEW_AUTOSAVE"


def autosave_folder(settings: QSettings | None = None) -> Path:
    """The folder of the journals (see the module docstring)."""
    env = os.environ.get(ENV_AUTOSAVE)
    if env:
        return Path(env).expanduser()
    if settings is not None and settings.format() == QSettings.IniFormat and settings.fileName():
        return Path(settings.fileName()).absolute().parent / "autosave"
    base = QStandardPaths.writableLocation(QStandardPaths.GenericDataLocation)
    return Path(base or Path.home() / ".local" / "share") / "radview" / "autosave"


def _when(unix_time: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(unix_time))


class Autosave(QObject):
    """Journals the session's label map and offers recovery; see the module docstring.
    ``controller``: the SegmentController (session, window, undo stack, messages)."""

    def __init__(self, controller) -> None:
        super().__init__(controller)
        self.controller = controller
        self.window = controller.window
        self.session = controller.session
        self.recorder: JournalRecorder | None = None
        self.prompt: QMessageBox | None = None
        self._closed = False
        self.session.volume_changed.connect(self._on_volume)
        self.session.labelmap_changed.connect(self._on_labelmap)
        controller.busy_changed.connect(self._on_busy)

    def folder(self) -> Path:
        return autosave_folder(getattr(self.window, "settings", None))

    # -- exports --------------------------------------------------------------------------
    def save_point(self):
        """A token for the state about to be exported (take it with the export's snapshot)."""
        rec = self.recorder
        return (rec, rec.generation) if rec is not None else None

    def mark_saved(self, token) -> None:
        """The state of ``token`` (:meth:`save_point`) was exported: the journal is deleted
        at close unless something was edited since."""
        if token is not None and token[0] is self.recorder:
            self.recorder.mark_saved(token[1])

    # -- recording ------------------------------------------------------------------------
    def _on_volume(self, volume) -> None:
        self._close_prompt()
        if self.recorder is not None and self.recorder.labelmap is not self.session.labelmap:
            self._detach()  # before looking for journals: ours may be one of them
        if volume is not None and not self._closed:
            QTimer.singleShot(0, lambda: self._offer(volume))

    def _on_labelmap(self, labelmap) -> None:
        self._detach()
        volume = self.session.volume
        if labelmap is None or volume is None or not volume.series_uid or self._closed:
            return
        folders = source_dirs(volume.files)
        self.recorder = JournalRecorder(
            labelmap, self.folder(), series_uid=volume.series_uid,
            source=folders[0] if folders else "", source_dirs=folders,
            stack=self.controller.stack,
        )  # fmt: skip
        self.recorder.failed.connect(self._failed)

    def _on_busy(self, busy: bool, _text: str) -> None:
        if not busy and self.recorder is not None:
            self.recorder.commit()  # a model run set the provenance after its merge

    def _failed(self, message: str) -> None:
        self.window.show_error(
            f"{message[0].upper()}{message[1:]}. Edits from now on are not protected against "
            "a crash: export the segmentation to keep them."
        )

    def _detach(self) -> None:
        rec, self.recorder = self.recorder, None
        if rec is not None:
            rec.close()

    def shutdown(self) -> None:
        """Close the journal (kept when it holds unexported edits); idempotent."""
        self._closed = True
        self._close_prompt()
        self._detach()

    # -- recovery (logic) -----------------------------------------------------------------
    def pending(self) -> list[JournalInfo]:
        """Journals of the open series no running viewer holds, newest first."""
        volume = self.session.volume
        if volume is None or not volume.series_uid:
            return []
        return pending_journals(self.folder(), volume.series_uid)

    def recover(self, path) -> str:
        """Replace the open segmentation by the state of journal ``path`` (one line summary).
        ValueError when no image is open or the journal belongs to another grid."""
        volume = self.session.volume
        if volume is None:
            raise ValueError("open the series the autosaved edits belong to first")
        recovered = recover(path, volume.geometry)
        info = recovered.info
        if info.series_uid != volume.series_uid:
            raise ValueError("these autosaved edits belong to another series")
        self.session.set_labelmap(recovered.labelmap)
        summary = f"Recovered {info.n_edits} edit(s) autosaved on {_when(info.last_time)}"
        if info.dropped_tail:
            summary += " (an incomplete last record was left out)"
        try:
            if self.recorder is None:
                raise OSError("autosave is not running")
            self.recorder.start(edits=info.n_edits)
        except OSError as exc:
            return f"{summary}; the journal is kept ({exc})"
        self.discard(path)  # its state is now in the new journal
        return summary

    def discard(self, path) -> None:
        """Delete a journal (and a compaction's leftover, if a kill interrupted one)."""
        Path(path).unlink(missing_ok=True)
        Path(f"{path}.tmp").unlink(missing_ok=True)

    # -- recovery (dialog) ----------------------------------------------------------------
    def choose_recover(self) -> None:
        """Menu entry: offer the newest journal of the open series, or say there is none."""
        if self.session.volume is None:
            self.controller.message.emit("Open a series first")
        elif not self._offer(self.session.volume):
            self.controller.message.emit("No autosaved edits for this series")

    def _offer(self, volume) -> bool:
        if self.prompt is not None:
            return True
        if volume is not self.session.volume or self._closed:
            return False
        found = self.pending()
        if found:
            self._ask(found[0], volume)
        return bool(found)

    def _ask(self, info: JournalInfo, volume) -> None:
        edits = f"{info.n_edits} edit(s)" if info.n_edits else "a segment table"
        text = (
            f"radview found {edits} to this series autosaved on {_when(info.last_time)} "
            "and not exported (the viewer was closed or stopped)."
        )
        if info.dropped_tail:
            text += "\n\nThe last record is incomplete (an edit in progress) and is left out."
        box = QMessageBox(QMessageBox.Question, "Recover autosaved edits", text,
                          QMessageBox.NoButton, self.window)  # fmt: skip
        box.setInformativeText("Later keeps them; they are offered again next time.")
        recover_button = box.addButton("Recover", QMessageBox.AcceptRole)
        discard_button = box.addButton("Discard", QMessageBox.DestructiveRole)
        box.addButton("Later", QMessageBox.RejectRole)
        box.setDefaultButton(recover_button)
        box.setAttribute(Qt.WA_DeleteOnClose)

        def answered(button) -> None:
            self.prompt = None
            if self.session.volume is not volume:
                return
            if button is recover_button:
                try:
                    self.controller.message.emit(self.recover(info.path))
                except ValueError as exc:
                    self.window.show_error(f"Recovery failed: {exc}")
            elif button is discard_button:
                self.discard(info.path)
                self.controller.message.emit("Autosaved edits discarded")
                QTimer.singleShot(0, lambda: self._offer(volume))  # an older one?

        box.buttonClicked.connect(answered)
        box.finished.connect(lambda _r: self._forget(box))
        self.prompt = box
        box.open()  # non-modal: the viewer stays usable (and tests never block)

    def _forget(self, box) -> None:
        if self.prompt is box:
            self.prompt = None

    def _close_prompt(self) -> None:
        box, self.prompt = self.prompt, None
        if box is not None:
            box.close()

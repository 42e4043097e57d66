"""Series browser: patient -> study -> series tree with thumbnails, status and a filter."""

from __future__ import annotations

from collections import deque
from functools import partial

import numpy as np
from PySide6.QtCore import QCoreApplication, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QIcon, QImage, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from viewer.core.study_index import SeriesEntry, StudyIndex
from viewer.qt.panels.thumbnails import THUMBNAIL_PX, thumbnail_array
from viewer.qt.workers import TaskRunner

COLUMNS = ("Description", "Modality", "Images", "Size", "Status")
_ROLE = Qt.ItemDataRole.UserRole  # series items: index into the entry list
_MAX_TOOLTIP_LINES = 30
_THUMBNAIL_WORKERS = 2


def _date(text: str) -> str:
    return f"{text[:4]}-{text[4:6]}-{text[6:8]}" if len(text) == 8 and text.isdigit() else text


def study_label(entry: SeriesEntry) -> str:
    """"2025-01-02  CT chest": study date and description, or what is known."""
    desc = entry.stack.first.study_description if entry.stack is not None else ""
    text = "  ".join(p for p in (_date(entry.study_date), desc) if p)
    return text or ("(no study)" if not entry.study else f"study …{entry.study[-8:]}")


def _image_counts(entry: SeriesEntry) -> tuple[str, str]:
    files = len(entry.files)
    frames = len(entry.stack.slices) if entry.stack is not None else (entry.shape or [1])[0]
    tip = f"{files} file{'s' * (files != 1)}, {frames} frame{'s' * (frames != 1)}"
    return (str(files) if files == frames else f"{files} / {frames}"), tip


def _size(entry: SeriesEntry) -> str:
    shape = list(entry.shape)
    if len(shape) < 3:
        return "×".join(str(v) for v in shape)
    text = f"{shape[2]}×{shape[1]}×{shape[0]}"  # columns × rows × slices
    return text + " RGB" if len(shape) == 4 else text


def to_qimage(array: np.ndarray) -> QImage:
    """A QImage owning a copy of a uint8 (rows, cols) or (rows, cols, 3) array."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    rows, cols = array.shape[:2]
    rgb = array.ndim == 3
    fmt = QImage.Format.Format_RGB888 if rgb else QImage.Format.Format_Grayscale8
    return QImage(array.data, cols, rows, cols * (3 if rgb else 1), fmt).copy()


class SeriesBrowser(QWidget):
    """Tree of the series in a :class:`StudyIndex` (patient → study → series).

    Signals: ``series_activated(SeriesEntry)`` on double-click or Enter on a loadable
    series (error series are shown greyed with their reason and never activate);
    ``current_changed(object)`` with the selected SeriesEntry or None;
    ``thumbnail_ready(str uid)`` when a series' thumbnail is set; ``thumbnails_finished()``
    when none are left to make.

    Thumbnails are made in the background, two at a time, the rows on screen first, by
    the browser's own TaskRunner (or the one passed in). ``cancel_thumbnails()`` stops
    them; it runs by itself on ``QApplication.aboutToQuit``.
    """

    series_activated = Signal(object)
    current_changed = Signal(object)
    thumbnail_ready = Signal(str)
    thumbnails_finished = Signal()

    def __init__(self, parent: QWidget | None = None, runner: TaskRunner | None = None) -> None:
        super().__init__(parent)
        self._runner = runner or TaskRunner(self, max_threads=_THUMBNAIL_WORKERS)
        self._index: StudyIndex | None = None
        self._entries: list[SeriesEntry] = []
        self._items: list[QTreeWidgetItem] = []
        self._search: list[str] = []
        self._thumbs: dict[int, QImage] = {}
        self._queue: deque[int] = deque()
        self._in_flight: dict[int, object] = {}
        self._generation = 0
        self._thumbs_pending = False

        self.filter_edit = QLineEdit(self)
        self.filter_edit.setPlaceholderText("Filter: patient, description, modality")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.textChanged.connect(self._apply_filter)

        self.tree = QTreeWidget(self)
        self.tree.setColumnCount(len(COLUMNS))
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.setIconSize(QSize(THUMBNAIL_PX, THUMBNAIL_PX))
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.setAlternatingRowColors(True)
        self.tree.setColumnWidth(0, 280)
        self.tree.itemActivated.connect(self._on_activated)
        self.tree.currentItemChanged.connect(lambda *_: self.current_changed.emit(
            self.current_series()))
        self._visible_timer = QTimer(self, singleShot=True, interval=50)
        self._visible_timer.timeout.connect(self._prioritise_visible)
        self.tree.verticalScrollBar().valueChanged.connect(self._visible_timer.start)
        self.tree.itemExpanded.connect(self._visible_timer.start)

        self.summary_label = QLabel(self)
        self.skipped_button = QToolButton(self)
        self.skipped_button.setCheckable(True)
        self.skipped_button.setAutoRaise(True)
        self.skipped_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.skipped_button.setArrowType(Qt.ArrowType.RightArrow)
        self.skipped_button.toggled.connect(self._toggle_skipped)
        self.skipped_button.hide()
        self.skipped_list = QTreeWidget(self)
        self.skipped_list.setHeaderLabels(["File", "Reason"])
        self.skipped_list.setRootIsDecorated(False)
        self.skipped_list.setMaximumHeight(160)
        self.skipped_list.hide()

        bottom = QHBoxLayout()
        bottom.addWidget(self.summary_label)
        bottom.addStretch(1)
        bottom.addWidget(self.skipped_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.filter_edit)
        layout.addWidget(self.tree, 1)
        layout.addLayout(bottom)
        layout.addWidget(self.skipped_list)
        self._placeholder = QPixmap(THUMBNAIL_PX, THUMBNAIL_PX)
        self._placeholder.fill(Qt.GlobalColor.transparent)
        self._placeholder_icon = QIcon(self._placeholder)
        app = QCoreApplication.instance()
        if app is not None:  # no thumbnail work left behind when the application quits
            app.aboutToQuit.connect(self.cancel_thumbnails)

    # -- filling ------------------------------------------------------------------------
    def set_index(self, index: StudyIndex | None) -> None:
        """Show ``index`` (None clears); thumbnails start in the background."""
        self.cancel_thumbnails()
        self._generation += 1
        self._index = index
        self._entries = list(index.series) if index is not None else []
        self._items, self._search, self._thumbs = [], [], {}
        self.tree.setUpdatesEnabled(False)
        self.tree.clear()
        patients: dict[str, QTreeWidgetItem] = {}
        studies: dict[tuple[str, str], QTreeWidgetItem] = {}
        for n, entry in enumerate(self._entries):
            patient = patients.get(entry.patient)
            if patient is None:
                patient = QTreeWidgetItem([entry.patient or "(no patient name)"])
                patients[entry.patient] = patient
                self.tree.addTopLevelItem(patient)
            key = (entry.patient, entry.study)
            study = studies.get(key)
            if study is None:
                study = QTreeWidgetItem(patient, [study_label(entry)])
                study.setToolTip(0, f"Study Instance UID {entry.study}" if entry.study else "")
                studies[key] = study
            self._items.append(self._series_item(study, entry, n))
            self._search.append(
                " ".join((entry.patient, study_label(entry), entry.description,
                          entry.modality)).lower()
            )
        for study in studies.values():
            modalities = sorted({self._entries[study.child(i).data(0, _ROLE)].modality
                                 for i in range(study.childCount())} - {""})
            study.setText(1, ", ".join(modalities))
        self.tree.expandAll()
        self.tree.setUpdatesEnabled(True)
        self._fill_skipped(index)
        self.summary_label.setText(
            f"{len(patients)} patient{'s' * (len(patients) != 1)}, "
            f"{len(self._entries)} series" if index is not None else ""
        )
        self._apply_filter(self.filter_edit.text())
        self._queue = deque(n for n, e in enumerate(self._entries)
                            if not e.status.startswith("error"))
        self._thumbs_pending = True
        self._prioritise_visible()

    def _series_item(self, parent: QTreeWidgetItem, entry: SeriesEntry, n: int):
        images, images_tip = _image_counts(entry)
        desc = entry.description or (f"Series {entry.series_number}"
                                     if entry.series_number is not None else "(no description)")
        item = QTreeWidgetItem(parent, [desc, entry.modality, images, _size(entry), ""])
        item.setData(0, _ROLE, n)
        item.setIcon(0, self._placeholder_icon)
        item.setToolTip(0, f"Series Instance UID {entry.uid}")
        item.setToolTip(2, images_tip)
        if entry.status.startswith("error"):
            reason = entry.status.partition(":")[2].strip() or entry.status
            item.setText(4, reason)
            item.setToolTip(4, reason)
            grey = QBrush(self.palette().color(QPalette.ColorGroup.Disabled,
                                               QPalette.ColorRole.Text))
            for col in range(len(COLUMNS)):
                item.setForeground(col, grey)
        elif entry.warnings:
            item.setText(4, f"⚠ {len(entry.warnings)} warning{'s' * (len(entry.warnings) != 1)}")
            item.setToolTip(4, "\n".join(f"• {w}" for w in entry.warnings))
        else:
            item.setText(4, "ok")
        return item

    def _fill_skipped(self, index: StudyIndex | None) -> None:
        skipped = index.skipped if index is not None else []
        self.skipped_button.setChecked(False)
        self.skipped_list.clear()
        self.skipped_button.setVisible(bool(skipped))
        self.skipped_button.setText(f"{len(skipped)} file{'s' * (len(skipped) != 1)} skipped")
        lines = [f"{s.path}: {s.reason}" for s in skipped[:_MAX_TOOLTIP_LINES]]
        if len(skipped) > _MAX_TOOLTIP_LINES:
            lines.append(f"… and {len(skipped) - _MAX_TOOLTIP_LINES} more (click to list)")
        self.skipped_button.setToolTip("\n".join(lines))

    def _toggle_skipped(self, shown: bool) -> None:
        self.skipped_button.setArrowType(Qt.ArrowType.DownArrow if shown
                                         else Qt.ArrowType.RightArrow)
        if shown and self.skipped_list.topLevelItemCount() == 0 and self._index is not None:
            self.skipped_list.addTopLevelItems(
                [QTreeWidgetItem([s.path, s.reason]) for s in self._index.skipped])
        self.skipped_list.setVisible(shown)

    # -- selection ----------------------------------------------------------------------
    def _entry_of(self, item: QTreeWidgetItem | None) -> SeriesEntry | None:
        n = item.data(0, _ROLE) if item is not None else None
        return self._entries[n] if n is not None else None

    def current_series(self) -> SeriesEntry | None:
        """The selected series, or None when a patient/study row (or nothing) is selected."""
        return self._entry_of(self.tree.currentItem())

    def select_series(self, uid: str) -> bool:
        """Make the series with this UID current; False if it is not shown."""
        for entry, item in zip(self._entries, self._items):
            if entry.uid == uid:
                self.tree.setCurrentItem(item)
                return True
        return False

    def series_item(self, uid: str) -> QTreeWidgetItem | None:
        for entry, item in zip(self._entries, self._items):
            if entry.uid == uid:
                return item
        return None

    def _on_activated(self, item: QTreeWidgetItem, _column: int) -> None:
        entry = self._entry_of(item)
        if entry is not None and not entry.status.startswith("error"):
            self.series_activated.emit(entry)

    # -- filter -------------------------------------------------------------------------
    def _apply_filter(self, text: str) -> None:
        words = text.lower().split()
        self.tree.setUpdatesEnabled(False)
        for item, haystack in zip(self._items, self._search):
            item.setHidden(not all(w in haystack for w in words))
        for p in range(self.tree.topLevelItemCount()):
            patient = self.tree.topLevelItem(p)
            any_shown = False
            for s in range(patient.childCount()):
                study = patient.child(s)
                shown = any(not study.child(i).isHidden() for i in range(study.childCount()))
                study.setHidden(not shown)
                any_shown |= shown
            patient.setHidden(not any_shown)
        self.tree.setUpdatesEnabled(True)
        self._visible_timer.start()

    # -- thumbnails ---------------------------------------------------------------------
    def thumbnail(self, uid: str) -> QImage | None:
        """The thumbnail made for this series so far (None if not yet, or undecodable)."""
        for n, entry in enumerate(self._entries):
            if entry.uid == uid:
                return self._thumbs.get(n)
        return None

    def cancel_thumbnails(self) -> None:
        """Stop making thumbnails (queued ones are dropped, running ones cancelled)."""
        self._queue.clear()
        self._thumbs_pending = False
        for task in self._in_flight.values():
            task.cancel()
        self._in_flight.clear()

    def _prioritise_visible(self) -> None:
        if not self._queue:
            self._pump()
            return
        viewport = self.tree.viewport()
        visible: list[int] = []
        y = 0
        while y < viewport.height():
            item = self.tree.itemAt(4, y)
            if item is None:
                break
            n = item.data(0, _ROLE)
            if n is not None:
                visible.append(n)
            y = max(y + 1, self.tree.visualItemRect(item).bottom() + 1)
        queued = set(self._queue)
        front = [n for n in visible if n in queued]
        if front:
            first = set(front)
            self._queue = deque(front + [n for n in self._queue if n not in first])
        self._pump()

    def _pump(self) -> None:
        while self._queue and len(self._in_flight) < _THUMBNAIL_WORKERS:
            n = self._queue.popleft()
            entry = self._entries[n]
            done = partial(self._thumbnail_done, self._generation, n)
            self._in_flight[n] = self._runner.run(
                lambda progress, cancelled, entry=entry: thumbnail_array(entry),
                on_finished=done,
                on_failed=lambda _msg, done=done: done(None),
            )
        if self._thumbs_pending and not self._queue and not self._in_flight:
            self._thumbs_pending = False
            self.thumbnails_finished.emit()

    def _icon(self, image: QImage) -> QIcon:
        """The thumbnail centred on a black square, as film viewers show them."""
        pixmap = QPixmap(THUMBNAIL_PX, THUMBNAIL_PX)
        pixmap.fill(Qt.GlobalColor.black)
        painter = QPainter(pixmap)
        painter.drawImage((THUMBNAIL_PX - image.width()) // 2,
                          (THUMBNAIL_PX - image.height()) // 2, image)
        painter.end()
        return QIcon(pixmap)

    def _thumbnail_done(self, generation: int, n: int, array: np.ndarray | None) -> None:
        if generation != self._generation:
            return  # a result for an index no longer shown
        self._in_flight.pop(n, None)
        if array is not None:
            image = to_qimage(array)
            self._thumbs[n] = image
            self._items[n].setIcon(0, self._icon(image))
            self.thumbnail_ready.emit(self._entries[n].uid)
        self._pump()

"""DICOM tag browser: one file's header as a searchable tree (sequences nested)."""

from __future__ import annotations

import os

import pydicom
from pydicom.errors import InvalidDicomError
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QLineEdit, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

COLUMNS = ("Tag", "Name", "VR", "Value")
MAX_VALUE_CHARS = 120  # longer values are elided in the cell; the tooltip has more
MAX_TOOLTIP_CHARS = 2000
MAX_MULTI_VALUES = 256
MAX_ROWS = 50_000  # enough for enhanced multi-frame headers; more is cut with a note
_SEARCH_ROLE = Qt.ItemDataRole.UserRole


def tag_text(tag) -> str:
    """``(0010,0010)``."""
    return f"({tag.group:04X},{tag.element:04X})"


def value_text(elem) -> str:
    """The full display text of an element's value (bytes as their length)."""
    value = elem.value
    if elem.VR == "SQ":
        return f"{len(value)} item{'s' * (len(value) != 1)}"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(value)} bytes>"
    if value is None:
        return ""
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        parts = [str(v) for v in list(value)[:MAX_MULTI_VALUES]]
        more = len(value) - MAX_MULTI_VALUES
        return "\\".join(parts) + (f"\\… ({more} more)" if more > 0 else "")
    return str(value)


def _elide(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _looks_parsed(ds) -> bool:
    """A dataset read with force=True from a file without preamble is real DICOM if its
    tags are mostly known ones (a text or picture file parses into garbage tags)."""
    tags = list(ds.keys())[:50]
    if not tags:
        return False
    known = sum(1 for t in tags if pydicom.datadict.dictionary_has_tag(t))
    return known >= max(2, len(tags) // 2)


def read_header(path: str | os.PathLike):
    """The header of ``path`` without pixel data; raises ValueError with one line if it is
    not DICOM or cannot be read."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ValueError(f"no such file: {path}")
    if os.path.isdir(path):
        raise ValueError(f"a folder, not a file: {path}")
    try:
        return pydicom.dcmread(path, stop_before_pixels=True)
    except InvalidDicomError:
        pass
    except Exception as exc:  # noqa: BLE001 - odd files: one line, never a traceback
        raise ValueError(f"unreadable DICOM file: {_first_line(exc)}") from exc
    try:  # no 128-byte preamble (ACR-NEMA style files)
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    except Exception as exc:  # noqa: BLE001
        raise ValueError("not a DICOM file") from exc
    if not _looks_parsed(ds):
        raise ValueError("not a DICOM file")
    return ds


def _first_line(exc: BaseException) -> str:
    lines = [s.strip() for s in str(exc).splitlines() if s.strip()]
    return (lines[0] if lines else type(exc).__name__)[:200]


class TagBrowser(QWidget):
    """Header of one DICOM file: tag, name (keyword), VR, value; sequences nested.

    ``show_file(path)`` reads it (header only); ``clear()`` empties it. The search box
    keeps rows whose tag, keyword, name or value contains the text (any case), with their
    parents (so a match inside a sequence item shows the item and the sequence) and, for
    a matching sequence, its contents. Problems (not DICOM, unreadable) show as one line
    in ``message_label`` instead of raising.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._path: str | None = None
        self._rows = 0
        self.message_label = QLabel(self)
        self.message_label.setWordWrap(True)
        self.message_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.search_edit = QLineEdit(self)
        self.search_edit.setPlaceholderText("Search tag, keyword or value")
        self.search_edit.setClearButtonEnabled(True)
        self.search_edit.textChanged.connect(self._apply_filter)
        self.tree = QTreeWidget(self)
        self.tree.setColumnCount(len(COLUMNS))
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.setUniformRowHeights(True)
        self.tree.setColumnWidth(0, 150)  # room for nesting
        self.tree.setColumnWidth(1, 220)
        self.tree.setColumnWidth(2, 40)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.message_label)
        layout.addWidget(self.search_edit)
        layout.addWidget(self.tree, 1)

    @property
    def path(self) -> str | None:
        return self._path

    def clear(self) -> None:
        self._path = None
        self.tree.clear()
        self.message_label.setText("")

    def show_file(self, path: str | os.PathLike | None) -> bool:
        """Show the header of ``path``; False (and a one-line message) if it cannot be."""
        self.clear()
        if path is None:
            return False
        self._path = os.fspath(path)
        try:
            ds = read_header(self._path)
        except ValueError as exc:
            self.message_label.setText(f"{os.path.basename(self._path)}: {exc}")
            return False
        except Exception as exc:  # noqa: BLE001
            self.message_label.setText(
                f"{os.path.basename(self._path)}: unreadable: {_first_line(exc)}")
            return False
        self._rows = 0
        self.tree.setUpdatesEnabled(False)
        meta = getattr(ds, "file_meta", None)
        if meta is not None:
            self._add_dataset(self.tree.invisibleRootItem(), meta)
        self._add_dataset(self.tree.invisibleRootItem(), ds)
        if self._rows >= MAX_ROWS:
            note = QTreeWidgetItem(["", "", "", f"… cut at {MAX_ROWS} rows"])
            note.setData(0, _SEARCH_ROLE, "")
            self.tree.addTopLevelItem(note)
        self.tree.setUpdatesEnabled(True)
        self.message_label.setText(self._path)
        self.message_label.setToolTip(self._path)
        self._apply_filter(self.search_edit.text())
        return True

    def _add_dataset(self, parent: QTreeWidgetItem, ds) -> None:
        for tag in list(ds.keys()):
            if self._rows >= MAX_ROWS:
                return
            self._rows += 1
            try:
                elem = ds[tag]
                name = elem.keyword or elem.name
                full = value_text(elem)
                vr = str(elem.VR)
            except Exception as exc:  # noqa: BLE001 - a bad value must not hide the rest
                elem, name, vr = None, "", ""
                full = f"<unreadable: {_first_line(exc)}>"
            item = QTreeWidgetItem(parent, [tag_text(tag), name, vr,
                                            _elide(full, MAX_VALUE_CHARS)])
            if elem is not None and elem.name != name:
                item.setToolTip(1, elem.name)
            if len(full) > MAX_VALUE_CHARS:
                item.setToolTip(3, _elide(full, MAX_TOOLTIP_CHARS))
            search = f"{tag_text(tag)} {tag.group:04x}{tag.element:04x} {name} "
            search += f"{elem.name if elem is not None else ''} {full}"
            item.setData(0, _SEARCH_ROLE, search.lower())
            if elem is not None and vr == "SQ":
                for n, child in enumerate(elem.value, start=1):
                    self._rows += 1
                    node = QTreeWidgetItem(item, ["(FFFE,E000)", f"Item {n}", "", ""])
                    node.setData(0, _SEARCH_ROLE, f"item {n}")
                    self._add_dataset(node, child)

    def _apply_filter(self, text: str) -> None:
        needle = text.strip().lower()
        self.tree.setUpdatesEnabled(False)
        root = self.tree.invisibleRootItem()
        for i in range(root.childCount()):
            self._filter_item(root.child(i), needle, False)
        if needle:
            self.tree.expandAll()
        self.tree.setUpdatesEnabled(True)

    def _filter_item(self, item: QTreeWidgetItem, needle: str, ancestor_matched: bool) -> bool:
        """Hide rows that neither match nor lie inside or above a match; True if shown."""
        matched = ancestor_matched or not needle or needle in (item.data(0, _SEARCH_ROLE) or "")
        child_shown = False
        for i in range(item.childCount()):
            child_shown |= self._filter_item(item.child(i), needle, matched)
        shown = matched or child_shown
        item.setHidden(not shown)
        return shown

"""The keyboard and mouse conventions, listed once (Help ▸ Keyboard shortcuts)."""

from __future__ import annotations

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTableWidget, QTableWidgetItem, QVBoxLayout

SHORTCUTS: list[tuple[str, str]] = [
    ("Mouse wheel, PgUp / PgDn", "Previous / next slice"),
    ("Left click (W/L tool)", "Move the linked crosshair to the point"),
    ("Right drag", "Window (horizontal) / level (vertical)"),
    ("Middle drag", "Pan"),
    ("Ctrl + wheel", "Zoom"),
    ("Double-click a view", "Maximise it / back to the layout"),
    ("1 \u2026 5", "Presets: lung, mediastinum, bone, brain, abdomen"),
    ("R", "Reset zoom, pan and window"),
    ("I", "Invert grey scale"),
    ("C", "Show / hide the crosshair"),
    ("Space", "Cine play / stop"),
    ("W, P, Z", "Tools: window/level, pan, zoom (left drag)"),
    ("L, A, E, T", "Measure: length, angle, ellipse ROI, rectangle ROI"),
    ("Delete", "Delete the last measurement on this slice"),
    ("B, X, Shift+B, G", "Segment: brush, eraser, threshold brush (HU range), flood fill"),
    ("Left drag (brush, eraser)", "Paint / erase the active segment; one stroke = one undo step"),
    ("Ctrl + left drag (brush, eraser)", "Inverted: the brush erases, the eraser paints"),
    ("[ / ], Shift + wheel", "Smaller / bigger brush"),
    ("Tab / Shift+Tab", "Next / previous segment"),
    ("H", "Show / hide all masks"),
    ("Ctrl+Z / Ctrl+Y, Ctrl+Shift+Z", "Undo / redo the last edit (its name is in the menu)"),
    ("Ctrl+Shift+N", "Add a segment"),
    ("Ctrl+O / Ctrl+Shift+O", "Open a folder / a file (or drop them on the window)"),
    ("Ctrl+S / Ctrl+Shift+S", "Save a screenshot of the view / of the layout"),
    ("F1", "This list"),
    ("Ctrl+Q", "Quit"),
]


class ShortcutsDialog(QDialog):
    def __init__(self, rows: list[tuple[str, str]], parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard and mouse")
        table = QTableWidget(len(rows), 2, self)
        table.setHorizontalHeaderLabels(["Keys", "Action"])
        for r, (keys, action) in enumerate(rows):
            table.setItem(r, 0, QTableWidgetItem(keys))
            table.setItem(r, 1, QTableWidgetItem(action))
        table.resizeColumnsToContents()
        table.horizontalHeader().setStretchLastSection(True)
        table.verticalHeader().setVisible(False)
        buttons = QDialogButtonBox(QDialogButtonBox.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(table)
        layout.addWidget(buttons)
        self.resize(560, 520)

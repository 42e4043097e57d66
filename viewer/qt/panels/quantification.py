"""The quantification table of the segmentation editor (volumes in mL, involvement, score).

Shows :func:`viewer.core.quantify.to_rows` of the controller's latest
:class:`~viewer.core.quantify.Quantification` (recomputed on a worker after each edit) and
exports it as CSV or JSON through the controller's file dialog.
"""

from __future__ import annotations

from PySide6.QtWidgets import (
    QAbstractItemView,
    QGroupBox,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)


def _text(value) -> str:
    if isinstance(value, float):
        return f"{value:.1f}"
    return "" if value is None else str(value)


class QuantificationTable(QGroupBox):
    def __init__(self, controller, parent=None) -> None:
        super().__init__("Quantification", parent)
        self.controller = controller
        v = QVBoxLayout(self)
        self.table = QTableWidget(0, 0)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.setMinimumHeight(120)
        v.addWidget(self.table)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        v.addWidget(self.summary)
        self.export_button = QPushButton("Export CSV/JSON\u2026")
        self.export_button.clicked.connect(lambda: controller.io.choose_export("quant"))
        v.addWidget(self.export_button)
        self.quantification = None
        self.set_quantification(None)

    def set_quantification(self, q) -> None:
        """Fill the table from a Quantification (None: empty)."""
        self.quantification = q
        rows = []
        if q is not None:
            from viewer.core.quantify import to_rows

            rows = to_rows(q)
        headers = list(rows[0]) if rows else []
        self.table.clear()
        self.table.setColumnCount(len(headers))
        self.table.setRowCount(len(rows))
        self.table.setHorizontalHeaderLabels(headers)
        for r, row in enumerate(rows):
            for c, key in enumerate(headers):
                self.table.setItem(r, c, QTableWidgetItem(_text(row[key])))
        if headers:
            self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.summary.setText(self._summary(q))
        self.export_button.setEnabled(q is not None)

    def cell(self, row: int, column: str) -> str:
        """Text of the cell in ``row`` under the header ``column`` (tests, scripting)."""
        for c in range(self.table.columnCount()):
            if self.table.horizontalHeaderItem(c).text() == column:
                item = self.table.item(row, c)
                return item.text() if item is not None else ""
        raise KeyError(column)

    @staticmethod
    def _summary(q) -> str:
        if q is None:
            return "No segmentation."
        parts = []
        score = getattr(q, "severity_score", None)
        scale = getattr(q, "severity_scale", "")
        if score is not None:
            parts.append(f"Severity score {score} ({scale})" if scale else f"Severity {score}")
        return "\n".join(parts)

"""The quantification table of the segmentation editor (volumes in mL, involvement, score).

Shows :func:`viewer.core.quantify.to_rows` of the controller's latest
:class:`~viewer.core.quantify.Quantification` (recomputed on a worker after each edit) and
exports it as CSV or JSON through the controller's file dialog.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
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

#: (key of a ``to_rows`` row, label; "{unit}" is the quantification's unit); shown
#: transposed: a column per region, a row per measure
COLUMNS = (
    ("region", "Region"),
    ("size", "Lung ({unit})"),
    ("ground_glass", "Ground glass ({unit})"),
    ("ground_glass_percent", "Ground glass (%)"),
    ("consolidation", "Consolidation ({unit})"),
    ("consolidation_percent", "Consolidation (%)"),
    ("involvement_percent", "Involvement (%)"),
    ("score", "Score"),
)


def cell_text(row: dict, key: str) -> str:
    """How the table shows ``row[key]``: sizes and percentages to 0.1, None as a dash,
    the score as "score/max"."""
    value = row[key]
    if key == "score":
        return f"{value}/{row['score_max']}"
    if value is None:
        return "\u2013"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


class QuantificationTable(QGroupBox):
    def __init__(self, controller, parent=None) -> None:
        super().__init__("Quantification", parent)
        self.controller = controller
        v = QVBoxLayout(self)
        self.table = QTableWidget(len(COLUMNS) - 1, 0)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.Stretch)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.table.setVerticalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.table.setToolTip(
            "Per lung: lung volume (its voxels plus the findings assigned to it), ground-glass "
            "opacity and consolidation volumes and percentages of the lung, involvement and "
            "the per-lung severity score"
        )
        v.addWidget(self.table)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextSelectableByMouse)
        v.addWidget(self.summary)
        self.export_button = QPushButton("Export CSV/JSON\u2026")
        self.export_button.clicked.connect(lambda: controller.io.choose_export("quant"))
        v.addWidget(self.export_button)
        self.quantification = None
        self.rows: list[dict] = []
        self.set_quantification(None)

    def set_quantification(self, q) -> None:
        """Fill the table from a Quantification (None: empty)."""
        self.quantification = q
        self.rows = []
        if q is not None:
            from viewer.core.quantify import to_rows

            self.rows = to_rows(q)
        unit = q.unit if q is not None else "mL"
        # one column per region (lungs, total), one row per measure: fits a narrow dock
        self.table.setColumnCount(len(self.rows))
        self.table.setHorizontalHeaderLabels([row["region"] for row in self.rows])
        self.table.setVerticalHeaderLabels([h.format(unit=unit) for _, h in COLUMNS[1:]])
        for c, row in enumerate(self.rows):
            for r, (key, _) in enumerate(COLUMNS[1:]):
                item = QTableWidgetItem(cell_text(row, key))
                item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
                self.table.setItem(r, c, item)
        self.table.resizeRowsToContents()
        rows_h = sum(self.table.rowHeight(r) for r in range(self.table.rowCount()))
        header_h = self.table.horizontalHeader().sizeHint().height()
        self.table.setFixedHeight(rows_h + header_h + 2 * self.table.frameWidth())
        self.summary.setText(self._summary(q))
        self.export_button.setEnabled(q is not None)

    def cell(self, region: int, key: str) -> str:
        """Text shown for region ``region`` (the ``to_rows`` index: lungs, then the total)
        and the ``to_rows`` key ``key`` (tests, scripting)."""
        if key == "region":
            return self.table.horizontalHeaderItem(region).text()
        item = self.table.item([k for k, _ in COLUMNS[1:]].index(key), region)
        return item.text() if item is not None else ""

    @staticmethod
    def _summary(q) -> str:
        if q is None:
            return "No segmentation."
        lines = []
        if q.severity_score is not None:
            lines.append(
                f"<b>Severity {q.severity_score}/{q.severity_max}</b>, total involvement "
                f"{cell_text({'v': q.involvement_percent}, 'v')} % \u2014 {q.severity_scale}: "
                f"{q.severity_thresholds}."
            )
        else:
            lines.append(
                'No lung segment: involvement and severity need "right lung" / '
                '"left lung" (or "lung") segments.'
            )
        if q.volumes_ml:
            sizes = ", ".join(f"{name} {ml:.1f}" for name, ml in q.volumes_ml.items())
            lines.append(f"Segments (mL): {sizes}")
        return "<br>".join(lines)

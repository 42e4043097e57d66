"""The segmentation editor panel (3D Slicer's Segment Editor, ITK-SNAP's tool palette).

A view of :class:`viewer.qt.segment_controller.SegmentController`: it calls the
controller's methods and redraws itself from the controller's signals; it holds no state of
its own beyond its widgets.

* segment list: colour swatch (click: colour dialog), name (double-click: rename),
  visible, opacity %, locked; the selected row is the active segment; Add / Remove;
* tools: brush, eraser, threshold brush, flood fill (mouse tools), brush size in mm
  (slider + spin box), 2D disc / 3D sphere, the HU range of the threshold brush and fill;
  one-shot operations on the active segment: remove small islands, keep largest, fill
  holes, fill between slices, grow / shrink by a margin; undo / redo with the step names;
* masks: show/hide all (H), outlines, layer opacity;
* model: segmentation models of the registry, Run (progress, Cancel);
* quantification table (volumes in mL, involvement %, severity score and its scale) and
  Export CSV/JSON.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QColorDialog,
    QComboBox,
    QDoubleSpinBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from viewer.qt.panels.model_run import ModelRunStatus
from viewer.qt.panels.quantification import QuantificationTable
from viewer.qt.tools import TOOLS

HU_PRESETS = {
    "Lung parenchyma": (-1000.0, -500.0),
    "Ground glass": (-750.0, -300.0),
    "Consolidation": (-300.0, 100.0),
    "Soft tissue": (-100.0, 300.0),
    "Bone": (300.0, 3000.0),
}
COL_COLOUR, COL_NAME, COL_VISIBLE, COL_OPACITY, COL_LOCKED = range(5)
TOOL_STYLE = (
    "QToolButton:checked { background: palette(highlight); color: palette(highlighted-text); }"
)


def _swatch(color) -> QIcon:
    pixmap = QPixmap(18, 14)
    pixmap.fill(QColor(*color))
    return QIcon(pixmap)


class SegmentPanel(ModelRunStatus, QWidget):
    def __init__(self, controller, parent=None) -> None:
        super().__init__(parent)
        self.controller = c = controller
        self._updating = False
        inner = QWidget()
        layout = QVBoxLayout(inner)
        layout.addWidget(self._segments_box())
        layout.addWidget(self._tools_box())
        layout.addWidget(self._model_box())
        self.quant = QuantificationTable(c)
        layout.addWidget(self.quant)
        layout.addStretch(1)
        scroll = QScrollArea(self)
        scroll.setWidget(inner)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.NoFrame)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)

        c.segments_changed.connect(self.refresh_segments)
        c.active_changed.connect(self._show_active)
        c.tool_changed.connect(self._show_tool)
        c.brush_changed.connect(self._show_brush)
        c.history_changed.connect(self._show_history)
        c.masks_visibility_changed.connect(self.show_masks.setChecked)
        c.models_changed.connect(self.set_models)
        c.busy_changed.connect(self.set_busy)
        c.progress.connect(self.set_progress)
        c.quantification_changed.connect(self.quant.set_quantification)
        c.session.volume_changed.connect(self._volume_changed)
        self.refresh_segments()
        self._show_brush()
        self._show_history()
        self._show_tool(c.views.tool)
        self.set_models(c.model_specs)
        self.set_busy(False, "")

    # -- construction ---------------------------------------------------------------------
    def _segments_box(self) -> QGroupBox:
        box = QGroupBox("Segments")
        v = QVBoxLayout(box)
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["", "Name", "Show", "Opacity", "Lock"])
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.table.setEditTriggers(
            QAbstractItemView.DoubleClicked | QAbstractItemView.EditKeyPressed
        )
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(COL_NAME, QHeaderView.Stretch)
        for col in (COL_COLOUR, COL_VISIBLE, COL_OPACITY, COL_LOCKED):
            header.setSectionResizeMode(col, QHeaderView.ResizeToContents)
        self.table.setMinimumHeight(130)
        self.table.itemChanged.connect(self._item_changed)
        self.table.cellClicked.connect(self._cell_clicked)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        v.addWidget(self.table)
        row = QHBoxLayout()
        self.add_button = QPushButton("Add")
        self.add_button.setToolTip("Add a segment and make it active")
        self.add_button.clicked.connect(lambda: self.controller.add_segment())
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(self._remove)
        self.show_masks = QCheckBox("Show masks (H)")
        self.show_masks.setChecked(True)
        self.show_masks.toggled.connect(self.controller.set_masks_visible)
        self.outline = QCheckBox("Outline")
        self.outline.setChecked(True)
        self.outline.toggled.connect(self.controller.display.set_outline)
        row.addWidget(self.add_button)
        row.addWidget(self.remove_button)
        row.addStretch(1)
        row.addWidget(self.show_masks)
        row.addWidget(self.outline)
        v.addLayout(row)
        return box

    def _tools_box(self) -> QGroupBox:
        c = self.controller
        box = QGroupBox("Tools")
        v = QVBoxLayout(box)
        grid = QGridLayout()
        self.tool_buttons: dict[str, QToolButton] = {}
        for n, key in enumerate(("brush", "eraser", "threshold", "fill")):
            text, shortcut = TOOLS[key]
            button = QToolButton()
            button.setText(f"{text.split('(')[0].replace('&', '').strip()} ({shortcut})")
            button.setCheckable(True)
            button.setToolButtonStyle(Qt.ToolButtonTextOnly)
            button.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
            button.setStyleSheet(TOOL_STYLE)
            button.clicked.connect(lambda _=False, k=key: self._tool_clicked(k))
            grid.addWidget(button, n // 2, n % 2)
            self.tool_buttons[key] = button
        v.addLayout(grid)

        row = QHBoxLayout()
        row.addWidget(QLabel("Size"))
        self.size_slider = QSlider(Qt.Horizontal)
        self.size_slider.setRange(1, 100)  # 0.5 mm steps up to 50 mm
        self.size_slider.valueChanged.connect(lambda v: self._set_radius(v / 2.0))
        self.size_spin = QDoubleSpinBox()
        self.size_spin.setRange(0.5, 100.0)
        self.size_spin.setDecimals(1)
        self.size_spin.setSuffix(" mm")
        self.size_spin.setToolTip("Brush radius in millimetres ([ and ] or Shift+wheel)")
        self.size_spin.valueChanged.connect(self._set_radius)
        self.sphere = QCheckBox("3D sphere")
        self.sphere.setToolTip("Paint a sphere (all slices) instead of a disc in the shown slice")
        self.sphere.toggled.connect(c.set_sphere)
        row.addWidget(self.size_slider, 1)
        row.addWidget(self.size_spin)
        row.addWidget(self.sphere)
        v.addLayout(row)

        row = QHBoxLayout()
        self.range_label = QLabel("HU")
        row.addWidget(self.range_label)
        self.hu_min = QDoubleSpinBox()
        self.hu_max = QDoubleSpinBox()
        for spin in (self.hu_min, self.hu_max):
            spin.setRange(-3000.0, 30000.0)
            spin.setDecimals(0)
            spin.valueChanged.connect(self._set_range)
        self.hu_preset = QComboBox()
        self.hu_preset.addItem("Range\u2026")
        self.hu_preset.addItems(list(HU_PRESETS))
        self.hu_preset.activated.connect(self._preset)
        row.addWidget(self.hu_min)
        row.addWidget(QLabel("to"))
        row.addWidget(self.hu_max)
        row.addWidget(self.hu_preset, 1)
        v.addLayout(row)
        hint = QLabel(
            "Threshold brush and flood fill paint voxels in this range; fill is 2D in the "
            'clicked slice, 3D with "3D sphere".'
        )
        hint.setStyleSheet("color: gray;")
        hint.setWordWrap(True)
        v.addWidget(hint)

        ops = QGridLayout()
        self.islands_size = QDoubleSpinBox()
        self.islands_size.setRange(1.0, 1e6)
        self.islands_size.setDecimals(0)
        self.islands_size.setValue(100.0)
        self.islands_size.setSuffix(" mm\u00b3")
        self.margin = QDoubleSpinBox()
        self.margin.setRange(0.5, 50.0)
        self.margin.setValue(2.0)
        self.margin.setSuffix(" mm")
        buttons = [
            (
                "Remove islands <",
                lambda: c.operate("islands", min_size_mm3=self.islands_size.value()),
            ),
            ("Keep largest", lambda: c.operate("largest")),
            ("Fill holes", lambda: c.operate("holes")),
            ("Fill between slices", lambda: c.operate("interpolate")),
            ("Grow", lambda: c.operate("margin", margin_mm=self.margin.value())),
            ("Shrink", lambda: c.operate("margin", margin_mm=-self.margin.value())),
        ]
        tips = {
            "Remove islands <": "Clear the pieces of the active segment smaller than this volume",
            "Keep largest": "Keep only the largest connected piece of the active segment",
            "Fill holes": "Fill the holes of the active segment, slice by slice in the active view",
            "Fill between slices": "Interpolate the active segment between the slices drawn "
            "in the active view (draw every few slices, then fill)",
            "Grow": "Grow the active segment by the margin (mm)",
            "Shrink": "Shrink the active segment by the margin (mm)",
        }
        self.op_buttons = {}
        for text, slot in buttons:
            button = QPushButton(text)
            button.setToolTip(tips[text])
            button.clicked.connect(slot)
            self.op_buttons[text] = button
        ops.addWidget(self.op_buttons["Remove islands <"], 0, 0)
        ops.addWidget(self.islands_size, 0, 1)
        ops.addWidget(self.op_buttons["Keep largest"], 1, 0)
        ops.addWidget(self.op_buttons["Fill holes"], 1, 1)
        ops.addWidget(self.op_buttons["Fill between slices"], 2, 0, 1, 2)
        grow = QHBoxLayout()
        grow.addWidget(self.op_buttons["Grow"])
        grow.addWidget(self.op_buttons["Shrink"])
        grow.addWidget(self.margin)
        ops.addLayout(grow, 3, 0, 1, 2)
        v.addLayout(ops)

        row = QHBoxLayout()
        self.undo_button = QPushButton("Undo")
        self.undo_button.clicked.connect(c.undo)
        self.redo_button = QPushButton("Redo")
        self.redo_button.clicked.connect(c.redo)
        row.addWidget(self.undo_button)
        row.addWidget(self.redo_button)
        v.addLayout(row)
        return box

    def _model_box(self) -> QGroupBox:
        box = QGroupBox("Run a segmentation model")
        v = QVBoxLayout(box)
        row = QHBoxLayout()
        self.model_combo = QComboBox()
        self.run_button = QPushButton("Run")
        self.run_button.clicked.connect(
            lambda: self.controller.run_model(self.model_combo.currentData() or "")
        )
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.controller.cancel_model)
        row.addWidget(self.model_combo, 1)
        row.addWidget(self.run_button)
        row.addWidget(self.cancel_button)
        v.addLayout(row)
        self.progress = QProgressBar()
        v.addWidget(self.progress)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        v.addWidget(self.status)
        return box

    # -- segments -------------------------------------------------------------------------
    def refresh_segments(self) -> None:
        lm = self.controller.labelmap
        segments = sorted(lm.segments.items()) if lm is not None else []
        self._updating = True
        try:
            self.table.setRowCount(len(segments))
            for row, (label, seg) in enumerate(segments):
                swatch = QTableWidgetItem("")
                swatch.setFlags(Qt.ItemIsEnabled | Qt.ItemIsSelectable)
                swatch.setIcon(_swatch(seg.color))  # an icon stays visible when selected
                swatch.setToolTip("Click to change the colour")
                swatch.setData(Qt.UserRole, label)
                name = QTableWidgetItem(seg.name)
                name.setFlags(Qt.ItemIsEnabled | Qt.ItemIsSelectable | Qt.ItemIsEditable)
                name.setToolTip(f"label {label} \u2014 {seg.type.meaning}")
                self.table.setItem(row, COL_COLOUR, swatch)
                self.table.setItem(row, COL_NAME, name)
                for col, on in ((COL_VISIBLE, seg.visible), (COL_LOCKED, seg.locked)):
                    item = QTableWidgetItem("")
                    item.setFlags(Qt.ItemIsEnabled | Qt.ItemIsSelectable | Qt.ItemIsUserCheckable)
                    item.setCheckState(Qt.Checked if on else Qt.Unchecked)
                    self.table.setItem(row, col, item)
                spin = self.table.cellWidget(row, COL_OPACITY)
                if not isinstance(spin, QSpinBox):
                    spin = QSpinBox()
                    spin.setRange(0, 100)
                    spin.setSuffix(" %")
                    spin.setFrame(False)
                    spin.valueChanged.connect(lambda v, s=spin: self._opacity(s, v))
                    self.table.setCellWidget(row, COL_OPACITY, spin)
                spin.blockSignals(True)
                spin.setValue(int(round(seg.opacity * 100)))
                spin.setProperty("label", label)
                spin.blockSignals(False)
        finally:
            self._updating = False
        self.remove_button.setEnabled(bool(segments))
        self._show_active(self.controller.active_label)

    def label_at(self, row: int) -> int | None:
        item = self.table.item(row, COL_COLOUR)
        return None if item is None else int(item.data(Qt.UserRole))

    def row_of(self, label: int) -> int:
        for row in range(self.table.rowCount()):
            if self.label_at(row) == label:
                return row
        return -1

    def _show_active(self, label: int) -> None:
        row = self.row_of(label)
        self._updating = True
        try:
            if row >= 0:
                self.table.selectRow(row)
            else:
                self.table.clearSelection()
        finally:
            self._updating = False

    def _selection_changed(self) -> None:
        if self._updating:
            return
        rows = {i.row() for i in self.table.selectedIndexes()}
        if rows:
            label = self.label_at(min(rows))
            if label is not None:
                self.controller.set_active(label)

    def _item_changed(self, item: QTableWidgetItem) -> None:
        if self._updating:
            return
        label = self.label_at(item.row())
        if label is None:
            return
        col = item.column()
        if col == COL_NAME:
            name = item.text().strip()
            if name:
                self.controller.update_segment(label, name=name)
            else:
                self.refresh_segments()
        elif col in (COL_VISIBLE, COL_LOCKED):
            key = "visible" if col == COL_VISIBLE else "locked"
            self.controller.update_segment(label, **{key: item.checkState() == Qt.Checked})

    def _opacity(self, spin: QSpinBox, value: int) -> None:
        label = spin.property("label")
        if not self._updating and label is not None:
            self.controller.update_segment(int(label), opacity=value / 100.0)

    def _cell_clicked(self, row: int, col: int) -> None:
        if col != COL_COLOUR:
            return
        label = self.label_at(row)
        lm = self.controller.labelmap
        if label is None or lm is None:
            return
        dialog = QColorDialog(QColor(*lm.segments[label].color), self)
        dialog.setWindowTitle(f"Colour of {lm.segments[label].name}")
        dialog.colorSelected.connect(
            lambda col: self.controller.update_segment(
                label, color=(col.red(), col.green(), col.blue())
            )
        )
        dialog.setAttribute(Qt.WA_DeleteOnClose)
        dialog.open()
        self.colour_dialog = dialog

    def _remove(self) -> None:
        label = self.controller.active_label
        lm = self.controller.labelmap
        if lm is None or label not in lm.segments:
            return
        box = QMessageBox(
            QMessageBox.Question,
            "Remove segment",
            f"Remove {lm.segments[label].name} and its voxels? This clears the undo history.",
            QMessageBox.Yes | QMessageBox.Cancel,
            self,
        )
        box.setAttribute(Qt.WA_DeleteOnClose)
        box.accepted.connect(lambda: self.controller.remove_segment(label))
        box.open()
        self.remove_box = box

    # -- tools ----------------------------------------------------------------------------
    def _tool_clicked(self, key: str) -> None:
        self.controller.set_tool(key)
        self._show_tool(key)

    def _show_tool(self, key: str) -> None:
        for k, button in self.tool_buttons.items():
            button.setChecked(k == key)

    def _set_radius(self, mm: float) -> None:
        if not self._updating:
            self.controller.set_radius(mm)
            self._show_brush()

    def _set_range(self, _value=None) -> None:
        if not self._updating:
            self.controller.set_hu_range(self.hu_min.value(), self.hu_max.value())
            self.hu_preset.setCurrentIndex(0)

    def _preset(self, index: int) -> None:
        if index > 0:
            lo, hi = HU_PRESETS[self.hu_preset.itemText(index)]
            self.controller.set_hu_range(lo, hi)
            self._show_brush()
            self.hu_preset.setCurrentIndex(index)

    def _show_brush(self) -> None:
        c = self.controller
        self._updating = True
        try:
            self.size_spin.setValue(c.radius_mm)
            self.size_slider.setValue(int(round(min(c.radius_mm, 50.0) * 2)))
            self.sphere.setChecked(c.sphere)
            self.hu_min.setValue(c.hu_range[0])
            self.hu_max.setValue(c.hu_range[1])
        finally:
            self._updating = False

    def _show_history(self) -> None:
        self.controller.show_history(self.undo_button, self.redo_button)

    def _volume_changed(self, volume) -> None:
        """The range is in Hounsfield units on CT, in the image's own values otherwise."""
        ct = volume is not None and (volume.modality or "").upper() == "CT"
        self.range_label.setText("HU" if ct else "Value")

    # -- model ----------------------------------------------------------------------------
    def set_models(self, specs) -> None:
        current = self.model_combo.currentData()
        self.model_combo.clear()
        for spec in specs:
            self.model_combo.addItem(f"{spec.name} {spec.version}", spec.name)
            self.model_combo.setItemData(
                self.model_combo.count() - 1, spec.intended_use or spec.name, Qt.ToolTipRole
            )
        index = self.model_combo.findData(current)
        if index >= 0:
            self.model_combo.setCurrentIndex(index)
        self.run_button.setEnabled(
            self.model_combo.count() > 0 and not self.controller.model_running
        )
        if not specs:
            self.status.setText("No segmentation model installed.")


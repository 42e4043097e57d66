"""The AI assistant panel: model choice and card, run/cancel, class probabilities, CAM controls.

A view only: it emits what the user asks for; viewer.qt.ai_controller runs the model in the
AI process and calls :meth:`AIPanel.show_prediction`. The research-use notice is permanent.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSlider,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from viewer.qt.model_trust import model_label
from viewer.qt.panels.model_run import ModelRunStatus

NOTICE = "Research use only \u2014 not for diagnostic use"
COLOUR_MAPS = ("inferno", "jet", "hot")


class AIPanel(ModelRunStatus, QWidget):
    run_requested = Signal(str)  # model name
    cancel_requested = Signal()
    style_changed = Signal(str, float, float, bool)  # colour map, threshold, opacity, visible
    export_requested = Signal()
    models_requested = Signal()  # the models dialog (trust, integrity)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._cards: dict[str, Path | None] = {}
        self._notes: dict[str, str] = {}  # model name -> why it needs trust / cannot run
        layout = QVBoxLayout(self)
        notice = QLabel(NOTICE)
        notice.setObjectName("ai-notice")
        notice.setStyleSheet("color: #b00020; font-weight: bold;")
        notice.setWordWrap(True)
        layout.addWidget(notice)

        row = QHBoxLayout()
        self.model_combo = QComboBox()
        self.card_button = QPushButton("Card\u2026")
        self.card_button.clicked.connect(self.show_card)
        self.models_button = QPushButton("Models\u2026")
        self.models_button.setToolTip("Installed models: integrity, trust")
        self.models_button.clicked.connect(self.models_requested.emit)
        row.addWidget(self.model_combo, 1)
        row.addWidget(self.card_button)
        row.addWidget(self.models_button)
        layout.addLayout(row)
        self.model_combo.currentIndexChanged.connect(self._show_note)

        row = QHBoxLayout()
        self.run_button = QPushButton("Classify current image")
        self.run_button.clicked.connect(
            lambda: self.run_requested.emit(self.model_combo.currentData() or "")
        )
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel_requested.emit)
        self.cancel_button.setEnabled(False)
        row.addWidget(self.run_button, 1)
        row.addWidget(self.cancel_button)
        layout.addLayout(row)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        layout.addWidget(self.progress)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)

        self.result_title = QLabel("")
        self.result_title.setStyleSheet("font-weight: bold;")
        layout.addWidget(self.result_title)
        self.bars_box = QVBoxLayout()
        layout.addLayout(self.bars_box)
        self.bars: dict[str, QProgressBar] = {}

        form = QFormLayout()
        self.show_cam = QCheckBox("Show heatmap (CAM)")
        self.show_cam.setChecked(True)
        self.colour = QComboBox()
        self.colour.addItems(COLOUR_MAPS)
        self.opacity = QSlider(Qt.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(50)
        self.threshold = QSlider(Qt.Horizontal)
        self.threshold.setRange(0, 95)
        self.threshold.setValue(20)
        form.addRow(self.show_cam)
        form.addRow("Colours", self.colour)
        form.addRow("Opacity", self.opacity)
        form.addRow("Threshold", self.threshold)
        layout.addLayout(form)
        for signal in (
            self.show_cam.toggled,
            self.colour.currentIndexChanged,
            self.opacity.valueChanged,
            self.threshold.valueChanged,
        ):
            signal.connect(self._emit_style)
        self.export_button = QPushButton("Export overlay as PNG\u2026")
        self.export_button.clicked.connect(self.export_requested.emit)
        layout.addWidget(self.export_button)
        layout.addStretch(1)
        self.set_busy(False)
        self.clear_prediction()

    # -- models ---------------------------------------------------------------------------
    def set_models(self, models, checks: dict | None = None) -> None:
        """models: specs with .name, .version, .card_path (classification models);
        checks: name -> :class:`ai.trust.ModelCheck`: a model that needs trust or cannot be
        used says so in the list, and its reason shows when it is selected."""
        current = self.model_combo.currentData()
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        self._cards.clear()
        self._notes.clear()
        for spec in models:
            check = (checks or {}).get(spec.name)
            self.model_combo.addItem(model_label(spec, check), spec.name)
            self._cards[spec.name] = spec.card_path
            if check is not None and check.problem:
                self._notes[spec.name] = check.problem
                self.model_combo.setItemData(
                    self.model_combo.count() - 1, check.problem, Qt.ToolTipRole
                )
        if current is not None and self.model_combo.findData(current) >= 0:
            self.model_combo.setCurrentIndex(self.model_combo.findData(current))
        self.model_combo.blockSignals(False)
        self._show_note()
        has = self.model_combo.count() > 0
        self.run_button.setEnabled(has)
        self.card_button.setEnabled(has)
        if not has:
            self.status.setText("No classification model installed.")

    def _show_note(self, *_args) -> None:
        """The selected model's trust or integrity problem, in the status line."""
        if self.cancel_button.isEnabled():  # a run is going on: its messages stay
            return
        self.status.setText(self._notes.get(self.model_combo.currentData() or "", ""))

    def show_card(self) -> None:
        path = self._cards.get(self.model_combo.currentData() or "")
        dialog = QDialog(self)
        dialog.setWindowTitle("Model card")
        browser = QTextBrowser(dialog)
        if path is not None and Path(path).exists():
            browser.setSearchPaths([str(Path(path).parent)])
            browser.document().setBaseUrl(QUrl.fromLocalFile(str(Path(path).parent) + "/"))
            browser.setMarkdown(Path(path).read_text(encoding="utf-8"))
        else:
            browser.setPlainText("This model has no card.")
        buttons = QDialogButtonBox(QDialogButtonBox.Close, dialog)
        buttons.rejected.connect(dialog.reject)
        box = QVBoxLayout(dialog)
        box.addWidget(browser)
        box.addWidget(buttons)
        dialog.resize(760, 640)
        dialog.setAttribute(Qt.WA_DeleteOnClose)
        dialog.open()
        self.card_dialog = dialog

    # -- state ----------------------------------------------------------------------------

    def clear_prediction(self) -> None:
        self.result_title.setText("")
        for bar in self.bars.values():
            bar.deleteLater()
        self.bars.clear()
        self.export_button.setEnabled(False)

    def show_prediction(self, prediction, where: str = "") -> None:
        """Probabilities as bars, most likely first; ``where`` names the image classified."""
        self.clear_prediction()
        probs = sorted(prediction.probabilities.items(), key=lambda kv: -kv[1])
        self.result_title.setText(
            f"{prediction.label} ({prediction.probabilities[prediction.label]:.0%})"
            + (f" \u2014 {where}" if where else "")
        )
        for name, p in probs:
            bar = QProgressBar()
            bar.setRange(0, 1000)
            bar.setValue(int(round(p * 1000)))
            bar.setFormat(f"{name}  {p:.1%}")
            self.bars_box.addWidget(bar)
            self.bars[name] = bar
        self.status.setText(
            f"{prediction.model} {prediction.version} on {prediction.device}"
            + ("" if prediction.cam is not None else " (no heatmap)")
        )
        self.export_button.setEnabled(True)

    def style(self) -> tuple[str, float, float, bool]:
        return (
            self.colour.currentText(),
            self.threshold.value() / 100.0,
            self.opacity.value() / 100.0,
            self.show_cam.isChecked(),
        )

    def _emit_style(self, *_args) -> None:
        self.style_changed.emit(*self.style())

"""Model trust in the viewer: the confirmation dialog, the models dialog, the AI panel.

The user models are hand-written Keras zips (tests/test_cli_models.py builders): nothing is
deserialised in this process, and TensorFlow never enters it.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from PySide6.QtWidgets import QDialogButtonBox, QWidget

from ai.registry import Registry
from ai.trust import TrustStore
from tests.test_cli_models import CODE, LAMBDA, TWICE, make_model
from viewer.core.demo import write_series
from viewer.qt.model_trust import TrustGate


@pytest.fixture
def root(tmp_path):
    root = tmp_path / "models"
    make_model(root, "u-plain")
    make_model(root, "u-custom", [TWICE], code=CODE)
    make_model(root, "u-lambda", [LAMBDA])
    tampered = make_model(root, "u-tampered")
    with open(tampered / "model.keras", "ab") as f:
        f.write(b"!")
    (root / "u-broken").mkdir()
    (root / "u-broken" / "model.json").write_text("[]")
    return root


@pytest.fixture
def gate(qtbot, root, tmp_path):
    parent = QWidget()
    qtbot.addWidget(parent)
    registry = Registry([root])
    return TrustGate(parent, lambda: registry, store=TrustStore(tmp_path / "trust.json"))


def test_trust_dialog_states_the_risk_and_records_only_when_accepted(qtbot, gate, tmp_path):
    runs, refusals = [], []
    assert gate.ready("u-plain", lambda: runs.append("plain"))
    assert not gate.ready("u-custom", lambda: runs.append("custom"), refusals.append)
    dialog = gate.dialog
    assert dialog.isVisible() and dialog.windowTitle() == "Trust model u-custom?"
    risk = dialog.risk.text()
    assert "run its own program code on this computer" in risk
    assert "custom_layers.py (classes Twice)" in risk and "revokes the trust" in risk
    assert "sha256" in dialog.details.text() and "Classes: Twice" in dialog.details.text()
    assert dialog.cancel_button.isDefault() and not dialog.trust_button.isDefault()
    dialog.cancel_button.click()
    assert runs == [] and not (tmp_path / "trust.json").exists()

    assert not gate.ready("u-custom", lambda: runs.append("custom"), refusals.append)
    with qtbot.waitSignal(gate.changed):
        gate.dialog.trust_button.click()
    assert runs == ["custom"]  # the run goes on once trusted
    assert gate.store.get("u-custom").code_file == "custom_layers.py"
    assert gate.ready("u-custom", lambda: None)
    assert not gate.ready("u-tampered", lambda: runs.append("bad"), refusals.append)
    assert refusals == [
        "model 'u-tampered' cannot be used: weights file model.keras does not match model.json "
        f"(sha256 {refusals[0].split('(sha256 ')[1]}"
    ]
    assert runs == ["custom"] and "\n" not in refusals[0]


def test_models_dialog_lists_every_model_and_trusts_or_untrusts(qtbot, gate):
    dialog = gate.show_models()
    qtbot.waitExposed(dialog)
    table = dialog.table
    rows = {
        table.item(r, 0).text(): [table.item(r, c).text() for c in range(6)]
        for r in range(table.rowCount())
    }
    assert rows["u-lambda"][3:] == ["user", "needs-trust", "ok"]
    assert rows["u-tampered"][4:] == ["-", "mismatch"]
    assert rows["u-broken"][4:] == ["-", "bad-spec"]
    registry = gate.registry()
    assert gate.label(registry.get("u-lambda")) == "u-lambda 0.1.0 \u2014 needs trust"
    assert gate.label(registry.get("u-tampered")) == "u-tampered 0.1.0 \u2014 cannot be used"
    assert gate.label(registry.get("u-plain")) == "u-plain 0.1.0"
    dialog.select("u-tampered")
    assert "does not match model.json" in dialog.reason.text()
    assert not dialog.trust_button.isEnabled() and not dialog.untrust_button.isEnabled()
    dialog.select("u-lambda")
    assert "Lambda layer(s) doubler" in dialog.reason.text()
    dialog.trust_button.click()
    assert "Lambda layers doubler stored in model.keras" in gate.dialog.risk.text()
    gate.dialog.trust_button.click()
    assert dialog.current().name == "u-lambda" and dialog.current().trust == "trusted"
    assert dialog.untrust_button.isEnabled()
    dialog.untrust_button.click()
    assert dialog.current().trust == "needs-trust" and gate.store.get("u-lambda") is None


def test_ai_panel_marks_models_and_asks_before_running(qtbot, root, tmp_path, monkeypatch, request):
    monkeypatch.setenv("RADVIEW_MODELS", str(root))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    window = request.getfixturevalue("window")
    load = request.getfixturevalue("load")
    panel, ai = window.ai_panel, window.ai
    qtbot.waitUntil(lambda: panel.model_combo.findData("u-custom") >= 0, timeout=5000)
    texts = {
        panel.model_combo.itemData(i): panel.model_combo.itemText(i)
        for i in range(panel.model_combo.count())
    }
    assert texts["u-custom"] == "u-custom 0.1.0 \u2014 needs trust"
    assert texts["u-tampered"] == "u-tampered 0.1.0 \u2014 cannot be used"
    assert texts["u-plain"] == "u-plain 0.1.0"
    panel.model_combo.setCurrentIndex(panel.model_combo.findData("u-custom"))
    assert "needs your trust" in panel.status.text()
    hu = np.zeros((1, 40, 48), dtype=np.int16)
    hu[0, 10:30, 20:40] = 800
    write_series(hu, tmp_path / "cr", modality="CT", spacing=(1.0, 0.5, 0.5))
    load(window, tmp_path / "cr")
    panel.run_button.click()
    assert ai.trust.dialog is not None and ai.trust.dialog.isVisible()
    assert not panel.cancel_button.isEnabled()  # nothing runs before the answer
    ai.trust.dialog.findChild(QDialogButtonBox).rejected.emit()
    assert not panel.cancel_button.isEnabled() and ai.client is None
    panel.model_combo.setCurrentIndex(panel.model_combo.findData("u-tampered"))
    panel.run_button.click()
    assert panel.status.text().startswith("model 'u-tampered' cannot be used: weights file")
    assert ai.client is None
    # trusting from the dialog refreshes the list and starts the run
    panel.model_combo.setCurrentIndex(panel.model_combo.findData("u-custom"))
    panel.run_button.click()
    ai.trust.dialog.trust_button.click()
    assert panel.model_combo.currentText() == "u-custom 0.1.0"
    assert ai.client is not None
    # its placeholder weights cannot load: one line, in the status, from the AI process
    qtbot.waitUntil(lambda: not panel.cancel_button.isEnabled(), timeout=120000)
    assert "cannot be loaded" in panel.status.text() and "\n" not in panel.status.text()
    assert "tensorflow" not in sys.modules and not [
        m for m in sys.modules if m.startswith("radview_custom_")
    ]

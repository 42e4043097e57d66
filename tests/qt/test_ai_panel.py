"""The AI panel in the main window, end to end through the AI process (real widgets).

TensorFlow must not enter this (VTK) process: the tiny test model is built by a
subprocess with the builders of tests/ai/conftest.py, and inference runs in the AI process.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from viewer.core.demo import write_series
from viewer.render.offscreen import capture_rgb

BUILD = textwrap.dedent("""
    import importlib.util, sys
    from pathlib import Path
    spec = importlib.util.spec_from_file_location("ai_conftest", sys.argv[1])
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    root = Path(sys.argv[2])
    mod.write_model(root / "tiny-cam", mod.gap_model(0), mod.classifier_spec("tiny-cam"))
""")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("ai-models")
    conftest = Path(__file__).parents[1] / "ai" / "conftest.py"
    subprocess.run(
        [sys.executable, "-c", BUILD, str(conftest), str(root)], check=True, capture_output=True
    )
    return root


def test_classify_radiograph_shows_bars_and_heatmap(qtbot, window, load, tmp_path):
    hu = np.zeros((1, 96, 128), dtype=np.int16)
    hu[0, 30:70, 70:110] = 900
    write_series(hu, tmp_path / "cr", modality="CT", spacing=(1.0, 0.5, 0.5))
    load(window, tmp_path / "cr")
    panel, ai = window.ai_panel, window.ai
    assert "tiny-cam" in [panel.model_combo.itemData(i) for i in range(panel.model_combo.count())]
    assert panel.findChild(type(panel.status), "ai-notice").text().startswith("Research use")
    view = window.views.viewports["image"]
    qtbot.waitUntil(lambda: view.isVisible() and view.width() > 200, timeout=5000)
    before = capture_rgb(view.GetRenderWindow())
    panel.model_combo.setCurrentIndex(panel.model_combo.findData("tiny-cam"))
    panel.run_button.click()
    qtbot.waitUntil(lambda: not panel.cancel_button.isEnabled(), timeout=120000)
    assert set(panel.bars) == {"covid", "other"}, panel.status.text()
    (prediction,) = ai.results.values()
    assert sum(prediction.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert prediction.cam.shape == (96, 128) and prediction.cam.dtype == np.float32
    assert ai.layer is not None
    after = capture_rgb(view.GetRenderWindow())
    assert np.abs(after.astype(int) - before.astype(int)).max() > 30  # the heatmap is drawn
    panel.show_cam.setChecked(False)
    hidden = capture_rgb(view.GetRenderWindow())
    assert np.abs(hidden.astype(int) - before.astype(int)).max() < 30
    out = tmp_path / "overlay.png"
    ai.save_overlay(str(out))
    assert out.stat().st_size > 1000
    assert "tensorflow" not in sys.modules  # inference ran in the AI process


def test_results_are_kept_per_slice(qtbot, window, load, tmp_path):
    hu = np.zeros((6, 40, 48), dtype=np.int16)
    hu[:, 10:30, 20:40] = 800
    write_series(hu, tmp_path / "ct", spacing=(2.0, 1.0, 1.0))
    load(window, tmp_path / "ct")
    panel, ai = window.ai_panel, window.ai
    panel.model_combo.setCurrentIndex(panel.model_combo.findData("tiny-cam"))
    panel.run_button.click()
    qtbot.waitUntil(lambda: len(ai.results) == 1, timeout=120000)
    (key,) = ai.results
    assert ai.layer is not None
    window.views.scroll_active(1)
    assert ai.layer is None  # no result for this slice
    window.views.scroll_active(-1)
    assert ai.layer is not None and ai._layer_key == key


@pytest.fixture(autouse=True)
def _models_folder(models, monkeypatch):
    monkeypatch.setenv("RADVIEW_MODELS", str(models))

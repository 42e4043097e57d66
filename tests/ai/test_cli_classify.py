"""``radview classify``: the --json / --cam-dir contract end to end (one AI process)."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from viewer.cli import main
from viewer.core.demo import write_series


@pytest.fixture
def inputs(tmp_path, helpers):
    import SimpleITK as sitk
    from pydicom.data import get_testdata_file

    png = tmp_path / "chest.png"
    picture = np.clip(helpers.chest_like(70, 110) / 16, 0, 255).astype(np.uint8)
    sitk.WriteImage(sitk.GetImageFromArray(picture), str(png))
    dcm = tmp_path / "ct_small.dcm"
    shutil.copy(get_testdata_file("CT_small.dcm"), dcm)
    folder = tmp_path / "series"
    hu = np.random.default_rng(0).normal(-500, 100, (5, 24, 40)).astype(np.int16)
    files = write_series(hu, folder)
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n this is not a picture")
    return {"png": png, "dcm": dcm, "folder": folder, "middle": files[2], "bad": bad,
            "shape": picture.shape}


def test_classify_json_and_cam_dir(inputs, models_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RADVIEW_MODELS", str(models_dir))
    cams = tmp_path / "cams"
    args = ["classify", str(inputs["png"]), str(inputs["dcm"]), str(inputs["folder"]),
            str(inputs["bad"]), str(tmp_path / "missing.dcm"),
            "--model", "tiny-cam", "--json", "--cam-dir", str(cams)]
    assert main(args) == 1  # the command ran; some inputs failed
    out = json.loads(capsys.readouterr().out)  # exactly one JSON object
    assert set(out) == {"model", "results"}
    assert out["model"] == {"name": "tiny-cam", "version": "0.0.1", "device": "CPU"}
    by_source = {r["source"]: r for r in out["results"]}
    expected = {
        str(inputs["png"].absolute()): inputs["shape"],
        str(inputs["dcm"].absolute()): (128, 128),
        str(inputs["middle"].absolute()): (24, 40),  # a CT volume: its middle slice
    }
    for source, shape in expected.items():
        result = by_source[source]
        assert set(result) == {"source", "label", "probabilities"}  # the contract, exactly
        assert os.path.isabs(source)
        assert result["label"] in ("covid", "other")
        assert set(result["probabilities"]) == {"covid", "other"}
        assert sum(result["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        stem = os.path.splitext(os.path.basename(source))[0]
        cam = np.load(cams / f"{stem}.npy")
        assert cam.dtype == np.float32 and cam.shape == shape
        assert cam.min() >= 0 and cam.max() <= 1
    for name in ("bad", None):
        source = str(inputs[name].absolute()) if name else str(tmp_path / "missing.dcm")
        assert set(by_source[source]) == {"source", "error"}
        assert "\n" not in by_source[source]["error"]
    assert len(out["results"]) == 5


def test_classify_table_and_unknown_model(inputs, models_dir, monkeypatch, capsys):
    monkeypatch.setenv("RADVIEW_MODELS", str(models_dir))
    assert main(["classify", str(inputs["png"]), "--model", "no-such-model"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("radview: error: unknown model 'no-such-model' (classification models: ")
    assert "tiny-cam" in err and "\n" not in err
    assert main(["classify", str(inputs["png"]), "--model", "tiny-lungs"]) == 2
    assert "not a classifier" in capsys.readouterr().err


def test_readable_table():
    from viewer.cli import format_predictions

    text = format_predictions(
        {"name": "m", "version": "1", "device": "CPU"}, ("covid", "other"),
        [{"source": "/a.png", "label": "covid", "probabilities": {"covid": 0.9, "other": 0.1}},
         {"source": "/b.dcm", "error": "not a DICOM file"}])
    lines = text.splitlines()
    assert lines[0].startswith("model m 1 on CPU") and "not for diagnostic use" in lines[0]
    assert lines[2].split() == ["source", "label", "covid", "other"]
    assert lines[3].split() == ["/a.png", "covid", "0.900", "0.100"]
    assert lines[4].split(None, 1) == ["/b.dcm", "error: not a DICOM file"]


def test_cli_process_stdout_is_one_json_object_and_has_no_tensorflow(inputs, models_dir):
    """A real process: nothing else reaches fd 1 (the AI process's TensorFlow included)."""
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from viewer.cli import main\n"
        "code = main(sys.argv[1:])\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras'))\n"
        "print('heavy:', heavy, file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    env = {**os.environ, "RADVIEW_MODELS": str(models_dir)}
    out = subprocess.run(
        [sys.executable, "-c", probe, "classify", str(inputs["png"]), "--model", "tiny-gradcam",
         "--json"], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout)
    assert result["results"][0]["source"] == str(inputs["png"].absolute())
    assert "heavy: []" in out.stderr

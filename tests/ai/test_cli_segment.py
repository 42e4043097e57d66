"""``radview segment`` with a (tiny) network model: the CLI contract end to end, a real CT
slice to a DICOM SEG that dciodvfy accepts, and one model load for many inputs."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
import SimpleITK as sitk

from viewer.cli import main
from viewer.core.demo import write_series


@pytest.fixture
def inputs(tmp_path, helpers):
    from pydicom.data import get_testdata_file

    png = tmp_path / "chest.png"
    picture = np.clip(helpers.chest_like(70, 110) / 16, 0, 255).astype(np.uint8)
    sitk.WriteImage(sitk.GetImageFromArray(picture), str(png))
    jpeg = tmp_path / "jpeg" / "chest.jpg"  # the PNG's stem: its labels become chest-2.png
    jpeg.parent.mkdir()
    sitk.WriteImage(sitk.GetImageFromArray(picture), str(jpeg))
    dcm = tmp_path / "ct_small.dcm"
    shutil.copy(get_testdata_file("CT_small.dcm"), dcm)
    hu = np.full((5, 24, 40), -800, np.int16)
    hu[:, 6:18, 20:36] = 300  # bright: 'lung' to tiny-lungs (percentile scale, x > 0.5)
    write_series(hu, tmp_path / "series", spacing=(2.0, 0.5, 0.75))
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n this is not a picture")
    return {
        "png": png,
        "jpeg": jpeg,
        "dcm": dcm,
        "folder": tmp_path / "series",
        "bad": bad,
        "picture": picture,
    }


@pytest.fixture(autouse=True)
def _models(models_dir, monkeypatch):
    monkeypatch.setenv("RADVIEW_MODELS", str(models_dir))


def _segment(capsys, *args):
    code = main(["segment", *map(str, args), "--model", "tiny-lungs"])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_json_contract_and_out_dir(inputs, tmp_path, capsys, monkeypatch):
    from ai.process.client import AIClient

    calls = []
    original = AIClient.segment_volume

    def recording(self, *args, **kwargs):  # one model load for all inputs: none in here
        kwargs["progress"] = lambda f, m: calls.append(m)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(AIClient, "segment_volume", recording)
    out_dir = tmp_path / "labels"
    code, stdout, _ = _segment(
        capsys,
        inputs["png"],
        inputs["jpeg"],
        inputs["dcm"],
        inputs["folder"],
        inputs["bad"],
        tmp_path / "missing.png",
        "--json",
        "--out-dir",
        out_dir,
    )
    assert code == 1  # two inputs failed
    doc = json.loads(stdout)
    assert set(doc) == {"model", "labels", "results"}
    assert doc["model"] == {"name": "tiny-lungs", "version": "0.0.1", "device": "CPU"}
    assert doc["labels"] == {"1": "lung"}
    assert len(doc["results"]) == 6
    by_source = {r["source"]: r for r in doc["results"]}
    for name in ("bad", None):
        source = str(inputs[name].absolute()) if name else str(tmp_path / "missing.png")
        assert set(by_source[source]) == {"source", "error"}
        assert "\n" not in by_source[source]["error"]

    png = by_source[str(inputs["png"].absolute())]
    assert set(png) == {"source", "output", "volumes_ml"}
    assert png["output"] == str(out_dir / "chest.png")
    assert png["volumes_ml"] == {"lung": None}  # a picture has no physical size
    labels = sitk.GetArrayFromImage(sitk.ReadImage(png["output"]))
    assert labels.shape == inputs["picture"].shape and labels.dtype == np.uint8
    assert (labels[22:38, 52:73] == 1).all() and (labels[:15] == 0).all()  # the bright block
    jpeg = by_source[str(inputs["jpeg"].absolute())]
    assert jpeg["output"] == str(out_dir / "chest-2.png")  # two inputs with one stem
    jpeg_labels = sitk.GetArrayFromImage(sitk.ReadImage(jpeg["output"]))
    assert (jpeg_labels != labels).mean() < 0.01  # JPEG loses a little, labels barely move

    ct = by_source[str(inputs["dcm"].absolute())]
    assert ct["output"] == str(out_dir / "ct_small.png")
    ct_labels = sitk.GetArrayFromImage(sitk.ReadImage(ct["output"]))
    assert ct_labels.shape == (128, 128) and 0 < ct_labels.sum() < 128 * 128
    # 0.661468 mm pixels, 5 mm slice thickness
    expected_ml = ct_labels.sum() * 0.661468**2 * 5.0 / 1000
    assert ct["volumes_ml"]["lung"] == pytest.approx(expected_ml, rel=1e-4)

    series = by_source[str(inputs["folder"].absolute())]
    assert series["output"] == str(out_dir / "series.nii.gz")
    volume = sitk.GetArrayFromImage(sitk.ReadImage(series["output"]))
    assert volume.shape == (5, 24, 40)
    assert (volume[:, 8:16, 22:34] == 1).all() and (volume[:, :, :16] == 0).all()
    assert series["volumes_ml"]["lung"] == pytest.approx(
        volume.sum() * 2.0 * 0.5 * 0.75 / 1000, rel=1e-4
    )
    assert len([m for m in calls if m.startswith("slice")]) >= 3
    assert not [m for m in calls if "loading" in m]


def test_real_ct_slice_to_dicom_seg_valid_for_dciodvfy(inputs, tmp_path, capsys):
    import highdicom as hd
    import pydicom

    png, seg_path = tmp_path / "labels.png", tmp_path / "x.dcm"
    assert _segment(capsys, inputs["dcm"], "--out", png)[0] == 0
    code, stdout, err = _segment(capsys, inputs["dcm"], "--out", seg_path)
    assert code == 0, err
    assert stdout.startswith("model tiny-lungs 0.0.1 on CPU (research use only")
    check = subprocess.run(["dciodvfy", str(seg_path)], capture_output=True, text=True, timeout=60)
    report = (check.stdout + check.stderr).splitlines()
    assert [ln for ln in report if ln.startswith("Error")] == [], report

    seg = hd.seg.segread(str(seg_path))
    source = pydicom.dcmread(inputs["dcm"], stop_before_pixels=True)
    assert seg.SegmentSequence[0].SegmentLabel == "lung"
    assert seg.SegmentSequence[0].SegmentAlgorithmName == "tiny-lungs"
    assert seg.FrameOfReferenceUID == source.FrameOfReferenceUID
    referenced = seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0]
    assert referenced.ReferencedSOPInstanceUID == source.SOPInstanceUID
    mask = seg.get_pixels_by_source_instance([source.SOPInstanceUID], segment_numbers=[1])
    mask = mask[0, :, :, 0]
    np.testing.assert_array_equal(mask, sitk.GetArrayFromImage(sitk.ReadImage(str(png))))


def test_out_errors_are_one_line(inputs, tmp_path, capsys):
    code, stdout, err = _segment(capsys, inputs["png"], "--out", tmp_path / "x.dcm")
    assert code == 2 and stdout == "" and "\n" not in err.strip()
    assert "a DICOM SEG needs a DICOM input" in err and "Traceback" not in err
    assert not (tmp_path / "x.dcm").exists()
    code, _, err = _segment(capsys, inputs["folder"], "--out", tmp_path / "x.png")
    assert code == 2 and "has 5 slices (use .nii.gz or .dcm)" in err
    code, _, err = _segment(capsys, inputs["png"], "--out", tmp_path / "nowhere" / "x.png")
    assert code == 1 and "output folder does not exist" in err


def test_png_label_image_and_the_readable_summary(inputs, tmp_path, capsys):
    code, stdout, _ = _segment(capsys, inputs["png"], "--out", tmp_path / "m.png")
    assert code == 0
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "m.png")))
    assert labels.shape == (70, 110) and set(np.unique(labels)) == {0, 1}
    lines = stdout.splitlines()
    assert lines[2] == f"{inputs['png'].absolute()} -> {tmp_path / 'm.png'}"
    assert lines[3].strip() == "lung (no physical size)"

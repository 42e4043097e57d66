"""``radview segment --model ct-lungs``: the classical lung model through the CLI contract.

No TensorFlow anywhere: ct-lungs is a classical model, run in the AI process without
importing it (proved by a tensorflow that cannot be imported).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk

from viewer.cli import main
from viewer.core.demo import write_series
from viewer.core.demo.phantom import chest_phantom

SHAPE, SPACING = (40, 128, 128), (7.5, 2.8, 2.8)


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    """A small chest phantom written as a DICOM series, one of its slices as its own file,
    and a PNG picture."""
    root = tmp_path_factory.mktemp("phantom")
    hu, info = chest_phantom(SHAPE, SPACING, seed=0)
    write_series(hu, root / "chest", spacing=SPACING)
    write_series(hu[20], root / "single", spacing=SPACING, file_names=["slice20.dcm"])
    png = root / "picture.png"
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((64, 80), np.uint8)), str(png))
    return {
        "root": root,
        "hu": hu,
        "truth": info["labels"],
        "info": info,
        "series": root / "chest",
        "slice": root / "single" / "slice20.dcm",
        "png": png,
    }


def _run(args, capsys):
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


def test_volume_to_nifti_json_contract(phantom, tmp_path, capsys):
    out = tmp_path / "lungs.nii.gz"
    code, stdout, err = _run(
        ["segment", str(phantom["series"]), "--model", "ct-lungs", "--json", "--out", str(out)],
        capsys,
    )
    assert code == 0, err
    doc = json.loads(stdout)  # exactly one JSON object
    assert set(doc) == {"model", "labels", "results"}
    assert doc["model"] == {"name": "ct-lungs", "version": "1.0.0", "device": "CPU"}
    assert doc["labels"] == {"1": "right lung", "2": "left lung"}
    (result,) = doc["results"]
    assert set(result) == {"source", "output", "volumes_ml"}
    assert result["source"] == str(phantom["series"].absolute())
    assert result["output"] == str(out.absolute())

    # the label volume has the geometry `radview convert` gives the series
    assert main(["convert", str(phantom["series"]), str(tmp_path / "ct.nii.gz")]) == 0
    labels_img, ct_img = sitk.ReadImage(str(out)), sitk.ReadImage(str(tmp_path / "ct.nii.gz"))
    assert labels_img.GetSize() == ct_img.GetSize()
    np.testing.assert_allclose(labels_img.GetSpacing(), ct_img.GetSpacing(), atol=1e-4)
    np.testing.assert_allclose(labels_img.GetOrigin(), ct_img.GetOrigin(), atol=1e-3)
    np.testing.assert_allclose(labels_img.GetDirection(), ct_img.GetDirection(), atol=1e-6)
    labels = sitk.GetArrayFromImage(labels_img)
    truth = phantom["truth"]
    assert _dice(labels > 0, truth > 0) > 0.9
    # right lung at low i (patient right, identity direction), left lung at high i
    assert _dice(labels == 1, truth == 1) > 0.85 and _dice(labels == 2, truth == 2) > 0.85
    voxel_ml = float(np.prod(SPACING)) / 1000
    for label, name in ((1, "right lung"), (2, "left lung")):
        assert result["volumes_ml"][name] == pytest.approx(
            (labels == label).sum() * voxel_ml, abs=1e-3
        )


def test_out_dir_names_and_per_input_errors(phantom, tmp_path, capsys):
    folder = tmp_path / "masks"
    missing = tmp_path / "missing.dcm"
    code, stdout, err = _run(
        [
            "segment",
            str(phantom["series"]),
            str(phantom["slice"]),
            str(phantom["png"]),
            str(missing),
            "--model",
            "ct-lungs",
            "--json",
            "--out-dir",
            str(folder),
        ],
        capsys,
    )
    assert code == 1  # an input failed: the others are still done and reported
    results = {r["source"]: r for r in json.loads(stdout)["results"]}
    assert results[str(phantom["series"].absolute())]["output"] == str(folder / "chest.nii.gz")
    single = results[str(phantom["slice"].absolute())]
    assert single["output"] == str(folder / "slice20.png")
    picture = sitk.GetArrayFromImage(sitk.ReadImage(single["output"]))
    assert picture.shape == SHAPE[1:] and picture.dtype == np.uint8
    assert set(np.unique(picture)) == {0, 1, 2}
    assert single["volumes_ml"]["right lung"] == pytest.approx(
        (picture == 1).sum() * float(np.prod(SPACING)) / 1000, abs=1e-3
    )
    for bad in (phantom["png"], missing):
        entry = results[str(bad.absolute())]
        assert set(entry) == {"source", "error"} and "\n" not in entry["error"]
    assert "works on CT" in results[str(phantom["png"].absolute())]["error"]
    assert "Traceback" not in err


def test_dicom_seg_of_a_ct_slice_is_valid(phantom, tmp_path, capsys):
    import highdicom as hd

    out = tmp_path / "lungs.dcm"
    code, stdout, err = _run(
        ["segment", str(phantom["slice"]), "--model", "ct-lungs", "--out", str(out)], capsys
    )
    assert code == 0, err
    assert "right lung" in stdout and str(out.absolute()) in stdout  # the readable summary
    seg = hd.seg.segread(str(out))
    assert [d.SegmentLabel for d in seg.SegmentSequence] == ["right lung", "left lung"]
    assert seg.SegmentSequence[0].SegmentAlgorithmType == "AUTOMATIC"
    assert seg.SegmentSequence[0].SegmentAlgorithmName == "ct-lungs"
    check = subprocess.run(["dciodvfy", str(out)], capture_output=True, text=True, timeout=60)
    problems = [
        ln
        for ln in (check.stdout + check.stderr).splitlines()
        if ln.startswith(("Error", "Warning"))
    ]
    assert problems == []


@pytest.mark.parametrize(
    "args, message",
    [
        (["{png}", "--out", "{tmp}/x.dcm"], "a DICOM SEG needs a DICOM input"),
        (["{series}", "--out", "{tmp}/x.png"], "holds one 2D image"),
        (
            ["{series}", "--out", "{tmp}/x.nrrd"],
            "--out must end in .png or .nii or .nii.gz or .dcm",
        ),
        (["{series}", "{slice}", "--out", "{tmp}/x.nii"], "--out takes one input"),
        (["{series}", "--out", "{tmp}/a.nii", "--out-dir", "{tmp}"], "not allowed with argument"),
    ],
)
def test_one_line_errors_before_any_work(phantom, tmp_path, capsys, args, message):
    paths = {
        "png": phantom["png"],
        "series": phantom["series"],
        "slice": phantom["slice"],
        "tmp": tmp_path,
    }
    argv = ["segment", *[a.format(**paths) for a in args], "--model", "ct-lungs"]
    code, stdout, err = _run(argv, capsys)
    assert code == 2 and stdout == ""
    assert err.startswith("radview: error: ") and message in err and err.count("\n") == 1
    assert os.listdir(tmp_path) == []  # nothing written


def test_unknown_or_wrong_kind_of_model(phantom, capsys):
    code, _, err = _run(["segment", str(phantom["slice"]), "--model", "nope"], capsys)
    assert code == 2 and "unknown model 'nope' (segmentation models: " in err
    assert "ct-lungs" in err
    code, _, err = _run(["segment", str(phantom["slice"]), "--model", "cxr-covid"], capsys)
    assert code == 2 and "is a classification model, not a segmentation model" in err


def test_no_tensorflow_in_either_process(phantom, tmp_path):
    """A tensorflow/keras that cannot be imported: the CLI and its AI process never try."""
    fake = tmp_path / "fake"
    for name in ("tensorflow", "keras"):
        (fake / name).mkdir(parents=True)
        (fake / name / "__init__.py").write_text(f"raise ImportError('{name} was imported')\n")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(fake), *filter(None, [os.environ.get("PYTHONPATH")])]),
    }
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "viewer",
            "segment",
            str(phantom["slice"]),
            "--model",
            "ct-lungs",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "was imported" not in run.stderr
    (result,) = json.loads(run.stdout)["results"]
    assert result["output"] is None and result["volumes_ml"]["left lung"] > 0


def test_a_folder_of_several_series(phantom, tmp_path, capsys):
    """Each series of a folder: source = its first file, output <folder>-<n>, n in the order
    `radview info` lists the series."""
    from viewer.core.study_index import build_index

    order = [e.files[0] for e in build_index(phantom["root"]).series]
    code, stdout, err = _run(
        [
            "segment",
            str(phantom["root"]),
            "--model",
            "ct-lungs",
            "--json",
            "--out-dir",
            str(tmp_path),
        ],
        capsys,
    )
    assert code == 1  # ct-lungs refuses the PNG picture in the folder
    results = {r["source"]: r for r in json.loads(stdout)["results"]}
    assert len(order) == len(results) == 3
    name = phantom["root"].name
    for n, first in enumerate(order, 1):
        if first == str(phantom["png"]):
            assert "works on CT" in results[first]["error"]
            continue
        suffix = ".png" if first == str(phantom["slice"]) else ".nii.gz"
        assert results[first]["output"] == str(tmp_path / f"{name}-{n}{suffix}")


def test_cancel_ct_lungs_then_the_process_is_still_usable(phantom):
    """Cancel between the classical method's steps; the same AI process answers next."""
    from ai.classify import Cancelled
    from ai.process.client import AIClient

    hu = phantom["hu"]
    meta = {"modality": "CT", "photometric": "MONOCHROME2", "spacing_mm": SPACING}
    with AIClient(request_timeout=120) as client:
        seen = []
        with pytest.raises(Cancelled):
            client.segment_volume(
                hu,
                meta,
                "ct-lungs",
                progress=lambda f, m: seen.append(f),
                cancelled=lambda: bool(seen),
            )
        assert seen and max(seen) < 1.0  # stopped before the end
        pid = client.pid
        labels = client.segment_volume(hu[18:22], meta, "ct-lungs")
        assert client.pid == pid and set(np.unique(labels)) == {0, 1, 2}
    assert "tensorflow" not in sys.modules

"""`radview convert` and `radview info --json` on synthetic series, against dcm2niix."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from viewer.core.demo import write_series
from viewer.core.study_index import build_index, load_series

ROTATED = np.array(
    [[0.98480775, 0.0, 0.17364818], [0.05939117, 0.93969262, -0.33682409],
     [-0.16317591, 0.34202014, 0.92541658]]
)  # fmt: skip
CASES = {
    "axial": np.eye(3),
    "reversed": np.diag([1.0, 1.0, -1.0]),
    "oblique": ROTATED,
    "coronal": np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]]),
}


def radview(*args, check=True):
    proc = subprocess.run(
        [sys.executable, "-m", "viewer", *map(str, args)], capture_output=True, text=True
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def _series(tmp_path, direction, shape=(9, 14, 18), multiframe=False):
    rng = np.random.default_rng(1)
    hu = rng.integers(-1024, 2000, size=shape).astype(np.int16)
    write_series(hu, tmp_path / "dicom", spacing=(2.5, 0.6, 0.8), origin=(-30.0, 12.0, 50.0),
                 direction=direction, shuffle=True, multiframe=multiframe)
    return tmp_path / "dicom", hu


@pytest.mark.parametrize("name", list(CASES))
def test_convert_equals_dcm2niix(tmp_path, name):
    if shutil.which("dcm2niix") is None:
        pytest.skip("dcm2niix not installed (make test installs it)")
    src, _ = _series(tmp_path, CASES[name])
    out = tmp_path / "radview.nii"
    radview("convert", src, out)
    ref_dir = tmp_path / "ref"
    ref_dir.mkdir()
    subprocess.run(["dcm2niix", "-z", "n", "-f", "ref", "-o", ref_dir, src],
                   check=True, capture_output=True)
    ours = nib.as_closest_canonical(nib.load(out))
    ref = nib.as_closest_canonical(nib.load(ref_dir / "ref.nii"))
    np.testing.assert_allclose(ours.affine, ref.affine, atol=1e-3)
    np.testing.assert_array_equal(ours.get_fdata(), ref.get_fdata())


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz", ".nrrd"])
def test_convert_geometry_read_back_by_simpleitk(tmp_path, suffix):
    src, hu = _series(tmp_path, ROTATED)
    out = tmp_path / f"vol{suffix}"
    proc = radview("convert", src, out)
    assert proc.stdout.startswith(f"wrote {out}")
    vol = load_series(build_index(src).series[0])
    img = sitk.ReadImage(str(out))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(img), vol.array)
    g = vol.geometry
    np.testing.assert_allclose(img.GetOrigin(), g.origin, atol=1e-4)
    np.testing.assert_allclose(img.GetSpacing(), g.spacing_xyz, atol=1e-5)
    np.testing.assert_allclose(np.reshape(img.GetDirection(), (3, 3)), g.direction, atol=1e-5)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["dicom", out.name])


def test_convert_multiframe_matches_single_frame(tmp_path):
    src, hu = _series(tmp_path / "mf", CASES["oblique"], multiframe=True)
    radview("convert", src, tmp_path / "mf.nii")
    single, _ = _series(tmp_path / "sf", CASES["oblique"])
    radview("convert", single, tmp_path / "sf.nii")
    a, b = nib.load(tmp_path / "mf.nii"), nib.load(tmp_path / "sf.nii")
    np.testing.assert_allclose(a.affine, b.affine, atol=1e-4)
    np.testing.assert_array_equal(a.get_fdata(), b.get_fdata())


def test_info_json_contract(tmp_path):
    src, _ = _series(tmp_path, np.eye(3))
    (src / "readme.txt").write_text("hello")
    proc = radview("info", src, "--json", "--check")
    data = json.loads(proc.stdout)
    assert set(data) == {"series", "skipped"}
    (s,) = data["series"]
    assert set(s) == {"uid", "patient", "study", "modality", "description", "files", "shape",
                      "spacing", "status", "warnings"}
    assert s["modality"] == "CT" and s["status"] == "ok" and s["warnings"] == []
    assert s["shape"] == [9, 14, 18] and s["spacing"] == pytest.approx([2.5, 0.6, 0.8])
    assert len(s["files"]) == 9 and all(f.startswith("/") for f in s["files"])
    assert data["skipped"] == [{"path": str((src / "readme.txt").absolute()),
                                "reason": "not a DICOM file"}]
    table = radview("info", src).stdout
    assert "18\u00d714\u00d79" in table and s["uid"] in table and "readme.txt" in table


def test_convert_picks_series_by_uid_and_refuses_ambiguity(tmp_path):
    hu = np.zeros((3, 8, 8), dtype=np.int16)
    write_series(hu, tmp_path / "a", series_uid="1.2.3.1", series_number=1)
    write_series(hu + 5, tmp_path / "b", series_uid="1.2.3.2", series_number=2, seed=2)
    proc = radview("convert", tmp_path, tmp_path / "x.nii", check=False)
    assert proc.returncode != 0 and len(proc.stderr.strip().splitlines()) == 1
    assert "--series" in proc.stderr
    radview("convert", tmp_path, tmp_path / "b.nii", "--series", "1.2.3.2")
    assert nib.load(tmp_path / "b.nii").get_fdata().max() == 5
    proc = radview("convert", tmp_path, tmp_path / "c.nii", "--series", "9.9", check=False)
    assert proc.returncode != 0 and "no series with UID 9.9" in proc.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("info", "/nonexistent/folder"),
        ("convert", "/nonexistent/folder", "/tmp/x.nii"),
        ("convert", ".", "/tmp/x.txt"),
        ("info",),
        ("frobnicate",),
        ("info", ".", "--bogus"),
    ],
)
def test_bad_input_is_one_line(args):
    proc = radview(*args, check=False)
    assert proc.returncode != 0
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith("radview: error:")


def test_convert_into_missing_folder_fails_cleanly(tmp_path):
    src, _ = _series(tmp_path, np.eye(3))
    proc = radview("convert", src, tmp_path / "nope" / "x.nii", check=False)
    assert proc.returncode == 1 and "output folder does not exist" in proc.stderr

"""Tests of the synthetic chest phantom and the demo study."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import time

import numpy as np
import pydicom
import pytest

from viewer.core.demo import LABEL_NAMES, chest_phantom, make_demo_study

SMALL = ((40, 128, 128), (7.5, 2.8, 2.8))


@pytest.fixture(scope="module")
def small():
    start = time.perf_counter()
    hu, info = chest_phantom(*SMALL)
    return hu, info, time.perf_counter() - start


def _centroid(mask: np.ndarray) -> np.ndarray:
    return np.argwhere(mask).mean(axis=0)  # (k, j, i)


def test_types_and_speed(small):
    hu, info, seconds = small
    assert hu.dtype == np.int16 and hu.shape == SMALL[0]
    labels = info["labels"]
    assert labels.dtype == np.uint8 and labels.shape == hu.shape
    assert set(np.unique(labels)) <= set(LABEL_NAMES)
    assert seconds < 3.0


def test_intensities(small):
    hu, info, _ = small
    labels = info["labels"]
    lungs = (labels == 1) | (labels == 2)
    assert hu[lungs].mean() < -700
    assert hu[0, 0, 0] < -900 and hu[-1, -1, -1] < -900  # air in the corners
    assert -550 < hu[labels == 3].mean() < -250
    assert -150 < hu[labels == 4].mean() < 60
    assert hu.max() > 400  # bone


def test_anatomy_orientation(small):
    hu, info, _ = small
    labels = info["labels"]
    nk, nj, ni = hu.shape
    right, left = _centroid(labels == 1), _centroid(labels == 2)
    assert left[2] > ni / 2 > right[2]  # patient left = high i
    assert info["lung_left"]["voxels"] < info["lung_right"]["voxels"]  # the heart
    bone = hu > 300
    spine = bone[:, :, ni // 2 - 3: ni // 2 + 3]
    assert _centroid(spine)[1] > nj * 0.6  # spine is posterior = high j
    # Apex at high k: lung cross-sections shrink toward the top.
    area = ((labels > 0).sum(axis=(1, 2)))
    top = int(np.nonzero(area)[0].max())
    assert area[top] < area[nk // 3] and top > nk * 0.7


def test_volumes_match_counts(small):
    hu, info, _ = small
    labels = info["labels"]
    voxel_ml = np.prod(SMALL[1]) / 1000.0
    assert info["voxel_volume_ml"] == pytest.approx(voxel_ml)
    for value, name in LABEL_NAMES.items():
        if value == 0:
            continue
        count = int((labels == value).sum())
        assert info[name]["label"] == value
        assert info[name]["voxels"] == count > 0
        assert info[name]["volume_ml"] == pytest.approx(count * voxel_ml)
    assert 1000 < info["lung_right"]["volume_ml"] < 4000
    assert 0 < info["involvement_percent"] < 20


def test_deterministic_and_seeded():
    a, ia = chest_phantom((20, 64, 64), (15.0, 5.6, 5.6), seed=4)
    b, ib = chest_phantom((20, 64, 64), (15.0, 5.6, 5.6), seed=4)
    c, _ = chest_phantom((20, 64, 64), (15.0, 5.6, 5.6), seed=5)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ia["labels"], ib["labels"])
    assert not np.array_equal(a, c)


def test_demo_study_small(tmp_path):
    demo = make_demo_study(tmp_path, size="small")
    assert not demo["reused"]
    files = demo["ct"]["files"]
    assert len(files) == 40
    ds = pydicom.dcmread(files[0], stop_before_pixels=True)
    assert ds.SeriesDescription == "Chest phantom (synthetic)"
    assert ds.StudyDescription == "radview demo study"
    assert str(ds.PatientName) == "Demo^Chest"
    z = [float(pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient[2])
         for f in files]
    assert z == sorted(z)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["version"] == 1 and manifest["size"] == "small"
    if demo["cr"] is None:
        assert demo["missing"]
    else:
        cr = pydicom.dcmread(demo["cr"]["file"], stop_before_pixels=True)
        assert cr.Modality == "CR" and cr.PhotometricInterpretation == "MONOCHROME1"
        assert (cr.Rows, cr.Columns) == (1955, 1841)

    mtime = files[0].stat().st_mtime_ns
    again = make_demo_study(tmp_path, size="small")
    assert again["reused"] and files[0].stat().st_mtime_ns == mtime
    assert again["ct"]["files"] == files


def test_demo_study_rebuilds_incomplete(tmp_path):
    make_demo_study(tmp_path, size="small")
    (tmp_path / "ct" / "IM00003.dcm").unlink()
    demo = make_demo_study(tmp_path, size="small")
    assert not demo["reused"] and (tmp_path / "ct" / "IM00003.dcm").is_file()


def test_main(tmp_path):
    root = pathlib.Path(__file__).resolve().parents[3]  # the project, where viewer/ lives
    out = subprocess.run([sys.executable, "-m", "viewer.core.demo", str(tmp_path), "--small"],
                         capture_output=True, text=True, check=True, cwd=root)
    assert "IM00040.dcm" in out.stdout and (tmp_path / "manifest.json").is_file()

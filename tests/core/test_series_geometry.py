"""Synthetic series written with pydicom: sorting, geometry in mm, HU, splitting, warnings."""

from __future__ import annotations

import hashlib
import os
import shutil

import numpy as np
import pytest

from viewer.core.demo import write_series
from viewer.core.study_index import build_index, load_series

SHAPE = (12, 20, 24)


def _volume_with_marker(marker=(3, 5, 17), value=2000):
    hu = np.full(SHAPE, -1000, dtype=np.int16)
    hu[:, 2:-2, 2:-2] = 40
    hu += np.arange(SHAPE[0], dtype=np.int16)[:, None, None]  # each slice distinct
    hu[marker] = value
    return hu, marker


def _lps(origin, direction, spacing, kji):
    k, j, i = kji
    return np.asarray(origin) + np.asarray(direction) @ (
        np.array([i * spacing[2], j * spacing[1], k * spacing[0]])
    )


def _marker_lps(volume, value=2000):
    where = np.argwhere(volume.array == value)
    assert len(where) == 1, f"marker found {len(where)} times"
    return volume.geometry.index_to_lps(where[0])


def _rotation(axis, degrees):
    a = np.radians(degrees)
    c, s = np.cos(a), np.sin(a)
    if axis == "x":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    if axis == "z":
        return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _only(index):
    assert len(index.series) == 1, [s.uid for s in index.series]
    return index.series[0]


def test_shuffled_names_are_sorted_by_position(tmp_path):
    hu, marker = _volume_with_marker()
    spacing, origin = (2.0, 0.6, 0.8), (-50.0, -40.0, 100.0)
    write_series(hu, tmp_path, spacing=spacing, origin=origin, shuffle=True, seed=3)
    entry = _only(build_index(tmp_path))
    vol = load_series(entry)
    assert vol.array.dtype == np.int16
    np.testing.assert_array_equal(vol.array, hu)  # HU after rescale, slices in order
    assert vol.geometry.spacing == pytest.approx(spacing)
    assert vol.geometry.origin == pytest.approx(origin)
    np.testing.assert_allclose(vol.geometry.direction, np.eye(3), atol=1e-6)
    assert entry.shape == list(SHAPE) and entry.spacing == pytest.approx(list(spacing))
    assert entry.warnings == []
    # files listed in slice order, not name order
    positions = [float(os.path.basename(f)[2:7]) for f in entry.files]
    assert positions != sorted(positions)


@pytest.mark.parametrize(
    "direction",
    [
        pytest.param(np.diag([1.0, 1.0, -1.0]) @ np.eye(3), id="reversed-stack"),
        pytest.param(_rotation("x", 25) @ _rotation("z", 10), id="oblique"),
        pytest.param(np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]]), id="coronal"),
        pytest.param(np.array([[0, 0, 1.0], [1, 0, 0], [0, -1, 0]]), id="sagittal"),
    ],
)
def test_marker_lands_at_its_lps_position(tmp_path, direction):
    if np.linalg.det(direction) < 0:  # reversed stack: k runs against the normal
        row, col = direction[:, 0], direction[:, 1]
        assert np.allclose(direction[:, 2], -np.cross(row, col))
    hu, marker = _volume_with_marker()
    spacing, origin = (3.0, 0.7, 0.9), (10.0, -20.0, 30.0)
    write_series(hu, tmp_path, spacing=spacing, origin=origin, direction=direction, shuffle=True)
    vol = load_series(_only(build_index(tmp_path)))
    expected = _lps(origin, direction, spacing, marker)
    np.testing.assert_allclose(_marker_lps(vol), expected, atol=1e-3)
    # k always runs along the slice normal (right-handed), whatever the file order was
    d = vol.geometry.direction
    assert np.linalg.det(d) == pytest.approx(1.0, abs=1e-6)
    assert vol.geometry.spacing == pytest.approx(spacing)


def test_reversed_stack_is_flipped_into_normal_order(tmp_path):
    hu, _ = _volume_with_marker()
    direction = np.diag([1.0, 1.0, -1.0])
    write_series(hu, tmp_path, spacing=(2.0, 1.0, 1.0), origin=(0, 0, 0), direction=direction)
    vol = load_series(_only(build_index(tmp_path)))
    np.testing.assert_array_equal(vol.array, hu[::-1])
    assert vol.geometry.origin == pytest.approx((0.0, 0.0, -2.0 * (SHAPE[0] - 1)))


def test_gap_and_irregular_spacing_are_reported(tmp_path):
    hu, _ = _volume_with_marker()
    paths = write_series(hu, tmp_path, spacing=(2.0, 1.0, 1.0))
    os.unlink(paths[5])
    os.unlink(paths[6])
    entry = _only(build_index(tmp_path))
    assert entry.shape[0] == SHAPE[0] - 2
    text = " ".join(entry.warnings)
    assert "irregular slice spacing" in text and "gap" in text and "2 missing" in text
    assert entry.spacing[0] == pytest.approx(2.0)  # median, not the gap


def test_repeated_positions_split_into_stacks(tmp_path):
    hu, _ = _volume_with_marker()
    series_uid = "1.2.826.0.1.3680043.8.498.1"
    study_uid = "1.2.826.0.1.3680043.8.498.2"
    common = dict(series_uid=series_uid, study_uid=study_uid, spacing=(2.0, 1.0, 1.0))
    write_series(hu, tmp_path / "a", file_names=[f"a{n}" for n in range(SHAPE[0])],
                 extra={"AcquisitionNumber": 1}, **common)
    write_series(hu + 100, tmp_path / "b", file_names=[f"b{n}" for n in range(SHAPE[0])],
                 extra={"AcquisitionNumber": 2}, seed=7, **common)
    index = build_index(tmp_path)
    uids = sorted(s.uid for s in index.series)
    assert uids == [series_uid, series_uid + "#2"]
    first, second = (load_series(index.find(u)) for u in uids)
    np.testing.assert_array_equal(first.array, hu)  # acquisition 1 first
    np.testing.assert_array_equal(second.array, hu + 100)
    assert all("split" in " ".join(s.warnings) for s in index.series)


def test_mixed_orientations_and_sizes_split(tmp_path):
    series_uid = "1.2.826.0.1.3680043.8.498.11"
    hu, _ = _volume_with_marker()
    names = [f"x{n}" for n in range(12)]
    write_series(hu, tmp_path / "ax", series_uid=series_uid, file_names=names)
    coronal = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])
    write_series(hu[:5], tmp_path / "cor", series_uid=series_uid, direction=coronal, seed=2,
                 file_names=[f"c{n}" for n in range(5)])
    write_series(hu[:3, :10, :10], tmp_path / "small", series_uid=series_uid, seed=4,
                 origin=(0, 0, 500), file_names=[f"s{n}" for n in range(3)])
    index = build_index(tmp_path)
    shapes = {s.uid: s.shape for s in index.series}
    assert shapes == {
        series_uid: [12, 20, 24],
        series_uid + "#2": [5, 20, 24],
        series_uid + "#3": [3, 10, 10],
    }
    all_files = sorted(f for s in index.series for f in s.files)
    assert len(all_files) == 20 and not index.skipped


def test_gantry_tilt_is_reported_and_geometry_follows_positions(tmp_path):
    hu, marker = _volume_with_marker()
    tilt = np.radians(15)
    # slices step along z and drift along y (posterior) as on a tilted gantry
    step = np.array([0.0, np.sin(tilt), np.cos(tilt)])
    direction = np.column_stack([[1.0, 0, 0], [0, 1.0, 0], step])
    spacing, origin = (2.5, 0.8, 0.8), (-10.0, -10.0, -10.0)
    write_series(hu, tmp_path, spacing=spacing, origin=origin, direction=direction,
                 extra={"GantryDetectorTilt": 15.0})
    entry = _only(build_index(tmp_path))
    assert any("gantry tilt 15.00" in w for w in entry.warnings)
    vol = load_series(entry)
    np.testing.assert_allclose(_marker_lps(vol), _lps(origin, direction, spacing, marker),
                               atol=1e-3)


def test_enhanced_multiframe_sorted_by_position(tmp_path):
    hu, marker = _volume_with_marker()
    spacing, origin = (1.5, 0.5, 0.5), (5.0, 6.0, 7.0)
    direction = np.diag([1.0, 1.0, -1.0])  # frames stored head-to-feet
    write_series(hu, tmp_path, spacing=spacing, origin=origin, direction=direction,
                 multiframe=True)
    entry = _only(build_index(tmp_path))
    assert len(entry.files) == 1 and entry.shape == list(SHAPE)
    vol = load_series(entry)
    np.testing.assert_array_equal(vol.array, hu[::-1])
    np.testing.assert_allclose(_marker_lps(vol), _lps(origin, direction, spacing, marker),
                               atol=1e-3)


def test_float_rescale_and_unsigned_storage(tmp_path):
    hu = (np.arange(np.prod(SHAPE)).reshape(SHAPE) % 700).astype(np.float64) * 0.5
    write_series(hu, tmp_path, modality="MR", rescale_intercept=0.0, rescale_slope=0.5)
    vol = load_series(_only(build_index(tmp_path)))
    assert vol.array.dtype == np.float32
    np.testing.assert_allclose(vol.array, hu)


def test_duplicate_instance_is_skipped_with_reason(tmp_path):
    hu, _ = _volume_with_marker()
    paths = write_series(hu, tmp_path / "s")
    shutil.copy(paths[0], tmp_path / "s" / "copy_of_first")
    index = build_index(tmp_path)
    entry = _only(index)
    assert entry.shape[0] == SHAPE[0]
    assert [os.path.basename(s.path) for s in index.skipped] == ["copy_of_first"]
    assert "same SOPInstanceUID" in index.skipped[0].reason


def _snapshot(folder):
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            p = os.path.join(root, name)
            st = os.stat(p)
            out[p] = (st.st_size, st.st_mtime_ns, hashlib.sha256(open(p, "rb").read()).hexdigest())
    return out


def test_source_folder_untouched_by_scan_and_load(tmp_path):
    hu, _ = _volume_with_marker()
    write_series(hu, tmp_path / "src", shuffle=True)
    (tmp_path / "src" / "notes.txt").write_text("not dicom")
    before = _snapshot(tmp_path / "src")
    names_before = sorted(os.listdir(tmp_path / "src"))
    index = build_index(tmp_path / "src", workers=2)
    load_series(index.series[0])
    assert sorted(os.listdir(tmp_path / "src")) == names_before
    assert _snapshot(tmp_path / "src") == before
    assert [s.reason for s in index.skipped] == ["not a DICOM file"]

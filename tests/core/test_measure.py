"""Measurements in mm: lengths, angles, ROI statistics on anisotropic/oblique grids, the list."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from viewer.core.geometry import VolumeGeometry
from viewer.core.measure import (
    Measurement,
    MeasurementList,
    angle_deg,
    length_mm,
    roi_stats,
    slice_position_mm,
)
from viewer.core.volume import Volume

# spacing (sk, sj, si): 2 mm slices, rows 0.8 mm apart (P), columns 0.5 mm apart (L)
SPACING = (2.0, 0.8, 0.5)
ORIGIN = (-10.0, -20.0, 30.0)


def _ct(array, direction=None, spacing=SPACING, origin=ORIGIN, modality="CT"):
    g = VolumeGeometry(array.shape, spacing, origin, np.eye(3) if direction is None else direction)
    return Volume(array, g, modality=modality)


def _ramp(shape=(3, 60, 80)):
    k, j, i = np.indices(shape)
    return (1000 * k + 10 * j + i).astype(np.int16)


def test_length_on_a_non_square_grid():
    g = VolumeGeometry((3, 60, 80), SPACING, ORIGIN)
    p, q = g.index_to_lps((1, 10, 10)), g.index_to_lps((1, 13, 14))  # 3 rows, 4 columns
    assert length_mm(p, q) == pytest.approx(math.hypot(3 * 0.8, 4 * 0.5))
    assert length_mm(g.index_to_lps((0, 0, 0)), g.index_to_lps((2, 0, 0))) == pytest.approx(4.0)


def test_angle():
    assert angle_deg((1, 0, 0), (0, 0, 0), (0, 5, 0)) == pytest.approx(90)
    assert angle_deg((1, 1, 0), (0, 0, 0), (2, 0, 0)) == pytest.approx(45)
    assert angle_deg((1, 0, 0), (0, 0, 0), (-3, 0, 0)) == pytest.approx(180)
    with pytest.raises(ValueError):
        angle_deg((0, 0, 0), (0, 0, 0), (1, 0, 0))


def test_rectangle_stats_on_voxel_centres():
    vol = _ct(_ramp())
    g = vol.geometry
    a, b = g.index_to_lps((1, 5, 10)), g.index_to_lps((1, 14, 19))  # 10 rows x 10 columns
    s = roi_stats(vol, "axial", b, a, shape="rectangle")
    block = vol.array[1, 5:15, 10:20].astype(float)
    assert s.count == 100
    assert s.mean == pytest.approx(block.mean()) and s.sd == pytest.approx(block.std())
    assert (s.min, s.max) == (block.min(), block.max())
    assert s.area_mm2 == pytest.approx((9 * 0.5) * (9 * 0.8))
    assert s.unit == "HU"


def test_ellipse_area_and_constant_mean():
    array = np.full((3, 60, 80), -1000, dtype=np.int16)
    array[1] = 40
    vol = _ct(array)
    g = vol.geometry
    centre = g.index_to_lps((1, 30, 40))
    a_mm, b_mm = 10.0, 8.0  # semi-axes along L (20 columns) and P (10 rows)
    s = roi_stats(vol, "axial", centre - (a_mm, b_mm, 0), centre + (a_mm, b_mm, 0))
    assert s.area_mm2 == pytest.approx(math.pi * a_mm * b_mm)
    assert s.count * 0.5 * 0.8 == pytest.approx(s.area_mm2, rel=0.03)
    assert (s.mean, s.sd, s.min, s.max) == (40.0, 0.0, 40.0, 40.0)


def test_ellipse_mean_matches_explicit_mask():
    vol = _ct(_ramp(), modality="MR")
    g = vol.geometry
    centre = g.index_to_lps((2, 30, 40))
    s = roi_stats(vol, "axial", centre - (6, 4, 0), centre + (6, 4, 0))
    j, i = np.indices(vol.array.shape[1:])
    mask = ((i - 40) * 0.5 / 6) ** 2 + ((j - 30) * 0.8 / 4) ** 2 <= 1
    assert s.count == mask.sum()
    assert s.mean == pytest.approx(vol.array[2][mask].mean())
    assert s.sd == pytest.approx(vol.array[2][mask].std())
    assert s.unit == ""


def test_coronal_and_sagittal_rois_pick_the_right_voxels():
    vol = _ct(_ramp())
    g = vol.geometry
    # coronal: plane of constant P (row j = 20), in-plane L (i) and S (k)
    s = roi_stats(
        vol, "coronal", g.index_to_lps((0, 20, 3)), g.index_to_lps((2, 20, 6)), shape="rectangle"
    )
    block = vol.array[0:3, 20, 3:7].astype(float)
    assert s.count == block.size and s.mean == pytest.approx(block.mean())
    assert s.area_mm2 == pytest.approx((2 * 2.0) * (3 * 0.5))
    # sagittal: plane of constant L (column i = 7), in-plane P (j) and S (k)
    s = roi_stats(
        vol, "sagittal", g.index_to_lps((0, 2, 7)), g.index_to_lps((1, 9, 7)), shape="rectangle"
    )
    block = vol.array[0:2, 2:10, 7].astype(float)
    assert s.count == block.size and s.mean == pytest.approx(block.mean())


def test_permuted_axes_volume_uses_patient_axes():
    # a sagittal stack: i -> P, j -> I (feet), k -> L
    direction = np.array([[0, 0, 1], [1, 0, 0], [0, -1, 0]], dtype=float)
    vol = _ct(_ramp((30, 40, 50)), direction=direction, spacing=(1.5, 0.7, 0.6))
    g = vol.geometry
    # an axial ROI: normal S -> array axis j; L -> k, P -> i
    a, b = g.index_to_lps((4, 12, 10)), g.index_to_lps((9, 12, 20))
    assert a[2] == pytest.approx(b[2])
    s = roi_stats(vol, "axial", a, b, shape="rectangle")
    block = vol.array[4:10, 12, 10:21].astype(float)
    assert s.count == block.size and s.mean == pytest.approx(block.mean())
    assert s.area_mm2 == pytest.approx((5 * 1.5) * (10 * 0.6))


def test_oblique_volume_samples_the_plane():
    t = math.radians(30)
    direction = np.array([[math.cos(t), -math.sin(t), 0], [math.sin(t), math.cos(t), 0], [0, 0, 1]])
    array = np.full((3, 100, 100), -1000, dtype=np.int16)
    array[1, 20:80, 20:80] = 60
    vol = _ct(array, direction=direction, spacing=(2.0, 0.8, 0.5))
    centre = vol.geometry.index_to_lps((1, 50, 50))
    s = roi_stats(vol, "axial", centre - (8, 6, 0), centre + (8, 6, 0))
    assert (s.mean, s.sd) == (60.0, 0.0)
    assert s.count * 0.5 * 0.5 == pytest.approx(math.pi * 8 * 6, rel=0.03)


def test_roi_outside_or_degenerate_is_empty():
    vol = _ct(_ramp())
    g = vol.geometry
    far = g.index_to_lps((1, 10, 10)) + (0, 0, 100)  # 100 mm above the last slice
    s = roi_stats(vol, "axial", far, far + (5, 5, 0))
    assert s.count == 0 and math.isnan(s.mean)
    flat = roi_stats(vol, "axial", g.index_to_lps((1, 5, 5)), g.index_to_lps((1, 5, 15)))
    assert flat.count == 0 and flat.area_mm2 == 0
    # partly outside: only the voxels inside the volume count
    corner = g.index_to_lps((1, 0, 0))
    part = roi_stats(
        vol, "axial", corner - (2, 2, 0), corner + (0.5 * 3, 0.8 * 2, 0), shape="rectangle"
    )
    assert part.count == 4 * 3


def test_roi_stats_rejects_bad_input():
    vol = _ct(_ramp())
    with pytest.raises(ValueError, match="orientation"):
        roi_stats(vol, "oblique", (0, 0, 0), (1, 1, 0))
    with pytest.raises(ValueError, match="shape"):
        roi_stats(vol, "axial", (0, 0, 0), (1, 1, 0), shape="circle")


def test_measurement_defaults_value_and_summary():
    m = Measurement("length", [(0, 0, 12.0), (3, 4, 12.0)], "axial")
    assert m.position_mm == 12.0 and m.value() == pytest.approx(5.0)
    assert m.summary() == "5.0 mm"
    a = Measurement("angle", [(1, 0, 0), (0, 0, 0), (0, 1, 0)], "axial")
    assert a.summary() == "90.0°"
    moved = dataclasses.replace(m, points=((0, 0, 12.0), (6, 8, 12.0)))
    assert moved.id == m.id and moved.value() == pytest.approx(10.0)
    assert Measurement("length", [(0, 0, 0), (1, 0, 0)], "axial").id != m.id
    with pytest.raises(ValueError):
        Measurement("length", [(0, 0, 0)], "axial")
    with pytest.raises(ValueError):
        Measurement("polygon", [(0, 0, 0), (1, 1, 1)], "axial")
    assert slice_position_mm("coronal", (1, 2, 3)) == 2.0


def test_roi_measurement_stats_on_its_slice():
    array = np.full((3, 60, 80), -1000, dtype=np.int16)
    array[1] = 40
    vol = _ct(array)
    centre = vol.geometry.index_to_lps((1, 30, 40))
    m = Measurement("ellipse", [centre - (5, 4, 0), centre + (5, 4, 0)], "axial")
    assert m.position_mm == pytest.approx(centre[2])
    assert m.value() == pytest.approx(math.pi * 20)
    assert m.stats(vol).mean == 40.0
    assert m.summary(vol).startswith("mean 40.0 HU, SD 0.0\nmin 40, max 40 HU")


def test_measurement_list_per_slice_and_signal():
    ms = MeasurementList()
    changes = []
    ms.changed.connect(lambda: changes.append(len(ms)))
    on_10 = ms.add(Measurement("length", [(0, 0, 10), (5, 0, 10)], "axial"))
    on_12 = ms.add(Measurement("length", [(0, 0, 12), (5, 0, 12)], "axial"))
    coronal = ms.add(Measurement("length", [(0, 10, 0), (0, 10, 5)], "coronal"))
    assert changes == [1, 2, 3]
    assert ms.for_slice("axial", 10.0, tol=1.0) == [on_10]
    assert ms.for_slice("axial", 11.5, tol=1.0) == [on_12]
    assert ms.for_slice("axial", 20.0, tol=1.0) == []
    assert ms.for_slice("coronal", 10.0) == [coronal]
    assert ms.for_slice("sagittal", 10.0) == []
    with pytest.raises(ValueError):
        ms.add(on_10)
    moved = dataclasses.replace(on_10, points=((0, 0, 10), (9, 0, 10)))
    ms.update(moved)
    assert ms.get(on_10.id).value() == pytest.approx(9.0)
    ms.remove(on_10.id)
    ms.remove(coronal)
    assert list(ms) == [on_12] and on_12 in ms and on_10.id not in ms
    ms.clear()
    ms.clear()  # nothing to clear: no signal
    assert len(ms) == 0
    assert changes == [1, 2, 3, 3, 2, 1, 0]
    with pytest.raises(KeyError):
        ms.remove(on_12)

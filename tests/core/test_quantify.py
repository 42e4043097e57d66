"""Quantification: lung volumes in mL on anisotropic grids, findings assigned to the nearest
lung, involvement percentages, the per-lung severity score, CSV/JSON exports."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from viewer.core.geometry import VolumeGeometry
from viewer.core.labelmap import LabelMap
from viewer.core.quantify import (
    ROW_KEYS,
    SCALE_NAME,
    quantify,
    severity_score,
    to_rows,
    write_csv,
    write_json,
)

SPACING = (2.5, 0.7, 0.7)  # mm: slice, row, column
VOXEL_ML = 2.5 * 0.7 * 0.7 / 1000.0
NAMES = {1: "right lung", 2: "left lung", 3: "ground-glass opacity", 4: "consolidation",
         5: "heart"}  # fmt: skip


def _phantom():
    """Two box lungs; ground-glass inside both, consolidation against the right lung's
    lateral side (outside its box), a 'heart' box between them. Returns (map, truth)."""
    lab = np.zeros((20, 60, 90), dtype=np.uint8)
    lab[2:18, 10:50, 5:30] = 1  # right lung box: 16*40*25 = 16000
    lab[2:18, 10:50, 55:85] = 2  # left lung box: 16*40*30 = 19200
    lab[4:8, 20:30, 10:20] = 3  # right ground-glass, inside the box: 400
    lab[4:8, 20:25, 1:5] = 4  # right consolidation, lateral to the box: 4*5*4 = 80
    lab[10:12, 30:35, 60:70] = 3  # left ground-glass: 100
    lab[6:12, 20:40, 38:48] = 5  # heart: 6*20*10 = 1200
    geometry = VolumeGeometry(lab.shape, SPACING, (10.0, -20.0, 300.0))
    truth = {
        "right": {"lung": 16000, "ggo": 400, "cons": 80},
        "left": {"lung": 19200, "ggo": 100, "cons": 0},
    }
    return LabelMap.from_names(geometry, lab, NAMES), truth


def test_volumes_in_ml_on_an_anisotropic_grid():
    lm, truth = _phantom()
    q = quantify(lm)
    assert q.unit == "mL"
    right, left = q.lungs
    assert (right.name, left.name) == ("right lung", "left lung")
    r, l_ = truth["right"], truth["left"]
    # own voxels + assigned findings: the right box's 16000 (400 of them ground-glass) + 80
    assert right.size == pytest.approx((r["lung"] + r["cons"]) * VOXEL_ML, rel=1e-12)
    assert right.ground_glass == pytest.approx(r["ggo"] * VOXEL_ML, rel=1e-12)
    assert right.consolidation == pytest.approx(r["cons"] * VOXEL_ML, rel=1e-12)
    assert left.size == pytest.approx(l_["lung"] * VOXEL_ML, rel=1e-12)
    assert left.ground_glass == pytest.approx(l_["ggo"] * VOXEL_ML, rel=1e-12)
    assert left.consolidation == 0
    # every segment's own voxels in volumes_ml (the CLI prints these)
    assert q.volumes_ml["right lung"] == pytest.approx((16000 - 400) * VOXEL_ML, rel=1e-12)
    assert q.volumes_ml["left lung"] == pytest.approx((19200 - 100) * VOXEL_ML, rel=1e-12)
    assert q.volumes_ml["ground-glass opacity"] == pytest.approx(500 * VOXEL_ML, rel=1e-12)
    assert q.volumes_ml["heart"] == pytest.approx(1200 * VOXEL_ML, rel=1e-12)
    assert q.voxels["consolidation"] == 80
    assert "heart" not in [s.name for s in q.lungs]


def test_percentages_and_total():
    lm, truth = _phantom()
    q = quantify(lm)
    right, left = q.lungs
    r_size = 16080
    assert right.ground_glass_percent == pytest.approx(100 * 400 / r_size)
    assert right.consolidation_percent == pytest.approx(100 * 80 / r_size)
    assert right.involvement_percent == pytest.approx(100 * 480 / r_size)
    assert left.involvement_percent == pytest.approx(100 * 100 / 19200)
    assert q.involvement_percent == pytest.approx(100 * 580 / (r_size + 19200))
    assert q.total.size == pytest.approx((r_size + 19200) * VOXEL_ML)
    # 2.98 % -> 1; 0.52 % -> 1; total 2 of 10
    assert (right.score, left.score, q.severity_score, q.severity_max) == (1, 1, 2, 10)
    assert q.severity_scale == SCALE_NAME


def test_findings_go_to_the_nearest_lung_in_mm_not_in_voxels():
    """A finding 4 slices (20 mm) from the left lung and 12 columns (6 mm) from the right
    lung belongs to the right lung: distances are in millimetres."""
    lab = np.zeros((12, 20, 60), dtype=np.uint8)
    lab[0:12, 5:15, 0:10] = 1  # right lung, columns 0..9
    lab[0:2, 5:15, 20:60] = 2  # left lung, slices 0..1 only
    lab[6, 8:10, 22:24] = 3  # finding: slice 6 (4 slices above left), column 22 (12 from right)
    geometry = VolumeGeometry(lab.shape, (5.0, 0.5, 0.5))
    q = quantify(LabelMap.from_names(geometry, lab, {1: "Right Lung", 2: "LEFT LUNG", 3: "GGO"}))
    right, left = q.lungs
    assert right.ground_glass == pytest.approx(4 * geometry.voxel_volume_ml)
    assert left.ground_glass == 0
    # with isotropic spacing the same voxels are nearer the left lung
    iso = VolumeGeometry(lab.shape, (0.5, 0.5, 0.5))
    q = quantify(LabelMap.from_names(iso, lab, {1: "right lung", 2: "left lung", 3: "ggo"}))
    assert q.lungs[1].ground_glass == pytest.approx(4 * iso.voxel_volume_ml)
    assert q.lungs[0].ground_glass == 0


def test_nearest_lung_on_a_large_map_uses_a_coarse_grid_correctly():
    """A 200x256x256 map (coarse nearest-lung grid): a finding well inside each lung's half
    goes to that lung."""
    lab = np.zeros((200, 256, 256), dtype=np.uint8)
    lab[20:180, 40:220, 10:110] = 1
    lab[20:180, 40:220, 146:246] = 2
    lab[50:60, 100:110, 100:120] = 4  # right, spilling outside its box toward the midline
    lab[150:152, 60:64, 200:204] = 3  # left
    geometry = VolumeGeometry(lab.shape, (1.25, 0.7, 0.7))
    q = quantify(LabelMap.from_names(geometry, lab, NAMES))
    right, left = q.lungs
    assert right.consolidation == pytest.approx(10 * 10 * 20 * geometry.voxel_volume_ml)
    assert left.ground_glass == pytest.approx(2 * 4 * 4 * geometry.voxel_volume_ml)
    assert right.ground_glass == 0 and left.consolidation == 0


@pytest.mark.parametrize(
    ("involved", "score"),
    [(0, 0), (1, 1), (4, 1), (5, 2), (25, 2), (26, 3), (50, 3), (51, 4), (75, 4), (76, 5),
     (100, 5)],
)  # fmt: skip
def test_score_thresholds_on_a_single_lung_radiograph_map(involved, score):
    """One slice, one "lung" segment of 100 pixels (0.5 mm pixels: 0.25 cm²), ``involved``
    of them ground-glass: areas in cm², percentages of the lung, the 0-5 scale."""
    lab = np.full((1, 10, 10), 1, dtype=np.uint8)
    lab.reshape(-1)[:involved] = 2
    geometry = VolumeGeometry(lab.shape, (1.0, 0.5, 0.5))
    q = quantify(LabelMap.from_names(geometry, lab, {1: "lung", 2: "ground glass"}))
    assert q.unit == "cm²"
    (lung,) = q.lungs
    assert lung.name == "lung"
    assert lung.size == pytest.approx(0.25)
    assert lung.ground_glass == pytest.approx(involved * 0.0025)
    assert lung.involvement_percent == pytest.approx(involved)
    assert lung.score == score
    assert (q.severity_score, q.severity_max) == (score, 5)
    # volumes_ml stays in mL: the slab of the slice thickness (1 mm)
    assert q.volumes_ml["lung"] == pytest.approx((100 - involved) * 0.25 / 1000)


def test_severity_score_function_edges():
    assert [severity_score(p) for p in (None, 0.0, 1e-9, 4.999, 5.0, 25.0, 25.001)] == [
        0, 0, 1, 1, 2, 2, 3,
    ]  # fmt: skip
    assert [severity_score(p) for p in (50.0, 50.001, 75.0, 75.001, 100.0)] == [3, 4, 4, 5, 5]


def test_empty_maps():
    geometry = VolumeGeometry((4, 8, 8), SPACING)
    q = quantify(LabelMap(geometry))
    assert q.lungs == [] and q.total is None and q.severity_score is None
    assert q.volumes_ml == {} and to_rows(q) == []
    # named segments without voxels: zero sizes, no percentage, score 0
    names = {1: "right lung", 2: "left lung", 3: "ggo"}
    q = quantify(LabelMap.from_names(geometry, np.zeros((4, 8, 8), np.uint8), names))
    assert [s.size for s in q.lungs] == [0, 0]
    assert q.lungs[0].involvement_percent is None and q.involvement_percent is None
    assert q.severity_score == 0
    assert q.volumes_ml == {"right lung": 0.0, "left lung": 0.0, "ggo": 0.0}


def test_findings_without_lungs_are_unassigned():
    lab = np.zeros((4, 8, 8), np.uint8)
    lab[1:3, 2:4, 2:4] = 1
    geometry = VolumeGeometry(lab.shape, SPACING)
    q = quantify(LabelMap.from_names(geometry, lab, {1: "consolidation", 2: "heart"}))
    assert q.unassigned == {"consolidation": pytest.approx(8 * VOXEL_ML)}
    assert q.lungs == [] and q.total is None
    # two lung segments without voxels: nothing to measure the distance to
    names = {1: "consolidation", 2: "right lung", 3: "left lung"}
    q = quantify(LabelMap.from_names(geometry, lab, names))
    assert q.unassigned == {"consolidation": pytest.approx(8 * VOXEL_ML)}
    assert [s.size for s in q.lungs] == [0, 0]


def test_csv_content(tmp_path):
    lm, _ = _phantom()
    q = quantify(lm)
    out = write_csv(q, tmp_path / "q.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["q.csv"]  # no temporary left
    with open(out, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == list(ROW_KEYS)
    assert [r["region"] for r in rows] == ["right lung", "left lung", "total"]
    assert {r["unit"] for r in rows} == {"mL"} and {r["scale"] for r in rows} == {SCALE_NAME}
    assert float(rows[0]["size"]) == round(16080 * VOXEL_ML, 1)
    assert float(rows[0]["ground_glass_percent"]) == round(100 * 400 / 16080, 2)
    assert (rows[2]["score"], rows[2]["score_max"]) == ("2", "10")
    assert rows == [{k: str(v) for k, v in r.items()} for r in to_rows(q)]


def test_json_content_and_atomic_replace(tmp_path):
    lm, _ = _phantom()
    path = tmp_path / "q.json"
    path.write_text("old")
    write_json(quantify(lm), path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["q.json"]
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["unit"] == "mL"
    assert data["severity"]["score"] == 2 and data["severity"]["max"] == 10
    assert data["severity"]["scale"] == SCALE_NAME
    assert data["volumes_ml"]["heart"] == round(1200 * VOXEL_ML, 1) == 1.5
    assert data["lungs"][1]["region"] == "left lung"
    assert data["lungs"][1]["size"] == round(19200 * VOXEL_ML, 1)
    assert data["total"]["involvement_percent"] == round(100 * 580 / 35280, 2)
    assert data["voxels"]["consolidation"] == 80
    with pytest.raises(FileNotFoundError):
        write_json(quantify(lm), tmp_path / "missing" / "q.json")

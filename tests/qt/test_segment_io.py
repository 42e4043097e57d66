"""The segmentation editor's files, models and numbers: label import/export (NIfTI, DICOM
SEG, PNG), model runs and the merge rule, and the quantification table (pytest-qt under
Xvfb, the demo chest phantom as in test_segment_editor.py).

GUI tests never import TensorFlow (it crashes beside VTK): model runs use the classical
ct-lungs model through the real AI process, or a stub client at the controller boundary.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt

from tests.qt.segment_helpers import (
    SHAPE,
    dice,
    drag,
    line,
    phantom_labelmap,
    stroke,
    voxels,
)
from viewer.core.labelmap import LabelMap


def test_import_nifti_then_export_seg_from_the_menu_logic(qtbot, ct, tmp_path):
    from viewer.core.export.dicom_seg import read_seg
    from viewer.core.export.label_files import write_label_nifti

    window, _, info = ct
    seg = window.segments
    source = phantom_labelmap(window, info)
    nifti = write_label_nifti(source, tmp_path / "labels.nii.gz", volume=window.session.volume)
    summary = seg.import_file(nifti)
    assert "4 segment" in summary
    lm = window.session.labelmap
    np.testing.assert_array_equal(lm.labels, info["labels"])
    assert lm.names() == source.names()
    assert window.segment_panel.table.rowCount() == 4
    assert window.segment_panel.table.item(1, 1).text() == "left lung"
    (tmp_path / "out").mkdir()
    out = seg.export_seg(tmp_path / "out" / "x.seg.dcm")
    back = read_seg(out, window.session.volume)
    np.testing.assert_array_equal(back.labels, info["labels"])
    assert back.names() == source.names()
    # never into the source folder; a clear one-line error
    with pytest.raises(ValueError, match="source folder"):
        seg.export_seg(tmp_path / "ct" / "x.dcm")
    # a second import merges as one undo step (by name, locked segments kept)
    lm.update_segment(1, locked=True)
    other = LabelMap.from_names(lm.geometry, np.where(info["labels"] > 0, 2, 0), {2: "left lung"})
    write_label_nifti(other, tmp_path / "left.nii.gz", volume=window.session.volume)
    assert "Merged" in seg.import_file(tmp_path / "left.nii.gz")
    np.testing.assert_array_equal(lm.labels == 1, info["labels"] == 1)  # locked: kept
    assert ((lm.labels == 2) == ((info["labels"] > 0) & (info["labels"] != 1))).all()
    assert seg.stack.undo_name == "Import left.nii.gz"
    seg.undo()
    np.testing.assert_array_equal(lm.labels, info["labels"])


def test_import_dialog_reads_off_the_gui_thread_and_reports_errors(
    qtbot, ct, tmp_path, monkeypatch
):
    from PySide6.QtWidgets import QFileDialog

    from viewer.core.export.label_files import write_label_nifti

    window, _, info = ct
    path = write_label_nifti(
        phantom_labelmap(window, info), tmp_path / "l.nii.gz", volume=window.session.volume
    )
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a: (str(path), "")))
    window.segments.io.choose_import()
    qtbot.waitUntil(lambda: window.session.labelmap is not None, timeout=10000)
    np.testing.assert_array_equal(window.session.labelmap.labels, info["labels"])
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(b"not a nifti")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a: (str(bad), "")))
    window.segments.io.choose_import()
    qtbot.waitUntil(lambda: bool(window.last_error), timeout=10000)
    assert window.last_error.startswith("Import failed: bad.nii.gz")
    assert "\n" not in window.last_error and "Traceback" not in window.last_error
    np.testing.assert_array_equal(window.session.labelmap.labels, info["labels"])


def test_export_file_endings():
    from viewer.qt.segment_io import with_suffix

    assert with_suffix("nifti", "/x/a.nii") == "/x/a.nii"
    assert with_suffix("nifti", "/x/a") == "/x/a.nii.gz"
    assert with_suffix("seg", "/x/a") == "/x/a.seg.dcm"
    assert with_suffix("seg", "/x/a.DCM") == "/x/a.DCM"
    assert with_suffix("quant", "/x/q", "JSON (*.json)") == "/x/q.json"
    assert with_suffix("quant", "/x/q", "CSV table (*.csv)") == "/x/q.csv"


def test_exports_never_default_into_the_source_folder(qtbot, ct, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    window, _, info = ct
    seg = window.segments
    window.session.set_labelmap(phantom_labelmap(window, info))
    asked = []

    def fake_dialog(parent, title, start, filters):
        asked.append(start)
        return str(tmp_path / "ct" / "into-source.nii.gz"), filters

    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(fake_dialog))
    window.settings.setValue("segment/export_dir", str(tmp_path / "ct"))  # a source folder
    seg.io.choose_export("nifti")
    assert Path(asked[0]).parent == Path.home()  # not the remembered source folder
    qtbot.waitUntil(lambda: bool(window.last_error), timeout=10000)
    assert "source folder" in window.last_error and "\n" not in window.last_error
    assert not (tmp_path / "ct" / "into-source.nii.gz").exists()
    (tmp_path / "exports").mkdir()
    monkeypatch.setattr(
        QFileDialog,
        "getSaveFileName",
        staticmethod(lambda *a: (str(tmp_path / "exports" / "labels"), a[3])),
    )
    seg.io.choose_export("nifti")
    qtbot.waitUntil(lambda: (tmp_path / "exports" / "labels.nii.gz").exists(), timeout=10000)
    qtbot.waitUntil(
        lambda: window.settings.value("segment/export_dir") == str(tmp_path / "exports"),
        timeout=5000,
    )
    assert seg.io.start_dir() == str(tmp_path / "exports")


def test_radiograph_brush_and_exports(qtbot, window, load, tmp_path):
    from pydicom.data import get_testdata_file

    from viewer.core.export.dicom_seg import read_seg

    cr = get_testdata_file("RG1_UNCR.dcm", download=False)
    if cr is None:
        pytest.skip("pydicom-data not installed")
    load(window, cr)
    seg = window.segments
    image = window.views.viewports["image"]
    assert window.views.visible_viewports() == [image]
    label = seg.add_segment("lung field")
    window.set_tool("brush")
    seg.set_radius(20.0)
    centre = QPoint(image.width() // 2, image.height() // 2)
    path = drag(qtbot, image, line(centre - QPoint(40, 0), centre + QPoint(40, 0)))
    labels = window.session.labelmap.labels
    assert labels.shape[0] == 1 and (labels == label).sum() > 100
    assert window.segment_panel.range_label.text() == "Value"  # not HU on a radiograph
    for voxel in voxels(window, image, path):
        assert labels[voxel] == label
    png = seg.export_png(tmp_path / "overlay.png")
    import SimpleITK as sitk

    rgb = sitk.GetArrayFromImage(sitk.ReadImage(str(png)))
    assert rgb.shape[:2] == labels.shape[1:]
    out = seg.export_seg(tmp_path / "cr.seg.dcm")
    np.testing.assert_array_equal(read_seg(out, window.session.volume).labels, labels)


def test_run_ct_lungs_in_the_ai_process_then_merge_infection(qtbot, ct):
    window, _, info = ct
    seg, panel = window.segments, window.segment_panel
    seg.refresh_models()
    index = panel.model_combo.findData("ct-lungs")
    if index < 0:
        pytest.skip("the classical ct-lungs model is not installed")
    assert "ct-lungs 1.0.0" in [a.text() for a in window.model_menu.actions()]
    panel.model_combo.setCurrentIndex(index)
    qtbot.mouseClick(panel.run_button, Qt.LeftButton)
    assert seg.model_running and panel.cancel_button.isEnabled()  # the GUI did not wait
    qtbot.waitUntil(lambda: not seg.model_running, timeout=180000)
    lm = window.session.labelmap
    assert lm is not None, panel.status.text()
    right, left = lm.label_of("right lung"), lm.label_of("left lung")
    truth = info["labels"]
    assert dice(lm.labels == right, truth == 1) > 0.8
    assert dice(lm.labels == left, truth == 2) > 0.8
    assert lm.segments[right].type.meaning == "Right lung"  # SNOMED-coded by name
    p = lm.provenance
    assert (p.algorithm_type, p.model_name) == ("AUTOMATIC", "ct-lungs")
    assert seg.stack.undo_name == "Run ct-lungs" and "ct-lungs" in panel.status.text()
    lungs = lm.labels.copy()
    # an infection model's output merged on top: lungs stay, lesions overwrite lung voxels
    lesions = np.where(truth == 3, 1, np.where(truth == 4, 2, 0)).astype(np.uint8)
    lesions[0] = 1  # a stray label outside the lungs and on locked voxels below
    changed = seg.apply_model_result(
        "ct-infection",
        "1.0",
        lesions,
        {0: "background", 1: "ground-glass opacity", 2: "consolidation"},
    )
    ggo, cons = lm.label_of("ground-glass opacity"), lm.label_of("consolidation")
    assert changed > 0
    assert ((lm.labels == ggo) | (lm.labels == cons))[1:].sum() == (lesions[1:] > 0).sum() - (
        (lesions[1:] > 0) & ~np.isin(lungs[1:], [0, right, left])
    ).sum()
    np.testing.assert_array_equal(lm.labels[lesions == 0], lungs[lesions == 0])
    assert lm.provenance.model_name == "ct-lungs + ct-infection"
    assert lm.provenance.algorithm_type == "AUTOMATIC"
    seg.undo()
    np.testing.assert_array_equal(lm.labels, lungs)
    import sys

    assert "tensorflow" not in sys.modules  # the model ran in the AI process


class _SlowClient:
    """Stands in for AIClient at the controller boundary: reports progress until cancelled."""

    def __init__(self) -> None:
        self.calls = []

    def segment_volume(self, array, meta, model, progress=None, cancelled=None):
        import time

        from ai.classify import Cancelled

        self.calls.append((array.shape, meta["modality"], model))
        for n in range(2000):
            if cancelled is not None and cancelled():
                raise Cancelled("cancelled")
            if progress is not None:
                progress(n / 2000, f"slice {n}")
            time.sleep(0.005)
        raise AssertionError("never cancelled")

    def close(self) -> None:
        pass

    def cancel(self) -> None:
        pass


def test_model_run_shows_progress_and_cancels(qtbot, ct):
    window, _, _ = ct
    seg, panel = window.segments, window.segment_panel
    seg.refresh_models()
    if not seg.model_specs:
        pytest.skip("no segmentation model installed")
    window.ai.client = client = _SlowClient()
    seg.run_model(seg.model_specs[0].name)
    qtbot.waitUntil(lambda: panel.progress.value() > 0, timeout=10000)
    assert panel.progress.isVisible() and not panel.run_button.isEnabled()
    qtbot.mouseClick(panel.cancel_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: not seg.model_running, timeout=10000)
    assert panel.status.text() == "Cancelled." and panel.run_button.isEnabled()
    assert window.session.labelmap is None  # nothing applied
    assert client.calls == [(SHAPE, "CT", seg.model_specs[0].name)]


def test_merge_rule_overwrites_only_background_and_unlocked_lungs():
    from viewer.core.geometry import VolumeGeometry
    from viewer.qt.segment_controller import merged_labels

    labels = np.zeros((2, 4, 6), dtype=np.uint8)
    labels[:, :, 0:2] = 1  # right lung
    labels[:, :, 2:4] = 2  # left lung, locked below
    labels[:, 0, 4] = 3  # another segment
    lm = LabelMap.from_names(
        VolumeGeometry(labels.shape), labels, {1: "right lung", 2: "left lung", 3: "nodule"}
    )
    lm.update_segment(2, locked=True)
    result = np.ones_like(labels)
    result[1, 3, 5] = 0  # the model's background erases nothing
    box, values = merged_labels(lm, result, {0: "background", 1: "ground-glass opacity"})
    ggo = lm.label_of("ground-glass opacity")
    assert ggo == 4 and lm.segments[ggo].type.meaning == "Ground glass opacity"
    assert box == ((0, 2), (0, 4), (0, 6))
    expected = labels.copy()
    expected[:, :, 0:2] = ggo  # lung voxels
    expected[:, :, 4:] = np.where(labels[:, :, 4:] == 0, ggo, labels[:, :, 4:])  # background
    expected[1, 3, 5] = 0
    np.testing.assert_array_equal(values, expected)
    assert merged_labels(lm, np.zeros_like(labels), {1: "consolidation"}) == (None, None)


def test_quantification_table_follows_the_strokes(qtbot, ct):
    from viewer.core.quantify import quantify, to_rows
    from viewer.qt.panels.quantification import COLUMNS, cell_text

    window, _, info = ct
    seg, table = window.segments, window.segment_panel.quant
    window.session.set_labelmap(phantom_labelmap(window, info))

    def shown_equals_quantify() -> bool:
        rows = to_rows(quantify(window.session.labelmap))
        return table.table.columnCount() == len(rows) == 3 and all(
            table.cell(r, key) == cell_text(row, key)
            for r, row in enumerate(rows)
            for key, _ in COLUMNS
        )

    qtbot.waitUntil(shown_equals_quantify, timeout=10000)
    before = table.cell(2, "ground_glass")
    assert "Pan et al." in table.summary.text() and "/10" in table.summary.text()
    seg.set_active(window.session.labelmap.label_of("ground-glass opacity"))
    window.set_tool("brush")
    seg.set_radius(15.0)
    axial = window.views.viewports["axial"]
    stroke(qtbot, window, axial, (-120, 0), (-40, 0))
    qtbot.waitUntil(lambda: table.cell(2, "ground_glass") != before, timeout=10000)
    qtbot.waitUntil(shown_equals_quantify, timeout=10000)
    assert float(table.cell(2, "ground_glass")) > float(before)

"""The segmentation editor in the main window: real widgets, real VTK views, real mouse drags
(pytest-qt under Xvfb). Data: the demo chest phantom written as a DICOM series.

GUI tests never import TensorFlow (it crashes beside VTK): model runs use the classical
ct-lungs model through the real AI process, or a stub client at the controller boundary.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QApplication

from viewer.core.demo import chest_phantom, write_series
from viewer.core.labelmap import LabelMap
from viewer.core.session import Session

SHAPE = (16, 96, 96)
SPACING = (18.75, 3.75, 3.75)  # the phantom's 300 x 360 x 360 mm field of view
ORIGIN = (-180.0, -180.0, -150.0)


@pytest.fixture(scope="module")
def phantom():
    hu, info = chest_phantom(SHAPE, SPACING, seed=1)
    return hu, info


@pytest.fixture
def ct(qtbot, window, load, tmp_path, phantom):
    """The window with the phantom CT open; returns (window, hu, info)."""
    hu, info = phantom
    write_series(hu, tmp_path / "ct", spacing=SPACING, origin=ORIGIN)
    load(window, tmp_path / "ct")
    window.views.set_crosshair_visible(False)
    return window, hu, info


def _q(vp, lps) -> QPoint:
    """Qt widget position of an LPS point in a viewport."""
    x, y = vp.slice_view.lps_to_display(lps)
    r = vp.devicePixelRatioF()
    return QPoint(int(round(x / r)), int(round(vp.height() - y / r)))


def _lps(vp, q: QPoint) -> np.ndarray:
    r = vp.devicePixelRatioF()
    return vp.slice_view.display_to_lps(q.x() * r, (vp.height() - q.y()) * r)


def _drag(qtbot, vp, points, modifier=Qt.NoModifier) -> list[QPoint]:
    qtbot.mousePress(vp, Qt.LeftButton, modifier, points[0])
    for p in points[1:]:
        qtbot.mouseMove(vp, p)
    qtbot.mouseRelease(vp, Qt.LeftButton, modifier, points[-1])
    QApplication.processEvents()
    return points


def _line(a: QPoint, b: QPoint, n: int = 8) -> list[QPoint]:
    return [
        QPoint(int(a.x() + (b.x() - a.x()) * t), int(a.y() + (b.y() - a.y()) * t))
        for t in np.linspace(0, 1, n)
    ]


def _voxels(window, vp, points) -> set[tuple[int, int, int]]:
    g = window.session.volume.geometry
    return {tuple(int(v) for v in np.rint(g.lps_to_index(_lps(vp, p)))) for p in points}


def _focus(qtbot, window, widget) -> None:
    """Keys go to the window's shortcuts only when it is the active window."""
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=3000)
    widget.setFocus()


def _centre_q(vp, window, offset=(0, 0)) -> QPoint:
    c = _q(vp, window.session.cursor)
    return c + QPoint(*offset)


def test_session_labelmap_follows_the_volume(phantom):
    from viewer.core.geometry import VolumeGeometry
    from viewer.core.volume import Volume

    hu, _ = phantom
    session = Session()
    log = []
    session.labelmap_changed.connect(log.append)
    with pytest.raises(ValueError, match="open an image"):
        session.set_labelmap(LabelMap(VolumeGeometry(SHAPE, SPACING)))
    volume = Volume(hu, VolumeGeometry(SHAPE, SPACING, ORIGIN), modality="CT")
    session.set_volume(volume)
    with pytest.raises(ValueError, match="does not match"):
        session.set_labelmap(LabelMap(VolumeGeometry((2, 3, 4))))
    lm = LabelMap(volume.geometry)
    session.set_labelmap(lm)
    session.set_labelmap(lm)  # same map: no signal
    assert session.labelmap is lm and log == [lm]
    session.set_volume(volume)  # a (re)loaded volume drops the segmentation
    assert session.labelmap is None and log == [lm, None]


def test_brush_drag_paints_under_the_path_as_one_undo_step(qtbot, ct):
    window, hu, _ = ct
    seg = window.segments
    label = seg.add_segment("lesion")
    window.set_tool("brush")
    seg.set_radius(6.0)
    axial = window.views.viewports["axial"]
    k = axial.slice_view.slice_index()
    path = _drag(
        qtbot,
        axial,
        _line(_centre_q(axial, window, (-60, -20)), _centre_q(axial, window, (50, 30))),
    )
    labels = window.session.labelmap.labels
    painted = np.argwhere(labels == label)
    assert len(painted) > 20
    assert set(painted[:, 0]) == {k}  # a disc brush paints the shown slice only
    for voxel in _voxels(window, axial, path):  # every voxel under the path is painted
        assert labels[voxel] == label, voxel
    # nothing farther than the radius (+ half a voxel diagonal) from the drawn segment
    g = window.session.volume.geometry
    a, b = _lps(axial, path[0]), _lps(axial, path[-1])
    pts = np.array([g.index_to_lps(v) for v in painted])
    t = np.clip((pts - a) @ (b - a) / ((b - a) @ (b - a)), 0, 1)
    dist = np.linalg.norm(pts - (a + t[:, None] * (b - a)), axis=1)
    assert dist.max() <= 6.0 + 3.75 * 0.71
    assert window.undo_action.isEnabled() and window.undo_action.text() == "&Undo Paint lesion"
    before = labels.copy()
    _focus(qtbot, window, axial)
    qtbot.keyClick(axial, Qt.Key_Z, Qt.ControlModifier)
    assert not window.session.labelmap.labels.any()  # the whole drag was one step
    assert window.redo_action.isEnabled() and not window.undo_action.isEnabled()
    qtbot.keyClick(axial, Qt.Key_Y, Qt.ControlModifier)
    np.testing.assert_array_equal(window.session.labelmap.labels, before)
    qtbot.keyClick(axial, Qt.Key_Z, Qt.ControlModifier)
    qtbot.keyClick(axial, Qt.Key_Z, Qt.ControlModifier | Qt.ShiftModifier)  # redo, too
    np.testing.assert_array_equal(window.session.labelmap.labels, before)


def test_eraser_and_ctrl_drag_erase_only_under_the_path(qtbot, ct):
    window, _, _ = ct
    seg = window.segments
    label = seg.add_segment("lung")
    axial = window.views.viewports["axial"]
    window.set_tool("brush")
    seg.set_radius(15.0)
    _drag(
        qtbot, axial, _line(_centre_q(axial, window, (-80, 0)), _centre_q(axial, window, (80, 0)))
    )
    labels = window.session.labelmap.labels
    full = int((labels == label).sum())
    seg.set_radius(4.0)
    window.set_tool("eraser")
    erase_path = _drag(qtbot, axial, [_centre_q(axial, window, (0, 0))])
    (voxel,) = _voxels(window, axial, erase_path)
    assert labels[voxel] == 0
    after_eraser = int((labels == label).sum())
    assert 0 < full - after_eraser < full / 3  # a small hole, the rest is kept
    window.set_tool("brush")  # Ctrl inverts the brush into an eraser
    ctrl_path = _drag(qtbot, axial, [_centre_q(axial, window, (-50, 0))], Qt.ControlModifier)
    (voxel,) = _voxels(window, axial, ctrl_path)
    assert labels[voxel] == 0 and (labels == label).sum() < after_eraser
    assert window.segments.stack.undo_name == "Erase lung"


def test_brush_in_the_coronal_view_paints_a_coronal_disc(qtbot, ct):
    window, _, _ = ct
    seg = window.segments
    label = seg.add_segment("s")
    window.set_tool("brush")
    seg.set_radius(20.0)
    coronal = window.views.viewports["coronal"]
    j = coronal.slice_view.slice_index()
    click = _drag(qtbot, coronal, [_centre_q(coronal, window)])
    painted = np.argwhere(window.session.labelmap.labels == label)
    assert set(painted[:, 1]) == {j}  # one coronal plane (constant row j)
    assert len(set(painted[:, 0])) >= 2 and len(set(painted[:, 2])) >= 5  # spans k and i
    centre = _lps(coronal, click[0])  # on the shown plane
    g = window.session.volume.geometry
    dist = np.linalg.norm([g.index_to_lps(v) - centre for v in painted], axis=1)
    assert dist.max() <= 20.0 + 1e-6
    # expected area of a 20 mm disc in 3.75 x 18.75 mm pixels, within a few pixels
    assert abs(len(painted) - np.pi * 20.0**2 / (3.75 * 18.75)) < 8


def test_threshold_brush_paints_only_within_the_hu_range(qtbot, ct):
    window, hu, _ = ct
    seg = window.segments
    label = seg.add_segment("air")
    window.set_tool("threshold")
    seg.set_hu_range(-1100, -500)
    seg.set_radius(30.0)
    axial = window.views.viewports["axial"]
    _drag(
        qtbot, axial, _line(_centre_q(axial, window, (-150, 0)), _centre_q(axial, window, (150, 0)))
    )
    labels = window.session.labelmap.labels
    painted = labels == label
    assert painted.sum() > 20
    assert hu[painted].min() >= -1100 and hu[painted].max() <= -500
    # the brush covered tissue too: those voxels stay unpainted
    k = axial.slice_view.slice_index()
    row = labels[k] == label
    ys, xs = np.nonzero(row)
    box = hu[k, ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    assert (box > -500).any()


def test_a_locked_segment_is_protected(qtbot, ct):
    window, _, _ = ct
    seg = window.segments
    first = seg.add_segment("right lung")
    window.set_tool("brush")
    seg.set_radius(12.0)
    axial = window.views.viewports["axial"]
    _drag(qtbot, axial, [_centre_q(axial, window)])
    labels = window.session.labelmap.labels
    before = labels == first
    seg.update_segment(first, locked=True)
    # painting with the locked segment itself does nothing and says why
    messages = []
    seg.message.connect(messages.append)
    _drag(qtbot, axial, [_centre_q(axial, window, (30, 0))])
    assert "locked" in messages[-1]
    second = seg.add_segment("lesion")
    _drag(
        qtbot, axial, _line(_centre_q(axial, window, (-60, 0)), _centre_q(axial, window, (60, 0)))
    )
    np.testing.assert_array_equal(labels == first, before)  # untouched
    assert (labels == second).sum() > 0
    assert seg.operate("clear") and not (labels == second).any()  # unlocked: cleared
    seg.set_active(first)
    assert not seg.operate("clear") and (labels == first).sum() == before.sum()


def _phantom_labelmap(window, info) -> LabelMap:
    names = {1: "right lung", 2: "left lung", 3: "ground-glass opacity", 4: "consolidation"}
    return LabelMap.from_names(window.session.volume.geometry, info["labels"], names)


def test_import_nifti_then_export_seg_from_the_menu_logic(qtbot, ct, tmp_path):
    from viewer.core.export.dicom_seg import read_seg
    from viewer.core.export.label_files import write_label_nifti

    window, _, info = ct
    seg = window.segments
    source = _phantom_labelmap(window, info)
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
    window.session.set_labelmap(_phantom_labelmap(window, info))
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


def _dice(a, b) -> float:
    return 2.0 * float((a & b).sum()) / max(float(a.sum() + b.sum()), 1.0)


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
    assert _dice(lm.labels == right, truth == 1) > 0.8
    assert _dice(lm.labels == left, truth == 2) > 0.8
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
    path = _drag(qtbot, image, _line(centre - QPoint(40, 0), centre + QPoint(40, 0)))
    labels = window.session.labelmap.labels
    assert labels.shape[0] == 1 and (labels == label).sum() > 100
    assert window.segment_panel.range_label.text() == "Value"  # not HU on a radiograph
    for voxel in _voxels(window, image, path):
        assert labels[voxel] == label
    png = seg.export_png(tmp_path / "overlay.png")
    import SimpleITK as sitk

    rgb = sitk.GetArrayFromImage(sitk.ReadImage(str(png)))
    assert rgb.shape[:2] == labels.shape[1:]
    out = seg.export_seg(tmp_path / "cr.seg.dcm")
    np.testing.assert_array_equal(read_seg(out, window.session.volume).labels, labels)


def test_keys_select_tools_segments_brush_size_and_hide_masks(qtbot, ct):
    window, _, _ = ct
    seg = window.segments
    a, b = seg.add_segment("a"), seg.add_segment("b")
    axial = window.views.viewports["axial"]
    _focus(qtbot, window, axial)
    for key, tool in ((Qt.Key_B, "brush"), (Qt.Key_X, "eraser"), (Qt.Key_G, "fill")):
        qtbot.keyClick(axial, key)
        assert window.views.tool == tool and window.segment_panel.tool_buttons[tool].isChecked()
    qtbot.keyClick(axial, Qt.Key_B, Qt.ShiftModifier)
    assert window.views.tool == "threshold"
    assert seg.active_label == b
    qtbot.keyClick(axial, Qt.Key_Tab)
    assert seg.active_label == a
    qtbot.keyClick(axial, Qt.Key_Backtab, Qt.ShiftModifier)
    assert seg.active_label == b
    r = seg.radius_mm
    qtbot.keyClick(axial, Qt.Key_BracketRight)
    assert seg.radius_mm > r and window.segment_panel.size_spin.value() == pytest.approx(
        seg.radius_mm, abs=0.05
    )
    qtbot.keyClick(axial, Qt.Key_BracketLeft)
    assert seg.radius_mm == pytest.approx(r)
    from PySide6.QtCore import QPointF
    from PySide6.QtGui import QWheelEvent

    pos = QPointF(axial.width() / 2, axial.height() / 2)
    slice_before = axial.slice_view.slice_index()
    wheel = QWheelEvent(
        pos,
        axial.mapToGlobal(pos),
        QPoint(0, 0),
        QPoint(0, 120),
        Qt.NoButton,
        Qt.ShiftModifier,
        Qt.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(axial, wheel)  # Shift+wheel with a paint tool: brush size
    assert seg.radius_mm > r and axial.slice_view.slice_index() == slice_before
    qtbot.keyClick(axial, Qt.Key_H)
    assert not seg.masks_visible and not window.segment_panel.show_masks.isChecked()
    assert all(not layer.visible for layer in seg.display.layers.values())
    qtbot.keyClick(axial, Qt.Key_H)
    assert seg.masks_visible
    from viewer.qt.shortcuts import SHORTCUTS

    keys = " ".join(k for k, _ in SHORTCUTS)
    for shown in ("B, X", "Tab", "Ctrl+Z", "[ / ]", "H"):
        assert shown in keys


def test_flood_fill_and_region_operations_are_undo_steps(qtbot, ct):
    window, hu, info = ct
    seg = window.segments
    label = seg.add_segment("air in lung")
    window.set_tool("fill")
    seg.set_hu_range(-1100, -400)
    axial = window.views.viewports["axial"]
    k = axial.slice_view.slice_index()
    g = window.session.volume.geometry
    lung = np.argwhere(info["labels"][k] == 1)
    j, i = lung[len(lung) // 2]
    seed = g.index_to_lps((k, j, i))
    _drag(qtbot, axial, [_q(axial, seed)])
    labels = window.session.labelmap.labels
    filled = labels == label
    assert filled[k, j, i] and set(np.argwhere(filled)[:, 0]) == {k}
    assert hu[filled].max() <= -400 and filled.sum() > 50
    assert seg.stack.undo_name == "Flood fill"
    n = int(filled.sum())
    assert seg.operate("margin", margin_mm=-4.0) and 0 < (labels == label).sum() < n
    assert seg.stack.undo_name == "Shrink"
    seg.undo()
    assert (labels == label).sum() == n


def test_quantification_table_follows_the_strokes(qtbot, ct):
    from viewer.core.quantify import quantify, to_rows
    from viewer.qt.panels.quantification import COLUMNS, cell_text

    window, _, info = ct
    seg, table = window.segments, window.segment_panel.quant
    window.session.set_labelmap(_phantom_labelmap(window, info))

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
    _drag(
        qtbot, axial, _line(_centre_q(axial, window, (-120, 0)), _centre_q(axial, window, (-40, 0)))
    )
    qtbot.waitUntil(lambda: table.cell(2, "ground_glass") != before, timeout=10000)
    qtbot.waitUntil(shown_equals_quantify, timeout=10000)
    assert float(table.cell(2, "ground_glass")) > float(before)


def test_3d_surfaces_follow_the_strokes(qtbot, ct):
    window, _, _ = ct
    seg = window.segments
    window.set_layout("2x2")
    qtbot.waitUntil(lambda: window.views.viewports["3d"].isVisible(), timeout=5000)
    label = seg.add_segment("nodule")
    window.set_tool("brush")
    seg.set_sphere(True)
    seg.set_radius(25.0)
    axial = window.views.viewports["axial"]
    _drag(qtbot, axial, [_centre_q(axial, window)])
    assert len(set(np.argwhere(window.session.labelmap.labels == label)[:, 0])) > 1  # a sphere

    def built():
        s = seg.display.surfaces
        return s is not None and label in s.actors and not s.dirty

    qtbot.waitUntil(built, timeout=15000)
    x0, x1 = seg.display.surfaces.bounds(label)[:2]
    assert 40 < x1 - x0 < 60  # about the 50 mm diameter
    _drag(qtbot, axial, _line(_centre_q(axial, window), _centre_q(axial, window, (80, 0))))
    qtbot.waitUntil(
        lambda: built() and seg.display.surfaces.bounds(label)[1] > x1 + 10, timeout=15000
    )


def test_segment_table_edits_the_segments(qtbot, ct):
    from PySide6.QtGui import QColor

    window, _, _ = ct
    seg, panel = window.segments, window.segment_panel
    qtbot.mouseClick(panel.add_button, Qt.LeftButton)
    qtbot.mouseClick(panel.add_button, Qt.LeftButton)
    lm = window.session.labelmap
    assert sorted(lm.names().values()) == ["Segment 1", "Segment 2"]
    assert seg.active_label == 2 and panel.table.currentRow() == 1
    panel.table.selectRow(0)
    assert seg.active_label == 1
    panel.table.item(0, 1).setText("right lung")  # as an edit in the cell would
    assert lm.segments[1].name == "right lung"
    panel.table.item(0, 2).setCheckState(Qt.Unchecked)
    assert lm.segments[1].visible is False
    panel.table.item(0, 4).setCheckState(Qt.Checked)
    assert lm.segments[1].locked is True
    panel.table.cellWidget(1, 3).setValue(80)
    assert lm.segments[2].opacity == pytest.approx(0.8)
    panel._cell_clicked(1, 0)  # the colour swatch opens a (non-modal) colour dialog
    panel.colour_dialog.colorSelected.emit(QColor(10, 20, 30))
    assert lm.segments[2].color == (10, 20, 30)
    panel.colour_dialog.close()
    # the segment layers draw what the table says: label 1 hidden, label 2 in its colour
    from viewer.render.labelmap_layer import segment_rgba

    rgba = segment_rgba(lm.segments)
    assert rgba[1, 3] == 0 and tuple(rgba[2, :3]) == (10, 20, 30)
    seg.remove_segment(2)
    assert panel.table.rowCount() == 1 and seg.active_label == 1


def test_import_dialog_reads_off_the_gui_thread_and_reports_errors(
    qtbot, ct, tmp_path, monkeypatch
):
    from PySide6.QtWidgets import QFileDialog

    from viewer.core.export.label_files import write_label_nifti

    window, _, info = ct
    path = write_label_nifti(
        _phantom_labelmap(window, info), tmp_path / "l.nii.gz", volume=window.session.volume
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


def test_brush_cursor_follows_the_mouse_in_each_plane(qtbot, ct):
    window, _, _ = ct
    seg = window.segments
    seg.add_segment("a")
    window.set_tool("brush")
    seg.set_radius(10.0)
    shown = {}
    for name in ("axial", "coronal", "sagittal"):
        vp = window.views.viewports[name]
        q = _centre_q(vp, window, (15, -10))
        qtbot.mouseMove(vp, q)
        cursor = seg.display.cursors[vp]
        np.testing.assert_allclose(cursor.position, _lps(vp, q), atol=1e-6)
        assert cursor.actor.GetVisibility()
        assert cursor.radius_px() == pytest.approx(10.0 / vp.slice_view.mm_per_pixel())
        shown[name] = cursor
    # only the view under the mouse shows it; a non-paint tool hides it
    assert [n for n, c in shown.items() if c.position is not None] == ["sagittal"]
    window.set_tool("window")
    assert all(c.position is None for c in shown.values())


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


def test_the_label_layer_shows_the_stroke_during_the_drag(qtbot, ct):
    from viewer.render.offscreen import capture_rgb

    window, _, _ = ct
    seg = window.segments
    label = seg.add_segment("red")
    seg.update_segment(label, color=(255, 0, 0), opacity=1.0)
    window.set_tool("brush")
    seg.set_radius(12.0)
    axial = window.views.viewports["axial"]
    a, b = _centre_q(axial, window, (-60, 0)), _centre_q(axial, window, (60, 0))
    r = axial.devicePixelRatioF()

    def redness(q: QPoint) -> float:
        rgb = capture_rgb(axial.GetRenderWindow()).astype(float)
        y = rgb.shape[0] - 1 - int(round((axial.height() - q.y()) * r))
        x = int(round(q.x() * r))
        patch = rgb[y - 2 : y + 3, x - 2 : x + 3]
        return float((patch[..., 0] - patch[..., 1:].mean(axis=-1)).mean())

    mid = QPoint((a.x() + b.x()) // 2, a.y())
    assert redness(mid) < 20
    qtbot.mousePress(axial, Qt.LeftButton, Qt.NoModifier, a)
    for q in _line(a, b)[1:]:
        qtbot.mouseMove(axial, q)
    QApplication.processEvents()  # the layer asked for a repaint; no release yet
    assert seg._brush is not None  # still dragging
    assert redness(mid) > 100
    qtbot.mouseRelease(axial, Qt.LeftButton, Qt.NoModifier, b)

"""The segmentation editor in the main window: painting tools, undo, keys and the segment
table, with real widgets, real VTK views and real mouse drags (pytest-qt under Xvfb). Data:
the demo chest phantom written as a DICOM series (the ``ct`` fixture, conftest.py).
Import/export, model runs and quantification: test_segment_io.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QApplication

from tests.qt.segment_helpers import (
    ORIGIN,
    SHAPE,
    SPACING,
    centre_q,
    drag,
    focus,
    line,
    start_painting,
    stroke,
    to_lps,
    to_q,
    voxels,
)
from viewer.core.labelmap import LabelMap
from viewer.core.session import Session


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
    seg, label, axial = start_painting(window, "lesion", 6.0)
    k = axial.slice_view.slice_index()
    path = stroke(qtbot, window, axial, (-60, -20), (50, 30))
    labels = window.session.labelmap.labels
    painted = np.argwhere(labels == label)
    assert len(painted) > 20
    assert set(painted[:, 0]) == {k}  # a disc brush paints the shown slice only
    for voxel in voxels(window, axial, path):  # every voxel under the path is painted
        assert labels[voxel] == label, voxel
    # nothing farther than the radius (+ half a voxel diagonal) from the drawn segment
    g = window.session.volume.geometry
    a, b = to_lps(axial, path[0]), to_lps(axial, path[-1])
    pts = np.array([g.index_to_lps(v) for v in painted])
    t = np.clip((pts - a) @ (b - a) / ((b - a) @ (b - a)), 0, 1)
    dist = np.linalg.norm(pts - (a + t[:, None] * (b - a)), axis=1)
    assert dist.max() <= 6.0 + 3.75 * 0.71
    assert window.undo_action.isEnabled() and window.undo_action.text() == "&Undo Paint lesion"
    before = labels.copy()
    focus(qtbot, window, axial)
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
    seg, label, axial = start_painting(window, "lung", 15.0)
    stroke(qtbot, window, axial, (-80, 0), (80, 0))
    labels = window.session.labelmap.labels
    full = int((labels == label).sum())
    seg.set_radius(4.0)
    window.set_tool("eraser")
    erase_path = drag(qtbot, axial, [centre_q(axial, window, (0, 0))])
    (voxel,) = voxels(window, axial, erase_path)
    assert labels[voxel] == 0
    after_eraser = int((labels == label).sum())
    assert 0 < full - after_eraser < full / 3  # a small hole, the rest is kept
    window.set_tool("brush")  # Ctrl inverts the brush into an eraser
    ctrl_path = drag(qtbot, axial, [centre_q(axial, window, (-50, 0))], Qt.ControlModifier)
    (voxel,) = voxels(window, axial, ctrl_path)
    assert labels[voxel] == 0 and (labels == label).sum() < after_eraser
    assert window.segments.stack.undo_name == "Erase lung"


def test_brush_in_the_coronal_view_paints_a_coronal_disc(qtbot, ct):
    window, _, _ = ct
    seg, label, _ = start_painting(window, "s", 20.0)
    coronal = window.views.viewports["coronal"]
    j = coronal.slice_view.slice_index()
    click = drag(qtbot, coronal, [centre_q(coronal, window)])
    painted = np.argwhere(window.session.labelmap.labels == label)
    assert set(painted[:, 1]) == {j}  # one coronal plane (constant row j)
    assert len(set(painted[:, 0])) >= 2 and len(set(painted[:, 2])) >= 5  # spans k and i
    centre = to_lps(coronal, click[0])  # on the shown plane
    g = window.session.volume.geometry
    dist = np.linalg.norm([g.index_to_lps(v) - centre for v in painted], axis=1)
    assert dist.max() <= 20.0 + 1e-6
    # expected area of a 20 mm disc in 3.75 x 18.75 mm pixels, within a few pixels
    assert abs(len(painted) - np.pi * 20.0**2 / (3.75 * 18.75)) < 8


def test_threshold_brush_paints_only_within_the_hu_range(qtbot, ct):
    window, hu, _ = ct
    seg, label, axial = start_painting(window, "air", 30.0, tool="threshold")
    seg.set_hu_range(-1100, -500)
    stroke(qtbot, window, axial, (-150, 0), (150, 0))
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
    seg, first, axial = start_painting(window, "right lung", 12.0)
    drag(qtbot, axial, [centre_q(axial, window)])
    labels = window.session.labelmap.labels
    before = labels == first
    seg.update_segment(first, locked=True)
    # painting with the locked segment itself does nothing and says why
    messages = []
    seg.message.connect(messages.append)
    drag(qtbot, axial, [centre_q(axial, window, (30, 0))])
    assert "locked" in messages[-1]
    second = seg.add_segment("lesion")
    stroke(qtbot, window, axial, (-60, 0), (60, 0))
    np.testing.assert_array_equal(labels == first, before)  # untouched
    assert (labels == second).sum() > 0
    assert seg.operate("clear") and not (labels == second).any()  # unlocked: cleared
    seg.set_active(first)
    assert not seg.operate("clear") and (labels == first).sum() == before.sum()


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
    drag(qtbot, axial, [to_q(axial, seed)])
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


def test_keys_select_tools_segments_brush_size_and_hide_masks(qtbot, ct):
    window, _, _ = ct
    seg = window.segments
    a, b = seg.add_segment("a"), seg.add_segment("b")
    axial = window.views.viewports["axial"]
    focus(qtbot, window, axial)
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


def test_brush_cursor_follows_the_mouse_in_each_plane(qtbot, ct):
    window, _, _ = ct
    seg, _, _ = start_painting(window, "a", 10.0)
    shown = {}
    for name in ("axial", "coronal", "sagittal"):
        vp = window.views.viewports[name]
        q = centre_q(vp, window, (15, -10))
        qtbot.mouseMove(vp, q)
        cursor = seg.display.cursors[vp]
        np.testing.assert_allclose(cursor.position, to_lps(vp, q), atol=1e-6)
        assert cursor.actor.GetVisibility()
        assert cursor.radius_px() == pytest.approx(10.0 / vp.slice_view.mm_per_pixel())
        shown[name] = cursor
    # only the view under the mouse shows it; a non-paint tool hides it
    assert [n for n, c in shown.items() if c.position is not None] == ["sagittal"]
    window.set_tool("window")
    assert all(c.position is None for c in shown.values())


def test_the_label_layer_shows_the_stroke_during_the_drag(qtbot, ct):
    from viewer.render.offscreen import capture_rgb

    window, _, _ = ct
    seg, label, axial = start_painting(window, "red", 12.0)
    seg.update_segment(label, color=(255, 0, 0), opacity=1.0)
    a, b = centre_q(axial, window, (-60, 0)), centre_q(axial, window, (60, 0))
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
    for q in line(a, b)[1:]:
        qtbot.mouseMove(axial, q)
    QApplication.processEvents()  # the layer asked for a repaint; no release yet
    assert seg._brush is not None  # still dragging
    assert redness(mid) > 100
    qtbot.mouseRelease(axial, Qt.LeftButton, Qt.NoModifier, b)


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
    drag(qtbot, axial, [centre_q(axial, window)])
    assert len(set(np.argwhere(window.session.labelmap.labels == label)[:, 0])) > 1  # a sphere

    def built():
        s = seg.display.surfaces
        return s is not None and label in s.actors and not s.dirty

    qtbot.waitUntil(built, timeout=15000)
    x0, x1 = seg.display.surfaces.bounds(label)[:2]
    assert 40 < x1 - x0 < 60  # about the 50 mm diameter
    stroke(qtbot, window, axial, (0, 0), (80, 0))
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

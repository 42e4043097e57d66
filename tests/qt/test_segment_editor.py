"""The segmentation editor in the main window: real widgets, real VTK views, real mouse drags
(pytest-qt under Xvfb). Data: the demo chest phantom written as a DICOM series.

GUI tests never import TensorFlow (it crashes beside VTK): model runs use the classical
ct-lungs model through the real AI process, or a stub client at the controller boundary.
"""

from __future__ import annotations

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

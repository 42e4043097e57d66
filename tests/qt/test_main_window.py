"""The main window with real widgets and real VTK rendering (pytest-qt under Xvfb)."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from viewer.core.demo import write_series
from viewer.qt.main_window import MainWindow
from viewer.render.offscreen import capture_rgb

SHAPE = (20, 40, 48)
SPACING = (2.0, 0.8, 0.6)
ORIGIN = (-20.0, -30.0, 40.0)
OBLIQUE = np.array(
    [[0.98480775, 0.0, 0.17364818], [0.05939117, 0.93969262, -0.33682409],
     [-0.16317591, 0.34202014, 0.92541658]]
)  # fmt: skip
MARKER = (12, 28, 33)  # (k, j, i): right-of-centre, posterior, upper half


def _series(folder, direction=None):
    hu = np.full(SHAPE, -1000, dtype=np.int16)
    hu[:, 4:-4, 4:-4] = 0
    k, j, i = MARKER
    hu[k - 1 : k + 2, j - 1 : j + 2, i - 1 : i + 2] = 3000
    write_series(hu, folder, spacing=SPACING, origin=ORIGIN, direction=direction, shuffle=True)
    d = np.eye(3) if direction is None else np.asarray(direction)
    marker = np.asarray(ORIGIN) + d @ (np.array([i * SPACING[2], j * SPACING[1], k * SPACING[0]]))
    return marker


def _bright_spot(vp):
    """Display (x, y) (VTK, origin bottom-left) of the brightest blob in a viewport."""
    rgb = capture_rgb(vp.GetRenderWindow()).astype(float).sum(axis=2)
    rgb[:40, :] = 0  # ignore corner text rows
    rgb[-40:, :] = 0
    ys, xs = np.nonzero(rgb >= rgb.max() - 1)
    h = rgb.shape[0]
    return float(xs.mean()), float(h - 1 - ys.mean())


@pytest.mark.parametrize("direction", [None, OBLIQUE], ids=["axial", "oblique"])
def test_marker_appears_where_it_should_in_each_view(qtbot, window, load, tmp_path, direction):
    marker = _series(tmp_path / "s", direction)
    load(window, tmp_path / "s")
    window.session.set_window((500, 1000))  # marker white, tissue grey
    window.views.set_crosshair_visible(False)
    window.session.set_cursor(marker)
    for name in ("axial", "coronal", "sagittal"):
        vp = window.views.viewports[name]
        view = vp.slice_view
        expected = view.lps_to_display(marker)
        x, y = _bright_spot(vp)
        assert abs(x - expected[0]) < 6 and abs(y - expected[1]) < 6, (name, (x, y), expected)
    # radiological convention: high i = the patient's left -> screen right in axial;
    # high j = posterior -> screen bottom
    axial = window.views.viewports["axial"]
    x, y = _bright_spot(axial)
    if direction is None:
        assert x > axial.width() / 2 and y < axial.height() / 2


def test_scroll_wheel_moves_one_slice_and_links_cursor(qtbot, window, load, tmp_path):
    _series(tmp_path / "s")
    load(window, tmp_path / "s")
    axial = window.views.viewports["axial"]
    view = axial.slice_view
    before = view.slice_position_mm()
    pos = QPointF(axial.width() / 2, axial.height() / 2)
    event = QWheelEvent(
        pos,
        axial.mapToGlobal(pos),
        QPoint(0, 0),
        QPoint(0, 120),
        Qt.NoButton,
        Qt.NoModifier,
        Qt.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(axial, event)
    assert view.slice_position_mm() == pytest.approx(before + SPACING[0])
    assert window.session.cursor[2] == pytest.approx(before + SPACING[0])
    # the coronal view's crosshair follows: its cursor is the session's
    np.testing.assert_allclose(
        window.views.viewports["coronal"].slice_view.cursor(), window.session.cursor
    )
    for _ in range(3):
        window.views.scroll_active(-1)
    assert view.slice_position_mm() == pytest.approx(before - 2 * SPACING[0])


def test_click_moves_linked_crosshair(qtbot, window, load, tmp_path):
    _series(tmp_path / "s")
    load(window, tmp_path / "s")
    axial = window.views.viewports["axial"]
    view = axial.slice_view
    qpos = QPoint(int(axial.width() * 0.3), int(axial.height() * 0.6))
    qtbot.mouseClick(axial, Qt.LeftButton, pos=qpos)
    ratio = axial.devicePixelRatioF()
    expected = view.display_to_lps(qpos.x() * ratio, (axial.height() - qpos.y()) * ratio)
    np.testing.assert_allclose(window.session.cursor, window.session.clamp(expected), atol=1e-6)
    coronal = window.views.viewports["coronal"].slice_view
    sagittal = window.views.viewports["sagittal"].slice_view
    # the other views now cut through the clicked point (within half a voxel)
    assert coronal.slice_position_mm() == pytest.approx(expected[1], abs=SPACING[1] / 2 + 1e-6)
    assert sagittal.slice_position_mm() == pytest.approx(expected[0], abs=SPACING[2] / 2 + 1e-6)


def test_right_drag_changes_window_and_pixels(qtbot, window, load, tmp_path):
    _series(tmp_path / "s")
    load(window, tmp_path / "s")
    axial = window.views.viewports["axial"]
    window.views.set_crosshair_visible(False)
    window.session.set_window((0, 400))
    window.views.render_all()
    before = capture_rgb(axial.GetRenderWindow()).mean()
    start = QPoint(axial.width() // 2, axial.height() // 2)
    qtbot.mousePress(axial, Qt.RightButton, pos=start)
    qtbot.mouseMove(axial, start + QPoint(0, 80))  # drag down: level up, image darker
    qtbot.mouseRelease(axial, Qt.RightButton, pos=start + QPoint(0, 80))
    wl = window.session.window
    assert wl.center > 0 and wl.width == pytest.approx(400)
    qtbot.waitUntil(
        lambda: window.histogram.window() == pytest.approx((wl.center, wl.width)), timeout=2000
    )
    assert capture_rgb(axial.GetRenderWindow()).mean() < before
    window.session.apply_preset("lung")
    assert window.session.window.as_tuple() == (-600, 1500)


def test_length_measurement_in_mm(qtbot, window, load, tmp_path):
    _series(tmp_path / "s")
    load(window, tmp_path / "s")
    window.views.set_tool("length")
    axial = window.views.viewports["axial"]
    view = axial.slice_view
    a, b = QPoint(100, 150), QPoint(260, 230)
    qtbot.mousePress(axial, Qt.LeftButton, pos=a)
    qtbot.mouseMove(axial, b)
    qtbot.mouseRelease(axial, Qt.LeftButton, pos=b)
    (m,) = list(window.session.measurements)
    r = axial.devicePixelRatioF()
    pa = view.display_to_lps(a.x() * r, (axial.height() - a.y()) * r)
    pb = view.display_to_lps(b.x() * r, (axial.height() - b.y()) * r)
    assert m.value() == pytest.approx(float(np.linalg.norm(pb - pa)), rel=1e-6)
    assert m.kind == "length" and m.orientation == "axial"
    assert len(axial._annotations) == 1  # drawn on its slice
    window.views.scroll_active(1)
    assert len(axial._annotations) == 0  # not on the next slice
    window.views.scroll_active(-1)
    window.views.delete_measurement()
    assert len(window.session.measurements) == 0


def test_layouts_and_maximise(qtbot, window, load, tmp_path):
    _series(tmp_path / "s")
    load(window, tmp_path / "s")
    views = window.views
    window.set_layout("2x2")
    assert [vp.kind for vp in views.visible_viewports()] == ["axial", "coronal", "sagittal", "3d"]
    assert views.viewports["3d"].view is not None
    views.toggle_maximise(views.viewports["coronal"])
    assert views.visible_viewports() == [views.viewports["coronal"]]
    views.toggle_maximise(views.viewports["coronal"])
    assert len(views.visible_viewports()) == 4
    window.set_layout("1x1")
    assert len(views.visible_viewports()) == 1
    assert window.settings.value("view/layout") == "1x1"
    out = tmp_path / "shot.png"
    views.screenshot(str(out), whole_layout=True)
    assert out.stat().st_size > 1000


def test_corrupt_folder_shows_message_and_window_survives(qtbot, window, load, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\x13\x37" * 50)
    (bad / "b.txt").write_text("hello")
    window.open_path(str(bad))
    qtbot.waitUntil(lambda: bool(window.last_error), timeout=10000)
    assert "No loadable images" in window.last_error
    assert window.isVisible()
    good = tmp_path / "good"
    _series(good)
    window.last_error = ""
    load(window, good)
    assert window.session.volume.geometry.shape == SHAPE
    assert window.recent_folders()[0] == str(good)


def test_presets_keys_and_persistence(qtbot, window, load, tmp_path):
    _series(tmp_path / "s")
    load(window, tmp_path / "s")
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=3000)
    window.views.viewports["axial"].setFocus()
    qtbot.keyClick(window.views.viewports["axial"], Qt.Key_3)  # bone
    assert window.session.window.as_tuple() == (400, 1800)
    window.session.set_window((-500, 1200))
    window.store_preset("lung")
    again = MainWindow(window.settings)
    qtbot.addWidget(again)
    assert again.presets()["lung"].as_tuple() == (-500, 1200)
    assert "C -500, W 1200" in again.preset_actions["lung"].text()
    again.restore_presets()
    assert again.presets()["lung"].as_tuple() == (-600, 1500)
    again.close()


def test_ellipse_roi_and_angle(qtbot, window, load, tmp_path):
    _series(tmp_path / "s")
    load(window, tmp_path / "s")
    axial = window.views.viewports["axial"]
    view = axial.slice_view
    centre = np.array(view.lps_to_display(window.session.cursor))
    h = axial.height()
    c = QPoint(int(centre[0]), int(h - centre[1]))
    window.views.set_tool("ellipse")
    qtbot.mousePress(axial, Qt.LeftButton, pos=c - QPoint(30, 20))
    qtbot.mouseMove(axial, c + QPoint(30, 20))
    qtbot.mouseRelease(axial, Qt.LeftButton, pos=c + QPoint(30, 20))
    (roi,) = list(window.session.measurements)
    stats = roi.stats(window.session.volume)
    assert stats.unit == "HU" and stats.mean == pytest.approx(0.0) and stats.count > 50
    assert "min 0, max 0 HU" in roi.summary(window.session.volume)
    window.views.set_tool("angle")
    for p in (c + QPoint(60, 0), c, c + QPoint(0, -60)):  # a right angle on screen
        qtbot.mouseClick(axial, Qt.LeftButton, pos=p)
    angle = [m for m in window.session.measurements if m.kind == "angle"]
    assert len(angle) == 1 and angle[0].value() == pytest.approx(90.0, abs=0.5)


def test_drop_opens_and_radiograph_gets_one_view(qtbot, window, load, tmp_path):
    from pydicom.data import get_testdata_file
    from PySide6.QtCore import QMimeData, QUrl
    from PySide6.QtGui import QDropEvent

    cr = get_testdata_file("RG1_UNCR.dcm", download=False)
    if cr is None:
        pytest.skip("pydicom-data not installed")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(cr)])
    event = QDropEvent(QPointF(10, 10), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    window.dropEvent(event)
    qtbot.waitUntil(lambda: window.session.volume is not None, timeout=20000)
    views = window.views.visible_viewports()
    assert [vp.kind for vp in views] == ["image"]
    assert window.session.invert  # MONOCHROME1 shown with bone white


def test_cine_steps_through_slices(qtbot, window, load, tmp_path):
    _series(tmp_path / "s")
    load(window, tmp_path / "s")
    view = window.views.viewports["axial"].slice_view
    start = view.slice_index()
    window.views.toggle_cine()
    qtbot.waitUntil(lambda: view.slice_index() != start, timeout=3000)
    window.views.toggle_cine()
    assert not window.views._cine.isActive()

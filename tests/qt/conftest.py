"""Shared fixtures for the main-window tests: a window with its own settings file, a
helper that opens a path and waits until the volume is shown, and the phantom CT opened in
the window for the segmentation tests."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

from tests.qt.segment_helpers import ORIGIN, SHAPE, SPACING
from viewer.core.demo import chest_phantom, write_series
from viewer.qt.main_window import MainWindow


@pytest.fixture
def window(qtbot, tmp_path):
    w = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat))
    qtbot.addWidget(w)
    w.resize(1300, 760)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.close()


@pytest.fixture
def load(qtbot):
    """load(window, path): open, wait for the volume and the laid-out views."""

    def run(window, path) -> None:
        window.open_path(str(path))
        qtbot.waitUntil(
            lambda: window.session.volume is not None or bool(window.last_error), timeout=20000
        )
        assert not window.last_error, window.last_error
        shown = window.views.visible_viewports()
        qtbot.waitUntil(
            lambda: all(vp.isVisible() and vp.width() > 100 for vp in shown), timeout=5000
        )
        QApplication.processEvents()
        window.views.render_all()

    return run


@pytest.fixture(scope="module")
def phantom():
    """The demo chest phantom (segmentation tests): (hu, info)."""
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

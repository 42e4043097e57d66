"""Shared fixtures for the main-window tests: a window with its own settings file, and a
helper that opens a path and waits until the volume is shown."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

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

"""GUI entry point: ``radview [PATH]`` opens the main window (optionally on PATH)."""

from __future__ import annotations

import os
import sys
import time

_T0 = time.perf_counter()


def _configure_opengl() -> None:
    """Pick a VTK OpenGL window class that works where we run (see DEVELOPERS.md)."""
    if os.environ.get("QT_QPA_PLATFORM") == "offscreen":
        # Qt offscreen + a VTK widget only works with OSMesa (libosmesa6)
        os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkOSOpenGLRenderWindow")


def main(argv: list[str] | None = None) -> int:
    """Run the viewer. ``argv``: optional [PATH] (a path, or a list of paths as one item).
    Returns the process exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    _configure_opengl()
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from viewer.qt.main_window import MainWindow

    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setApplicationName("radview")
    app.setOrganizationName("radview")
    window = MainWindow()
    window.show()
    if os.environ.get("RADVIEW_STARTUP_TIMING"):
        QTimer.singleShot(0, lambda: print(f"first window {time.perf_counter() - _T0:.3f} s"))
    if argv:
        QTimer.singleShot(0, lambda: window.open_path(argv[0]))
    code = app.exec()
    window.shutdown()
    window.deleteLater()
    app.processEvents()
    return int(code)

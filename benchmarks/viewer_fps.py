"""Benchmark: the Qt viewer under Xvfb — start-up time, scrolling and W/L frame rates.

* start-up: whole process from launch to the first window shown (``radview`` with no
  arguments), median of 3; also checks TensorFlow was never imported;
* scrolling: a 512x512x300 chest phantom in the 1x3 layout, crosshair and overlays on; each
  frame moves the axial slice by one (the linked coronal/sagittal crosshairs follow) and
  renders every visible view; frames/s per view;
* W/L: each frame changes the window (all three views re-render).

Targets (issue 3): start-up < 1.5 s, scrolling and W/L >= 60 frames/s.
Run under a display, e.g. ``xvfb-run -a python benchmarks/viewer_fps.py``.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STARTUP = r"""
import os, sys, time
t0 = float(sys.argv[1])
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from viewer.qt.main_window import MainWindow
from PySide6.QtCore import QSettings
app = QApplication([])
w = MainWindow(QSettings(sys.argv[2], QSettings.IniFormat))
w.show()
def done():
    print(time.time() - t0)
    print("tensorflow" in sys.modules)
    w.close(); app.quit()
QTimer.singleShot(0, done)
app.exec()
"""


def startup(runs: int = 3) -> tuple[float, bool]:
    times, tf = [], False
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(runs):
            out = subprocess.run([sys.executable, "-c", STARTUP, str(time.time()),
                                  os.path.join(tmp, "s.ini")],
                                 capture_output=True, text=True, check=True, cwd=ROOT)
            lines = out.stdout.split()
            times.append(float(lines[0]))
            tf = tf or lines[1] == "True"
    return statistics.median(times), tf


def frame_rates(slices: int, frames: int) -> dict[str, float]:
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from viewer.core.demo import chest_phantom
    from viewer.core.geometry import VolumeGeometry
    from viewer.core.volume import Volume
    from viewer.qt.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    hu, _ = chest_phantom(shape=(slices, 512, 512), spacing=(1.0, 0.7, 0.7))
    geometry = VolumeGeometry(hu.shape, (1.0, 0.7, 0.7), (-180.0, -180.0, -150.0))
    volume = Volume(hu, geometry, modality="CT", window=(-600.0, 1500.0))
    with tempfile.TemporaryDirectory() as tmp:
        w = MainWindow(QSettings(os.path.join(tmp, "s.ini"), QSettings.IniFormat))
        w.resize(1600, 900)
        w.show()
        w.set_layout("1x3")
        w._loaded(volume)
        app.processEvents()
        views = w.views
        n_views = len(views.visible_viewports())

        def timed(step) -> float:
            for _ in range(5):
                step(0)
                app.processEvents()
            t = time.perf_counter()
            for n in range(frames):
                step(n)
                app.processEvents()
            return frames / (time.perf_counter() - t)

        axial = views.viewports["axial"]
        renders = {"n": 0}

        def count(*_):
            renders["n"] += 1

        observed = [(vp.GetRenderWindow(), vp.GetRenderWindow().AddObserver("EndEvent", count))
                    for vp in views.visible_viewports()]
        scroll = timed(lambda n: views.scroll(axial, 1 if (n // (slices - 10)) % 2 == 0 else -1,
                                              wrap=True))
        linked = renders["n"]
        for window_, tag in observed:
            window_.RemoveObserver(tag)
        def drag_window(n):  # as a right-drag in the axial view does
            with views.driving(axial):
                w.session.set_window((-600 + (n % 50) * 4, 1500))

        window = timed(drag_window)
        w.close()
        w.deleteLater()
        app.processEvents()
    return {"views": n_views, "scroll_fps": scroll, "window_fps": window,
            "renders_per_scroll_frame": linked / (frames + 5)}


def main() -> int:
    t, tf = startup()
    print(f"start-up to first window: {t:.2f} s (target < 1.5 s); "
          f"TensorFlow imported: {'YES' if tf else 'no'}")
    r = frame_rates(slices=300, frames=200)
    print(f"scrolling the axial view, 1x3 layout, crosshair and overlays on: "
          f"{r['scroll_fps']:.0f} frames/s in the scrolled view (target >= 60); "
          f"linked views re-render at <= 20 Hz ({r['renders_per_scroll_frame']:.2f} "
          "renders per frame in all)")
    print(f"window/level drag: {r['window_fps']:.0f} frames/s in the dragged view "
          "(target >= 60); the other views follow at <= 20 Hz")
    return 0


if __name__ == "__main__":
    sys.exit(main())

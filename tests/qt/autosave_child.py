"""Child process of tests/qt/test_autosave.py: a real viewer that edits, then gets killed.

``python tests/qt/autosave_child.py SERIES SETTINGS_INI OUT HOLD_AT``

Opens SERIES in a MainWindow whose settings are SETTINGS_INI (so its journals go to the
``autosave`` folder beside it), runs the edits of :data:`OPS` with real mouse events on the
axial view (strokes, a fill click, an eraser stroke, an undo, a stroke on another slice,
a recolour and a rename) and, after each finished one, saves the expected state to
``OUT/state_<n>.npz`` (labels, segment names and colours) and prints ``done <n>``. After op
HOLD_AT it presses the mouse and drags without releasing (a stroke in progress), prints
``holding`` and waits to be killed (SIGKILL from the test). HOLD_AT 0: brush strokes
without end, each one's state saved before its mouse release (the release changes no voxel,
it only ends the undo step) and ``done <n>`` printed after it; the test kills it at any
moment. Never exits on its own.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root

import numpy as np  # noqa: E402
from PySide6.QtCore import QPoint, QSettings, Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from tests.qt.segment_helpers import line, to_q  # noqa: E402
from viewer.qt.main_window import MainWindow  # noqa: E402


def wait(condition, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise SystemExit("timed out")
        QApplication.processEvents()
        time.sleep(0.01)


def press_and_drag(vp, points, modifier=Qt.NoModifier) -> None:
    QTest.mousePress(vp, Qt.LeftButton, modifier, points[0])
    for p in points[1:]:
        QTest.mouseMove(vp, p)
    QApplication.processEvents()


def drag(vp, points, modifier=Qt.NoModifier) -> None:
    press_and_drag(vp, points, modifier)
    QTest.mouseRelease(vp, Qt.LeftButton, modifier, points[-1])
    QApplication.processEvents()


class Editor:
    def __init__(self, window: MainWindow) -> None:
        self.window, self.seg = window, window.segments
        self.vp = window.views.viewports["axial"]

    def q(self, dx: int, dy: int) -> QPoint:
        return to_q(self.vp, self.window.session.cursor) + QPoint(dx, dy)

    def stroke(self, a, b, modifier=Qt.NoModifier) -> None:
        drag(self.vp, line(self.q(*a), self.q(*b), 10), modifier)

    def lesion(self) -> None:
        self.seg.add_segment("lesion")
        self.window.set_tool("brush")
        self.seg.set_radius(6.0)
        self.stroke((-60, -20), (40, 30))

    def second_stroke(self) -> None:
        self.stroke((-30, 40), (50, -40))

    def cyst(self) -> None:
        label = self.seg.add_segment("cyst")
        self.seg.update_segment(label, color=(10, 200, 30))
        self.stroke((20, -60), (20, 60))

    def fill(self) -> None:
        self.window.set_tool("fill")
        self.seg.set_hu_range(-1000, -300)  # the phantom's lungs
        volume = self.window.session.volume
        k = self.vp.slice_view.slice_index()
        j, i = np.argwhere(volume.array[k] < -700)[len(np.argwhere(volume.array[k] < -700)) // 2]
        point = to_q(self.vp, volume.geometry.index_to_lps((k, j, i)))
        QTest.mouseClick(self.vp, Qt.LeftButton, Qt.NoModifier, point)
        QApplication.processEvents()

    def erase_then_undo(self) -> None:
        self.window.set_tool("brush")
        self.stroke((-70, 0), (70, 0), Qt.ControlModifier)  # Ctrl: the brush erases
        self.seg.undo()

    def erase(self) -> None:
        self.stroke((20, -30), (20, 30), Qt.ControlModifier)  # along the cyst

    def other_slice(self) -> None:
        self.window.views.scroll_active(3)
        QApplication.processEvents()
        self.stroke((-40, -40), (40, 40))

    def rename(self) -> None:
        label = self.window.session.labelmap.label_of("lesion")
        self.seg.update_segment(label, name="lesion A", color=(200, 0, 200))


OPS = ["lesion", "second_stroke", "cyst", "fill", "erase_then_undo", "erase",
       "other_slice", "rename"]  # fmt: skip


def save_state(window: MainWindow, path: Path) -> None:
    lm = window.session.labelmap
    table = {v: [s.name, list(s.color)] for v, s in lm.segments.items()}
    np.savez(path, labels=lm.labels, table=json.dumps(table))


def strokes_forever(editor: Editor, out: Path) -> None:
    window = editor.window
    editor.seg.add_segment("lesion")
    editor.seg.add_segment("cyst")
    window.set_tool("brush")
    editor.seg.set_radius(4.0)
    n = 0
    while True:
        n += 1
        if n % 4 == 0:
            window.views.scroll_active(1 if n % 8 else -2)
        editor.seg.next_segment(1)
        a, b = editor.q(-60 + 7 * (n % 15), -50), editor.q(60 - 5 * (n % 20), 50 - 3 * (n % 9))
        points = line(a, b, 10)
        press_and_drag(editor.vp, points)
        save_state(window, out / f"state_{n}.npz")
        QTest.mouseRelease(editor.vp, Qt.LeftButton, Qt.NoModifier, points[-1])
        QApplication.processEvents()
        print(f"done {n}", flush=True)


def main(series: str, settings: str, out: str, hold_at: int) -> None:
    app = QApplication.instance() or QApplication([sys.argv[0]])
    window = MainWindow(QSettings(settings, QSettings.IniFormat))
    window.resize(1300, 760)
    window.show()
    window.open_path(series)
    wait(lambda: window.session.volume is not None or bool(window.last_error))
    if window.last_error:
        raise SystemExit(window.last_error)
    editor = Editor(window)
    wait(lambda: editor.vp.isVisible() and editor.vp.width() > 100)
    window.views.set_crosshair_visible(False)
    window.views.set_active(editor.vp)
    app.processEvents()
    if hold_at == 0:
        strokes_forever(editor, Path(out))
    for n, op in enumerate(OPS[:hold_at], 1):
        getattr(editor, op)()
        save_state(window, Path(out) / f"state_{n}.npz")
        print(f"done {n}", flush=True)
    window.set_tool("brush")
    press_and_drag(editor.vp, line(editor.q(-80, 60), editor.q(80, 60), 10))
    print("holding", flush=True)
    while True:  # until SIGKILL
        app.processEvents()
        time.sleep(0.05)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))

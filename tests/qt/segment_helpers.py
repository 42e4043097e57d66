"""Helpers for the segmentation-editor tests: the phantom's geometry, screen <-> LPS
conversion in a viewport, real mouse drags and the usual "pick a segment and a brush" setup.
The fixtures (``phantom``, ``ct``) live in conftest.py."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QApplication

from viewer.core.labelmap import LabelMap

SHAPE = (16, 96, 96)
SPACING = (18.75, 3.75, 3.75)  # the phantom's 300 x 360 x 360 mm field of view
ORIGIN = (-180.0, -180.0, -150.0)


def to_q(vp, lps) -> QPoint:
    """Qt widget position of an LPS point in a viewport."""
    x, y = vp.slice_view.lps_to_display(lps)
    r = vp.devicePixelRatioF()
    return QPoint(int(round(x / r)), int(round(vp.height() - y / r)))


def to_lps(vp, q: QPoint) -> np.ndarray:
    r = vp.devicePixelRatioF()
    return vp.slice_view.display_to_lps(q.x() * r, (vp.height() - q.y()) * r)


def drag(qtbot, vp, points, modifier=Qt.NoModifier) -> list[QPoint]:
    qtbot.mousePress(vp, Qt.LeftButton, modifier, points[0])
    for p in points[1:]:
        qtbot.mouseMove(vp, p)
    qtbot.mouseRelease(vp, Qt.LeftButton, modifier, points[-1])
    QApplication.processEvents()
    return points


def line(a: QPoint, b: QPoint, n: int = 8) -> list[QPoint]:
    return [
        QPoint(int(a.x() + (b.x() - a.x()) * t), int(a.y() + (b.y() - a.y()) * t))
        for t in np.linspace(0, 1, n)
    ]


def voxels(window, vp, points) -> set[tuple[int, int, int]]:
    g = window.session.volume.geometry
    return {tuple(int(v) for v in np.rint(g.lps_to_index(to_lps(vp, p)))) for p in points}


def focus(qtbot, window, widget) -> None:
    """Keys go to the window's shortcuts only when it is the active window."""
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=3000)
    widget.setFocus()


def centre_q(vp, window, offset=(0, 0)) -> QPoint:
    c = to_q(vp, window.session.cursor)
    return c + QPoint(*offset)


def stroke(qtbot, window, vp, start, end) -> list[QPoint]:
    """Drag along a straight line between two offsets (pixels) from the cursor centre."""
    return drag(qtbot, vp, line(centre_q(vp, window, start), centre_q(vp, window, end)))


def start_painting(window, name: str, radius: float, tool: str = "brush"):
    """Add segment `name`, pick `tool` with a `radius` mm brush.
    Returns (the segment controller, the new label, the axial viewport)."""
    seg = window.segments
    label = seg.add_segment(name)
    window.set_tool(tool)
    seg.set_radius(radius)
    return seg, label, window.views.viewports["axial"]


def phantom_labelmap(window, info) -> LabelMap:
    names = {1: "right lung", 2: "left lung", 3: "ground-glass opacity", 4: "consolidation"}
    return LabelMap.from_names(window.session.volume.geometry, info["labels"], names)


def dice(a, b) -> float:
    return 2.0 * float((a & b).sum()) / max(float(a.sum() + b.sum()), 1.0)

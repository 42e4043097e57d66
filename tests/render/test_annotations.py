"""Measurement actors draw where their LPS points are on the slice."""

from __future__ import annotations

import numpy as np

from viewer.core.geometry import VolumeGeometry
from viewer.core.volume import Volume
from viewer.render.annotations import AngleAnnotation, EllipseRoi, LengthAnnotation, RectangleRoi


def _dark(rendered):
    a = np.full((4, 50, 60), -1000, dtype=np.int16)
    volume = Volume(a, VolumeGeometry(a.shape, (2.0, 1.0, 1.0)), modality="CT",
                    window=(40.0, 400.0))
    return rendered(volume, "axial", size=(300, 250))


def _yellow(rgb) -> np.ndarray:
    return (rgb[..., 0] > 150) & (rgb[..., 1] > 120) & (rgb[..., 2] < 120)


def _pixel(view, p, height):
    x, y = view.lps_to_display(p)
    return int(height - y), int(x)


def test_length_line_and_label(rendered):
    r = _dark(rendered)
    view = r.view
    z = view.slice_position_mm()
    p0, p1 = np.array([10.0, 10.0, z]), np.array([50.0, 40.0, z])
    line = LengthAnnotation(view.renderer, p0, p1, "50.0 mm")
    mask = _yellow(r.rgb())
    for t in np.linspace(0.1, 0.9, 9):  # every sample of the segment is drawn
        row, col = _pixel(view, p0 + t * (p1 - p0), 250)
        assert mask[row - 1:row + 2, col - 1:col + 2].any(), t
    row, col = _pixel(view, p1, 250)
    assert mask[max(row - 30, 0):row, col:col + 80].sum() > 20  # the label, up-right of p1
    line.set_text("")
    line.set_points(p0, p0 + 1)
    assert _yellow(r.rgb()).sum() < 20
    line.remove()
    assert not _yellow(r.rgb()).any()


def test_angle_ellipse_and_rectangle(rendered):
    r = _dark(rendered)
    view = r.view
    z = view.slice_position_mm()
    right, up = view.plane.right, view.plane.up
    centre = np.array([30.0, 25.0, z])
    rois = [
        AngleAnnotation(view.renderer, centre + 15 * right, centre, centre + 15 * up, "90°"),
        EllipseRoi(view.renderer, centre, 12 * right, 8 * up, "mean -1000 HU"),
        RectangleRoi(view.renderer, centre - 20 * right - 18 * up,
                     centre + 20 * right + 18 * up, right, up, "area 14.4 cm²"),
    ]
    mask = _yellow(r.rgb())
    for p in (centre + 7 * right, centre + 12 * right, centre - 8 * up,
              centre - 20 * right, centre + 18 * up):
        row, col = _pixel(view, p, 250)
        assert mask[row - 1:row + 2, col - 1:col + 2].any(), p
    for roi in rois:
        roi.set_visible(False)
    assert not _yellow(r.rgb()).any()

"""The CAM heatmap layer lands on its image's pixels, honours threshold/opacity, and leaves."""

from __future__ import annotations

import numpy as np
import pytest
from vtkmodules.vtkRenderingCore import vtkRenderer

from viewer.core.geometry import VolumeGeometry
from viewer.core.volume import Volume
from viewer.render.heatmap import HeatmapLayer, heatmap_lut
from viewer.render.offscreen import capture_rgb, offscreen_window
from viewer.render.slice_view import SliceView


def _view(volume, size=(400, 300)):
    window = offscreen_window(size)
    renderer = vtkRenderer()
    window.AddRenderer(renderer)
    return window, SliceView(renderer, volume)


def _gray_picture(rows=120, cols=200):
    array = np.full((1, rows, cols), 100, dtype=np.int16)
    return Volume(array, VolumeGeometry((1, rows, cols), (1.0, 0.5, 0.5)), modality="OT",
                  window=(100.0, 200.0))


def test_peak_lands_on_its_pixel_and_layer_goes_away():
    volume = _gray_picture()
    window, view = _view(volume)
    plain = capture_rgb(window)
    cam = np.zeros((120, 200), dtype=np.float32)
    r, c = 30, 150  # top right of the picture
    cam[r - 6:r + 7, c - 6:c + 7] = 1.0
    layer = HeatmapLayer(view, 0, cam, colour_map="jet", threshold=0.5, opacity=1.0)
    shot = capture_rgb(window).astype(int)
    changed = np.abs(shot - plain.astype(int)).sum(axis=2) > 30
    ys, xs = np.nonzero(changed[:, : int(shot.shape[1] * 0.85)])  # leave out the legend
    assert len(xs) > 20
    lps = volume.geometry.index_to_lps((0, r, c))
    ex, ey = view.lps_to_display(lps)
    h = shot.shape[0]
    assert abs(xs.mean() - ex) < 4 and abs((h - 1 - ys.mean()) - ey) < 4
    # jet at 1.0 is dark red: red dominates where the peak is
    y0, x0 = int(ys.mean()), int(xs.mean())
    assert shot[y0, x0, 0] > shot[y0, x0, 2] + 50
    layer.remove()
    np.testing.assert_array_equal(capture_rgb(window), plain)


def test_below_threshold_is_transparent_and_opacity_blends():
    volume = _gray_picture()
    window, view = _view(volume)

    def image_area():  # the picture, without the legend at the right edge
        rgb = capture_rgb(window).astype(int)
        return rgb[:, : int(rgb.shape[1] * 0.85)]

    plain = image_area()
    cam = np.full((120, 200), 0.3, dtype=np.float32)
    layer = HeatmapLayer(view, 0, cam, threshold=0.5, opacity=0.8)
    assert np.array_equal(image_area(), plain)  # everything below the threshold
    layer.set_style(threshold=0.1, opacity=0.3)
    faint = np.abs(image_area() - plain).mean()
    layer.set_style(opacity=0.9)
    strong = np.abs(image_area() - plain).mean()
    assert 0 < faint < strong
    layer.set_visible(False)
    assert np.array_equal(image_area(), plain)


def test_shape_mismatch_and_lut():
    volume = _gray_picture()
    _, view = _view(volume)
    with pytest.raises(ValueError, match="does not match"):
        HeatmapLayer(view, 0, np.zeros((10, 10), np.float32))
    lut = heatmap_lut("inferno", threshold=0.25, opacity=0.7)
    assert lut.GetTableValue(0)[3] == 0.0
    assert lut.GetTableValue(255)[3] == pytest.approx(0.7, abs=1 / 255)

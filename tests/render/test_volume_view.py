"""VolumeView renders something offscreen, from the front, with the marker where it belongs."""

from __future__ import annotations

import numpy as np
import pytest
from vtkmodules.vtkRenderingCore import vtkRenderer

from viewer.render.offscreen import capture_rgb, offscreen_window
from viewer.render.volume_view import PRESETS, VolumeView
from viewer.render.vtk_convert import volume_to_vtk


def _render(volume, preset=None, size=(240, 240)):
    window = offscreen_window(size)
    renderer = vtkRenderer()
    window.AddRenderer(renderer)
    view = VolumeView(renderer, volume_to_vtk(volume), preset=preset, volume=volume)
    return window, renderer, view


def test_marker_seen_from_the_front(marker, rt):
    window, renderer, view = _render(marker.volume, "bone")
    view.label.VisibilityOff()  # the "3D  bone" caption is bright too
    try:
        rgb = capture_rgb(window)
        x, y, n = rt.bright_centroid(rgb, threshold=60)
        assert n > 4, "nothing rendered"
        # anterior view: the patient's left on screen right, superior up
        assert x > 120 and y > 120, (x, y)
        renderer.SetWorldPoint(*marker.lps, 1.0)
        renderer.WorldToDisplay()
        ex, ey, _ = renderer.GetDisplayPoint()
        assert abs(x - ex) < 6 and abs(y - ey) < 6, ((x, y), (ex, ey))
    finally:
        view.close()
        window.Finalize()


@pytest.mark.parametrize("preset", PRESETS)
def test_presets_render_the_phantom(preset):
    from viewer.core.demo import chest_phantom
    from viewer.core.geometry import VolumeGeometry
    from viewer.core.volume import Volume

    hu, _ = chest_phantom(shape=(24, 64, 64), spacing=(12.5, 5.6, 5.6))
    volume = Volume(hu, VolumeGeometry(hu.shape, (12.5, 5.6, 5.6)), modality="CT",
                    window=(40.0, 400.0))
    window, _, view = _render(volume, preset, size=(160, 160))
    try:
        rgb = capture_rgb(window)
        assert (rgb.max(axis=2) > 30).mean() > 0.05, f"{preset}: (almost) black"
        assert view.preset == preset
    finally:
        view.close()
        window.Finalize()


def test_colour_volumes_are_refused():
    from viewer.core.geometry import VolumeGeometry
    from viewer.core.volume import Volume

    volume = Volume(np.zeros((2, 4, 4, 3), np.uint8), VolumeGeometry((2, 4, 4)))
    with pytest.raises(ValueError, match="grayscale"):
        _render(volume)

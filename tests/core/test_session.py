"""Session: signals fire once per change with the new value; cursor clamping; value_at."""

from __future__ import annotations

import numpy as np
import pytest

from viewer.core.geometry import VolumeGeometry
from viewer.core.measure import Measurement
from viewer.core.session import Session
from viewer.core.volume import Volume
from viewer.core.windowing import PRESETS, WindowLevel, auto_window

SPACING = (2.5, 0.8, 0.5)
ORIGIN = (-20.0, -30.0, 100.0)


def _volume(window=(40.0, 400.0), invert=False, modality="CT") -> Volume:
    array = np.full((10, 20, 30), -1000, dtype=np.int16)
    array[4, 7, 11] = 123
    return Volume(
        array,
        VolumeGeometry(array.shape, SPACING, ORIGIN),
        modality=modality,
        window=window,
        invert_display=invert,
    )


@pytest.fixture
def recorded():
    session = Session()
    log = []
    for name in ("volume_changed", "cursor_changed", "window_changed", "invert_changed"):
        getattr(session, name).connect(lambda *args, name=name: log.append((name, *args)))
    return session, log


def test_set_volume_resets_cursor_window_invert_and_measurements(recorded):
    session, log = recorded
    session.measurements.add(Measurement("length", [(0, 0, 0), (1, 0, 0)], "axial"))
    volume = _volume(invert=True)
    session.set_volume(volume)
    centre = volume.geometry.index_to_lps((4.5, 9.5, 14.5))
    assert session.volume is volume
    np.testing.assert_allclose(session.cursor, centre)
    assert session.window == WindowLevel(40, 400) and session.invert is True
    assert len(session.measurements) == 0
    names = [entry[0] for entry in log]
    assert names == ["volume_changed", "cursor_changed", "invert_changed"]  # window unchanged
    assert log[0][1] is volume
    assert log[1][1] == session.cursor and isinstance(log[1][1], tuple)
    assert log[2][1] is True


def test_set_volume_without_window_uses_auto_window(recorded):
    session, log = recorded
    volume = _volume(window=None, modality="MR")
    session.set_volume(volume)
    assert session.window == auto_window(volume.array)
    assert ("window_changed", session.window) in log


def test_cursor_signal_once_per_change_and_clamped(recorded):
    session, log = recorded
    volume = _volume()
    session.set_volume(volume)
    log.clear()
    inside = tuple(volume.geometry.index_to_lps((2, 3, 4)))
    session.set_cursor(inside)
    session.set_cursor(inside)  # same point: nothing
    assert log == [("cursor_changed", session.cursor)]
    np.testing.assert_allclose(session.cursor, inside)
    session.set_cursor((1e4, -1e4, -1e4))
    far_corner = volume.geometry.index_to_lps((0, 0, 29))  # x max, y min, z min
    np.testing.assert_allclose(session.cursor, far_corner)
    assert len(log) == 2


def test_window_preset_reset_and_invert(recorded):
    session, log = recorded
    session.set_volume(_volume())
    log.clear()
    session.apply_preset("Lung")
    session.apply_preset("lung")
    session.set_window((-600, 1500))
    assert log == [("window_changed", PRESETS["lung"])]
    with pytest.raises(ValueError, match="mediastinum"):
        session.apply_preset("liver")
    session.reset_window()
    assert log[-1] == ("window_changed", WindowLevel(40, 400))
    log.clear()
    session.toggle_invert()
    session.toggle_invert()
    session.set_invert(False)
    assert log == [("invert_changed", True), ("invert_changed", False)]


def test_value_at_gives_hu_of_nearest_voxel():
    session = Session()
    assert session.value_at((0, 0, 0)) is None
    volume = _volume()
    session.set_volume(volume)
    p = volume.geometry.index_to_lps((4, 7, 11))
    assert session.value_at(p) == 123 and isinstance(session.value_at(p), int)
    assert session.value_at(p + (0.2, 0.3, 1.0)) == 123  # within half a voxel
    assert session.value_at(p + (0.3, 0, 0)) == -1000  # next column (0.5 mm)
    assert session.value_at((1e4, 0, 0)) is None


def test_value_at_colour_volume():
    array = np.zeros((1, 4, 5, 3), dtype=np.uint8)
    array[0, 2, 3] = (10, 20, 30)
    session = Session()
    session.set_volume(Volume(array, VolumeGeometry((1, 4, 5))))
    assert session.value_at((3, 2, 0)) == (10, 20, 30)


def test_closing_the_volume(recorded):
    session, log = recorded
    session.set_volume(_volume())
    log.clear()
    session.set_volume(None)
    assert log == [("volume_changed", None)]
    session.set_cursor((1e4, 0, 0))  # no volume: nothing to clamp to
    assert session.cursor == (1e4, 0.0, 0.0)
    session.reset_window()
    assert len(log) == 2

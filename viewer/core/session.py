"""Session: the open study the viewer shows (volume, cursor, window, invert, measurements).

A model: it holds state and emits signals after the state changed; views and the CLI
listen and read it back. It never touches a widget or a renderer. A signal fires once per
actual change (setting an equal value emits nothing) and only after all of the state of
that call is updated, so a slot always reads a consistent session.

Signals:

* ``volume_changed(volume)``: a new volume (or None) was set;
* ``cursor_changed(lps)``: the cursor moved; ``lps`` is an (x, y, z) tuple in LPS mm;
* ``window_changed(wl)``: the display window changed (:class:`WindowLevel`, modality units);
* ``invert_changed(invert)``: the display inversion changed (bool);
* ``labelmap_changed(labelmap)``: the session's label map was replaced (a
  :class:`~viewer.core.labelmap.LabelMap` or None). Voxel edits inside one label map are
  its own ``changed(bbox)`` signal, not this one.
"""

from __future__ import annotations

import numpy as np

from viewer.core.events import Signal
from viewer.core.labelmap import LabelMap
from viewer.core.measure import MeasurementList
from viewer.core.volume import Volume
from viewer.core.windowing import PRESETS, WindowLevel, auto_window

Point = tuple[float, float, float]


def default_window(volume: Volume) -> WindowLevel:
    """``volume.window`` when valid (width >= 1), else :func:`auto_window` of the array."""
    if volume.window is not None:
        try:
            return WindowLevel(*volume.window)
        except (TypeError, ValueError):
            pass
    return auto_window(volume.array)


class Session:
    """The open study's display state; see the module docstring for the signals."""

    def __init__(self) -> None:
        self.volume: Volume | None = None
        #: LPS mm; inside the volume's voxel-centre bounds when a volume is open
        self.cursor: Point = (0.0, 0.0, 0.0)
        #: display window in modality units (HU for CT)
        self.window: WindowLevel = PRESETS["mediastinum"]
        #: effective display inversion (starts as the volume's ``invert_display``)
        self.invert: bool = False
        self.measurements = MeasurementList()
        #: segmentation of ``volume`` (same geometry) being edited, or None
        self.labelmap: LabelMap | None = None
        self.volume_changed = Signal("volume_changed")
        self.cursor_changed = Signal("cursor_changed")
        self.window_changed = Signal("window_changed")
        self.invert_changed = Signal("invert_changed")
        self.labelmap_changed = Signal("labelmap_changed")

    # -- volume ----------------------------------------------------------------------------
    def set_volume(self, volume: Volume | None) -> None:
        """Show ``volume`` (None closes it): clears the measurements and the label map, puts
        the cursor at the volume centre, the window at its default and the inversion at
        ``invert_display``. ``labelmap_changed(None)`` follows ``volume_changed`` when a
        label map was open.
        """
        old = (self.cursor, self.window, self.invert)
        had_labelmap = self.labelmap is not None
        self.volume = volume
        self.labelmap = None
        if volume is not None:
            centre = (np.asarray(volume.geometry.shape, dtype=float) - 1) / 2
            self.cursor = _point(volume.geometry.index_to_lps(centre))
            self.window = default_window(volume)
            self.invert = bool(volume.invert_display)
        self.measurements.clear()
        self.volume_changed.emit(volume)
        if had_labelmap:
            self.labelmap_changed.emit(None)
        self._emit_changes(*old)

    # -- label map -------------------------------------------------------------------------
    def set_labelmap(self, labelmap: LabelMap | None) -> None:
        """Edit ``labelmap`` (None drops it). It must lie on the open volume's grid:
        ValueError without a volume or when its shape differs from the volume's."""
        if labelmap is not None:
            if self.volume is None:
                raise ValueError("open an image before adding a segmentation")
            if tuple(labelmap.shape) != tuple(self.volume.geometry.shape):
                raise ValueError(
                    f"segmentation shape {tuple(labelmap.shape)} does not match the image "
                    f"{tuple(self.volume.geometry.shape)}"
                )
        if labelmap is not self.labelmap:
            self.labelmap = labelmap
            self.labelmap_changed.emit(labelmap)

    # -- cursor ----------------------------------------------------------------------------
    def set_cursor(self, lps) -> None:
        """Move the cursor to an LPS point (mm), clamped to the volume's voxel centres
        (in index space, so also for oblique volumes)."""
        point = self.clamp(lps)
        if point != self.cursor:
            self.cursor = point
            self.cursor_changed.emit(point)

    def clamp(self, lps) -> Point:
        """The nearest LPS point (mm) inside the volume's voxel-centre bounds."""
        lps = np.asarray(lps, dtype=float).reshape(3)
        if self.volume is None:
            return _point(lps)
        g = self.volume.geometry
        index = g.lps_to_index(lps)
        clipped = np.clip(index, 0, np.asarray(g.shape, dtype=float) - 1)
        if np.array_equal(clipped, index):
            return _point(lps)  # inside: keep the exact point, no round trip
        return _point(g.index_to_lps(clipped))

    def value_at(self, lps):
        """Modality value (HU for CT) of the voxel nearest an LPS point (mm), None outside
        the volume or without one. A Python int/float; a tuple for colour volumes."""
        if self.volume is None:
            return None
        g = self.volume.geometry
        index = np.rint(g.lps_to_index(np.asarray(lps, dtype=float).reshape(3))).astype(int)
        if ((index < 0) | (index >= np.asarray(g.shape))).any():
            return None
        value = self.volume.array[tuple(index)]
        if np.ndim(value):
            return tuple(v.item() for v in value)
        return value.item()

    # -- display ---------------------------------------------------------------------------
    def set_window(self, wl: WindowLevel | tuple[float, float]) -> None:
        """Set the display window (``WindowLevel`` or ``(center, width)``, modality units)."""
        wl = wl if isinstance(wl, WindowLevel) else WindowLevel(*wl)
        if wl != self.window:
            self.window = wl
            self.window_changed.emit(wl)

    def apply_preset(self, name: str) -> None:
        """Set a window from :data:`PRESETS` by name (any case); ValueError if unknown."""
        preset = PRESETS.get(name.strip().lower())
        if preset is None:
            raise ValueError(f"unknown window preset {name!r}: use {', '.join(PRESETS)}")
        self.set_window(preset)

    def reset_window(self) -> None:
        """Back to the volume's own window (or the automatic one); no-op without a volume."""
        if self.volume is not None:
            self.set_window(default_window(self.volume))

    def set_invert(self, invert: bool) -> None:
        invert = bool(invert)
        if invert != self.invert:
            self.invert = invert
            self.invert_changed.emit(invert)

    def toggle_invert(self) -> None:
        self.set_invert(not self.invert)

    # -- internals -------------------------------------------------------------------------
    def _emit_changes(self, cursor: Point, window: WindowLevel, invert: bool) -> None:
        if self.cursor != cursor:
            self.cursor_changed.emit(self.cursor)
        if self.window != window:
            self.window_changed.emit(self.window)
        if self.invert != invert:
            self.invert_changed.emit(self.invert)


def _point(values) -> Point:
    x, y, z = (float(v) for v in np.asarray(values, dtype=float).reshape(3))
    return x, y, z

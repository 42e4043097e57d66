"""Window histogram: the volume's value distribution with a draggable window region."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QVBoxLayout, QWidget

#: values sampled for the histogram (a strided subsample of the volume)
MAX_SAMPLES = 1 << 21
MAX_BINS = 512


def histogram(array: np.ndarray, max_samples: int = MAX_SAMPLES) -> tuple[np.ndarray, np.ndarray]:
    """``(edges, counts)`` of a strided subsample of ``array`` (finite values only).

    Integer data with a small range gets one bin per value; otherwise at most
    ``MAX_BINS`` bins spanning min..max. Colour volumes count every channel.
    """
    array = np.asarray(array)
    flat = array.reshape(-1)
    step = max(1, math.ceil(flat.size / max_samples)) if flat.size else 1
    sample = flat[::step]
    if sample.dtype.kind == "f":
        sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        return np.array([0.0, 1.0]), np.array([0.0])
    lo, hi = float(sample.min()), float(sample.max())
    if sample.dtype.kind in "iub" and hi - lo + 1 <= MAX_BINS:
        edges = np.arange(lo - 0.5, hi + 1.5, 1.0)
    else:
        edges = np.linspace(lo, hi if hi > lo else lo + 1.0, MAX_BINS + 1)
    counts, edges = np.histogram(sample, bins=edges)
    return edges, counts * float(step)


class WindowHistogram(QWidget):
    """Histogram of a volume (log10 counts) with the display window as a draggable region.

    ``window_changed(center, width)`` is emitted while the user drags the region or its
    edges (modality units: HU for CT; width >= 1 as DICOM requires). ``set_window(c, w)``
    moves the region without emitting, so a window set elsewhere never echoes back.
    """

    window_changed = Signal(float, float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._updating = False
        self._last_emitted: tuple[float, float] | None = None
        self._volume = None
        self.plot = pg.PlotWidget(self)
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(x=True, y=False)
        self.plot.hideButtons()
        self.plot.setLabel("left", "log₁₀ count")
        self.plot.showGrid(x=True, y=False, alpha=0.2)
        self.curve = pg.PlotDataItem(stepMode="center", fillLevel=0, brush=(120, 150, 200, 120),
                                     pen=pg.mkPen((160, 190, 230), width=1))
        self.plot.addItem(self.curve)
        self.region = pg.LinearRegionItem(values=(0.0, 1.0), movable=True,
                                          brush=(255, 220, 80, 50))
        self.region.setZValue(10)
        self.plot.addItem(self.region)
        self.region.sigRegionChanged.connect(self._on_region_changed)
        self.region.sigRegionChangeFinished.connect(self._on_region_changed)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)
        self.setMinimumHeight(100)

    @property
    def unit(self) -> str:
        return "HU" if self._volume is not None and self._volume.modality == "CT" else ""

    def set_volume(self, volume) -> None:
        """Show the value histogram of ``volume`` (a Volume, or None to clear) and its
        default window."""
        self._volume = volume
        if volume is None:
            self.curve.setData([0.0, 1.0], [0.0])
            self.plot.setLabel("bottom", "")
            return
        edges, counts = histogram(volume.array)
        self.curve.setData(edges, np.log10(counts + 1.0))
        self.plot.setLabel("bottom", self.unit or "value")
        self.plot.setXRange(float(edges[0]), float(edges[-1]), padding=0.02)
        if volume.window is not None:
            self.set_window(*volume.window)

    def set_window(self, center: float, width: float) -> None:
        """Move the region to [center - width/2, center + width/2] without emitting."""
        self._updating = True
        try:
            self.region.setRegion((center - width / 2.0, center + width / 2.0))
        finally:
            self._updating = False
        self._last_emitted = self.window()

    def window(self) -> tuple[float, float]:
        """``(center, width)`` of the region now."""
        lo, hi = self.region.getRegion()
        return (lo + hi) / 2.0, max(1.0, hi - lo)

    def _on_region_changed(self, *_args) -> None:
        if self._updating:
            return
        window = self.window()
        if window != self._last_emitted:  # drag end repeats the last drag position
            self._last_emitted = window
            self.window_changed.emit(*window)

"""Linked views of one volume: a cursor in LPS mm that every 2D view slices through.

:class:`MprViews` owns no window: it is given (renderer, orientation) panes, which may share
one render window (offscreen layouts) or sit in separate Qt widgets. It never renders; the
caller does after a change.
"""

from __future__ import annotations

import numpy as np
from vtkmodules.vtkCommonDataModel import vtkImageData
from vtkmodules.vtkRenderingCore import vtkRenderer

from viewer.core.volume import Volume
from viewer.render.slice_view import SliceView
from viewer.render.view_plane import corner_edges

__all__ = ["MprViews", "layout_viewports"]


def layout_viewports(layout: str, gap: float = 0.003) -> list[tuple[float, float, float, float]]:
    """Normalised viewports (xmin, ymin, xmax, ymax) of a layout's panes, in pane order.

    "single": one pane; "mpr": axial | coronal | sagittal; "2x2": axial, coronal (top row),
    sagittal, 3D (bottom row). ``gap`` is the fraction of the window left between panes.
    """
    g = gap / 2
    if layout == "single":
        return [(0.0, 0.0, 1.0, 1.0)]
    if layout == "mpr":
        return [(n / 3 + (g if n else 0), 0.0, (n + 1) / 3 - (g if n < 2 else 0), 1.0)
                for n in range(3)]
    if layout == "2x2":
        return [(0.0, 0.5 + g, 0.5 - g, 1.0), (0.5 + g, 0.5 + g, 1.0, 1.0),
                (0.0, 0.0, 0.5 - g, 0.5 - g), (0.5 + g, 0.0, 1.0, 0.5 - g)]
    raise ValueError(f"unknown layout {layout!r}")


class MprViews:
    """2D views (and optionally a 3D view) of one volume, linked by a cursor and a window.

    panes: (renderer, orientation) pairs; orientation is "axial", "coronal", "sagittal",
    "image" or "3d" (a :class:`viewer.render.volume_view.VolumeView`, imported lazily).
    """

    def __init__(self, volume: Volume, image: vtkImageData,
                 panes: list[tuple[vtkRenderer, str]]):
        self.volume = volume
        self.image = image
        self.slice_views: list[SliceView] = []
        self.volume_view = None
        for renderer, orientation in panes:
            if orientation == "3d":
                from viewer.render.volume_view import VolumeView

                self.volume_view = VolumeView(renderer, image, volume=volume)
            else:
                self.slice_views.append(SliceView(renderer, volume, image, orientation))
        self._cursor = self.centre()

    def centre(self) -> np.ndarray:
        """LPS (mm) centre of the volume's extent."""
        return corner_edges(self.volume.geometry).mean(axis=0)

    def set_cursor(self, lps, move_slices: bool = True) -> None:
        """Put the cursor at an LPS point; each 2D view shows the slice through it."""
        self._cursor = np.asarray(lps, dtype=float).copy()
        for view in self.slice_views:
            if move_slices:
                view.set_slice_lps(self._cursor)
            view.set_cursor(self._cursor)

    def cursor(self) -> np.ndarray:
        return self._cursor.copy()

    def set_window(self, center: float, width: float) -> None:
        for view in self.slice_views:
            view.set_window(center, width)

    def set_invert(self, inverted: bool) -> None:
        for view in self.slice_views:
            view.set_invert(inverted)

    def show_crosshair(self, visible: bool) -> None:
        for view in self.slice_views:
            view.show_crosshair(visible)

    def close(self) -> None:
        for view in self.slice_views:
            view.close()
        if self.volume_view is not None:
            self.volume_view.close()

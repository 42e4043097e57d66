"""A heatmap layer (Class Activation Map) over one slice of a SliceView, with its legend.

The map is a float32 (rows, columns) array in 0..1 on the pixel grid of one image plane of
the volume (plane k of the (k, j, i) array), so it is placed with the volume's own geometry
restricted to that plane: LPS millimetres like everything in the view. Values below the
threshold are transparent; the rest are coloured by a perceptual colour map with the chosen
opacity. A vertical colour bar (0..1) explains the colours.
"""

from __future__ import annotations

import numpy as np
from vtkmodules.util.numpy_support import numpy_to_vtk
from vtkmodules.vtkCommonCore import vtkLookupTable
from vtkmodules.vtkCommonDataModel import vtkImageData
from vtkmodules.vtkRenderingAnnotation import vtkScalarBarActor
from vtkmodules.vtkRenderingCore import vtkImageProperty, vtkImageSlice
from vtkmodules.vtkRenderingImage import vtkImageResliceMapper, vtkImageStack

from viewer.core.geometry import VolumeGeometry
from viewer.render.vtk_convert import geometry_to_vtk

__all__ = ["COLOUR_MAPS", "HeatmapLayer", "heatmap_lut"]

#: colour-map name -> control points (value, r, g, b), values 0..1
COLOUR_MAPS: dict[str, list[tuple[float, float, float, float]]] = {
    "inferno": [(0.0, 0.0, 0.0, 0.02), (0.25, 0.34, 0.06, 0.43), (0.5, 0.73, 0.21, 0.33),
                (0.75, 0.98, 0.56, 0.03), (1.0, 0.99, 1.0, 0.64)],
    "jet": [(0.0, 0.0, 0.0, 0.5), (0.125, 0.0, 0.0, 1.0), (0.375, 0.0, 1.0, 1.0),
            (0.625, 1.0, 1.0, 0.0), (0.875, 1.0, 0.0, 0.0), (1.0, 0.5, 0.0, 0.0)],
    "hot": [(0.0, 0.04, 0.0, 0.0), (0.375, 1.0, 0.0, 0.0), (0.75, 1.0, 1.0, 0.0),
            (1.0, 1.0, 1.0, 1.0)],
}


def heatmap_lut(name: str = "inferno", threshold: float = 0.2, opacity: float = 0.5,
                n: int = 256) -> vtkLookupTable:
    """256-entry RGBA table over 0..1: transparent below ``threshold``, else ``opacity``."""
    points = COLOUR_MAPS[name]
    xs = np.array([p[0] for p in points])
    t = np.linspace(0.0, 1.0, n)
    rgb = np.stack([np.interp(t, xs, [p[c] for p in points]) for c in (1, 2, 3)], axis=1)
    lut = vtkLookupTable()
    lut.SetNumberOfTableValues(n)
    lut.SetTableRange(0.0, 1.0)
    for k in range(n):
        alpha = opacity if t[k] >= threshold else 0.0
        lut.SetTableValue(k, *rgb[k], alpha)
    lut.Build()
    return lut


class HeatmapLayer:
    """The heatmap of image plane ``k``, drawn over ``view``'s image (a SliceView).

    The view's image slice and the heatmap go into one vtkImageStack (the heatmap as the
    top layer), the way VTK layers images cut by the same plane without depth fighting.
    """

    def __init__(self, view, k: int, heatmap: np.ndarray, colour_map: str = "inferno",
                 threshold: float = 0.2, opacity: float = 0.5):
        geometry: VolumeGeometry = view.volume.geometry
        renderer = view.renderer
        rows, cols = geometry.shape[1:]
        if heatmap.shape != (rows, cols):
            raise ValueError(f"heatmap {heatmap.shape} does not match the image {(rows, cols)}")
        self.renderer = renderer
        self.values = np.ascontiguousarray(np.clip(heatmap, 0.0, 1.0), dtype=np.float32)
        plane = VolumeGeometry((1, rows, cols), geometry.spacing,
                               tuple(geometry.index_to_lps((k, 0, 0))), geometry.direction)
        self.image = geometry_to_vtk(plane, vtkImageData())
        scalars = numpy_to_vtk(self.values.reshape(-1), deep=0)
        scalars.SetName("cam")
        self.image.GetPointData().SetScalars(scalars)
        self.mapper = vtkImageResliceMapper()
        self.mapper.SetInputData(self.image)
        self.mapper.SliceFacesCameraOn()
        self.mapper.SliceAtFocalPointOn()
        self.property = vtkImageProperty()
        self.property.SetInterpolationTypeToLinear()
        self.property.UseLookupTableScalarRangeOn()
        self.actor = vtkImageSlice()
        self.actor.SetMapper(self.mapper)
        self.actor.SetProperty(self.property)
        self.legend = vtkScalarBarActor()
        self.legend.SetTitle("CAM")
        self.legend.SetNumberOfLabels(3)
        self.legend.SetLabelFormat("%.1f")
        self.legend.SetMaximumWidthInPixels(60)
        self.legend.SetPosition(0.90, 0.25)
        self.legend.SetWidth(0.08)
        self.legend.SetHeight(0.5)
        self.colour_map, self.threshold, self.opacity = colour_map, threshold, opacity
        self._apply()
        self.view = view
        self.stack = vtkImageStack()
        renderer.RemoveViewProp(view.image_slice)
        self.stack.AddImage(view.image_slice)
        self.stack.AddImage(self.actor)
        self.stack.SetActiveLayer(1)
        self.actor.GetProperty().SetLayerNumber(1)
        view.image_slice.GetProperty().SetLayerNumber(0)
        renderer.AddViewProp(self.stack)
        renderer.AddViewProp(self.legend)

    def _apply(self) -> None:
        lut = heatmap_lut(self.colour_map, self.threshold, self.opacity)
        self.property.SetLookupTable(lut)
        legend_lut = heatmap_lut(self.colour_map, 0.0, 1.0)
        self.legend.SetLookupTable(legend_lut)

    def set_style(self, colour_map: str | None = None, threshold: float | None = None,
                  opacity: float | None = None) -> None:
        """Change colour map, threshold (0..1) or opacity (0..1)."""
        if colour_map is not None:
            self.colour_map = colour_map
        if threshold is not None:
            self.threshold = float(threshold)
        if opacity is not None:
            self.opacity = float(opacity)
        self._apply()

    def set_visible(self, visible: bool) -> None:
        self.actor.SetVisibility(bool(visible))
        self.legend.SetVisibility(bool(visible))

    def remove(self) -> None:
        """Take the layer away and give the view its image slice back."""
        self.renderer.RemoveViewProp(self.stack)
        self.renderer.RemoveViewProp(self.legend)
        self.stack.RemoveImage(self.view.image_slice)
        self.renderer.AddViewProp(self.view.image_slice)

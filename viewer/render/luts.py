"""Lookup tables and transfer functions (display only; window presets live in core.windowing).

* :func:`grayscale_lut` - 256-level gray ramp, optionally inverted (MONOCHROME1, the I key);
  the slice's window/level sets its range.
* :data:`VOLUME_PRESETS` - CT volume-rendering presets: colour and opacity control points
  in Hounsfield units, applied by :func:`volume_property`.
* :func:`fallback_window` - a (centre, width) from the data when a volume has none.
"""

from __future__ import annotations

from vtkmodules.vtkCommonCore import vtkLookupTable
from vtkmodules.vtkCommonDataModel import vtkPiecewiseFunction
from vtkmodules.vtkRenderingCore import vtkColorTransferFunction, vtkVolumeProperty

from viewer.core.volume import Volume
from viewer.core.windowing import auto_window

__all__ = ["VOLUME_PRESETS", "fallback_window", "grayscale_lut", "volume_property",
           "vtk_window_level"]


def grayscale_lut(inverted: bool = False) -> vtkLookupTable:
    """Linear 256-level gray ramp: black to white, or white to black when ``inverted``."""
    lut = vtkLookupTable()
    lut.SetNumberOfTableValues(256)
    lut.SetHueRange(0.0, 0.0)
    lut.SetSaturationRange(0.0, 0.0)
    lut.SetValueRange((1.0, 0.0) if inverted else (0.0, 1.0))
    lut.SetAlphaRange(1.0, 1.0)
    lut.SetRampToLinear()
    lut.Build()
    return lut


def fallback_window(volume: Volume) -> tuple[float, float]:
    """(centre, width) in modality units: the volume's own window, else a robust auto window.

    Colour volumes get (128, 256), the identity for 8-bit RGB under the DICOM linear
    function (see :func:`vtk_window_level`).
    """
    if volume.is_color:
        return 128.0, 256.0
    if volume.window is not None and volume.window[1] >= 1:
        return float(volume.window[0]), float(volume.window[1])
    return auto_window(volume.array).as_tuple()


def vtk_window_level(center: float, width: float) -> tuple[float, float]:
    """VTK (ColorWindow, ColorLevel) that reproduce DICOM's linear VOI function.

    DICOM PS3.3 C.11.2.1.2.1 maps ``c - 0.5 - (w - 1)/2`` to black and ``c - 0.5 + (w - 1)/2``
    to white; VTK maps ``level -/+ window/2``. So window = w - 1 and level = c - 0.5, as
    :func:`viewer.core.windowing.apply_window` does for exports (width 1 is a threshold).
    """
    return max(float(width) - 1.0, 1e-3), float(center) - 0.5


#: name -> {"colour": [(HU, r, g, b)...], "opacity": [(HU, alpha)...], "shade": bool}
VOLUME_PRESETS: dict[str, dict] = {
    "bone": {
        "colour": [(-1000, 0.0, 0.0, 0.0), (150, 0.55, 0.25, 0.15), (300, 0.9, 0.82, 0.7),
                   (1500, 1.0, 1.0, 0.95)],
        "opacity": [(-1000, 0.0), (150, 0.0), (300, 0.35), (700, 0.85), (3000, 0.95)],
        "shade": True,
    },
    "lung": {
        "colour": [(-1000, 0.0, 0.0, 0.0), (-900, 0.45, 0.6, 0.8), (-500, 0.85, 0.75, 0.7),
                   (-100, 0.9, 0.5, 0.45), (300, 1.0, 1.0, 0.95)],
        "opacity": [(-1000, 0.0), (-950, 0.0), (-850, 0.05), (-600, 0.12), (-400, 0.0),
                    (-100, 0.0), (200, 0.15), (1000, 0.4)],
        "shade": False,
    },
    "soft tissue": {
        "colour": [(-1000, 0.0, 0.0, 0.0), (-100, 0.55, 0.35, 0.25), (40, 0.85, 0.45, 0.35),
                   (80, 0.95, 0.75, 0.6), (400, 1.0, 1.0, 0.95)],
        "opacity": [(-1000, 0.0), (-200, 0.0), (-50, 0.08), (60, 0.25), (300, 0.5),
                    (1000, 0.8)],
        "shade": True,
    },
}


def volume_property(preset: str, prop: vtkVolumeProperty | None = None) -> vtkVolumeProperty:
    """Fill ``prop`` (new if None) with a :data:`VOLUME_PRESETS` entry; linear interpolation."""
    try:
        spec = VOLUME_PRESETS[preset]
    except KeyError:
        names = ", ".join(VOLUME_PRESETS)
        raise ValueError(f"unknown volume preset {preset!r} (one of {names})") from None
    prop = prop if prop is not None else vtkVolumeProperty()
    colour = vtkColorTransferFunction()
    for hu, r, g, b in spec["colour"]:
        colour.AddRGBPoint(hu, r, g, b)
    opacity = vtkPiecewiseFunction()
    for hu, alpha in spec["opacity"]:
        opacity.AddPoint(hu, alpha)
    prop.SetColor(colour)
    prop.SetScalarOpacity(opacity)
    prop.SetInterpolationTypeToLinear()
    if spec["shade"]:
        prop.ShadeOn()
        prop.SetAmbient(0.25)
        prop.SetDiffuse(0.75)
        prop.SetSpecular(0.2)
        prop.SetSpecularPower(10.0)
    else:
        prop.ShadeOff()
    return prop

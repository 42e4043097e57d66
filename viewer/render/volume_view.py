"""VolumeView: 3D volume rendering of the shared image (vtkSmartVolumeMapper).

The smart mapper ray-casts on the GPU when OpenGL allows (it does with Mesa's llvmpipe,
on the CPU) and falls back to software ray casting itself. World coordinates are LPS mm,
so the default camera looks at the patient from the front: the camera sits anterior
(toward -y), looks posterior (+y), superior (+z) is up, and the patient's right is on the
screen's left, as on a coronal slice.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from vtkmodules.vtkCommonDataModel import vtkImageData
from vtkmodules.vtkRenderingCore import vtkRenderer, vtkTextActor, vtkVolume, vtkVolumeProperty
from vtkmodules.vtkRenderingVolumeOpenGL2 import vtkSmartVolumeMapper

from viewer.core.volume import Volume
from viewer.render.luts import VOLUME_PRESETS, fallback_window, volume_property
from viewer.render.vtk_convert import right_handed

__all__ = ["PRESETS", "VolumeView"]

PRESETS = (*VOLUME_PRESETS, "ramp")
VIEW_ANGLE = 30.0  # degrees, vertical
FIT_MARGIN = 1.05


def _ramp_property(center: float, width: float, prop: vtkVolumeProperty) -> vtkVolumeProperty:
    """Gray ramp for non-CT data: transparent below the window, opaque-ish above it."""
    from vtkmodules.vtkCommonDataModel import vtkPiecewiseFunction
    from vtkmodules.vtkRenderingCore import vtkColorTransferFunction

    lo, hi = center - width / 2, center + width / 2
    colour = vtkColorTransferFunction()
    colour.AddRGBPoint(lo, 0.0, 0.0, 0.0)
    colour.AddRGBPoint(hi, 1.0, 1.0, 1.0)
    opacity = vtkPiecewiseFunction()
    opacity.AddPoint(lo, 0.0)
    opacity.AddPoint(hi, 0.6)
    prop.SetColor(colour)
    prop.SetScalarOpacity(opacity)
    prop.SetInterpolationTypeToLinear()
    prop.ShadeOff()
    return prop


class VolumeView:
    """3D rendering of ``image`` in ``renderer``.

    preset: one of :data:`PRESETS` ("bone", "lung", "soft tissue": CT transfer functions in
    HU; "ramp": a gray ramp over the volume's window); default "bone" for CT, else "ramp".
    volume: the Volume, for its modality and window (optional).
    """

    def __init__(self, renderer: vtkRenderer, image: vtkImageData, preset: str | None = None,
                 volume: Volume | None = None):
        if image.GetPointData().GetScalars().GetNumberOfComponents() != 1:
            raise ValueError("3D rendering needs a grayscale volume")
        self.renderer = renderer
        self.image = right_handed(image)  # the ray caster needs a right-handed grid
        self.volume = volume
        self.mapper = vtkSmartVolumeMapper()
        self.mapper.SetInputData(self.image)
        self.mapper.SetBlendModeToComposite()
        self.property = vtkVolumeProperty()
        self.actor = vtkVolume()
        self.actor.SetMapper(self.mapper)
        self.actor.SetProperty(self.property)
        renderer.AddVolume(self.actor)
        self.label = vtkTextActor()  # top-left: "3D  bone"
        self.label.GetPositionCoordinate().SetCoordinateSystemToNormalizedViewport()
        self.label.SetPosition(0.01, 0.99)
        text = self.label.GetTextProperty()
        text.SetFontFamilyToArial()
        text.SetFontSize(14)
        text.SetColor(0.92, 0.92, 0.92)
        text.SetVerticalJustificationToTop()
        text.ShadowOn()
        renderer.AddViewProp(self.label)
        is_ct = volume is None or volume.modality.upper() == "CT"
        self.preset = ""
        self.set_preset(preset or ("bone" if is_ct else "ramp"))
        self.reset_camera()
        #: set by the GUI: called by :meth:`request_render` (e.g. a coalesced repaint)
        self.render_request: Callable[[], None] | None = None

    def request_render(self) -> None:
        """Ask for a render soon (models changed, e.g. segment surfaces rebuilt); without a
        :attr:`render_request` set by the GUI nothing happens: the caller renders."""
        if self.render_request is not None:
            self.render_request()

    def set_volume_visible(self, visible: bool) -> None:
        """Show or hide the volume rendering (e.g. to see segment surfaces alone)."""
        self.actor.SetVisibility(bool(visible))

    def set_preset(self, name: str) -> None:
        """Switch transfer functions (see :data:`PRESETS`)."""
        if name == "ramp":
            if self.volume is not None:
                center, width = fallback_window(self.volume)
            else:
                lo, hi = self.image.GetScalarRange()
                center, width = (lo + hi) / 2, max(hi - lo, 1.0)
            _ramp_property(center, width, self.property)
        else:
            volume_property(name, self.property)
        self.preset = name
        self.label.SetInput(f"3D  {name}")

    def reset_camera(self) -> None:
        """Anterior view of the whole volume: superior up, patient's right on screen left."""
        x0, x1, y0, y1, z0, z1 = self.image.GetBounds()  # LPS box (direction included)
        centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2, (z0 + z1) / 2])
        half_w, half_d, half_h = (x1 - x0) / 2, (y1 - y0) / 2, (z1 - z0) / 2
        w, h = self.renderer.GetSize()
        aspect = (w / h) if w > 0 and h > 0 else 1.0
        tan = np.tan(np.radians(VIEW_ANGLE / 2))
        distance = max(half_h, half_w / aspect, 1.0) * FIT_MARGIN / tan + half_d
        cam = self.renderer.GetActiveCamera()
        cam.ParallelProjectionOff()
        cam.SetViewAngle(VIEW_ANGLE)
        cam.SetFocalPoint(*centre)
        cam.SetPosition(*(centre - np.array([0.0, 1.0, 0.0]) * distance))
        cam.SetViewUp(0.0, 0.0, 1.0)
        self.renderer.ResetCameraClippingRange()

    def close(self) -> None:
        self.renderer.RemoveVolume(self.actor)
        self.renderer.RemoveViewProp(self.label)

"""SliceView: one 2D view (axial, coronal, sagittal or the image plane) of a shared image.

Frames and units:

* world coordinates are patient LPS millimetres (see :mod:`viewer.render.vtk_convert`);
* display coordinates are VTK's: pixels of the render window, origin at its bottom-left,
  y up (a Qt caller flips y and multiplies by the device pixel ratio);
* the slice position is millimetres along :attr:`ViewPlane.normal` (axial: LPS z, coronal:
  LPS y, sagittal: LPS x), i.e. ``dot(point_lps, normal)``.

The slice is cut by a ``vtkImageResliceMapper`` at the camera's focal point, facing the
camera, so the image's direction matrix (oblique, reversed or left-handed grids) is honoured
and pixels land where their LPS position says. The camera is a parallel projection whose
screen axes are the view plane's (radiological convention, see
:mod:`viewer.render.view_plane`). The view never renders by itself: callers change it, then
call ``render()`` (or the Qt widget repaints). Overlays are refreshed just before each render
from the camera state, so zooming or panning the camera from elsewhere keeps them right. Layers that
show models which change on their own (label maps being edited) ask for a render through
``request_render()``, which calls the GUI's ``render_request`` (a coalesced repaint).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from vtkmodules.vtkCommonDataModel import vtkImageData
from vtkmodules.vtkRenderingCore import vtkImageProperty, vtkImageSlice, vtkRenderer
from vtkmodules.vtkRenderingImage import vtkImageResliceMapper

from viewer.core.volume import Volume
from viewer.render.luts import fallback_window, grayscale_lut, vtk_window_level
from viewer.render.overlays import CornerText, Crosshair, EdgeLetters, ScaleBar, font_size_for
from viewer.render.view_plane import (
    SliceAxis,
    corner_edges,
    default_orientation,
    is_projection,
    view_plane,
)
from viewer.render.vtk_convert import volume_to_vtk

__all__ = ["SliceView", "format_patient"]

FIT_MARGIN = 1.02
CROSSHAIR_GAP_PX = 10.0


def _fmt(v: float) -> str:
    return f"{v:.0f}" if abs(v - round(v)) < 1e-6 or abs(v) >= 100 else f"{v:.4g}"


def format_patient(header: dict) -> list[str]:
    """Top-left lines: "Family, Given", the patient ID and the study date (YYYY-MM-DD)."""
    name = str(header.get("patient_name") or "")
    parts = [p for p in name.split("^") if p]
    lines = [", ".join(parts[:2]) + (" " + " ".join(parts[2:]) if len(parts) > 2 else "")]
    lines.append(str(header.get("patient_id") or ""))
    date = str(header.get("study_date") or "")
    if len(date) == 8 and date.isdigit():
        date = f"{date[:4]}-{date[4:6]}-{date[6:]}"
    lines.append(date)
    return [line for line in lines if line.strip()]


class SliceView:
    """A 2D view of ``volume`` in ``renderer``.

    renderer: the vtkRenderer to draw into (its viewport may be part of a larger window).
    volume: the Volume shown (geometry, header, default window and MONOCHROME1 flag).
    image: the shared vtkImageData of ``volume`` (from ``volume_to_vtk``); made if None.
    orientation: "axial", "coronal", "sagittal" or "image" (default: "image" for a single
    image, else "axial").
    interpolate: linear interpolation (smooth) instead of nearest neighbour (for reading).
    """

    def __init__(self, renderer: vtkRenderer, volume: Volume, image: vtkImageData | None = None,
                 orientation: str | None = None, *, interpolate: bool = False):
        self.renderer = renderer
        self.volume = volume
        self.image = image if image is not None else volume_to_vtk(volume)
        geometry = volume.geometry
        self.plane = view_plane(orientation or default_orientation(volume), geometry)
        self.axis = SliceAxis(geometry, self.plane)
        self._edges = corner_edges(geometry)
        self._centre = self._edges.mean(axis=0)
        self._radius = float(np.linalg.norm(self._edges.max(0) - self._edges.min(0))) / 2 + 1.0
        in_plane = [a for a in range(3) if a != self.axis.array_axis]
        self._pixel_mm = float(min(geometry.spacing[a] for a in in_plane))
        self._plane_voxels = int(np.prod([geometry.shape[a] for a in in_plane]))

        self.mapper = vtkImageResliceMapper()
        self.mapper.SetInputData(self.image)
        self.mapper.SliceFacesCameraOn()
        self.mapper.SliceAtFocalPointOn()
        self.image_property = vtkImageProperty()
        self.image_slice = vtkImageSlice()
        self.image_slice.SetMapper(self.mapper)
        self.image_slice.SetProperty(self.image_property)
        renderer.AddViewProp(self.image_slice)
        self.set_interpolation(interpolate)

        self.camera = renderer.GetActiveCamera()
        self.camera.ParallelProjectionOn()

        self.corners = CornerText(renderer)
        self.letters = EdgeLetters(renderer)
        self.scale_bar = ScaleBar(renderer)
        self.crosshair = Crosshair(renderer, self.plane.right, self.plane.up)
        self.letters.set_letters(self.plane.edge_letters())
        self._letters_shown = not is_projection(volume)
        self._overlays_shown = True
        self.letters.set_visible(self._letters_shown)
        top_right = [volume.modality, volume.description]
        self.corners.set_text("top_left", "\n".join(format_patient(volume.header)))
        self.corners.set_text("top_right", "\n".join(t for t in top_right if t))

        self._cursor: np.ndarray | None = None
        self._crosshair_wanted = True
        self._size = (0, 0)
        self._state: tuple | None = None
        self._fitted = True
        self.inverted = False
        self.window = (0.0, 1.0)
        self.set_window(*fallback_window(volume))
        self.set_invert(bool(volume.invert_display))
        self._place_camera(self._centre, 1.0)
        self.set_slice_lps(self._centre)
        self.reset_camera()
        self._observer = renderer.AddObserver("StartEvent", self._before_render)
        #: set by the GUI: called by :meth:`request_render` (e.g. a coalesced repaint)
        self.render_request: Callable[[], None] | None = None

    # -- slice -----------------------------------------------------------------------------
    def set_slice_lps(self, point) -> None:
        """Show the slice through an LPS point (snapped to the nearest voxel-centre slice)."""
        position = self.axis.snap(float(np.dot(np.asarray(point, dtype=float),
                                               self.plane.normal)))
        self._move_along_normal(position - self.slice_position_mm())

    def slice_position_mm(self) -> float:
        """Position of the shown slice along the view normal (mm, see module docstring)."""
        return float(np.dot(self.camera.GetFocalPoint(), self.plane.normal))

    def scroll(self, n: int) -> None:
        """Move ``n`` slices along the normal (step: the volume's slice spacing there)."""
        self._move_along_normal(
            self.axis.snap(self.slice_position_mm() + n * self.axis.step_mm)
            - self.slice_position_mm()
        )

    def slice_index(self) -> int:
        """0-based index (along the volume axis closest to the normal) of the shown slice."""
        n = self.plane.normal
        point = self._centre + n * (self.slice_position_mm() - float(np.dot(self._centre, n)))
        return self.axis.index(point)

    def slice_count(self) -> int:
        return self.axis.count

    def _move_along_normal(self, delta_mm: float) -> None:
        if delta_mm == 0.0:
            return
        shift = self.plane.normal * delta_mm
        cam = self.camera
        cam.SetFocalPoint(*(np.asarray(cam.GetFocalPoint()) + shift))
        cam.SetPosition(*(np.asarray(cam.GetPosition()) + shift))

    # -- display ---------------------------------------------------------------------------
    def set_window(self, center: float, width: float) -> None:
        """Window centre and width in modality units (HU for CT); DICOM linear function."""
        self.window = (float(center), max(float(width), 1.0))
        vtk_window, vtk_level = vtk_window_level(*self.window)
        self.image_property.SetColorWindow(vtk_window)
        self.image_property.SetColorLevel(vtk_level)

    def set_invert(self, inverted: bool) -> None:
        """Show low values white (MONOCHROME1 radiographs; the I key toggles it)."""
        self.inverted = bool(inverted)
        self.image_property.SetLookupTable(grayscale_lut(True) if self.inverted else None)

    def set_interpolation(self, linear: bool) -> None:
        """Linear interpolation (smooth) or nearest neighbour (voxels as squares, default)."""
        if linear:
            self.image_property.SetInterpolationTypeToLinear()
        else:
            self.image_property.SetInterpolationTypeToNearest()

    def set_cursor(self, lps) -> None:
        """Linked cursor (LPS mm): drawn as a crosshair where it meets the current plane."""
        self._cursor = None if lps is None else np.asarray(lps, dtype=float).copy()

    def cursor(self) -> np.ndarray | None:
        return None if self._cursor is None else self._cursor.copy()

    def show_crosshair(self, visible: bool) -> None:
        self._crosshair_wanted = bool(visible)

    def show_overlays(self, visible: bool) -> None:
        """Corner text, orientation letters and scale bar on or off."""
        self._overlays_shown = bool(visible)
        self.corners.set_visible(visible)
        self.scale_bar.set_visible(visible)
        self.letters.set_visible(visible and self._letters_shown)

    # -- camera ----------------------------------------------------------------------------
    def reset_camera(self) -> None:
        """Fit the volume's extent in this plane to the viewport (square mm), centred."""
        right, up = self.plane.right, self.plane.up
        u, v = self._edges @ right, self._edges @ up
        w_mm, h_mm = float(u.max() - u.min()), float(v.max() - v.min())
        vw, vh = self._viewport_size()
        scale = max(h_mm / 2.0, (w_mm / 2.0) * vh / vw, 1e-3) * FIT_MARGIN
        centre = right * (u.max() + u.min()) / 2 + up * (v.max() + v.min()) / 2
        centre = centre + self.plane.normal * self.slice_position_mm()
        self._place_camera(centre, scale)
        self._fitted = True

    def zoom(self, factor: float) -> None:
        """Magnify by ``factor`` (> 1 zooms in) about the viewport centre."""
        if factor > 0:
            self.camera.SetParallelScale(self.camera.GetParallelScale() / factor)
            self._fitted = False

    def pan(self, dx: float, dy: float) -> None:
        """Move the image by (dx, dy) display pixels (x right, y up)."""
        shift = -(dx * self.plane.right + dy * self.plane.up) * self.mm_per_pixel()
        cam = self.camera
        cam.SetFocalPoint(*(np.asarray(cam.GetFocalPoint()) + shift))
        cam.SetPosition(*(np.asarray(cam.GetPosition()) + shift))
        self._fitted = False

    def mm_per_pixel(self) -> float:
        return 2.0 * self.camera.GetParallelScale() / self._viewport_size()[1]

    def zoom_percent(self) -> float:
        """Screen pixels per in-plane voxel, in percent (100 = one voxel per pixel)."""
        return 100.0 * self._pixel_mm / self.mm_per_pixel()

    def _place_camera(self, focal, scale: float) -> None:
        cam = self.camera
        distance = 2.0 * self._radius + 10.0
        focal = np.asarray(focal, dtype=float)
        cam.SetFocalPoint(*focal)
        cam.SetPosition(*(focal - self.plane.dop * distance))
        cam.SetViewUp(*self.plane.up)
        cam.SetParallelScale(scale)
        cam.SetClippingRange(max(distance - 2 * self._radius, 0.1), distance + 2 * self._radius)

    def _viewport_size(self) -> tuple[int, int]:
        w, h = self.renderer.GetSize()
        return max(int(w), 1), max(int(h), 1)

    # -- picking ---------------------------------------------------------------------------
    def display_to_lps(self, x: float, y: float) -> np.ndarray:
        """LPS point (mm) on the current slice plane under display pixel (x, y)."""
        ox, oy = self.renderer.GetOrigin()
        w, h = self._viewport_size()
        mpp = self.mm_per_pixel()
        focal = np.asarray(self.camera.GetFocalPoint(), dtype=float)
        return (focal + self.plane.right * (x - ox - w / 2.0) * mpp
                + self.plane.up * (y - oy - h / 2.0) * mpp)

    def lps_to_display(self, p) -> tuple[float, float]:
        """Display (x, y) of an LPS point projected along the view onto the screen."""
        ox, oy = self.renderer.GetOrigin()
        w, h = self._viewport_size()
        mpp = self.mm_per_pixel()
        d = np.asarray(p, dtype=float) - np.asarray(self.camera.GetFocalPoint())
        return (ox + w / 2.0 + float(np.dot(d, self.plane.right)) / mpp,
                oy + h / 2.0 + float(np.dot(d, self.plane.up)) / mpp)

    # -- overlays --------------------------------------------------------------------------
    def corner_texts(self) -> dict[str, str]:
        """The four corner strings as they will be drawn (refreshed now)."""
        self.update_overlays()
        return {name: self.corners.text(name) for name in self.corners.actors}

    def update_overlays(self) -> None:
        """Bring text, scale bar and crosshair in line with the camera (cheap when unchanged)."""
        size = self._viewport_size()
        if size != self._size:
            self._size = size
            # reslice at the image's own resolution when it has fewer samples than the
            # viewport (cheaper, same pixels with nearest interpolation), else at the screen's
            self.mapper.SetResampleToScreenPixels(self._plane_voxels > size[0] * size[1])
            self.corners.layout(*size)
            self.letters.layout(*size)
            if self._fitted:
                self.reset_camera()
        mpp = self.mm_per_pixel()
        pos = self.slice_position_mm()
        state = (mpp, pos, self.window, self.inverted, self._crosshair_wanted,
                 None if self._cursor is None else tuple(self._cursor), self._overlays_shown)
        if state == self._state:
            return
        self._state = state
        n = self.slice_index()
        label = self.plane.position_label()
        self.corners.set_text(
            "bottom_left",
            f"Im {n + 1}/{self.slice_count()}\n{label} = {pos:.1f} mm" if self.slice_count() > 1
            else "",
        )
        c, w = self.window
        self.corners.set_text("bottom_right", f"Zoom {self.zoom_percent():.0f}%\n"
                                              f"W {_fmt(w)} L {_fmt(c)}")
        lines = 2
        bar_y = 6 + lines * font_size_for(size[1]) * 1.25 + 12
        self.scale_bar.update(mpp, size[0], size[1], bar_y)
        show = self._crosshair_wanted and self._cursor is not None
        if show:  # the cursor projected along the normal onto the shown plane
            n = self.plane.normal
            on_plane = self._cursor + n * (pos - float(np.dot(self._cursor, n)))
            self.crosshair.set_position(on_plane, CROSSHAIR_GAP_PX * mpp, 4.0 * self._radius)
        if show != self.crosshair.visible:
            self.crosshair.set_visible(show)

    def _before_render(self, _caller=None, _event=None) -> None:
        self.update_overlays()

    def request_render(self) -> None:
        """Ask for a render soon, for changes that come from models (label edits).

        Calls :attr:`render_request` when the GUI set one (a Qt viewport sets its coalescing
        repaint, so many edits between two frames cost one render); without one nothing
        happens: as everywhere in this view, the caller renders.
        """
        if self.render_request is not None:
            self.render_request()

    def render(self) -> None:
        """Render the window this view belongs to."""
        window = self.renderer.GetRenderWindow()
        if window is not None:
            window.Render()

    def close(self) -> None:
        """Remove this view's props and observer from the renderer."""
        self.renderer.RemoveObserver(self._observer)
        for group in (self.corners, self.letters):
            for actor in group.actors.values():
                self.renderer.RemoveViewProp(actor)
        for actor in (self.image_slice, self.scale_bar.actor, self.scale_bar.label,
                      self.crosshair.horizontal, self.crosshair.vertical):
            self.renderer.RemoveViewProp(actor)

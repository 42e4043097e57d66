"""Headless rendering: offscreen OpenGL windows, pixel capture, layout screenshots to PNG.

No Qt and no X display needed. :func:`offscreen_window` picks an OpenGL window class that
works here and remembers it for the process:

1. ``RADVIEW_GL_WINDOW`` = ``egl`` | ``osmesa`` | ``x`` forces one (``x``: VTK's default
   factory class, an X11 window when DISPLAY is set); ``VTK_DEFAULT_OPENGL_WINDOW`` set by
   the user means VTK's own factory choice too;
2. otherwise EGL (``vtkEGLRenderWindow``: Mesa's surfaceless/device platform, or a GPU),
   then OSMesa (``vtkOSOpenGLRenderWindow``, pure software), then, only when ``DISPLAY``
   is set, an X window rendered offscreen.

Each candidate is probed with ``SupportsOpenGL()`` (creates a context, renders nothing);
VTK's warnings are silenced during the probe.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import vtkmodules.vtkRenderingOpenGL2 as _gl
from vtkmodules.util.numpy_support import vtk_to_numpy
from vtkmodules.vtkCommonCore import vtkLogger, vtkObject
from vtkmodules.vtkIOImage import vtkPNGWriter
from vtkmodules.vtkRenderingCore import vtkRenderer, vtkRenderWindow, vtkWindowToImageFilter

from viewer.core.volume import Volume
from viewer.render.mpr import MprViews, layout_viewports
from viewer.render.view_plane import default_orientation
from viewer.render.vtk_convert import volume_to_vtk

__all__ = ["LAYOUTS", "capture_rgb", "offscreen_window", "render_layout_png",
           "window_class_name", "write_png"]

LAYOUTS = ("single", "mpr", "2x2")
_CLASSES = {"egl": "vtkEGLRenderWindow", "osmesa": "vtkOSOpenGLRenderWindow", "x": None}
_chosen: list = []  # [factory] once probed


def _factory(kind: str):
    name = _CLASSES[kind]
    if name is None:
        return vtkRenderWindow  # VTK's default (X11 when DISPLAY is set)
    return getattr(_gl, name, None)


def _probe(factory) -> bool:
    warn = vtkObject.GetGlobalWarningDisplay()
    verbosity = vtkLogger.GetCurrentVerbosityCutoff()
    vtkObject.GlobalWarningDisplayOff()
    vtkLogger.SetStderrVerbosity(vtkLogger.VERBOSITY_OFF)
    try:
        window = factory()
        window.SetOffScreenRendering(1)
        ok = bool(window.SupportsOpenGL())
        window.Finalize()
        return ok
    except Exception:  # noqa: BLE001 - a class that cannot even be made is unusable
        return False
    finally:
        vtkObject.SetGlobalWarningDisplay(warn)
        vtkLogger.SetStderrVerbosity(verbosity)


def _choose():
    if _chosen:
        return _chosen[0]
    forced = os.environ.get("RADVIEW_GL_WINDOW", "").strip().lower()
    if forced:
        if forced not in _CLASSES:
            raise RuntimeError(f"RADVIEW_GL_WINDOW must be egl, osmesa or x, not {forced!r}")
        order = [forced]
    elif os.environ.get("VTK_DEFAULT_OPENGL_WINDOW"):
        order = ["x"]  # the user chose VTK's class through VTK's own variable
    else:
        order = ["egl", "osmesa"] + (["x"] if os.environ.get("DISPLAY") else [])
    for kind in order:
        factory = _factory(kind)
        if factory is not None and _probe(factory):
            _chosen.append(factory)
            return factory
    raise RuntimeError("no offscreen OpenGL available (tried " + ", ".join(order) + ")")


def offscreen_window(size: tuple[int, int]) -> vtkRenderWindow:
    """A new offscreen render window of ``size`` = (width, height) pixels."""
    window = _choose()()
    window.SetOffScreenRendering(1)
    window.SetMultiSamples(0)
    window.SetSize(int(size[0]), int(size[1]))
    return window


def window_class_name() -> str:
    """Class name of the offscreen window this process uses (probes once)."""
    return _choose()().GetClassName()


def _grab(window: vtkRenderWindow) -> vtkWindowToImageFilter:
    """Render ``window`` and read its back buffer (QWidget.grab() cannot see VTK's pixels)."""
    window.Render()
    grab = vtkWindowToImageFilter()
    grab.SetInput(window)
    grab.SetInputBufferTypeToRGB()
    grab.ReadFrontBufferOff()
    grab.ShouldRerenderOff()
    grab.Update()
    return grab


def capture_rgb(window: vtkRenderWindow) -> np.ndarray:
    """Render ``window`` and return its pixels as (height, width, 3) uint8, top row first."""
    out = _grab(window).GetOutput()
    w, h, _ = out.GetDimensions()
    rgb = vtk_to_numpy(out.GetPointData().GetScalars()).reshape(h, w, -1)[..., :3]
    return np.ascontiguousarray(rgb[::-1])


def write_png(window: vtkRenderWindow, path: str | os.PathLike) -> Path:
    """Render ``window`` and write it as PNG atomically (temporary file, then rename)."""
    path = Path(path)
    grab = _grab(window)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".png", dir=path.parent or ".")
    os.close(fd)
    try:
        writer = vtkPNGWriter()
        writer.SetInputConnection(grab.GetOutputPort())
        writer.SetFileName(tmp)
        writer.Write()
        if writer.GetErrorCode() != 0 or os.path.getsize(tmp) == 0:
            raise OSError(f"could not write {path}")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def render_layout(volume: Volume, layout: str | None = None,
                  window: tuple[float, float] | None = None, size: tuple[int, int] = (1024, 512),
                  cursor=None) -> tuple[vtkRenderWindow, MprViews]:
    """Build an offscreen window showing ``volume`` in a layout (see render_layout_png)."""
    layout = layout or ("single" if volume.geometry.shape[0] == 1 else "mpr")
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r} (one of {', '.join(LAYOUTS)})")
    if layout != "single" and volume.geometry.shape[0] < 2:
        raise ValueError(f"layout {layout!r} needs a volume; this series is a single image")
    if size[0] < 16 or size[1] < 16:
        raise ValueError(f"size {size[0]}x{size[1]} is too small (16x16 at least)")
    render_window = offscreen_window(size)
    image = volume_to_vtk(volume)
    orientations = {"single": [default_orientation(volume)],
                    "mpr": ["axial", "coronal", "sagittal"],
                    "2x2": ["axial", "coronal", "sagittal", "3d"]}[layout]
    backdrop = vtkRenderer()  # fills the gaps between panes
    backdrop.SetBackground(0.25, 0.25, 0.25)
    render_window.AddRenderer(backdrop)
    renderers = []
    for viewport in layout_viewports(layout):
        renderer = vtkRenderer()
        renderer.SetViewport(*viewport)
        renderer.SetBackground(0.0, 0.0, 0.0)
        render_window.AddRenderer(renderer)
        renderers.append(renderer)
    views = MprViews(volume, image, list(zip(renderers, orientations)))
    if window is not None:
        views.set_window(*window)
    views.set_cursor(cursor if cursor is not None else views.centre())
    views.show_crosshair(layout != "single" or cursor is not None)
    for view in views.slice_views:
        view.reset_camera()
    return render_window, views


def render_layout_png(volume: Volume, path: str | os.PathLike, layout: str | None = None,
                      window: tuple[float, float] | None = None,
                      size: tuple[int, int] = (1024, 512), cursor=None) -> Path:
    """Render ``volume`` headless and write a PNG of ``size`` (width, height) pixels.

    layout: "single" (axial for a volume, the image itself for a radiograph), "mpr" (axial,
    coronal, sagittal side by side) or "2x2" (the three and a 3D rendering); default
    "single" for a single image, "mpr" for a volume.
    window: (centre, width) in modality units; default the volume's own window.
    cursor: LPS point (mm) the MPR planes go through and the crosshair marks; default the
    volume centre.
    """
    render_window, views = render_layout(volume, layout, window, size, cursor)
    try:
        return write_png(render_window, path)
    finally:
        views.close()
        render_window.Finalize()

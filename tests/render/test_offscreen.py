"""Headless layouts to PNG: sizes, atomic writes, and rendering without any DISPLAY."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from vtkmodules.vtkIOImage import vtkPNGReader

from viewer.render.offscreen import render_layout, render_layout_png, window_class_name


def _png_size(path) -> tuple[int, int]:
    reader = vtkPNGReader()
    reader.SetFileName(str(path))
    reader.Update()
    w, h, _ = reader.GetOutput().GetDimensions()
    return w, h


@pytest.mark.parametrize("layout, panes", [("single", 1), ("mpr", 3), ("2x2", 4)])
def test_layouts_write_pngs_of_the_size_asked(rt, tmp_path, layout, panes):
    m = rt.make_marker_series(tmp_path, "oblique")
    out = tmp_path / f"{layout}.png"
    render_layout_png(m.volume, out, layout=layout, window=(1000, 4000), size=(330, 170))
    assert _png_size(out) == (330, 170)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left
    window, views = render_layout(m.volume, layout, (1000, 4000), (330, 170))
    try:
        assert len(views.slice_views) + (views.volume_view is not None) == panes
        for view in views.slice_views:  # every 2D pane goes through the cursor (centre)
            assert view.cursor() == pytest.approx(views.centre())
    finally:
        views.close()
        window.Finalize()


def test_cursor_moves_every_slice(rt, tmp_path):
    m = rt.make_marker_series(tmp_path, "identity")
    window, views = render_layout(m.volume, "mpr", (1000, 4000), (600, 200), cursor=m.lps)
    try:
        for view in views.slice_views:
            assert view.slice_position_mm() == pytest.approx(m.lps @ view.plane.normal)
            view.show_overlays(False)
            view.show_crosshair(False)
        from viewer.render.offscreen import capture_rgb

        rgb = capture_rgb(window)
        for n in range(3):  # the marker is visible in each third
            assert (rgb[:, n * 200:(n + 1) * 200, 0] > 200).sum() > 4, n
    finally:
        views.close()
        window.Finalize()


def test_bad_arguments(rt, tmp_path):
    m = rt.make_marker_series(tmp_path, "identity")
    with pytest.raises(ValueError, match="layout"):
        render_layout_png(m.volume, tmp_path / "x.png", layout="3x3")
    with pytest.raises(ValueError, match="too small"):
        render_layout_png(m.volume, tmp_path / "x.png", size=(8, 8))
    assert not (tmp_path / "x.png").exists()


def test_renders_without_display(rt, tmp_path):
    """A fresh interpreter with no DISPLAY picks an offscreen class and draws the marker."""
    m = rt.make_marker_series(tmp_path, "identity")
    folder = m.volume.files[0].rsplit(os.sep, 1)[0]
    out = tmp_path / "nodisplay.png"
    code = (
        "import sys, numpy as np\n"
        "from viewer.core.study_index import build_index, load_series\n"
        "from viewer.render.offscreen import render_layout_png, window_class_name\n"
        f"v = load_series(build_index({folder!r}).find(None))\n"
        f"render_layout_png(v, {str(out)!r}, layout='single', window=(1000, 4000),\n"
        "                  size=(200, 150))\n"
        "print(window_class_name())\n"
    )
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "VTK_DEFAULT_OPENGL_WINDOW",
                        "RADVIEW_GL_WINDOW")}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() in ("vtkEGLRenderWindow", "vtkOSOpenGLRenderWindow")
    assert proc.stderr == ""  # no VTK warnings about the missing X server
    assert _png_size(out) == (200, 150)


@pytest.mark.parametrize("kind, name", [("egl", "vtkEGLRenderWindow"),
                                        ("osmesa", "vtkOSOpenGLRenderWindow")])
def test_forced_window_class(kind, name, tmp_path):
    code = ("from viewer.render.offscreen import window_class_name\n"
            "print(window_class_name())\n")
    env = dict(os.environ, RADVIEW_GL_WINDOW=kind)
    env.pop("DISPLAY", None)
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120)
    if proc.returncode != 0 and "no offscreen OpenGL" in proc.stderr:
        pytest.skip(f"{kind} is not available here")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == name


def test_window_class_is_offscreen_capable():
    assert window_class_name() in ("vtkEGLRenderWindow", "vtkOSOpenGLRenderWindow",
                                   "vtkXOpenGLRenderWindow")


def test_render_layer_imports_no_qt_or_tensorflow():
    code = ("import sys\n"
            "import viewer.render.offscreen, viewer.render.annotations, viewer.render.mpr\n"
            "import viewer.render.volume_view\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'PySide6', 'tensorflow', 'keras', 'pyqtgraph', 'ai'}))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"

"""Fixtures for the render tests: synthetic marker series and offscreen slice rendering.

A marker series is -1000 HU air with one 3x3x3 block of 3000 HU whose centre lies to the
patient's left, anterior and superior of the volume centre. It is written as real DICOM
(``write_series``) with identity, oblique or reversed-stack geometry and loaded back, so
the whole path (DICOM -> Volume -> vtkImageData -> screen) is checked. Pixels are read
back with vtkWindowToImageFilter and judged by statistics (where the bright block lands).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from pydicom.data import get_testdata_file
from vtkmodules.vtkRenderingCore import vtkRenderer

from viewer.core.demo import write_series
from viewer.core.geometry import VolumeGeometry
from viewer.core.study_index import build_index, load_series
from viewer.core.volume import Volume
from viewer.render.offscreen import capture_rgb, offscreen_window
from viewer.render.slice_view import SliceView

SHAPE = (30, 64, 80)  # (k, j, i)
SPACING = (3.0, 0.9, 0.7)  # mm, non-square pixels on purpose
#: marker offset from the volume centre in LPS mm: left, anterior, superior
MARKER_OFFSET = np.array([12.0, -10.0, 20.0])


def rotation(axis: str, degrees: float) -> np.ndarray:
    t = np.radians(degrees)
    c, s = np.cos(t), np.sin(t)
    return {"x": np.array([[1, 0, 0], [0, c, -s], [0, s, c]]),
            "y": np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]),
            "z": np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])}[axis]


DIRECTIONS = {
    "identity": np.eye(3),
    "oblique": rotation("z", 20) @ rotation("x", 15),
    # slices written head to feet: column k points inferior (the loader re-sorts them)
    "reversed": np.diag([1.0, 1.0, -1.0]),
}


@dataclass
class Marker:
    volume: Volume
    lps: np.ndarray  # centre of the marker block, LPS mm
    kji: tuple[int, int, int]


def marker_hu(geometry: VolumeGeometry) -> tuple[np.ndarray, tuple[int, int, int]]:
    """-1000 HU with a 3x3x3 block of 3000 HU near centre + MARKER_OFFSET (index, array)."""
    k, j, i = geometry.shape
    centre = geometry.index_to_lps(((k - 1) / 2, (j - 1) / 2, (i - 1) / 2))
    kji = tuple(int(round(v)) for v in geometry.lps_to_index(centre + MARKER_OFFSET))
    assert all(1 <= v < s - 1 for v, s in zip(kji, geometry.shape)), kji
    hu = np.full(geometry.shape, -1000, dtype=np.int16)
    hu[kji[0] - 1:kji[0] + 2, kji[1] - 1:kji[1] + 2, kji[2] - 1:kji[2] + 2] = 3000
    return hu, kji


def make_marker_series(tmp_path: Path, kind: str) -> Marker:
    """Write and load a marker series with geometry ``kind`` (see DIRECTIONS)."""
    direction = DIRECTIONS[kind]
    origin = (-30.0, -25.0, 100.0)
    written = VolumeGeometry(SHAPE, SPACING, origin, direction)
    hu, kji = marker_hu(written)
    write_series(hu, tmp_path / kind, spacing=SPACING, origin=origin, direction=direction,
                 series_description=f"marker {kind}")
    volume = load_series(build_index(tmp_path / kind).find(None))
    lps = written.index_to_lps(kji)
    got = volume.geometry.lps_to_index(lps)
    assert volume.array[tuple(int(round(v)) for v in got)] == 3000  # loader kept it there
    return Marker(volume, lps, tuple(int(round(v)) for v in got))


def make_left_handed() -> Marker:
    """In memory (as a NIfTI reader may give): i runs toward the patient's right."""
    geometry = VolumeGeometry(SHAPE, SPACING, (30.0, -25.0, 100.0), np.diag([-1.0, 1.0, 1.0]))
    hu, kji = marker_hu(geometry)
    volume = Volume(hu, geometry, modality="CT", window=(40.0, 400.0))
    return Marker(volume, geometry.index_to_lps(kji), kji)


@pytest.fixture(params=[*sorted(DIRECTIONS), "left_handed"])
def marker(request, tmp_path) -> Marker:
    """The marker series in each geometry: identity, oblique, reversed, left_handed."""
    if request.param == "left_handed":
        return make_left_handed()
    return make_marker_series(tmp_path, request.param)


@dataclass
class Rendered:
    view: SliceView
    window: object

    def rgb(self) -> np.ndarray:
        """(h, w, 3) uint8, top row first."""
        return capture_rgb(self.window)

    def close(self) -> None:
        self.view.close()
        self.window.Finalize()


def render_view(volume: Volume, orientation: str | None = None, size=(320, 240),
                overlays: bool = False) -> Rendered:
    window = offscreen_window(size)
    renderer = vtkRenderer()
    window.AddRenderer(renderer)
    view = SliceView(renderer, volume, orientation=orientation)
    view.show_overlays(overlays)
    view.show_crosshair(False)
    window.Render()
    return Rendered(view, window)


@pytest.fixture
def rendered():
    """Factory: render_view(...) closed at teardown."""
    made: list[Rendered] = []

    def make(*args, **kwargs) -> Rendered:
        r = render_view(*args, **kwargs)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


def bright_centroid(rgb: np.ndarray, threshold: int = 200) -> tuple[float, float, int]:
    """(x, y) display coordinates (VTK: origin bottom-left) of the bright pixels, and count."""
    mask = rgb[..., 0].astype(int) > threshold
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return float("nan"), float("nan"), 0
    h = rgb.shape[0]
    return float(cols.mean() + 0.5), float(h - rows.mean() - 0.5), int(rows.size)


def testdata_path(name: str) -> Path:
    """Path of an installed pydicom test file; skips the test when it is not installed."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"pydicom test file {name} is not installed")
    return Path(path)


@pytest.fixture(name="rt", scope="session")
def _render_tools():
    """Helpers for the tests: ``rt.make_marker_series``, ``rt.render_view``, ..."""
    return SimpleNamespace(
        make_marker_series=make_marker_series, marker_hu=marker_hu, render_view=render_view,
        bright_centroid=bright_centroid, testdata_path=testdata_path, rotation=rotation,
        MARKER_OFFSET=MARKER_OFFSET, SHAPE=SHAPE, SPACING=SPACING,
    )

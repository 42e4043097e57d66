"""SliceView on real pixels: orientation, picking, scrolling, window, crosshair, overlays."""

from __future__ import annotations

import numpy as np
import pytest

from viewer.core.geometry import VolumeGeometry
from viewer.core.volume import Volume
from viewer.core.windowing import PRESETS

#: where the marker (patient's left, anterior, superior of centre) must land on screen:
#: (sign of x - centre, sign of y - centre) in display coordinates (y up)
EXPECTED_SIDES = {
    "axial": (+1, +1),  # seen from the feet: left on screen right, anterior up
    "coronal": (+1, +1),  # seen from the front: left on screen right, superior up
    "sagittal": (-1, +1),  # seen from the left: anterior on screen left, superior up
}


def _uniform_volume(value: int, shape=(8, 40, 50), spacing=(2.0, 1.0, 1.0), **kw) -> Volume:
    geometry = VolumeGeometry(shape, spacing, (0.0, 0.0, 0.0))
    return Volume(np.full(shape, value, dtype=np.int16), geometry, modality="CT", **kw)


@pytest.mark.parametrize("orientation", sorted(EXPECTED_SIDES))
def test_marker_lands_where_its_lps_position_says(marker, orientation, rendered, rt):
    r = rendered(marker.volume, orientation)
    r.view.set_window(1000, 4000)
    r.view.set_slice_lps(marker.lps)
    rgb = r.rgb()
    x, y, n = rt.bright_centroid(rgb)
    assert n > 4, "marker not visible"
    h, w = rgb.shape[:2]
    sx, sy = EXPECTED_SIDES[orientation]
    assert np.sign(x - w / 2) == sx and np.sign(y - h / 2) == sy, (x, y, w, h)
    ex, ey = r.view.lps_to_display(marker.lps)
    tol = 0.5 * max(rt.SPACING) / r.view.mm_per_pixel() + 1.5
    assert abs(x - ex) <= tol and abs(y - ey) <= tol, ((x, y), (ex, ey), tol)
    # and picking the bright spot gives back the marker's position
    picked = r.view.display_to_lps(x, y)
    assert np.linalg.norm(picked - marker.lps) < 1.2 * max(rt.SPACING)


def test_display_to_lps_round_trips_within_half_a_voxel(marker, rendered):
    r = rendered(marker.volume, "axial")
    view = r.view
    view.zoom(1.7)
    view.pan(13, -7)
    r.window.Render()
    geometry = marker.volume.geometry
    half_voxel = 0.5 * min(geometry.spacing)
    rng = np.random.default_rng(1)
    for kji in rng.uniform(0, 1, (20, 3)) * (np.array(geometry.shape) - 1):
        p = geometry.index_to_lps(kji)
        on_plane = p + view.plane.normal * (view.slice_position_mm() - p @ view.plane.normal)
        back = view.display_to_lps(*view.lps_to_display(p))
        assert np.linalg.norm(back - on_plane) < half_voxel
    # a display pixel picks a point on the current slice plane
    q = view.display_to_lps(100, 80)
    assert q @ view.plane.normal == pytest.approx(view.slice_position_mm())


@pytest.mark.parametrize("orientation, spacing", [("axial", 3.0), ("coronal", 0.9),
                                                  ("sagittal", 0.7)])
def test_scroll_moves_by_the_spacing_along_the_normal(rt, tmp_path, rendered, orientation,
                                                      spacing):
    m = rt.make_marker_series(tmp_path, "identity")
    view = rendered(m.volume, orientation).view
    start, index = view.slice_position_mm(), view.slice_index()
    view.scroll(1)
    assert view.slice_position_mm() - start == pytest.approx(spacing, abs=1e-6)
    assert view.slice_index() == index + 1
    view.scroll(-3)
    assert view.slice_position_mm() - start == pytest.approx(-2 * spacing, abs=1e-6)
    view.scroll(10_000)  # clamped to the last slice
    assert view.slice_index() == view.slice_count() - 1
    assert view.slice_count() == m.volume.geometry.shape[view.axis.array_axis]


def test_slices_snap_to_voxel_centres(rt, tmp_path, rendered):
    m = rt.make_marker_series(tmp_path, "identity")
    view = rendered(m.volume, "axial").view
    view.set_slice_lps(m.lps + np.array([0.0, 0.0, 1.2]))  # 1.2 mm off, spacing 3 mm
    assert view.slice_position_mm() == pytest.approx(m.lps[2])
    assert view.slice_index() == m.kji[0]


def test_non_square_pixels_look_square_in_mm(rendered, rt):
    # 40 rows of 2 mm, 20 columns of 1 mm: 80 mm tall, 20 mm wide
    volume = _uniform_volume(3000, shape=(1, 40, 20), spacing=(1.0, 2.0, 1.0))
    r = rendered(volume, None, size=(300, 300))
    r.view.set_window(1000, 4000)
    mask = r.rgb()[..., 0] > 200
    rows, cols = np.nonzero(mask)
    height, width = np.ptp(rows) + 1, np.ptp(cols) + 1
    assert height / width == pytest.approx(4.0, rel=0.05)
    assert height >= 0.95 * 300 / 1.02  # fitted to the window


def test_crosshair_is_drawn_at_the_cursor(rendered):
    volume = _uniform_volume(-1000, window=(40.0, 400.0))
    r = rendered(volume, "axial", size=(300, 240))
    view = r.view
    cursor = np.array([32.0, 12.0, 6.0])
    view.set_cursor(cursor)
    view.show_crosshair(True)
    rgb = r.rgb().astype(int)
    cx, cy = view.lps_to_display(cursor)
    row, col = int(rgb.shape[0] - cy), int(cx)
    green = (rgb[..., 1] > 150) & (rgb[..., 0] < 150)  # horizontal line: coronal plane
    yellow = (rgb[..., 0] > 150) & (rgb[..., 1] > 150) & (rgb[..., 2] < 150)  # sagittal
    g_rows = np.nonzero(green.sum(axis=1) > 50)[0]
    y_cols = np.nonzero(yellow.sum(axis=0) > 50)[0]
    assert g_rows.size and np.all(np.abs(g_rows - row) <= 1), (g_rows, row)
    assert y_cols.size and np.all(np.abs(y_cols - col) <= 1), (y_cols, col)
    assert not rgb[row - 3:row + 4, col - 3:col + 4].any()  # gap at the centre
    view.show_crosshair(False)
    assert not r.rgb().any()


def test_window_presets_set_the_gray_levels(rendered):
    half = np.full((4, 40, 60), -600, dtype=np.int16)
    half[:, :, 30:] = 40
    volume = Volume(half, VolumeGeometry(half.shape, (2.0, 1.0, 1.0)), modality="CT")
    r = rendered(volume, "axial", size=(240, 240))
    view = r.view

    def left_right():
        rgb = r.rgb()[..., 0].astype(int)
        lx, _ = view.lps_to_display((10.0, 20.0, 4.0))
        rx, _ = view.lps_to_display((50.0, 20.0, 4.0))
        return rgb[120, int(lx)], rgb[120, int(rx)]

    view.set_window(*PRESETS["lung"].as_tuple())
    lung, soft = left_right()
    assert abs(lung - 128) <= 2 and soft > 200  # -600 HU mid-gray in the lung window
    view.set_window(*PRESETS["mediastinum"].as_tuple())
    lung, soft = left_right()
    assert lung == 0 and abs(soft - 128) <= 2
    view.set_invert(True)
    lung, soft = left_right()
    assert lung == 255 and abs(soft - 127) <= 2


def test_corner_text_letters_and_scale_bar(rt, tmp_path, rendered):
    m = rt.make_marker_series(tmp_path, "identity")
    r = rendered(m.volume, "axial", size=(400, 300), overlays=True)
    view = r.view
    view.set_window(-600, 1500)
    texts = view.corner_texts()
    assert texts["top_left"].splitlines()[0] == "Demo, Chest"
    assert "RADVIEW-DEMO" in texts["top_left"]
    assert texts["top_right"].splitlines() == ["CT", "marker identity"]
    n, count = view.slice_index() + 1, view.slice_count()
    assert texts["bottom_left"] == f"Im {n}/{count}\nz = {view.slice_position_mm():.1f} mm"
    assert texts["bottom_right"].endswith("W 1500 L -600")
    zoom = view.zoom_percent()
    view.zoom(2.0)
    assert view.corner_texts()["bottom_right"].startswith(f"Zoom {2 * zoom:.0f}%")
    bar_px = view.scale_bar.length_mm / view.mm_per_pixel()
    assert 0.1 * 400 <= bar_px <= 0.25 * 400 + 1e-6
    view.scroll(1)
    assert view.corner_texts()["bottom_left"].startswith(f"Im {n + 1}/{count}")
    letters = {k: view.letters.text(k) for k in ("left", "right", "top", "bottom")}
    assert letters == {"left": "R", "right": "L", "top": "A", "bottom": "P"}
    assert r.rgb().max() > 200  # the overlays draw something


def test_zoom_and_pan_move_the_image(marker, rendered, rt):
    r = rendered(marker.volume, "coronal")
    view = r.view
    view.set_window(1000, 4000)
    view.set_slice_lps(marker.lps)
    mpp = view.mm_per_pixel()
    view.zoom(1.25)
    assert view.mm_per_pixel() == pytest.approx(mpp / 1.25)
    x0, y0, _ = rt.bright_centroid(r.rgb())
    view.pan(15, -10)
    x1, y1, _ = rt.bright_centroid(r.rgb())
    assert (x1 - x0, y1 - y0) == (pytest.approx(15, abs=1), pytest.approx(-10, abs=1))
    view.reset_camera()
    assert view.mm_per_pixel() == pytest.approx(mpp)


def test_colour_volume_shows_its_colours(rendered):
    rgb = np.zeros((3, 30, 30, 3), dtype=np.uint8)
    rgb[:, 10:20, 10:20] = (255, 0, 0)
    volume = Volume(rgb, VolumeGeometry((3, 30, 30)), modality="OT")
    out = rendered(volume, "axial", size=(120, 120)).rgb().astype(int)
    red = (out[..., 0] > 200) & (out[..., 1] < 50) & (out[..., 2] < 50)
    assert 0.05 < red.mean() < 0.2


def test_monochrome1_radiograph_shows_bone_brighter_than_background(rt, rendered):
    from viewer.core.study_index import build_index, load_series

    volume = load_series(build_index(rt.testdata_path("RG1_UNCR.dcm")).find(None))
    assert volume.invert_display and volume.geometry.shape[0] == 1
    r = rendered(volume, None, size=(400, 400))
    assert r.view.plane.orientation == "image"
    assert r.view.inverted
    gray = r.rgb()[..., 0].astype(float)

    def shown(rows, cols):  # mean displayed gray over an array region (row, col ranges)
        vals = []
        for row in rows:
            for col in cols:
                x, y = r.view.lps_to_display(volume.geometry.index_to_lps((0, row, col)))
                vals.append(gray[int(400 - y), int(x)])
        return float(np.mean(vals))

    spine = shown(range(900, 1000, 20), range(880, 960, 20))  # low stored values
    lung = shown(range(700, 800, 20), range(400, 500, 20))
    corner = shown(range(5, 40, 10), range(5, 40, 10))  # unexposed background, high values
    assert spine > lung > corner
    assert not r.view.letters.actors["left"].GetVisibility()  # no geometry: no letters
    # the whole image is shown with its aspect: 1841 x 1955 pixels of equal spacing
    rows, cols = np.nonzero(gray > 5)
    assert (np.ptp(rows) + 1) / (np.ptp(cols) + 1) == pytest.approx(1955 / 1841, rel=0.03)

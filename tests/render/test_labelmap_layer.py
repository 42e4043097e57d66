"""Label maps over SliceViews: voxels land on their image voxels, colours, updates, cursor."""

from __future__ import annotations

import numpy as np
import pytest
from vtkmodules.vtkRenderingCore import vtkRenderer

from viewer.core.geometry import VolumeGeometry
from viewer.core.labelmap import LabelMap, Segment
from viewer.core.volume import Volume
from viewer.render.brush_cursor import BrushCursor
from viewer.render.labelmap_layer import LabelImage, LabelMapLayer, segment_rgba
from viewer.render.offscreen import capture_rgb, offscreen_window
from viewer.render.slice_view import SliceView

GREEN = (0, 255, 0)


def _green(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(int)
    return (rgb[..., 1] > 200) & (rgb[..., 0] < 80) & (rgb[..., 2] < 80)


def _grow(mask: np.ndarray, n: int) -> np.ndarray:
    """``mask`` dilated by ``n`` pixels (4-neighbour steps)."""
    out = mask.copy()
    for _ in range(n):
        grown = out.copy()
        grown[1:] |= out[:-1]
        grown[:-1] |= out[1:]
        grown[:, 1:] |= out[:, :-1]
        grown[:, :-1] |= out[:, 1:]
        out = grown
    return out


def _marker_labels(marker) -> LabelMap:
    """Label 1 exactly on the marker's 3x3x3 bright block (same geometry as the image)."""
    labelmap = LabelMap(marker.volume.geometry, segments={1: Segment("marker", GREEN, opacity=1.0)})
    labelmap.labels[marker.volume.array == 3000] = 1
    assert labelmap.labels.sum() == 27
    return labelmap


def _truth(view, volume, shape) -> np.ndarray:
    """Screen pixels (top row first) whose centre lies in a marker voxel (3000 HU): exact."""
    h, w = shape
    ys, xs = np.mgrid[0:h, 0:w]
    focal = np.asarray(view.camera.GetFocalPoint())
    mpp = view.mm_per_pixel()
    dx, dy = (xs + 0.5 - w / 2) * mpp, (h - ys - 0.5 - h / 2) * mpp
    lps = focal + dx[..., None] * view.plane.right + dy[..., None] * view.plane.up
    kji = np.rint(volume.geometry.lps_to_index(lps.reshape(-1, 3))).astype(int)
    inside = np.all((kji >= 0) & (kji < volume.geometry.shape), axis=1)
    hit = np.zeros(len(kji), bool)
    hit[inside] = volume.array[tuple(kji[inside].T)] == 3000
    return hit.reshape(h, w)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


@pytest.mark.parametrize("orientation", ["axial", "coronal", "sagittal"])
def test_label_voxels_cover_exactly_their_image_voxels(marker, orientation, rendered, rt):
    r = rendered(marker.volume, orientation)
    view = r.view
    view.set_window(1000, 4000)
    view.set_slice_lps(marker.lps)
    bright = r.rgb()[..., 0] > 200  # the marker block as the image shows it
    truth = _truth(view, marker.volume, bright.shape)
    assert truth.sum() > 4
    layer = LabelMapLayer(view, outline=False)
    layer.set_labelmap(_marker_labels(marker))
    green = _green(r.rgb())
    # each screen pixel shows the label of the voxel its centre lies in
    assert _iou(green, truth) > 0.97, _iou(green, truth)
    if np.allclose(np.abs(marker.volume.geometry.direction), np.eye(3)):
        # on grids along the patient axes the image is sampled the same way: same pixels
        # (oblique grids: SliceView resamples the image on its own coarser in-plane grid)
        assert _iou(green, bright) > 0.97, _iou(green, bright)
    x, y, _ = rt.bright_centroid(np.where(green[..., None], 255, 0).astype(np.uint8))
    ex, ey = view.lps_to_display(marker.lps)
    tol = 0.5 * max(rt.SPACING) / view.mm_per_pixel() + 1.5
    assert abs(x - ex) <= tol and abs(y - ey) <= tol
    # outline only: a one-pixel ring on the block's edge pixels, none inside or outside
    layer.set_fill(False)
    layer.set_outline(True)
    ring = _green(r.rgb())
    assert ring.sum() > 4
    assert not (ring & ~_grow(truth, 1)).any()
    assert not (ring & ~_grow(~truth, 2)).any()
    edge = truth & _grow(~truth, 1)
    assert _iou(ring, edge) > 0.9
    layer.close()
    assert not _green(r.rgb()).any()


def _flat_picture(value=128):
    """A uniform mid-gray one-slice image (CT window centred so 0 HU shows as 128)."""
    geometry = VolumeGeometry((3, 60, 80), (2.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    return Volume(np.zeros(geometry.shape, np.int16), geometry, modality="CT", window=(0.0, 400.0))


def _view(volume, size=(320, 240)):
    window = offscreen_window(size)
    renderer = vtkRenderer()
    window.AddRenderer(renderer)
    view = SliceView(renderer, volume, orientation="axial")
    view.show_overlays(False)
    view.show_crosshair(False)
    view.set_slice_lps(volume.geometry.index_to_lps((1, 0, 0)))
    return window, view


def _pixel(window, view, geometry, kji) -> np.ndarray:
    x, y = view.lps_to_display(geometry.index_to_lps(kji))
    rgb = capture_rgb(window).astype(int)
    return rgb[int(rgb.shape[0] - y), int(x)]


def test_opacity_blends_and_hidden_segments_are_not_drawn():
    volume = _flat_picture()
    geometry = volume.geometry
    window, view = _view(volume)
    gray = _pixel(window, view, geometry, (1, 30, 40))
    assert abs(gray[0] - 128) <= 2
    labelmap = LabelMap(
        geometry,
        segments={
            1: Segment("a", (255, 0, 0), opacity=0.5),
            2: Segment("b", (0, 0, 255), opacity=0.5),
        },
    )
    labelmap.labels[1, 10:50, 10:40] = 1
    labelmap.labels[1, 10:50, 40:70] = 2
    layer = LabelMapLayer(view, outline=False, opacity=0.8)
    layer.set_labelmap(labelmap)
    alpha = 0.5 * 0.8
    got = _pixel(window, view, geometry, (1, 30, 25))
    want = alpha * np.array([255, 0, 0]) + (1 - alpha) * gray
    assert np.abs(got - want).max() <= 3, (got, want)
    assert np.abs(_pixel(window, view, geometry, (1, 5, 5)) - gray).max() <= 1  # label 0
    labelmap.update_segment(2, visible=False)
    assert np.abs(_pixel(window, view, geometry, (1, 30, 55)) - gray).max() <= 1
    labelmap.update_segment(1, opacity=1.0)
    assert (
        np.abs(
            _pixel(window, view, geometry, (1, 30, 25)) - (0.8 * np.array([255, 0, 0]) + 0.2 * gray)
        ).max()
        <= 3
    )
    layer.set_visible(False)
    assert np.abs(_pixel(window, view, geometry, (1, 30, 25)) - gray).max() <= 1
    layer.set_visible(True)
    layer.set_outline(True)  # outline alpha min(1, 2 x 1.0) x 0.8 on the edge column
    edge = _pixel(window, view, geometry, (1, 30, 10))
    assert np.abs(edge - (0.8 * np.array([255, 0, 0]) + 0.2 * gray)).max() <= 3


def test_segment_rgba_table():
    table = segment_rgba(
        {1: Segment("a", (10, 20, 30), opacity=0.5), 3: Segment("c", (1, 2, 3), visible=False)},
        opacity=0.5,
    )
    assert table[0, 3] == 0 and table[3, 3] == 0
    assert tuple(table[1]) == (10, 20, 30, 64)
    assert table[2, 3] > 0  # a label without a segment entry is still shown
    outline = segment_rgba({1: Segment("a", (10, 20, 30), opacity=0.5)}, outline=True)
    assert outline[1, 3] == 255


def test_edits_show_after_the_next_render_without_a_new_pipeline():
    volume = _flat_picture()
    geometry = volume.geometry
    window, view = _view(volume)
    requests = []
    view.render_request = lambda: requests.append(1)
    labelmap = LabelMap(geometry, segments={1: Segment("a", (255, 0, 0), opacity=1.0)})
    layer = LabelMapLayer(view)
    layer.set_labelmap(labelmap)
    image, reslice_input, actor = layer.source.index_image, layer.reslice.GetInput(), layer.actor
    window.Render()
    assert not _green(capture_rgb(window)).any()
    before = _pixel(window, view, geometry, (1, 20, 30))
    requests.clear()
    labelmap.write(((1, 2), (15, 25), (25, 35)), np.ones((1, 10, 10), np.uint8))
    assert requests  # the view was asked for a render, nothing rendered synchronously
    after = _pixel(window, view, geometry, (1, 20, 30))
    assert before[0] < 140 and after[0] > 240 and after[1] < 20
    assert layer.source.index_image is image and layer.reslice.GetInput() is reslice_input
    assert layer.actor is actor
    assert layer.source.array is labelmap.labels  # shared, never copied
    # an edit on another slice asks for no render of this one
    requests.clear()
    labelmap.write(((2, 3), (15, 25), (25, 35)), np.ones((1, 10, 10), np.uint8))
    assert not requests
    # erasing shows too
    labelmap.write(((1, 2), (15, 25), (25, 35)), np.zeros((1, 10, 10), np.uint8))
    assert np.abs(_pixel(window, view, geometry, (1, 20, 30)) - before).max() <= 1


def test_views_share_one_label_image_and_remove_restores_the_image(tmp_path, rt):
    m = rt.make_marker_series(tmp_path, "oblique")
    labelmap = _marker_labels(m)
    layers, shots = [], []
    for orientation in ("axial", "coronal"):
        r = rt.render_view(m.volume, orientation)
        r.view.set_window(1000, 4000)
        r.view.set_slice_lps(m.lps)
        shots.append((r, r.rgb()))
        layer = LabelMapLayer(r.view)
        layer.set_labelmap(labelmap)
        layers.append(layer)
    assert layers[0].source is layers[1].source is LabelImage.of(labelmap)
    for (r, plain), layer in zip(shots, layers, strict=True):
        assert _green(r.rgb()).any()
        layer.set_labelmap(None)
        np.testing.assert_array_equal(r.rgb(), plain)
        r.close()


def test_brush_cursor_radius_in_pixels():
    volume = _flat_picture()
    geometry = volume.geometry
    window, view = _view(volume, size=(400, 300))
    view.zoom(2.5)
    cursor = BrushCursor(view, color=(0, 255, 0))
    centre = geometry.index_to_lps((0, 30, 40))  # another slice: projected onto the shown one
    cursor.set_position(centre)
    cursor.set_radius_mm(8.0)
    rgb = capture_rgb(window)
    ring = _green(rgb)
    ys, xs = np.nonzero(ring)
    assert len(xs) > 50
    cx, cy = view.lps_to_display(centre)
    dist = np.hypot(xs + 0.5 - cx, (rgb.shape[0] - ys - 0.5) - cy)
    expected = 8.0 / view.mm_per_pixel()
    assert cursor.radius_px() == pytest.approx(expected)
    assert np.median(dist) == pytest.approx(expected, abs=1.0)
    assert dist.max() - dist.min() < 3.0  # a thin circle
    cursor.set_radius_mm(4.0)
    ys, xs = np.nonzero(_green(capture_rgb(window)))
    dist = np.hypot(xs + 0.5 - cx, (rgb.shape[0] - ys - 0.5) - cy)
    assert np.median(dist) == pytest.approx(4.0 / view.mm_per_pixel(), abs=1.0)
    cursor.set_visible(False)
    assert not _green(capture_rgb(window)).any()
    with pytest.raises(ValueError, match="radius"):
        cursor.set_radius_mm(0)


def test_labels_show_over_a_heatmap_layer():
    from viewer.render.heatmap import HeatmapLayer

    volume = _flat_picture()
    geometry = volume.geometry
    window, view = _view(volume)
    gray = _pixel(window, view, geometry, (1, 5, 40))
    labelmap = LabelMap(geometry, segments={1: Segment("a", GREEN, opacity=1.0)})
    labelmap.labels[1, 20:40, 10:30] = 1
    layer = LabelMapLayer(view, outline=False)
    layer.set_labelmap(labelmap)
    cam = np.zeros(geometry.shape[1:], np.float32)
    cam[20:40, 10:70] = 1.0  # under the label and beside it
    heatmap = HeatmapLayer(view, 1, cam, colour_map="jet", threshold=0.5, opacity=1.0)
    assert tuple(_pixel(window, view, geometry, (1, 30, 20))) == GREEN
    beside = _pixel(window, view, geometry, (1, 30, 50))
    assert beside[0] > 100 and beside[1] < 30  # the heatmap (jet at 1.0: dark red)
    assert np.abs(_pixel(window, view, geometry, (1, 5, 40)) - gray).max() <= 1  # image
    heatmap.remove()
    assert tuple(_pixel(window, view, geometry, (1, 30, 20))) == GREEN
    assert np.abs(_pixel(window, view, geometry, (1, 30, 50)) - gray).max() <= 1


def test_zoomed_out_and_panned_labels_cover_the_volume_to_its_edges():
    volume = _flat_picture()
    geometry = volume.geometry
    window, view = _view(volume, size=(300, 300))
    view.zoom(0.5)
    view.pan(20, -10)
    labelmap = LabelMap(geometry, segments={1: Segment("all", GREEN, opacity=1.0)})
    labelmap.labels[1] = 1
    layer = LabelMapLayer(view, outline=False)
    layer.set_labelmap(labelmap)
    ys, xs = np.nonzero(_green(capture_rgb(window)))
    corners = [
        view.lps_to_display(geometry.index_to_lps((1, j, i)))
        for j in (-0.5, 59.5)
        for i in (-0.5, 79.5)
    ]
    ex, ey = np.array(corners).T
    assert abs(xs.min() - ex.min()) <= 1 and abs(xs.max() + 1 - ex.max()) <= 1
    assert abs(300 - ys.max() - 1 - ey.min()) <= 1 and abs(300 - ys.min() - ey.max()) <= 1
    layer.set_fill(False)
    layer.set_outline(True)  # the outline runs along the volume's edge too
    ring = _green(capture_rgb(window))
    assert ring[:, int(ex.min()) : int(ex.min()) + 2].sum() > 0.9 * (ey.max() - ey.min())
    assert ring.sum() < 4 * ((ex.max() - ex.min()) + (ey.max() - ey.min()))

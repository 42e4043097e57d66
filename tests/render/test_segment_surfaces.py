"""Segment surfaces in the 3D view: LPS placement, colours, rebuild on demand."""

from __future__ import annotations

import numpy as np
import pytest
from vtkmodules.vtkRenderingCore import vtkRenderer

from viewer.core.geometry import VolumeGeometry
from viewer.core.labelmap import LabelMap, Segment
from viewer.core.volume import Volume
from viewer.render.offscreen import capture_rgb, offscreen_window
from viewer.render.segment_surfaces import SegmentSurfaces, label_surfaces
from viewer.render.volume_view import VolumeView
from viewer.render.vtk_convert import volume_to_vtk

SHAPE = (24, 40, 48)
SPACING = (2.5, 0.9, 0.8)
GEOMETRIES = {
    "identity": np.eye(3),
    "oblique": np.array(
        [
            [0.9396926, -0.3213938, 0.1169778],
            [0.3420201, 0.8830222, -0.3213938],
            [0, 0.34202, 0.9396926],
        ]
    ),
    "reversed": np.diag([1.0, 1.0, -1.0]),  # left-handed: k runs toward the feet
    "left_right": np.diag([-1.0, 1.0, 1.0]),  # left-handed: i runs toward the right
}


def _sphere(direction, radius_mm=12.0, label=1) -> tuple[LabelMap, np.ndarray]:
    geometry = VolumeGeometry(SHAPE, SPACING, (5.0, -20.0, 40.0), direction)
    centre = geometry.index_to_lps((np.array(SHAPE) - 1) / 2 + np.array([1.0, -2.0, 3.0]))
    kji = np.indices(SHAPE).reshape(3, -1).T
    inside = np.linalg.norm(geometry.index_to_lps(kji) - centre, axis=1) <= radius_mm
    labelmap = LabelMap(geometry, segments={label: Segment("ball", (0, 255, 0))})
    labelmap.labels[tuple(kji[inside].T)] = label
    return labelmap, centre


@pytest.mark.parametrize("kind", sorted(GEOMETRIES))
def test_sphere_surface_bounds_match_its_lps_bounds(kind):
    labelmap, centre = _sphere(GEOMETRIES[kind])
    surfaces = label_surfaces(labelmap.labels, labelmap.geometry)
    assert set(surfaces) == {1}
    bounds = np.array(surfaces[1].GetBounds()).reshape(3, 2)
    want = np.stack([centre - 12.0, centre + 12.0], axis=1)
    assert np.abs(bounds - want).max() < max(SPACING), (bounds, want)
    assert surfaces[1].GetPointData().GetNormals() is not None
    # smoothing keeps it round: points lie near the sphere
    from vtkmodules.util.numpy_support import vtk_to_numpy

    points = vtk_to_numpy(surfaces[1].GetPoints().GetData())
    radii = np.linalg.norm(points - centre, axis=1)
    assert abs(np.median(radii) - 12.0) < 0.5 * max(SPACING)
    # normals point out of the segment (lighting), left-handed grids included
    normals = vtk_to_numpy(surfaces[1].GetPointData().GetNormals())
    assert (np.einsum("ij,ij->i", normals, points - centre) > 0).mean() > 0.98


def test_faces_between_two_segments_point_out_of_each():
    from vtkmodules.util.numpy_support import vtk_to_numpy

    labelmap, centre = _sphere(GEOMETRIES["reversed"])
    geometry = labelmap.geometry
    kji = np.indices(SHAPE).reshape(3, -1).T
    right = geometry.index_to_lps(kji) @ np.array([1.0, 0.0, 0.0]) > centre[0]
    labelmap.labels[tuple(kji[right & (labelmap.labels.reshape(-1) == 1)].T)] = 2
    surfaces = label_surfaces(labelmap.labels, geometry)
    for value, side in ((1, -1.0), (2, 1.0)):  # two half balls, each closed by the cut
        poly = surfaces[value]
        points = vtk_to_numpy(poly.GetPoints().GetData())
        normals = vtk_to_numpy(poly.GetPointData().GetNormals())
        half_centre = centre + side * np.array([12.0 * 3 / 8, 0.0, 0.0])  # centroid
        assert (np.einsum("ij,ij->i", normals, points - half_centre) > 0).mean() > 0.95


def _view(labelmap: LabelMap, size=(200, 200)):
    volume = Volume(
        np.full(labelmap.shape, -1000, np.int16),
        labelmap.geometry,
        modality="CT",
        window=(40.0, 400.0),
    )
    window = offscreen_window(size)
    renderer = vtkRenderer()
    window.AddRenderer(renderer)
    view = VolumeView(renderer, volume_to_vtk(volume), volume=volume)
    view.label.VisibilityOff()
    return window, renderer, view


def test_surfaces_render_where_the_sphere_is_and_follow_the_segment_table():
    labelmap, centre = _sphere(GEOMETRIES["oblique"])
    window, renderer, view = _view(labelmap)
    requests = []
    view.render_request = lambda: requests.append(1)
    surfaces = SegmentSurfaces(view)
    surfaces.set_labelmap(labelmap)
    assert requests and not surfaces.dirty
    rgb = capture_rgb(window).astype(int)
    green = (rgb[..., 1] > 60) & (rgb[..., 1] > rgb[..., 0] + 30)
    assert green.sum() > 50
    ys, xs = np.nonzero(green)
    renderer.SetWorldPoint(*centre, 1.0)
    renderer.WorldToDisplay()
    ex, ey, _ = renderer.GetDisplayPoint()
    assert abs(xs.mean() + 0.5 - ex) < 3 and abs(rgb.shape[0] - ys.mean() - 0.5 - ey) < 3
    actor = surfaces.actors[1]
    labelmap.update_segment(1, color=(255, 0, 0))  # no rebuild, same actor, new colour
    assert surfaces.actors[1] is actor
    rgb = capture_rgb(window).astype(int)
    assert ((rgb[..., 0] > 60) & (rgb[..., 0] > rgb[..., 1] + 30)).sum() > 50
    labelmap.update_segment(1, visible=False)
    assert capture_rgb(window).max() < 30
    labelmap.update_segment(1, visible=True, opacity=0.25)
    assert actor.GetProperty().GetOpacity() == pytest.approx(0.5)
    surfaces.close()
    assert not surfaces.actors
    view.close()
    window.Finalize()


def test_rebuilt_on_demand_only_and_throttled():
    labelmap, _ = _sphere(np.eye(3))
    window, _, view = _view(labelmap, size=(80, 80))
    surfaces = SegmentSurfaces(view, min_interval_s=0.0)
    surfaces.set_labelmap(labelmap)
    assert not surfaces.refresh()  # nothing changed: nothing to do
    before = surfaces.bounds(1)
    labelmap.write(((0, 4), (0, 4), (0, 4)), np.full((4, 4, 4), 2, np.uint8))
    assert surfaces.dirty and surfaces.bounds(1) == before  # edits do not rebuild
    assert surfaces.refresh()
    assert set(surfaces.actors) == {1, 2} and not surfaces.dirty
    lo = np.array(surfaces.bounds(2)).reshape(3, 2)[:, 0]
    corner = labelmap.geometry.index_to_lps((0, 0, 0))
    assert np.abs(lo - (corner - 0.5 * np.array(SPACING)[::-1])).max() < max(SPACING)
    # throttled: a second stroke right after a build waits, unless forced
    surfaces.min_interval_s = 60.0
    labelmap.write(((0, 4), (0, 4), (0, 4)), np.zeros((4, 4, 4), np.uint8))
    assert not surfaces.refresh() and surfaces.dirty and surfaces.wait_s() > 0
    assert surfaces.refresh(force=True) and set(surfaces.actors) == {1}
    # built off the GUI thread from a snapshot; stale results keep it dirty
    labels, geometry, version = surfaces.snapshot()
    labelmap.write(((0, 1), (0, 1), (0, 1)), np.full((1, 1, 1), 3, np.uint8))
    surfaces.set_surfaces(label_surfaces(labels, geometry), version)
    assert surfaces.dirty and set(surfaces.actors) == {1}
    surfaces.close()
    view.close()
    window.Finalize()


def test_shape_mismatch_is_refused():
    labelmap, _ = _sphere(np.eye(3))
    with pytest.raises(ValueError, match="do not match"):
        label_surfaces(labelmap.labels[:-1], labelmap.geometry)

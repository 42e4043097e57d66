"""Volume -> vtkImageData (shared buffer, LPS world) and the view planes' screen axes."""

from __future__ import annotations

import numpy as np
import pytest
from vtkmodules.util.numpy_support import vtk_to_numpy

from viewer.core.geometry import VolumeGeometry
from viewer.core.volume import Volume
from viewer.render.overlays import format_length, nice_length
from viewer.render.view_plane import SliceAxis, view_plane
from viewer.render.vtk_convert import right_handed, volume_to_vtk


def _volume(direction, dtype=np.int16, shape=(5, 6, 7)) -> Volume:
    a = np.arange(np.prod(shape), dtype=dtype).reshape(shape)
    g = VolumeGeometry(shape, (2.5, 0.8, 0.6), (10.0, -20.0, 30.0), direction)
    return Volume(a, g, modality="CT")


def _physical(image, ijk) -> np.ndarray:
    out = [0.0, 0.0, 0.0]
    image.TransformContinuousIndexToPhysicalPoint([float(v) for v in ijk], out)
    return np.array(out)


@pytest.mark.parametrize("direction", [np.eye(3), np.diag([1.0, -1.0, -1.0]),
                                       np.diag([-1.0, 1.0, 1.0]),
                                       np.array([[0.8, 0.6, 0], [-0.6, 0.8, 0], [0, 0, 1]]).T])
def test_image_shares_the_array_and_its_world_is_lps(direction):
    volume = _volume(direction)
    image = volume_to_vtk(volume)
    scalars = vtk_to_numpy(image.GetPointData().GetScalars())
    assert np.shares_memory(scalars, volume.array)  # no copy
    assert image.GetDimensions() == (7, 6, 5)
    assert image.GetSpacing() == pytest.approx((0.6, 0.8, 2.5))
    for kji in [(0, 0, 0), (4, 5, 6), (2, 1, 3)]:
        assert _physical(image, kji[::-1]) == pytest.approx(volume.geometry.index_to_lps(kji))
        assert scalars[image.ComputePointId(list(kji[::-1]))] == volume.array[kji]


def test_numpy_buffer_lives_as_long_as_vtk_holds_the_image():
    import gc

    from vtkmodules.vtkRenderingImage import vtkImageResliceMapper

    mapper = vtkImageResliceMapper()
    mapper.SetInputData(volume_to_vtk(_volume(np.eye(3))))  # no Python reference kept
    gc.collect()
    _ = [np.full(5 * 6 * 7, 99, np.int16) for _ in range(100)]  # reuse freed memory, if any
    values = vtk_to_numpy(mapper.GetInput().GetPointData().GetScalars())
    assert np.array_equal(values, np.arange(5 * 6 * 7))


def test_colour_volume_is_three_unsigned_chars():
    rgb = np.zeros((2, 3, 4, 3), dtype=np.uint16)
    rgb[..., 0] = 65535
    volume = Volume(rgb, VolumeGeometry((2, 3, 4)))
    scalars = volume_to_vtk(volume).GetPointData().GetScalars()
    assert scalars.GetNumberOfComponents() == 3 and scalars.GetDataTypeAsString() == (
        "unsigned char")
    assert tuple(scalars.GetTuple3(0)) == (255.0, 0.0, 0.0)


def test_right_handed_copy_covers_the_same_voxels():
    volume = _volume(np.diag([1.0, 1.0, -1.0]))
    image = volume_to_vtk(volume)
    flipped = right_handed(image)
    assert flipped is not image
    m = flipped.GetDirectionMatrix()
    assert m.Determinant() > 0
    values = vtk_to_numpy(flipped.GetPointData().GetScalars())
    for kji in [(0, 0, 0), (4, 5, 6), (1, 2, 3)]:
        p = volume.geometry.index_to_lps(kji)
        ijk = [0.0, 0.0, 0.0]
        flipped.TransformPhysicalPointToContinuousIndex(list(p), ijk)
        idx = [int(round(v)) for v in ijk]
        assert values[flipped.ComputePointId(idx)] == volume.array[kji]
    assert right_handed(volume_to_vtk(_volume(np.eye(3)))) is not None


@pytest.mark.parametrize("orientation, letters", [
    ("axial", {"left": "R", "right": "L", "top": "A", "bottom": "P"}),
    ("coronal", {"left": "R", "right": "L", "top": "S", "bottom": "I"}),
    ("sagittal", {"left": "A", "right": "P", "top": "S", "bottom": "I"}),
])
def test_radiological_screen_axes(orientation, letters):
    plane = view_plane(orientation, VolumeGeometry((2, 2, 2)))
    assert plane.edge_letters() == letters
    # right x up points out of the screen, toward the viewer: the camera looks along dop
    assert np.cross(plane.right, plane.up) == pytest.approx(-plane.dop)
    view_from = {"axial": "I", "coronal": "A", "sagittal": "L"}[orientation]
    from viewer.core.geometry import orientation_letter

    assert orientation_letter(-plane.dop) == view_from


def test_image_plane_follows_the_acquisition():
    # coronal acquisition: rows run to the patient's left, columns downward (inferior)
    d = np.column_stack([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])
    plane = view_plane("image", VolumeGeometry((3, 4, 5), direction=d))
    assert plane.edge_letters() == {"left": "R", "right": "L", "top": "S", "bottom": "I"}
    assert plane.normal == pytest.approx(d[:, 2])


def test_slice_axis_steps_and_snaps():
    g = VolumeGeometry((10, 20, 30), (2.5, 0.8, 0.6), (0.0, 0.0, -5.0), np.diag([1, 1, -1.0]))
    axis = SliceAxis(g, view_plane("axial", g))
    assert (axis.array_axis, axis.step_mm, axis.count) == (0, 2.5, 10)
    assert (axis.lo, axis.hi) == pytest.approx((-5.0 - 9 * 2.5, -5.0))
    assert axis.snap(-6.0) == pytest.approx(-5.0)
    assert axis.snap(-7.0) == pytest.approx(-7.5)
    assert axis.snap(100.0) == pytest.approx(-5.0)
    assert axis.index((0.0, 0.0, -7.5)) == 1  # k grows toward the feet here


@pytest.mark.parametrize("max_mm, length", [(0.05, 0.1), (7.0, 5.0), (19.9, 10.0), (20, 20.0),
                                            (49, 20.0), (120, 100.0)])
def test_scale_bar_lengths_are_round(max_mm, length):
    assert nice_length(max_mm) == length


def test_scale_bar_labels():
    assert [format_length(v) for v in (5, 10, 20, 50, 0.5)] == [
        "5 mm", "1 cm", "2 cm", "5 cm", "0.5 mm"]

"""Volume -> vtkImageData, once, without copying the voxels.

The returned image lives in patient LPS millimetres: VTK's x, y, z index axes are the array's
i, j, k (column, row, slice), its spacing is ``(si, sj, sk)`` mm, its origin is the LPS
position of voxel (0, 0, 0) and its direction matrix is the geometry's (columns = LPS unit
vectors of increasing i, j, k). So VTK *world* coordinates are LPS mm and
``image.TransformContinuousIndexToPhysicalPoint(i, j, k)`` equals
``geometry.index_to_lps((k, j, i))``.

Grayscale volumes share the numpy buffer (``numpy_to_vtk(deep=0)``); the array is kept alive
by a reference on the VTK buffer and on the returned object (``image.numpy_array``).
Colour volumes become 3-component unsigned char (uint8 arrays are shared, uint16 are scaled
to 8 bits, which copies).
"""

from __future__ import annotations

import numpy as np
from vtkmodules.util.numpy_support import numpy_to_vtk, vtk_to_numpy
from vtkmodules.vtkCommonDataModel import vtkImageData

from viewer.core.geometry import VolumeGeometry
from viewer.core.volume import Volume

__all__ = ["geometry_to_vtk", "right_handed", "volume_to_vtk"]

#: dtypes VTK shows directly; anything else is converted (copied) to float32
_SHARED_KINDS = {"i", "u", "f"}


def _flat_scalars(array: np.ndarray) -> np.ndarray:
    """The array as a C-contiguous (voxels,) or (voxels, 3) view, copying only if needed."""
    if array.ndim == 4:  # (k, j, i, c) colour
        rgb = array[..., :3]
        if rgb.dtype != np.uint8:
            top = float(np.iinfo(rgb.dtype).max) if rgb.dtype.kind in "iu" else 1.0
            rgb = np.clip(rgb.astype(np.float32) * (255.0 / top), 0, 255).astype(np.uint8)
        rgb = np.ascontiguousarray(rgb)
        return rgb.reshape(-1, 3)
    a = array
    if a.dtype.kind not in _SHARED_KINDS or a.dtype.itemsize > 8 or a.dtype == np.float16:
        a = a.astype(np.float32)
    elif a.dtype.kind == "i" and a.dtype.itemsize == 8:
        a = a.astype(np.float64)  # VTK shows int64 images poorly on some drivers
    a = np.ascontiguousarray(a)  # a view when already C-contiguous (the normal case)
    return a.reshape(-1)


def geometry_to_vtk(geometry: VolumeGeometry, image: vtkImageData | None = None) -> vtkImageData:
    """Set dimensions, spacing, origin and direction of ``image`` (new if None) from geometry."""
    image = image if image is not None else vtkImageData()
    image.SetDimensions(*geometry.size_xyz)
    image.SetSpacing(*geometry.spacing_xyz)
    image.SetOrigin(*geometry.origin)
    d = np.asarray(geometry.direction, dtype=float)
    image.SetDirectionMatrix(*d.reshape(-1))  # row-major 3x3, columns = i, j, k in LPS
    return image


def volume_to_vtk(volume: Volume) -> vtkImageData:
    """A vtkImageData sharing ``volume.array`` (see the module docstring for the frames).

    The attribute ``numpy_array`` on the result is the flat numpy buffer VTK points to; keep
    the image (not just its scalars) while it is displayed.
    """
    flat = _flat_scalars(volume.array)
    scalars = numpy_to_vtk(flat, deep=0)
    scalars.SetName("scalars")
    image = geometry_to_vtk(volume.geometry)
    image.GetPointData().SetScalars(scalars)
    # keep the buffer alive as long as the image is (numpy_to_vtk also pins it on the buffer)
    image.numpy_array = flat
    return image


def right_handed(image: vtkImageData) -> vtkImageData:
    """``image`` itself when its direction matrix is right-handed, else a copy flipped along z.

    The flipped copy covers the same LPS voxels (the k axis reversed, its direction column
    negated, the origin moved to the last slice). VTK's GPU volume ray caster draws nothing
    for left-handed grids (reversed stacks, some NIfTI files); slice views do not need this.
    """
    m = image.GetDirectionMatrix()
    d = np.array([[m.GetElement(r, c) for c in range(3)] for r in range(3)])
    if np.linalg.det(d) > 0:
        return image
    nx, ny, nz = image.GetDimensions()
    scalars = image.GetPointData().GetScalars()
    comps = scalars.GetNumberOfComponents()
    flat = vtk_to_numpy(scalars).reshape(nz, ny, nx, comps)[::-1]
    flat = np.ascontiguousarray(flat).reshape(-1, comps) if comps > 1 else (
        np.ascontiguousarray(flat).reshape(-1))
    last = [0.0, 0.0, 0.0]
    image.TransformContinuousIndexToPhysicalPoint([0.0, 0.0, float(nz - 1)], last)
    out = vtkImageData()
    out.SetDimensions(nx, ny, nz)
    out.SetSpacing(image.GetSpacing())
    out.SetOrigin(last)
    d[:, 2] *= -1
    out.SetDirectionMatrix(*d.reshape(-1))
    flipped = numpy_to_vtk(flat, deep=0)
    flipped.SetName(scalars.GetName() or "scalars")
    out.GetPointData().SetScalars(flipped)
    out.numpy_array = flat
    return out

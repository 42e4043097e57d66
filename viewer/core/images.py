"""Non-DICOM images annotators receive: PNG/JPEG pictures and NIfTI/NRRD/MetaImage volumes.

Read with SimpleITK, whose physical frame is LPS like ours (its NIfTI reader converts
from RAS). 2D pictures get 1 mm pixels and an identity orientation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from viewer.core.geometry import VolumeGeometry
from viewer.core.volume import Volume

PICTURE_EXTENSIONS = (".png", ".jpg", ".jpeg")


def _sitk():
    import SimpleITK as sitk  # imported lazily: ~0.1 s, only needed for these formats

    return sitk


def _geometry_from_itk(size, spacing, origin, direction, dim) -> VolumeGeometry:
    if dim == 2:
        return VolumeGeometry(
            shape=(1, size[1], size[0]),
            spacing=(1.0, spacing[1], spacing[0]),
            origin=(origin[0], origin[1], 0.0),
            direction=np.eye(3),
        )
    return VolumeGeometry(
        shape=(size[2], size[1], size[0]),
        spacing=(spacing[2], spacing[1], spacing[0]),
        origin=tuple(origin),
        direction=np.asarray(direction, dtype=float).reshape(3, 3),
    )


def is_picture(path: str | Path) -> bool:
    return str(path).lower().endswith(PICTURE_EXTENSIONS)


def image_file_info(path: str | Path) -> tuple[tuple[int, ...], VolumeGeometry, int]:
    """(shape, geometry, components) from the file header, without reading pixels."""
    sitk = _sitk()
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.ReadImageInformation()
    dim = reader.GetDimension()
    if dim not in (2, 3):
        raise ValueError(f"{dim}-dimensional images are not supported")
    geometry = _geometry_from_itk(
        reader.GetSize(), reader.GetSpacing(), reader.GetOrigin(), reader.GetDirection(), dim
    )
    comps = reader.GetNumberOfComponents()
    shape = geometry.shape + ((comps,) if comps > 1 else ())
    return shape, geometry, comps


def read_image_file(path: str | Path) -> Volume:
    """Load a PNG/JPEG/NIfTI/NRRD/MHA file as a Volume in LPS millimetres."""
    sitk = _sitk()
    path = Path(path)
    image = sitk.ReadImage(str(path))
    dim = image.GetDimension()
    if dim not in (2, 3):
        raise ValueError(f"{dim}-dimensional images are not supported")
    geometry = _geometry_from_itk(
        image.GetSize(), image.GetSpacing(), image.GetOrigin(), image.GetDirection(), dim
    )
    array = sitk.GetArrayFromImage(image)
    del image
    comps = array.shape[-1] if array.ndim == dim + 1 else 1
    if comps == 4:  # RGBA picture: drop alpha
        array = array[..., :3]
        comps = 3
    if comps not in (1, 3):
        raise ValueError(f"images with {comps} components are not supported")
    if is_picture(path) and comps == 3 and _is_gray(array):
        array, comps = np.ascontiguousarray(array[..., 0]), 1
    if dim == 2:
        array = array[np.newaxis]
    if array.dtype == np.float64:
        array = array.astype(np.float32)
    elif array.dtype.kind in "iu" and array.dtype.itemsize > 2 and _fits_int16(array):
        array = array.astype(np.int16)
    lo, hi = (float(array.min()), float(array.max())) if array.size else (0.0, 1.0)
    return Volume(
        array=np.ascontiguousarray(array),
        geometry=geometry,
        modality="OT" if is_picture(path) else "",
        description=path.name,
        series_uid=str(path.absolute()),
        window=((lo + hi) / 2, max(hi - lo, 1.0)),
        files=[str(path.absolute())],
    )


def _is_gray(rgb: np.ndarray) -> bool:
    first = rgb[..., 0]
    return bool(np.array_equal(first, rgb[..., 1]) and np.array_equal(first, rgb[..., 2]))


def _fits_int16(array: np.ndarray) -> bool:
    return array.size == 0 or (array.min() >= -32768 and array.max() <= 32767)

"""Write a Volume as NIfTI-1 (.nii, .nii.gz) or NRRD (.nrrd), geometry included.

Why not nibabel or SimpleITK here: ``radview convert`` must start fast and keep one copy of
the volume; importing nibabel costs ~0.4 s and SimpleITK copies the array. Both formats are
a small fixed header followed by the voxels, and our (k, j, i) C-order buffer is already the
on-disk order (i fastest), so the data is streamed from the array as it is. Tests read the
files back with nibabel and SimpleITK.

NIfTI stores RAS (the LPS->RAS flip lives only here); NRRD states its space as LPS.
Files are written atomically: a temporary file in the destination folder, then a rename.
"""

from __future__ import annotations

import gzip
import os
import tempfile
from pathlib import Path

import numpy as np

from viewer.core.geometry import VolumeGeometry
from viewer.core.volume import Volume

# NIfTI-1 datatype codes (nifti1.h)
_NIFTI_TYPES = {
    np.dtype(np.uint8): 2,
    np.dtype(np.int16): 4,
    np.dtype(np.int32): 8,
    np.dtype(np.float32): 16,
    np.dtype(np.float64): 64,
    np.dtype(np.int8): 256,
    np.dtype(np.uint16): 512,
    np.dtype(np.uint32): 768,
}
_NIFTI_RGB24 = 128
_NRRD_TYPES = {
    "u1": "uint8", "i1": "int8", "u2": "uint16", "i2": "int16",
    "u4": "uint32", "i4": "int32", "f4": "float", "f8": "double",
}  # fmt: skip

_HEADER = np.dtype(
    [
        ("sizeof_hdr", "<i4"), ("data_type", "S10"), ("db_name", "S18"), ("extents", "<i4"),
        ("session_error", "<i2"), ("regular", "S1"), ("dim_info", "u1"), ("dim", "<i2", 8),
        ("intent_p1", "<f4"), ("intent_p2", "<f4"), ("intent_p3", "<f4"),
        ("intent_code", "<i2"), ("datatype", "<i2"), ("bitpix", "<i2"),
        ("slice_start", "<i2"), ("pixdim", "<f4", 8), ("vox_offset", "<f4"),
        ("scl_slope", "<f4"), ("scl_inter", "<f4"), ("slice_end", "<i2"),
        ("slice_code", "u1"), ("xyzt_units", "u1"), ("cal_max", "<f4"), ("cal_min", "<f4"),
        ("slice_duration", "<f4"), ("toffset", "<f4"), ("glmax", "<i4"), ("glmin", "<i4"),
        ("descrip", "S80"), ("aux_file", "S24"), ("qform_code", "<i2"), ("sform_code", "<i2"),
        ("quatern_b", "<f4"), ("quatern_c", "<f4"), ("quatern_d", "<f4"),
        ("qoffset_x", "<f4"), ("qoffset_y", "<f4"), ("qoffset_z", "<f4"),
        ("srow_x", "<f4", 4), ("srow_y", "<f4", 4), ("srow_z", "<f4", 4),
        ("intent_name", "S16"), ("magic", "S4"),
    ]
)  # fmt: skip
assert _HEADER.itemsize == 348
#: the NIfTI-1 header layout (nifti1.h), also used to read label volumes back
NIFTI_HEADER = _HEADER


class ExportError(Exception):
    pass


def write_volume(volume: Volume, path: str | os.PathLike, description: str = "radview") -> Path:
    """Write ``volume`` to ``path``; the format follows the extension (.nii, .nii.gz, .nrrd)."""
    path = Path(path)
    name = path.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        header = nifti_header(
            volume.geometry, volume.array.dtype, volume.is_color, description=description
        )
        return _atomic_write(path, header + b"\0\0\0\0", volume.array, name.endswith(".gz"))
    if name.endswith(".nrrd"):
        return _atomic_write(path, nrrd_header(volume), volume.array, False)
    raise ExportError(f"unsupported output type {path.name!r}: use .nii, .nii.gz or .nrrd")


def write_nifti_from_planes(
    path: str | os.PathLike,
    geometry: VolumeGeometry,
    dtype: np.dtype,
    planes: list[tuple[str, int]],
    slope: float = 1.0,
    intercept: float = 0.0,
    description: str = "radview",
) -> Path:
    """Write an uncompressed .nii by copying stored plane bytes file-to-file (no decode).

    ``planes`` lists (file, byte offset) of each k plane's stored values; the modality
    rescale goes into scl_slope/scl_inter as dcm2niix does, so readers that apply the NIfTI
    scaling (nibabel, ITK) see the same values as :func:`write_volume`. The kernel copies
    the bytes (copy_file_range), several planes at a time.
    """
    path = Path(path)
    if not path.name.lower().endswith(".nii"):
        raise ExportError("plane copy writes uncompressed .nii only")
    header = nifti_header(geometry, dtype, description=description, scaling=(slope, intercept))
    header += b"\0\0\0\0"
    nbytes = geometry.shape[1] * geometry.shape[2] * dtype.itemsize
    return _atomic_copy(path, header, planes, nbytes)


def _copy_planes(src_dst: list[tuple[str, int, int]], out_fd: int, nbytes: int) -> None:
    for src, src_offset, dst_offset in src_dst:
        with open(src, "rb") as fh:
            fd = fh.fileno()
            done = 0
            while done < nbytes:
                try:
                    n = os.copy_file_range(
                        fd, out_fd, nbytes - done, src_offset + done, dst_offset + done
                    )
                except OSError:
                    n = 0
                if n <= 0:  # not supported here, or short file: plain positional I/O
                    chunk = os.pread(fd, nbytes - done, src_offset + done)
                    if not chunk:
                        raise ExportError(f"{os.path.basename(src)}: file truncated")
                    n = os.pwrite(out_fd, chunk, dst_offset + done)
                done += n


def _atomic_copy(path: Path, header: bytes, planes, nbytes: int) -> Path:
    from concurrent.futures import ThreadPoolExecutor

    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ExportError(f"output folder does not exist: {folder}")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=folder)
    try:
        os.write(fd, header)
        jobs = [(src, off, len(header) + k * nbytes) for k, (src, off) in enumerate(planes)]
        os.ftruncate(fd, len(header) + len(planes) * nbytes)
        workers = 2 if len(jobs) >= 16 else 1
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for fut in [
                pool.submit(_copy_planes, jobs[w::workers], fd, nbytes) for w in range(workers)
            ]:
                fut.result()
        os.close(fd)
        fd = -1
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _quaternion(rotation: np.ndarray) -> tuple[np.ndarray, float] | None:
    """NIfTI qform quaternion (b, c, d) and qfac of a 3x3 rotation, or None if not one."""
    r = rotation.copy()
    qfac = 1.0
    if np.linalg.det(r) < 0:
        qfac = -1.0
        r[:, 2] *= -1
    if not np.allclose(r.T @ r, np.eye(3), atol=1e-4):
        return None
    qxx, qyx, qzx, qxy, qyy, qzy, qxz, qyz, qzz = r.flat
    k = (
        np.array(
            [
                [qxx - qyy - qzz, 0, 0, 0],
                [qyx + qxy, qyy - qxx - qzz, 0, 0],
                [qzx + qxz, qzy + qyz, qzz - qxx - qyy, 0],
                [qyz - qzy, qzx - qxz, qxy - qyx, qxx + qyy + qzz],
            ]
        )
        / 3.0
    )
    vals, vecs = np.linalg.eigh(k)
    q = vecs[[3, 0, 1, 2], np.argmax(vals)]
    if q[0] < 0:
        q = -q
    return q[1:], qfac


def nifti_header(
    g: VolumeGeometry,
    dtype: np.dtype,
    color: bool = False,
    description: str = "radview",
    scaling: tuple[float, float] = (1.0, 0.0),
) -> bytes:
    """The 348-byte NIfTI-1 header (sform and, when rigid, qform in RAS).

    ``scaling`` = (scl_slope, scl_inter): readers compute value = stored * slope + inter.
    """
    dtype = np.dtype(dtype)
    h = np.zeros((), dtype=_HEADER)
    h["sizeof_hdr"] = 348
    h["regular"] = b"r"
    nk, nj, ni = g.shape
    if color:
        if dtype != np.uint8:
            raise ExportError("NIfTI stores colour as 8-bit RGB only")
        code, bitpix = _NIFTI_RGB24, 24
    else:
        if dtype not in _NIFTI_TYPES:
            raise ExportError(f"no NIfTI type for {dtype}")
        code, bitpix = _NIFTI_TYPES[dtype], dtype.itemsize * 8
    h["dim"] = [3, ni, nj, nk, 1, 1, 1, 1]
    h["datatype"], h["bitpix"] = code, bitpix
    affine = g.ijk_to_ras_matrix()
    h["srow_x"], h["srow_y"], h["srow_z"] = affine[0], affine[1], affine[2]
    h["sform_code"] = 1  # scanner anatomical
    h["pixdim"] = [1.0, *g.spacing_xyz, 0, 0, 0, 0]
    rotation = affine[:3, :3] / np.asarray(g.spacing_xyz)[None, :]
    quat = _quaternion(rotation)
    if quat is not None:
        (b, c, d), qfac = quat
        h["pixdim"][0] = qfac
        h["quatern_b"], h["quatern_c"], h["quatern_d"] = b, c, d
        h["qoffset_x"], h["qoffset_y"], h["qoffset_z"] = affine[:3, 3]
        h["qform_code"] = 1
    h["vox_offset"] = 352.0
    h["scl_slope"], h["scl_inter"] = scaling
    h["xyzt_units"] = 2 | 8  # mm, s
    h["descrip"] = description.encode("ascii", "replace")[:79]
    h["magic"] = b"n+1\0"
    return h.tobytes()


def nrrd_header(volume: Volume) -> bytes:
    """NRRD0004 header in LPS ("left-posterior-superior") for ``volume``."""
    arr = volume.array
    g = volume.geometry
    kind = arr.dtype.str[1:]
    if kind not in _NRRD_TYPES:
        raise ExportError(f"no NRRD type for {arr.dtype}")
    scaled = g.direction * np.asarray(g.spacing_xyz)[None, :]
    vectors = " ".join("(" + ",".join(f"{v:.10g}" for v in scaled[:, a]) + ")" for a in range(3))
    nk, nj, ni = g.shape
    if volume.is_color:
        dims, sizes, kinds, vectors = (
            4,
            f"3 {ni} {nj} {nk}",
            "RGB-color domain domain domain",
            ("none " + vectors),
        )
    else:
        dims, sizes, kinds = 3, f"{ni} {nj} {nk}", "domain domain domain"
    lines = [
        "NRRD0004",
        "# written by radview",
        f"type: {_NRRD_TYPES[kind]}",
        f"dimension: {dims}",
        "space: left-posterior-superior",
        f"sizes: {sizes}",
        f"space directions: {vectors}",
        f"kinds: {kinds}",
        "endian: little",
        "encoding: raw",
        "space origin: (" + ",".join(f"{v:.10g}" for v in g.origin) + ")",
        "",
        "",
    ]
    return "\n".join(lines).encode("ascii")


def _atomic_write(path: Path, header: bytes, array: np.ndarray, compress: bool) -> Path:
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ExportError(f"output folder does not exist: {folder}")
    data = np.ascontiguousarray(array)
    if data.dtype.byteorder == ">":
        data = data.astype(data.dtype.newbyteorder("<"))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=folder)
    try:
        with os.fdopen(fd, "wb") as raw:
            out = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1) if compress else raw
            out.write(header)
            flat = data.reshape(-1) if data.ndim else data
            step = max(1, (8 << 20) // max(1, flat.itemsize))
            for start in range(0, flat.size, step):
                out.write(memoryview(flat[start : start + step]).cast("B"))
            if compress:
                out.close()
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path

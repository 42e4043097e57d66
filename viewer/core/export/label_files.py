"""Label maps as NIfTI volumes and PNG images (write and read back), plus overlay pictures.

* NIfTI (``.nii`` / ``.nii.gz``): uint8 label index per voxel, 0 = background, with exactly
  the header ``radview convert`` writes for the source series (same code:
  :func:`viewer.core.export.volume_files.nifti_header`), so the labels and the converted
  image overlay voxel for voxel in any NIfTI tool. Beside it a sidecar ``<stem>.json``
  (``labels.nii.gz`` -> ``labels.json``)::

      {"format": "radview-labels", "version": 1,
       "labels": {"1": {"name": ..., "color": [r, g, b],
                        "category": {"value", "scheme", "meaning"}, "type": {...}}},
       "provenance": {"algorithm_type", "model_name", "model_version", "extra"},
       "source": {"series_uid", "files_dir", "study_uid", "frame_of_reference_uid"}}

  ``source.files_dir`` is the absolute folder of the source images (fine-tuning reads the
  images from there); the keys are a contract.
* PNG label image: 8-bit grey, the label index per pixel, same rows x columns as the source,
  no flips (PNG row 0 = first DICOM row, column 0 = first DICOM column).
* Overlay PNG: RGB picture of one slice in display orientation (DICOM rows top to bottom,
  MONOCHROME1 inverted), windowed, blended with the visible segments' colours, each
  segment outlined with a 1-pixel border at full colour.

All files are written atomically (:mod:`viewer.core.export.atomic`). PNG reading/writing
uses SimpleITK (no PIL at run time).
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from viewer.core.export.atomic import (
    atomic_path,
    check_destination,
    source_dirs,
    write_bytes_atomic,
)
from viewer.core.export.volume_files import NIFTI_HEADER, nifti_header
from viewer.core.geometry import VolumeGeometry
from viewer.core.labelmap import Code, LabelMap, Provenance, Segment, segment_for
from viewer.core.volume import Volume
from viewer.core.windowing import WindowLevel, apply_window, auto_window

SIDECAR_FORMAT = "radview-labels"
SIDECAR_VERSION = 1


# -- grid checks ------------------------------------------------------------------------------
def check_grid(labels: VolumeGeometry, image: VolumeGeometry, what: str = "label map") -> None:
    """Raise ``ValueError`` (one line) unless both grids are the same within float32
    precision: shape, spacing (1e-5 relative), origin (1e-3 mm) and axes (1e-4)."""
    if tuple(labels.shape) != tuple(image.shape):
        raise ValueError(
            f"{what} has {_dims(labels.shape)} voxels, the open series {_dims(image.shape)}"
        )
    if not np.allclose(labels.spacing, image.spacing, rtol=1e-5, atol=1e-5):
        raise ValueError(
            f"{what} spacing {_mm(labels.spacing)} mm differs from the series' "
            f"{_mm(image.spacing)} mm"
        )
    if not np.allclose(labels.origin, image.origin, atol=1e-3):
        raise ValueError(
            f"{what} origin {_mm(labels.origin)} mm differs from the series' "
            f"{_mm(image.origin)} mm (LPS)"
        )
    if not np.allclose(labels.direction, image.direction, atol=1e-4):
        raise ValueError(f"{what} axes (direction cosines) differ from the series'")


def _dims(shape) -> str:
    return "x".join(str(int(v)) for v in shape)


def _mm(values) -> str:
    return "(" + ", ".join(f"{float(v):.4g}" for v in values) + ")"


# -- sidecar ----------------------------------------------------------------------------------
def sidecar_path(path: str | os.PathLike) -> Path:
    """``<stem>.json`` beside ``path`` (``x.nii.gz``, ``x.nii``, ``x.png`` -> ``x.json``)."""
    p = Path(path)
    name = p.name
    for suffix in (".nii.gz", ".nii", ".png"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return p.with_name(name + ".json")


def sidecar_document(labelmap: LabelMap, volume: Volume | None = None) -> dict:
    """The sidecar document of ``labelmap`` (see the module docstring)."""
    labels = {
        str(v): {
            "name": s.name,
            "color": [int(c) for c in s.color],
            "category": _code_json(s.category),
            "type": _code_json(s.type),
        }
        for v, s in sorted(labelmap.segments.items())
    }
    p = labelmap.provenance
    provenance = {
        "algorithm_type": p.algorithm_type,
        "model_name": p.model_name,
        "model_version": p.model_version,
        "extra": _jsonable(p.extra),
    }
    return {
        "format": SIDECAR_FORMAT,
        "version": SIDECAR_VERSION,
        "labels": labels,
        "provenance": provenance,
        "source": _source_json(volume),
    }


def _code_json(code: Code) -> dict:
    return {"value": code.value, "scheme": code.scheme, "meaning": code.meaning}


def _jsonable(extra: dict) -> dict:
    try:
        json.dumps(extra)
    except (TypeError, ValueError):
        return {k: v for k, v in extra.items() if isinstance(v, (str, int, float, bool))}
    return dict(extra)


def _source_json(volume: Volume | None) -> dict:
    out = {"series_uid": "", "files_dir": "", "study_uid": "", "frame_of_reference_uid": ""}
    if volume is None:
        return out
    out["series_uid"] = volume.series_uid
    out["study_uid"] = str(volume.header.get("study_uid", "") or "")
    if volume.files:
        dirs = source_dirs(volume.files)
        out["files_dir"] = os.path.commonpath(dirs) if len(dirs) > 1 else dirs[0]
        out["frame_of_reference_uid"] = _frame_of_reference(volume.files[0])
    return out


def _frame_of_reference(path: str) -> str:
    import pydicom

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["FrameOfReferenceUID"])
    except Exception:  # noqa: BLE001 - not DICOM (a picture or a NIfTI): no frame of reference
        return ""
    return str(ds.get("FrameOfReferenceUID", "") or "")


def _read_sidecar(path: Path) -> dict | None:
    side = sidecar_path(path)
    if not side.is_file():
        return None
    try:
        doc = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{side.name}: unreadable label sidecar ({exc})") from exc
    if not isinstance(doc, dict) or doc.get("format") != SIDECAR_FORMAT:
        return None
    return doc


def _segments_from(doc: dict | None, labels: np.ndarray) -> tuple[dict, Provenance]:
    segments: dict[int, Segment] = {}
    provenance = Provenance()
    if doc:
        for key, item in (doc.get("labels") or {}).items():
            value = int(key)
            if not 1 <= value <= 255:
                continue
            base = segment_for(str(item.get("name") or f"segment {value}"), value)
            segments[value] = Segment(
                name=base.name,
                color=tuple(int(c) for c in item.get("color", base.color)),  # type: ignore[arg-type]
                category=_code(item.get("category")) or base.category,
                type=_code(item.get("type")) or base.type,
            )
        p = doc.get("provenance") or {}
        provenance = Provenance(
            str(p.get("algorithm_type") or "MANUAL"),
            str(p.get("model_name") or ""),
            str(p.get("model_version") or ""),
            dict(p.get("extra") or {}),
        )
    for value in np.unique(labels):
        if value and int(value) not in segments:
            segments[int(value)] = segment_for(f"segment {int(value)}", int(value))
    return segments, provenance


def _code(item) -> Code | None:
    if not isinstance(item, dict) or not item.get("value"):
        return None
    return Code(str(item["value"]), str(item.get("scheme", "")), str(item.get("meaning", "")))


# -- NIfTI ------------------------------------------------------------------------------------
def write_label_nifti(
    labelmap: LabelMap,
    path: str | os.PathLike,
    *,
    volume: Volume | None = None,
    sidecar: bool = True,
    allow_into_source: bool = False,
) -> Path:
    """Write the labels as uint8 NIfTI-1 (``.nii`` or ``.nii.gz``) and, with ``sidecar``,
    ``<stem>.json`` beside it. ``volume`` (the open series) fills the sidecar's ``source``,
    is checked to share the label map's grid and guards its source folders."""
    name = Path(path).name.lower()
    if not name.endswith((".nii", ".nii.gz")):
        raise ValueError(f"label volume must end in .nii or .nii.gz: {Path(path).name}")
    dirs = source_dirs(volume.files) if volume is not None else []
    if volume is not None:
        check_grid(labelmap.geometry, volume.geometry)
    out = check_destination(path, dirs, allow_into_source)
    header = nifti_header(labelmap.geometry, np.dtype(np.uint8), description="radview labels")
    data = memoryview(np.ascontiguousarray(labelmap.labels).reshape(-1)).cast("B")
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as raw:
            if name.endswith(".gz"):
                with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6) as gz:
                    gz.write(header + b"\0\0\0\0")
                    gz.write(data)
            else:
                raw.write(header + b"\0\0\0\0")
                raw.write(data)
    if sidecar:
        _write_sidecar(labelmap, out, volume)
    return out


def _write_sidecar(labelmap: LabelMap, out: Path, volume: Volume | None) -> None:
    text = json.dumps(sidecar_document(labelmap, volume), indent=2) + "\n"
    write_bytes_atomic(sidecar_path(out), text.encode("utf-8"))


def read_label_volume(path: str | os.PathLike, volume: Volume) -> LabelMap:
    """Read a label volume (NIfTI, or NRRD/MetaImage) onto ``volume``'s grid.

    The file's grid must equal the volume's (shape, spacing, origin, axes; see
    :func:`check_grid`), values must be whole numbers 0..255. Names, colours, codes and
    provenance come from the sidecar ``<stem>.json`` when present, else "segment N".
    """
    path = Path(path)
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        nifti = path.name.lower().endswith((".nii", ".nii.gz"))
        if not (nifti and "orthonormal" in str(exc)):
            raise ValueError(
                f"{path.name}: not a readable label volume ({_itk_error(exc)})"
            ) from exc
        # ITK refuses sheared grids (gantry tilt); our writer keeps them in the sform
        geometry, array = _read_sheared_nifti(path)
    else:
        geometry, array = _itk_grid(image, path.name)
    if volume.geometry.shape[0] == 1 and geometry.shape == volume.geometry.shape:
        # one slice: its slice spacing means nothing (a thickness, or 1 mm by convention)
        geometry = VolumeGeometry(
            geometry.shape, (volume.geometry.spacing[0], *geometry.spacing[1:]),
            geometry.origin, geometry.direction,
        )  # fmt: skip
    check_grid(geometry, volume.geometry, what=path.name)
    labels = _as_labels(array, path.name)
    segments, provenance = _segments_from(_read_sidecar(path), labels)
    return LabelMap(volume.geometry, labels, segments, provenance)


def _itk_grid(image: sitk.Image, name: str) -> tuple[VolumeGeometry, np.ndarray]:
    """Our geometry (LPS, array order) and the voxels of a SimpleITK image."""
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise ValueError(f"{name}: label volume must have one value per voxel")
    if image.GetDimension() == 2:
        image = sitk.JoinSeries(image)
    elif image.GetDimension() != 3:
        raise ValueError(f"{name}: label volume must be 3D, not {image.GetDimension()}D")
    spacing = image.GetSpacing()
    geometry = VolumeGeometry(
        shape=image.GetSize()[::-1],
        spacing=(spacing[2], spacing[1], spacing[0]),
        origin=image.GetOrigin(),
        direction=np.asarray(image.GetDirection()).reshape(3, 3),
    )
    return geometry, sitk.GetArrayFromImage(image)


def _read_sheared_nifti(path: Path) -> tuple[VolumeGeometry, np.ndarray]:
    """Geometry (from the sform) and voxels of a NIfTI-1 file with a non-orthogonal grid."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
        h = np.frombuffer(raw[: NIFTI_HEADER.itemsize], dtype=NIFTI_HEADER)[0]
    except (OSError, ValueError, EOFError) as exc:
        raise ValueError(f"{path.name}: not a readable NIfTI file ({exc})") from exc
    dtypes = {2: np.uint8, 4: np.int16, 8: np.int32, 256: np.int8, 512: np.uint16, 768: np.uint32}
    if int(h["sizeof_hdr"]) != 348 or int(h["sform_code"]) <= 0:
        raise ValueError(f"{path.name}: NIfTI-1 file without an sform")
    if int(h["datatype"]) not in dtypes or int(h["dim"][0]) != 3:
        raise ValueError(f"{path.name}: label volume must be a 3D integer NIfTI image")
    ni, nj, nk = (int(v) for v in h["dim"][1:4])
    start = int(h["vox_offset"])
    dtype = np.dtype(dtypes[int(h["datatype"])]).newbyteorder("<")
    count = ni * nj * nk
    if len(raw) < start + count * dtype.itemsize:
        raise ValueError(f"{path.name}: file truncated")
    array = np.frombuffer(raw, dtype=dtype, count=count, offset=start).reshape(nk, nj, ni)
    ras = np.array([h["srow_x"], h["srow_y"], h["srow_z"]], dtype=float)
    lps = np.diag([-1.0, -1.0, 1.0]) @ ras
    spacing_xyz = np.linalg.norm(lps[:, :3], axis=0)
    geometry = VolumeGeometry(
        shape=(nk, nj, ni),
        spacing=tuple(spacing_xyz[::-1]),
        origin=tuple(lps[:, 3]),
        direction=lps[:, :3] / spacing_xyz[None, :],
    )
    return geometry, array


def _as_labels(array: np.ndarray, name: str) -> np.ndarray:
    if array.dtype == np.uint8:
        return np.ascontiguousarray(array)
    if array.dtype.kind not in "iuf":
        raise ValueError(f"{name}: label values must be numbers")
    if array.size and (np.nanmin(array) < 0 or np.nanmax(array) > 255):
        raise ValueError(f"{name}: label values must be within 0..255")
    if array.dtype.kind == "f" and not np.array_equal(array, np.round(array)):
        raise ValueError(f"{name}: label values must be whole numbers (not a probability map)")
    return array.astype(np.uint8)


def _itk_error(exc: BaseException) -> str:
    for line in str(exc).splitlines():
        line = line.strip()
        if line and not line.startswith(("Exception thrown", "sitk::ERROR")):
            return line[:200]
    return type(exc).__name__


# -- PNG --------------------------------------------------------------------------------------
def write_label_png(
    labelmap: LabelMap,
    path: str | os.PathLike,
    k: int = 0,
    *,
    volume: Volume | None = None,
    sidecar: bool = False,
    allow_into_source: bool = False,
) -> Path:
    """Write slice ``k`` as an 8-bit PNG of label indices (0 = background), rows x columns
    of the source, no flips; with ``sidecar`` also ``<stem>.json``."""
    if not Path(path).name.lower().endswith(".png"):
        raise ValueError(f"label image must end in .png: {Path(path).name}")
    if not 0 <= k < labelmap.shape[0]:
        raise ValueError(f"slice {k} is outside the label map (0..{labelmap.shape[0] - 1})")
    if volume is not None:
        check_grid(labelmap.geometry, volume.geometry)
    out = check_destination(
        path, source_dirs(volume.files) if volume is not None else [], allow_into_source
    )
    _write_png(np.ascontiguousarray(labelmap.labels[k]), out)
    if sidecar:
        _write_sidecar(labelmap, out, volume)
    return out


def read_label_png(path: str | os.PathLike, volume: Volume, k: int = 0) -> LabelMap:
    """Read a PNG label image into slice ``k`` of a new label map on ``volume``'s grid.

    The image must be grey (or RGB with equal channels), rows x columns of the volume,
    values 0..255; names come from a sidecar ``<stem>.json`` when present.
    """
    path = Path(path)
    nk, rows, cols = volume.geometry.shape
    if not 0 <= k < nk:
        raise ValueError(f"slice {k} is outside the open series (0..{nk - 1})")
    try:
        image = sitk.ReadImage(str(path), imageIO="PNGImageIO")
    except RuntimeError as exc:
        raise ValueError(f"{path.name}: not a readable PNG ({_itk_error(exc)})") from exc
    array = sitk.GetArrayFromImage(image)
    if array.ndim == 3:  # RGB(A): a label image saved as colour by some tool
        channels = array[..., :3]
        if not (
            np.array_equal(channels[..., 0], channels[..., 1])
            and np.array_equal(channels[..., 0], channels[..., 2])
        ):
            raise ValueError(f"{path.name}: a colour picture, not a label image")
        array = channels[..., 0]
    if array.shape != (rows, cols):
        raise ValueError(
            f"{path.name} is {array.shape[1]}x{array.shape[0]} pixels (width x height), "
            f"the open image {cols}x{rows}"
        )
    labels = np.zeros(volume.geometry.shape, dtype=np.uint8)
    labels[k] = _as_labels(array, path.name)
    segments, provenance = _segments_from(_read_sidecar(path), labels)
    return LabelMap(volume.geometry, labels, segments, provenance)


def write_overlay_png(
    volume: Volume,
    labelmap: LabelMap,
    path: str | os.PathLike,
    k: int = 0,
    window: tuple[float, float] | None = None,
    opacity: float = 0.5,
    *,
    allow_into_source: bool = False,
) -> Path:
    """Write slice ``k`` as an RGB PNG: the windowed image blended with the visible
    segments' colours (``opacity`` 0..1) and a 1-pixel outline of each segment.

    ``window`` = (centre, width) in modality units; default the volume's window (or an
    automatic one). Display orientation: PNG row 0 = first DICOM row; MONOCHROME1 images
    are inverted (``volume.invert_display``).
    """
    if not Path(path).name.lower().endswith(".png"):
        raise ValueError(f"overlay must end in .png: {Path(path).name}")
    if not 0 <= k < volume.geometry.shape[0]:
        raise ValueError(f"slice {k} is outside the series (0..{volume.geometry.shape[0] - 1})")
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be within 0..1, got {opacity:g}")
    check_grid(labelmap.geometry, volume.geometry)
    out = check_destination(path, source_dirs(volume.files), allow_into_source)
    rgb = _slice_rgb(volume, k, window).astype(np.float32)
    labels = labelmap.labels[k]
    colors = np.zeros((256, 3), dtype=np.float32)
    shown = np.zeros(256, dtype=bool)
    for value, segment in labelmap.segments.items():
        if segment.visible and 0 < value < 256:
            colors[value] = segment.color
            shown[value] = True
    fill = shown[labels]
    rgb[fill] = (1.0 - opacity) * rgb[fill] + opacity * colors[labels[fill]]
    edge = _outline(labels) & fill
    rgb[edge] = colors[labels[edge]]
    _write_png(np.clip(np.rint(rgb), 0, 255).astype(np.uint8), out)
    return out


def _slice_rgb(volume: Volume, k: int, window: tuple[float, float] | None) -> np.ndarray:
    plane = volume.array[k]
    if volume.is_color:
        if plane.dtype == np.uint8:
            return plane[..., :3].copy()
        return (plane[..., :3].astype(np.float32) / 257.0).round().astype(np.uint8)
    if window is not None:
        wl = WindowLevel(*window)
    elif volume.window is not None:
        wl = WindowLevel(*volume.window)
    else:
        wl = auto_window(volume.array)
    grey = apply_window(plane, wl, invert=volume.invert_display)
    return np.repeat(grey[..., None], 3, axis=-1)


def _outline(labels: np.ndarray) -> np.ndarray:
    """Pixels whose 4-neighbourhood holds another label (image borders do not count)."""
    edge = np.zeros(labels.shape, dtype=bool)
    diff_rows = labels[1:, :] != labels[:-1, :]
    diff_cols = labels[:, 1:] != labels[:, :-1]
    edge[1:, :] |= diff_rows
    edge[:-1, :] |= diff_rows
    edge[:, 1:] |= diff_cols
    edge[:, :-1] |= diff_cols
    return edge


def _write_png(array: np.ndarray, out: Path) -> None:
    image = sitk.GetImageFromArray(array, isVector=array.ndim == 3)
    with atomic_path(out) as tmp:
        sitk.WriteImage(image, str(tmp), imageIO="PNGImageIO")

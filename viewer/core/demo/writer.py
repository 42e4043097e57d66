"""Write a synthetic CT or MR volume as a DICOM series, the way a scanner would.

Geometry convention (the one used everywhere in radview):

* ``hu`` is indexed in array order ``(k, j, i)`` = (slice, row, column).
* ``spacing`` is ``(slice spacing, row spacing, column spacing)`` in millimetres, i.e. the
  distance between consecutive slices, between rows and between columns.
* ``origin`` is the LPS position in millimetres of voxel ``(k=0, j=0, i=0)``: the
  *Image Position (Patient)* of the first slice's top-left pixel (DICOM PS3.3 C.7.6.2.1.1).
* ``direction`` is a 3x3 matrix whose **columns** are unit vectors in LPS: column 0 is the
  direction of increasing ``i`` (*Image Orientation (Patient)* [0:3], the row direction),
  column 1 that of increasing ``j`` (IOP [3:6], the column direction) and column 2 that of
  increasing ``k`` (the stacking direction, either the slice normal, its opposite for a
  reversed stack, or tilted for a gantry-tilted acquisition).
* LPS position of voxel ``(k, j, i)`` = ``origin + direction @ (i*spacing[2], j*spacing[1],
  k*spacing[0])``.

Single-frame output is one CT (or MR) Image Storage instance per slice; multi-frame output
is one Enhanced CT (or Enhanced MR) Image Storage instance. highdicom has no constructor for
these acquisition IODs (only for derived objects such as SEG or legacy-converted images), so
the datasets are built here with pydicom, module by module.
"""

from __future__ import annotations

import copy
import hashlib
import os
import pathlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    JPEG2000,
    UID,
    CTImageStorage,
    DeflatedExplicitVRLittleEndian,
    EnhancedCTImageStorage,
    EnhancedMRImageStorage,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    MRImageStorage,
    generate_uid,
)
from pydicom.valuerep import DSfloat

from viewer.core.demo import enhanced

__all__ = ["NATIVE_TRANSFER_SYNTAXES", "write_series", "writable_transfer_syntaxes"]

#: Transfer syntaxes written without an encoder plugin.
NATIVE_TRANSFER_SYNTAXES = (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    ExplicitVRBigEndian,
    DeflatedExplicitVRLittleEndian,
)

STUDY_DATE = "20250102"
STUDY_TIME = "093000"
_CT_WINDOWS = ((-600.0, 1500.0, "LUNG"), (40.0, 400.0, "MEDIASTINUM"))


def writable_transfer_syntaxes() -> list[UID]:
    """Transfer syntaxes ``write_series`` can produce in this environment.

    The native ones always; compressed ones when pydicom has an encoder whose plugin
    (pylibjpeg-rle, pylibjpeg-openjpeg, pyjpegls, gdcm or pydicom's own RLE) is installed.
    """
    from pydicom.pixels import get_encoder
    from pydicom.uid import JPEGLSLossless, RLELossless

    out = [UID(u) for u in NATIVE_TRANSFER_SYNTAXES]
    for uid in (RLELossless, JPEG2000Lossless, JPEGLSLossless):
        if get_encoder(uid).is_available:
            out.append(UID(uid))
    return out


def _ds(value: float) -> DSfloat:
    """A Decimal String that always fits DICOM's 16 characters."""
    value = float(value)
    if abs(value) < 1e-12:
        value = 0.0
    return DSfloat(value, auto_format=True)


def _uid(*parts: object) -> UID:
    """Deterministic UID under pydicom's root, derived from ``parts``."""
    return generate_uid(entropy_srcs=[repr(p) for p in parts])


def _check_direction(direction: Any) -> np.ndarray:
    d = np.eye(3) if direction is None else np.asarray(direction, dtype=float)
    if d.shape != (3, 3):
        raise ValueError(f"direction must be 3x3 (columns = LPS unit vectors), got {d.shape}")
    norms = np.linalg.norm(d, axis=0)
    if not np.allclose(norms, 1.0, atol=1e-6):
        raise ValueError(f"direction columns must be unit vectors, norms are {norms}")
    if abs(float(d[:, 0] @ d[:, 1])) > 1e-6:
        raise ValueError("direction columns 0 and 1 (row and column directions) must be orthogonal")
    normal = np.cross(d[:, 0], d[:, 1])
    if abs(float(normal @ d[:, 2])) < 0.2:
        raise ValueError("direction column 2 lies (almost) in the image plane")
    return d


def _stored_values(hu: np.ndarray, intercept: float, slope: float) -> np.ndarray:
    """Stored pixel values ``round((hu - intercept) / slope)`` as uint16 or int16."""
    if slope == 0:
        raise ValueError("rescale_slope must not be 0")
    stored = np.rint((np.asarray(hu, dtype=np.float64) - intercept) / slope)
    lo, hi = float(stored.min()), float(stored.max())
    if lo >= 0 and hi <= 65535:
        return stored.astype(np.uint16)
    if lo >= -32768 and hi <= 32767:
        return stored.astype(np.int16)
    raise ValueError(
        f"stored values span [{lo:.0f}, {hi:.0f}], which does not fit 16 bits; "
        "choose another rescale_intercept/rescale_slope"
    )


def _permutation(n: int, rng: np.random.Generator) -> np.ndarray:
    """A random permutation of range(n) that is neither the identity nor its reverse."""
    ident = np.arange(n)
    if n < 2:
        return ident
    if n == 2:
        return ident[::-1].copy()
    while True:
        perm = rng.permutation(n)
        if not (np.array_equal(perm, ident) or np.array_equal(perm, ident[::-1])):
            return perm


def _apply_extra(ds: Dataset, extra: Mapping[str, Any] | None, index: int) -> None:
    """Set ``extra`` keywords on ``ds``; callables are called with the slice index."""
    for keyword, value in (extra or {}).items():
        if tag_for_keyword(keyword) is None:
            raise ValueError(f"extra: {keyword!r} is not a DICOM keyword")
        if callable(value):
            value = value(index)
        if dictionary_VR(keyword) == "DS" and value is not None:
            value = ([_ds(v) for v in value] if isinstance(value, (list, tuple, np.ndarray))
                     else _ds(value))
        if value is None:
            if keyword in ds:
                delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)


def _base_dataset(
    *,
    modality: str,
    sop_class: UID,
    patient_name: str,
    patient_id: str,
    study_uid: UID,
    series_uid: UID,
    frame_of_reference_uid: UID,
    series_description: str,
    series_number: int,
    rows: int,
    columns: int,
    pixel_representation: int,
) -> Dataset:
    """Patient, study, series, frame of reference, equipment and image pixel modules."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = sop_class
    ds.InstanceCreationDate = STUDY_DATE
    ds.InstanceCreationTime = STUDY_TIME
    # Patient (C.7.1.1)
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = "19600101"
    ds.PatientSex = "O"
    ds.PatientAge = "065Y"
    # General study (C.7.2.1)
    ds.StudyInstanceUID = study_uid
    ds.StudyDate = STUDY_DATE
    ds.StudyTime = STUDY_TIME
    ds.ReferringPhysicianName = ""
    ds.StudyID = "1"
    ds.AccessionNumber = ""
    # General series (C.7.3.1)
    ds.Modality = modality
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = int(series_number)
    ds.SeriesDate = STUDY_DATE
    ds.SeriesTime = STUDY_TIME
    if series_description:
        ds.SeriesDescription = series_description
    ds.BodyPartExamined = "CHEST"
    ds.PatientPosition = "HFS"
    # Frame of reference (C.7.4.1)
    ds.FrameOfReferenceUID = frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    # General equipment (C.7.5.1)
    ds.Manufacturer = "radview"
    ds.ManufacturerModelName = "radview synthetic scanner"
    ds.DeviceSerialNumber = "0001"
    ds.SoftwareVersions = "radview-demo 1"
    ds.StationName = "RADVIEW"
    ds.InstitutionName = "radview demo"
    # Acquisition
    ds.AcquisitionNumber = 1
    ds.AcquisitionDate = STUDY_DATE
    ds.AcquisitionTime = STUDY_TIME
    ds.ContentDate = STUDY_DATE
    ds.ContentTime = STUDY_TIME
    if modality == "CT":
        ds.KVP = _ds(120)
        ds.XRayTubeCurrent = 200
        ds.ExposureTime = 500
        ds.ConvolutionKernel = "STANDARD"
        ds.GantryDetectorTilt = _ds(0)
        ds.PatientPosition = "HFS"
    else:
        ds.ScanningSequence = "GR"
        ds.SequenceVariant = "SP"
        ds.ScanOptions = ""
        ds.MRAcquisitionType = "3D"
        ds.RepetitionTime = _ds(8.0)
        ds.EchoTime = _ds(3.5)
        ds.EchoTrainLength = 1
        ds.MagneticFieldStrength = _ds(1.5)
        ds.ImagedNucleus = "1H"
    # Image pixel (C.7.6.3)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = int(rows)
    ds.Columns = int(columns)
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = int(pixel_representation)
    return ds


def _window(modality: str, hu: np.ndarray) -> list[tuple[float, float, str]]:
    """Window presets in rescaled units: lung and mediastinum for CT, data range for MR."""
    if modality == "CT":
        return list(_CT_WINDOWS)
    lo, hi = np.percentile(hu[:: max(1, hu.shape[0] // 8)], [1, 99])
    return [(float((lo + hi) / 2), float(max(hi - lo, 1.0)), "AUTO")]


def _set_window(ds: Dataset, windows: list[tuple[float, float, str]]) -> None:
    ds.WindowCenter = [_ds(c) for c, _, _ in windows]
    ds.WindowWidth = [_ds(w) for _, w, _ in windows]
    ds.WindowCenterWidthExplanation = [e for _, _, e in windows]


def _encode(ds: Dataset, frames: np.ndarray, transfer_syntax: UID) -> None:
    """Put ``frames`` (stored values) into ``ds`` and set the file meta for the syntax."""
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    if transfer_syntax in NATIVE_TRANSFER_SYNTAXES:
        ds.file_meta.TransferSyntaxUID = transfer_syntax
        order = ">" if transfer_syntax == ExplicitVRBigEndian else "<"
        data = np.ascontiguousarray(frames, dtype=frames.dtype.newbyteorder(order))
        ds.PixelData = data.tobytes()
        ds["PixelData"].VR = "OW"
        return
    from pydicom.pixels import get_encoder

    try:
        encoder = get_encoder(transfer_syntax)
    except NotImplementedError as exc:
        raise ValueError(
            f"cannot write {transfer_syntax.name}: pydicom has no encoder for it; "
            f"writable here: {[u.name for u in writable_transfer_syntaxes()]}"
        ) from exc
    if not encoder.is_available:
        missing = "; ".join(encoder.missing_dependencies)
        raise ValueError(
            f"cannot write {transfer_syntax.name}: no encoder plugin installed ({missing})"
        )
    if transfer_syntax in (JPEG2000Lossless, JPEG2000) and min(frames.shape[-2:]) < 32:
        raise ValueError(
            f"cannot write {transfer_syntax.name} for {frames.shape[-2]} x {frames.shape[-1]}"
            " images: pylibjpeg-openjpeg always uses 6 DWT resolutions, which needs at least"
            " 32 rows and 32 columns"
        )
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.compress(transfer_syntax, np.ascontiguousarray(frames), generate_instance_uid=False)


def _save_atomic(ds: Dataset, path: pathlib.Path) -> None:
    """Write ``ds`` as a DICOM file (PS3.10) to a temporary name, then rename onto ``path``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        ds.save_as(tmp, enforce_file_format=True)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_series(
    hu: np.ndarray,
    out_dir: str | os.PathLike[str],
    *,
    spacing: Sequence[float] = (2.5, 0.7, 0.7),
    origin: Sequence[float] = (-180.0, -180.0, -300.0),
    direction: Any = None,
    modality: str = "CT",
    multiframe: bool = False,
    file_names: Sequence[str] | None = None,
    shuffle: bool = False,
    transfer_syntax: str = ExplicitVRLittleEndian,
    patient_name: str = "Demo^Chest",
    patient_id: str = "RADVIEW-DEMO",
    study_uid: str | None = None,
    series_uid: str | None = None,
    series_description: str = "",
    series_number: int = 1,
    rescale_intercept: float = -1024.0,
    rescale_slope: float = 1.0,
    seed: int = 0,
    extra: Mapping[str, Any | Callable[[int], Any]] | None = None,
) -> list[pathlib.Path]:
    """Write ``hu`` as a DICOM series into ``out_dir`` and return the paths in spatial order.

    hu: array ``(k, j, i)`` of rescaled values (HU for CT), any numeric dtype; a 2-D array
        is one slice.
    spacing: ``(k, j, i)`` spacing in mm; ``PixelSpacing`` is written as
        ``[spacing[1], spacing[2]]`` = [row spacing, column spacing] (PS3.3 C.7.6.2.1.1) and
        ``SliceThickness`` as ``spacing[0]``.
    origin: LPS position (mm) of voxel (0, 0, 0).
    direction: 3x3, columns = LPS unit vectors of increasing i, j, k (default identity).
    modality: "CT" or "MR" (CT/MR Image Storage, or the Enhanced SOP classes when
        ``multiframe``).
    multiframe: write one Enhanced CT/MR instance with per-frame functional groups instead
        of one file per slice.
    file_names: names to use, in spatial order (one per slice, or one for multiframe); used
        as given (no extension is added) and not shuffled.
    shuffle: make *Instance Number* disagree with spatial order and permute default file
        names (and, for multiframe, the frame order in the file), so that readers must sort
        by position. The permutation depends on ``seed``.
    transfer_syntax: any of ``writable_transfer_syntaxes()``: Explicit/Implicit VR Little
        Endian, Explicit VR Big Endian, Deflated, and RLE / JPEG 2000 / JPEG-LS Lossless when
        their encoder plugins are installed; anything else raises ``ValueError``.
    study_uid, series_uid: default to UIDs derived deterministically from ``seed``, the
        patient, the series number/description, the geometry and the pixel values.
    rescale_intercept, rescale_slope: stored value = round((hu - intercept) / slope);
        *Pixel Representation* is 0 when all stored values are >= 0, else 1.
    extra: keyword -> value set on every dataset after all others (a callable value is
        called with the slice index k, or with -1 for the multiframe dataset; ``None``
        deletes the element).
    """
    hu = np.asarray(hu)
    if hu.ndim == 2:
        hu = hu[np.newaxis]
    if hu.ndim != 3 or 0 in hu.shape:
        raise ValueError(f"hu must be a non-empty (k, j, i) array, got shape {hu.shape}")
    modality = modality.upper()
    if modality not in ("CT", "MR"):
        raise ValueError(f"modality must be 'CT' or 'MR', got {modality!r}")
    spacing_arr = np.asarray(spacing, dtype=float)
    origin_arr = np.asarray(origin, dtype=float)
    if spacing_arr.shape != (3,) or np.any(spacing_arr <= 0):
        raise ValueError(f"spacing must be three positive numbers (k, j, i) in mm: {spacing}")
    if origin_arr.shape != (3,):
        raise ValueError(f"origin must be an LPS point (x, y, z) in mm: {origin}")
    dmat = _check_direction(direction)
    transfer_syntax = UID(str(transfer_syntax))
    nk, nj, ni = hu.shape
    n_files = 1 if multiframe else nk
    if file_names is not None and len(file_names) != n_files:
        raise ValueError(f"file_names needs {n_files} names, got {len(file_names)}")

    stored = _stored_values(hu, rescale_intercept, rescale_slope)
    rng = np.random.default_rng(seed)
    digest = hashlib.blake2b(np.ascontiguousarray(hu), digest_size=16).hexdigest()
    geometry = (hu.shape, str(hu.dtype), spacing_arr.tolist(), origin_arr.tolist(),
                dmat.round(9).tolist())
    study_uid = UID(study_uid) if study_uid else _uid("study", seed, patient_id, patient_name)
    if not series_uid:
        series_uid = _uid("series", study_uid, seed, modality, multiframe, series_number,
                          series_description, geometry, digest, rescale_intercept,
                          rescale_slope)
    series_uid = UID(series_uid)
    if multiframe:
        sop_class = EnhancedCTImageStorage if modality == "CT" else EnhancedMRImageStorage
    else:
        sop_class = CTImageStorage if modality == "CT" else MRImageStorage
    base = _base_dataset(
        modality=modality, sop_class=sop_class, patient_name=patient_name,
        patient_id=patient_id, study_uid=study_uid, series_uid=series_uid,
        frame_of_reference_uid=_uid("frame-of-reference", series_uid),
        series_description=series_description, series_number=series_number,
        rows=nj, columns=ni, pixel_representation=int(stored.dtype == np.int16),
    )
    row_dir, col_dir = dmat[:, 0], dmat[:, 1]
    normal = np.cross(row_dir, col_dir)
    iop = [_ds(v) for v in (*row_dir, *col_dir)]
    positions = origin_arr[None, :] + np.arange(nk)[:, None] * spacing_arr[0] * dmat[:, 2]
    windows = _window(modality, hu)
    rescale_type = "HU" if modality == "CT" else "US"
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    perm = _permutation(nk, rng) if shuffle else np.arange(nk)

    if multiframe:
        ds = copy.deepcopy(base)
        enhanced.add_multiframe_modules(
            ds, modality=modality, positions=positions, frame_order=perm, iop=iop,
            pixel_spacing=(spacing_arr[1], spacing_arr[2]), slice_thickness=spacing_arr[0],
            intercept=rescale_intercept, slope=rescale_slope, rescale_type=rescale_type,
            windows=windows, ds_factory=_ds, uid_factory=_uid,
        )
        ds.SOPInstanceUID = _uid("sop", series_uid, seed, "multiframe")
        ds.InstanceNumber = 1
        _apply_extra(ds, extra, -1)
        _encode(ds, stored[perm], transfer_syntax)
        name = file_names[0] if file_names is not None else "MF00001.dcm"
        path = out / name
        _save_atomic(ds, path)
        return [path]

    # Instance numbers: 1..n in spatial order, or a permutation unrelated to it.
    instance = (_permutation(nk, rng) if shuffle else np.arange(nk)) + 1
    if file_names is not None:
        names = [str(n) for n in file_names]
    else:
        name_index = perm if shuffle else np.arange(nk)
        names = [f"IM{int(name_index[k]) + 1:05d}.dcm" for k in range(nk)]
    paths = [out / name for name in names]
    order = perm if shuffle else np.arange(nk)
    for k in (int(v) for v in order):
        ds = copy.deepcopy(base)
        ds.SOPInstanceUID = _uid("sop", series_uid, seed, k)
        ds.InstanceNumber = int(instance[k])
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.ImagePositionPatient = [_ds(v) for v in positions[k]]
        ds.ImageOrientationPatient = iop
        ds.PixelSpacing = [_ds(spacing_arr[1]), _ds(spacing_arr[2])]
        ds.SliceThickness = _ds(spacing_arr[0])
        if modality == "MR":
            ds.SpacingBetweenSlices = _ds(spacing_arr[0])
        ds.SliceLocation = _ds(float(positions[k] @ normal))
        ds.RescaleIntercept = _ds(rescale_intercept)
        ds.RescaleSlope = _ds(rescale_slope)
        ds.RescaleType = rescale_type
        _set_window(ds, windows)
        _apply_extra(ds, extra, k)
        _encode(ds, stored[k], transfer_syntax)
        _save_atomic(ds, paths[k])
    return paths

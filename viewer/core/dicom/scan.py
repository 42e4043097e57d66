"""Header-only pass over a folder: find DICOM files and describe each image plane.

Nothing here decodes pixels or writes anything. Every file met ends up either as one or
more :class:`SliceHeader` (one per frame) or as a :class:`Skipped` entry with a reason.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.datadict import tag_for_keyword
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID

#: extensions opened through SimpleITK rather than pydicom
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")
_KEYWORDS = (
    "AcquisitionNumber BitsAllocated BitsStored Columns EchoNumbers GantryDetectorTilt "
    "ImageOrientationPatient ImagePositionPatient ImagerPixelSpacing InstanceNumber Modality "
    "NumberOfFrames PatientID PatientName PerFrameFunctionalGroupsSequence "
    "PhotometricInterpretation PixelRepresentation PixelSpacing PlanarConfiguration "
    "RescaleIntercept RescaleSlope Rows SOPClassUID SOPInstanceUID SamplesPerPixel "
    "SeriesDescription SeriesInstanceUID SeriesNumber SharedFunctionalGroupsSequence "
    "SliceThickness SpacingBetweenSlices StackID StudyDate StudyDescription StudyInstanceUID "
    "GridFrameOffsetVector "
    "TemporalPositionIdentifier TemporalPositionIndex WindowCenter WindowWidth "
    "PlanePositionSequence PlaneOrientationSequence PixelMeasuresSequence "
    "PixelValueTransformationSequence FrameContentSequence FrameVOILUTSequence"
).split()
_TAGS = {kw: tag_for_keyword(kw) for kw in _KEYWORDS}
DEFLATED_SYNTAX = "1.2.840.10008.1.2.1.99"
_DICOMDIR_REASON = "DICOMDIR (index file; the files it lists are scanned directly)"
NATIVE_SYNTAXES = {
    "1.2.840.10008.1.2",  # implicit VR little endian
    "1.2.840.10008.1.2.1",  # explicit VR little endian
}


@dataclass
class Skipped:
    path: str
    reason: str


@dataclass
class FileHeader:
    """What one DICOM file says about itself (values shared by all its frames)."""

    path: str
    sop_uid: str
    sop_class: str
    series_uid: str
    study_uid: str
    patient_name: str
    patient_id: str
    modality: str
    description: str
    study_description: str
    study_date: str
    series_number: int | None
    rows: int
    columns: int
    samples: int
    photometric: str
    bits_allocated: int
    bits_stored: int
    pixel_representation: int
    transfer_syntax: str
    number_of_frames: int
    #: byte offset and length of native (uncompressed little-endian) pixel data, else None
    pixel_offset: int | None = None
    pixel_length: int | None = None
    planar_configuration: int = 0
    window: tuple[float, float] | None = None
    gantry_tilt: float = 0.0
    spacing_between_slices: float | None = None
    #: a Modality LUT Sequence replaces the linear rescale (PS3.3 C.11.1)
    has_modality_lut: bool = False

    @property
    def is_native(self) -> bool:
        return self.pixel_offset is not None


@dataclass
class SliceHeader:
    """One image plane: a single-frame file, or one frame of a multi-frame file."""

    file: FileHeader
    frame: int
    position: tuple[float, float, float] | None  # ImagePositionPatient, LPS mm
    orientation: tuple[float, ...] | None  # ImageOrientationPatient, 6 cosines
    pixel_spacing: tuple[float, float] | None  # (row spacing, column spacing) mm
    slice_thickness: float | None
    slope: float = 1.0
    intercept: float = 0.0
    instance_number: int | None = None
    acquisition_number: int | None = None
    echo_number: float | None = None
    temporal_position: int | None = None
    extra_keys: tuple = field(default_factory=tuple)


@dataclass
class ScanResult:
    slices: list[SliceHeader] = field(default_factory=list)
    image_files: list[str] = field(default_factory=list)  # PNG/JPEG/NIfTI/NRRD...
    skipped: list[Skipped] = field(default_factory=list)
    cancelled: bool = False


class ScanCancelled(Exception):
    pass


# -- walking ---------------------------------------------------------------------------------
def iter_files(root: Path) -> Iterator[Path]:
    """All regular files under root (or root itself), following directory links once.

    A symbolic-link loop is entered only once: directories are remembered by (device, inode).
    """
    if root.is_file():
        yield root
        return
    seen: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        st = os.stat(dirpath)
        key = (st.st_dev, st.st_ino)
        if key in seen:
            dirnames[:] = []
            continue
        seen.add(key)
        dirnames.sort()
        for name in sorted(filenames):
            yield Path(dirpath) / name


def is_image_file(path: Path) -> bool:
    name = path.name.lower()
    return any(name.endswith(ext) for ext in IMAGE_EXTENSIONS)


def _looks_like_dicom(path: Path) -> tuple[bool, bool]:
    """(has the DICM preamble, might be a preamble-less DICOM stream)."""
    with open(path, "rb") as fh:
        head = fh.read(132)
    if len(head) == 132 and head[128:132] == b"DICM":
        return True, False
    # ACR-NEMA style / raw dataset: starts with a group 0002 or 0008 tag, little endian
    return False, len(head) >= 8 and head[:2] in (b"\x02\x00", b"\x08\x00")


# -- header reading --------------------------------------------------------------------------
def _get(ds, keyword: str, default=None):
    """Element value by tag (skips pydicom's keyword lookup: the scan reads many files)."""
    elem = ds.get(_TAGS[keyword]) if ds is not None else None
    if elem is None or elem.value is None:
        return default
    return elem.value


def _num(value, default=None):
    try:
        if value is None or value == "":
            return default
        return float(value)
    except (TypeError, ValueError):
        return default


def _int(value, default=None):
    f = _num(value)
    return default if f is None else int(f)


def _floats(value, n):
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return out if len(out) == n else None


def _spacing(*values) -> tuple[float, float] | None:
    """First usable (row, column) pixel spacing in mm: two finite values > 0, else None.

    Real files carry zero or empty spacings (e.g. RG1_UNCR.dcm: 0/0); those mean "unknown".
    """
    for value in values:
        pair = _floats(value, 2) if value is not None else None
        if pair is not None and all(math.isfinite(v) and v > 0 for v in pair):
            return pair
    return None


def _window(ds) -> tuple[float, float] | None:
    c, w = _get(ds, "WindowCenter"), _get(ds, "WindowWidth")
    if c is None or w is None:
        return None
    c = c[0] if isinstance(c, pydicom.multival.MultiValue) else c
    w = w[0] if isinstance(w, pydicom.multival.MultiValue) else w
    c, w = _num(c), _num(w)
    return (c, w) if c is not None and w is not None and w > 0 else None


def _pixel_element(fh, transfer_syntax: str) -> tuple[int, int] | None:
    """At the PixelData tag start: (value offset, length) for native syntaxes."""
    start = fh.tell()
    head = fh.read(12)
    if len(head) < 8 or head[:4] != b"\xe0\x7f\x10\x00":
        return None
    if transfer_syntax == "1.2.840.10008.1.2":  # implicit VR: tag, 4-byte length
        length = int.from_bytes(head[4:8], "little")
        return start + 8, length
    vr = head[4:6]
    if vr in (b"OB", b"OW", b"OD", b"OF", b"OL", b"UN"):
        length = int.from_bytes(head[8:12], "little")
        return start + 12, length
    return None


def _stop_at_pixels(tag, vr, length) -> bool:
    return tag == 0x7FE00010


def read_file_header(path: Path) -> tuple[list[SliceHeader], str | None]:
    """Read one file's header. Returns (slices, None) or ([], reason to skip)."""
    try:
        preamble, maybe_raw = _looks_like_dicom(path)
    except OSError as exc:
        return [], f"unreadable: {exc.strerror or exc}"
    if not preamble and not maybe_raw:
        return [], "not a DICOM file"
    try:
        with open(path, "rb") as fh:
            ds = pydicom.dcmread(fh, stop_before_pixels=True, force=not preamble)
            ts = str(getattr(ds.file_meta, "TransferSyntaxUID", "") or "")
            if not ts and not preamble:
                ts = "1.2.840.10008.1.2" if ds.is_implicit_VR else "1.2.840.10008.1.2.1"
            pixel = _pixel_element(fh, ts) if ts in NATIVE_SYNTAXES else None
            # a deflated dataset is inflated in memory: the file position says nothing there,
            # so take the image module's word for it (decoding reports missing pixel data)
            has_pixels = pixel is not None or ts == DEFLATED_SYNTAX or _has_pixel_tag(fh)
    except InvalidDicomError:
        return [], "not a DICOM file"
    except Exception as exc:  # noqa: BLE001 - any malformed file is reported, never fatal
        return [], f"unreadable DICOM: {_one_line(exc)}"
    if not preamble and "SOPClassUID" not in ds and "Rows" not in ds:
        return [], "not a DICOM file"
    sop_class = str(_get(ds, "SOPClassUID", ""))
    if sop_class == "1.2.840.10008.1.3.10" or "DirectoryRecordSequence" in ds:
        return [], _DICOMDIR_REASON
    if "Rows" not in ds or not has_pixels:
        name = UID(sop_class).name if sop_class else "unknown SOP class"
        return [], f"no image pixel data ({name})"
    try:
        return _slices_from_dataset(ds, path, ts, pixel), None
    except Exception as exc:  # noqa: BLE001
        return [], f"unusable DICOM header: {_one_line(exc)}"


def _has_pixel_tag(fh) -> bool:
    head = fh.read(4)
    return head in (b"\xe0\x7f\x10\x00", b"\x7f\xe0\x00\x10")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


def _slices_from_dataset(ds, path: Path, ts: str, pixel) -> list[SliceHeader]:
    frames = _int(_get(ds, "NumberOfFrames"), 1) or 1
    fh = FileHeader(
        path=str(path),
        sop_uid=str(_get(ds, "SOPInstanceUID", "")),
        sop_class=str(_get(ds, "SOPClassUID", "")),
        series_uid=str(_get(ds, "SeriesInstanceUID", "")) or f"no-series-uid:{path}",
        study_uid=str(_get(ds, "StudyInstanceUID", "")),
        patient_name=str(_get(ds, "PatientName", "") or ""),
        patient_id=str(_get(ds, "PatientID", "") or ""),
        modality=str(_get(ds, "Modality", "") or ""),
        description=str(_get(ds, "SeriesDescription", "") or ""),
        study_description=str(_get(ds, "StudyDescription", "") or ""),
        study_date=str(_get(ds, "StudyDate", "") or ""),
        series_number=_int(_get(ds, "SeriesNumber")),
        rows=int(_get(ds, "Rows")),
        columns=int(_get(ds, "Columns")),
        samples=_int(_get(ds, "SamplesPerPixel"), 1),
        photometric=str(_get(ds, "PhotometricInterpretation", "MONOCHROME2")).strip().upper(),
        bits_allocated=_int(_get(ds, "BitsAllocated"), 16),
        bits_stored=_int(_get(ds, "BitsStored"), _int(_get(ds, "BitsAllocated"), 16)),
        pixel_representation=_int(_get(ds, "PixelRepresentation"), 0),
        transfer_syntax=ts,
        number_of_frames=frames,
        planar_configuration=_int(_get(ds, "PlanarConfiguration"), 0),
        window=_window(ds),
        gantry_tilt=_num(_get(ds, "GantryDetectorTilt"), 0.0),
        has_modality_lut="ModalityLUTSequence" in ds,
        spacing_between_slices=_num(_get(ds, "SpacingBetweenSlices")),
    )
    if pixel is not None:
        fh.pixel_offset, fh.pixel_length = pixel
    base = dict(
        position=_floats(_get(ds, "ImagePositionPatient"), 3),
        orientation=_floats(_get(ds, "ImageOrientationPatient"), 6),
        pixel_spacing=_spacing(_get(ds, "PixelSpacing"), _get(ds, "ImagerPixelSpacing")),
        slice_thickness=_num(_get(ds, "SliceThickness")),
        slope=_num(_get(ds, "RescaleSlope"), 1.0) or 1.0,
        intercept=_num(_get(ds, "RescaleIntercept"), 0.0),
        instance_number=_int(_get(ds, "InstanceNumber")),
        acquisition_number=_int(_get(ds, "AcquisitionNumber")),
        echo_number=_num(_get(ds, "EchoNumbers")),
        temporal_position=_int(_get(ds, "TemporalPositionIdentifier")),
    )
    if frames == 1 and "PerFrameFunctionalGroupsSequence" not in ds:
        return [SliceHeader(file=fh, frame=0, **base)]
    if "PerFrameFunctionalGroupsSequence" not in ds and _get(ds, "GridFrameOffsetVector"):
        return list(_grid_frames(ds, fh, base, frames))
    return list(_frames(ds, fh, base, frames))


def _grid_frames(ds, fh: FileHeader, base: dict, frames: int) -> Iterable[SliceHeader]:
    """Frames of a multi-frame image placed by GridFrameOffsetVector (RT Dose, C.8.8.3.2).

    Offsets are along the normal of ImageOrientationPatient from ImagePositionPatient; when
    the first offset is not 0 they are absolute z values, so they are taken relative to it.
    """
    offsets = _floats(_get(ds, "GridFrameOffsetVector"), frames)
    position, orientation = base["position"], base["orientation"]
    for n in range(frames):
        values = dict(base)
        if offsets is not None and position is not None and orientation is not None:
            row, col = orientation[:3], orientation[3:]
            normal = (
                row[1] * col[2] - row[2] * col[1],
                row[2] * col[0] - row[0] * col[2],
                row[0] * col[1] - row[1] * col[0],
            )
            step = offsets[n] - offsets[0]
            values["position"] = tuple(p + step * v for p, v in zip(position, normal))
        values["instance_number"] = n + 1
        yield SliceHeader(file=fh, frame=n, **values)


def _group(item, seq_name):
    seq = _get(item, seq_name)
    return seq[0] if seq else None


def _frames(ds, fh: FileHeader, base: dict, frames: int) -> Iterable[SliceHeader]:
    """Per-frame planes of a multi-frame image (enhanced functional groups, PS3.3 C.7.6.16)."""
    shared = _group(ds, "SharedFunctionalGroupsSequence")
    per_frame = _get(ds, "PerFrameFunctionalGroupsSequence") or []

    def pick(item, seq_name):
        return _group(item, seq_name) or _group(shared, seq_name)

    if fh.window is None:
        voi = _group(shared, "FrameVOILUTSequence")
        if voi is not None:
            fh.window = _window(voi)
    for n in range(frames):
        item = per_frame[n] if n < len(per_frame) else None
        values = dict(base)
        plane = pick(item, "PlanePositionSequence")
        if plane is not None:
            values["position"] = _floats(_get(plane, "ImagePositionPatient"), 3)
        orient = pick(item, "PlaneOrientationSequence")
        if orient is not None:
            values["orientation"] = _floats(_get(orient, "ImageOrientationPatient"), 6)
        measures = pick(item, "PixelMeasuresSequence")
        if measures is not None:
            values["pixel_spacing"] = _spacing(_get(measures, "PixelSpacing"))
            values["slice_thickness"] = _num(_get(measures, "SliceThickness"))
            if fh.spacing_between_slices is None:
                fh.spacing_between_slices = _num(_get(measures, "SpacingBetweenSlices"))
        transform = pick(item, "PixelValueTransformationSequence")
        if transform is not None:
            values["slope"] = _num(_get(transform, "RescaleSlope"), 1.0) or 1.0
            values["intercept"] = _num(_get(transform, "RescaleIntercept"), 0.0)
        content = _group(item, "FrameContentSequence")
        keys: tuple = ()
        if content is not None:
            values["temporal_position"] = _int(_get(content, "TemporalPositionIndex"))
            keys = (str(_get(content, "StackID", "")),)
        values["instance_number"] = n + 1
        yield SliceHeader(file=fh, frame=n, extra_keys=keys, **values)


# -- the pass --------------------------------------------------------------------------------
def _read_all(paths: list[Path], workers: int):
    """Yield (path, (slices, reason)) in order; several processes when asked and worth it.

    Processes are forked (header parsing is pure Python, so threads would not help); only
    callers without GUI threads should ask for workers > 1.
    """
    if workers > 1 and len(paths) >= 64 and "fork" in mp.get_all_start_methods():
        ctx = mp.get_context("fork")
        chunk = max(8, len(paths) // (workers * 8))
        with ctx.Pool(workers) as pool:
            yield from zip(paths, pool.imap(read_file_header, paths, chunksize=chunk))
        return
    for path in paths:
        yield path, read_file_header(path)


def scan(
    root: str | os.PathLike | list,
    progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    workers: int = 1,
) -> ScanResult:
    """Header-only scan of a file or folder (recursive).

    progress(done, total) is called as files are read; cancelled() is polled between files
    and stops the scan early (the result then has ``cancelled=True``). ``workers`` > 1 reads
    headers in that many forked processes.
    """
    roots = [Path(r) for r in root] if isinstance(root, (list, tuple)) else [Path(root)]
    result = ScanResult()
    dicom_paths = []
    paths = [p for r in roots for p in iter_files(r)]
    for path in dict.fromkeys(paths):  # a file dropped twice is scanned once
        apath = Path(path.absolute())
        if not path.is_file():  # opening a named pipe would block the scan forever
            what = "broken symbolic link" if path.is_symlink() else "pipe, socket or device"
            result.skipped.append(Skipped(str(apath), f"not a regular file ({what})"))
        elif is_image_file(path):
            result.image_files.append(str(apath))
        elif path.name.upper() == "DICOMDIR":
            result.skipped.append(Skipped(str(apath), _DICOMDIR_REASON))
        else:
            dicom_paths.append(apath)
    total = len(dicom_paths)
    for n, (path, (slices, reason)) in enumerate(_read_all(dicom_paths, workers)):
        if cancelled is not None and cancelled():
            result.cancelled = True
            break
        if reason is not None:
            result.skipped.append(Skipped(str(path), reason))
        result.slices.extend(slices)
        if progress is not None:
            progress(n + 1, total)
    return result

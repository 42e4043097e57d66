"""Read one file's header (never its pixels) into :mod:`~viewer.core.dicom.records`.

:func:`read_file_header` returns the planes a file holds, or a one-line reason to skip it.
Every size the header claims is checked against :mod:`~viewer.core.dicom.limits` here, so
a file claiming 10⁹ rows or a million frames is skipped before anything is allocated, and
a deflated file is inflated only as far as its header (:mod:`~viewer.core.dicom.inflate`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import pydicom
from pydicom.datadict import tag_for_keyword
from pydicom.errors import InvalidDicomError
from pydicom.filereader import _read_file_meta_info, read_preamble
from pydicom.uid import UID

from viewer.core.dicom.inflate import read_deflated
from viewer.core.dicom.limits import (
    MAX_HEADER_BYTES,
    LimitError,
    check_image_header,
    fmt_bytes,
    one_line,
    pixel_bytes,
)
from viewer.core.dicom.records import FileHeader, SliceHeader

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
_DEFLATED_BYTES = DEFLATED_SYNTAX.encode()
_SNIFF_BYTES = 4096  # the File Meta group (and its transfer syntax) is in there
_DEFER = 1024 * 1024  # values larger than this stay on disk during the scan
NATIVE_SYNTAXES = {
    "1.2.840.10008.1.2",  # implicit VR little endian
    "1.2.840.10008.1.2.1",  # explicit VR little endian
}


def _sniff(path: Path) -> tuple[bool, bool, bool]:
    """(has the DICM preamble, might be a preamble-less DICOM stream, might be deflated)."""
    with open(path, "rb") as fh:
        head = fh.read(_SNIFF_BYTES)
    if len(head) >= 132 and head[128:132] == b"DICM":
        meta_end = (
            144 + int.from_bytes(head[140:144], "little")
            if head[132:136] == (b"\x02\x00\x00\x00")
            else 0
        )
        return True, False, _DEFLATED_BYTES in head or meta_end > len(head)
    # ACR-NEMA style / raw dataset: starts with a group 0002 or 0008 tag, little endian
    return False, len(head) >= 8 and head[:2] in (b"\x02\x00", b"\x08\x00"), False


# -- header reading --------------------------------------------------------------------------
def _get(ds, keyword: str, default=None):
    """Element value by tag (skips pydicom's keyword lookup: the scan reads many files)."""
    elem = ds.get(_TAGS[keyword]) if ds is not None else None
    if elem is None or elem.value is None:
        return default
    return elem.value


def _num(value, default=None):
    """A finite float, or ``default`` (empty, unparsable, NaN and infinite values)."""
    try:
        if value is None or value == "":
            return default
        out = float(value)
    except (TypeError, ValueError, OverflowError):
        return default
    return out if math.isfinite(out) else default


def _int(value, default=None):
    f = _num(value)
    return default if f is None else int(f)


def _floats(value, n):
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError, OverflowError):
        return None
    return out if len(out) == n and all(map(math.isfinite, out)) else None


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
    """At the PixelData tag start: (value offset, length); length None when encapsulated."""
    start = fh.tell()
    head = fh.read(12)
    if len(head) < 8 or head[:4] != b"\xe0\x7f\x10\x00":
        return None
    if transfer_syntax == "1.2.840.10008.1.2":  # implicit VR: tag, 4-byte length
        length = int.from_bytes(head[4:8], "little")
        return start + 8, length
    vr = head[4:6]
    if vr in (b"OB", b"OW", b"OD", b"OF", b"OL", b"UN") and len(head) == 12:
        length = int.from_bytes(head[8:12], "little")
        return start + 12, (None if length == 0xFFFFFFFF else length)
    return None


def _stop_at_pixels(tag, vr, length) -> bool:
    return tag == 0x7FE00010


def read_header_dataset(path):
    """One file's header as a pydicom dataset (pixels not read), in bounded memory.

    Values over 1 MB stay on disk until asked for; a deflated dataset is inflated only
    up to its pixel data and never past ``MAX_HEADER_BYTES``. Raises what pydicom raises,
    or :class:`LimitError`.
    """
    preamble, _raw, deflated = _sniff(Path(path))
    return _read(Path(path), preamble, deflated)[0]


def read_file_header(path: Path) -> tuple[list[SliceHeader], str | None]:
    """Read one file's header. Returns (slices, None) or ([], one-line reason to skip).

    Never raises on the file's content; the reason is printable and at most 200 characters.
    """
    try:
        slices, reason = _read_file_header(path)
    except LimitError as exc:
        slices, reason = [], str(exc)
    except Exception as exc:  # noqa: BLE001 - values are parsed lazily: any may be malformed
        slices, reason = [], f"unusable DICOM header: {_one_line(exc)}"
    return slices, (None if reason is None else one_line(reason))


def _read_file_header(path: Path) -> tuple[list[SliceHeader], str | None]:
    try:
        preamble, maybe_raw, deflated = _sniff(path)
    except OSError as exc:
        return [], f"unreadable: {exc.strerror or exc}"
    if not preamble and not maybe_raw:
        return [], "not a DICOM file"
    try:
        ds, ts, pixel, has_pixels = _read(path, preamble, deflated)
    except InvalidDicomError:
        return [], "not a DICOM file"
    except LimitError as exc:
        return [], str(exc)
    except Exception as exc:  # noqa: BLE001 - any malformed file is reported, never fatal
        return [], f"unreadable DICOM: {_one_line(exc)}"
    if not preamble and "SOPClassUID" not in ds and "Rows" not in ds:
        return [], "not a DICOM file"
    sop_class = str(_get(ds, "SOPClassUID", ""))
    if sop_class == "1.2.840.10008.1.3.10" or "DirectoryRecordSequence" in ds:
        return [], _DICOMDIR_REASON
    if "Rows" not in ds or not has_pixels:
        uid = UID(sop_class)
        name = uid.name if uid.is_valid else "invalid SOP Class UID" if sop_class else ""
        name = name or "unknown SOP class"
        return [], f"no image pixel data ({name})"
    try:
        return _slices_from_dataset(ds, path, ts, pixel), None
    except LimitError as exc:
        return [], str(exc)
    except Exception as exc:  # noqa: BLE001
        return [], f"unusable DICOM header: {_one_line(exc)}"


def _read(path: Path, preamble: bool, deflated: bool):
    """(dataset, transfer syntax, (pixel offset, length) or None, has pixel data)."""
    with open(path, "rb") as fh:
        if deflated:
            fh.seek(0)
            read_preamble(fh, False)
            if str(_read_file_meta_info(fh).get("TransferSyntaxUID", "")) == DEFLATED_SYNTAX:
                ds, has_pixels, length = read_deflated(
                    path, MAX_HEADER_BYTES, stop_before_pixels=True
                )
                return ds, DEFLATED_SYNTAX, (None, length), has_pixels
            fh.seek(0)
        ds = pydicom.dcmread(fh, stop_before_pixels=True, force=not preamble, defer_size=_DEFER)
        ts = str(getattr(ds.file_meta, "TransferSyntaxUID", "") or "")
        if not ts and not preamble:
            ts = "1.2.840.10008.1.2" if ds.is_implicit_VR else "1.2.840.10008.1.2.1"
        if ts == "1.2.840.10008.1.2.2":  # big endian: decoded by pydicom, no offset kept
            return ds, ts, None, _has_pixel_tag(fh)
        pixel = _pixel_element(fh, ts)
        return ds, ts, pixel, pixel is not None


def _has_pixel_tag(fh) -> bool:
    head = fh.read(4)
    return head in (b"\xe0\x7f\x10\x00", b"\x7f\xe0\x00\x10")


def _one_line(exc: BaseException) -> str:
    return one_line(exc)


def _slices_from_dataset(ds, path: Path, ts: str, pixel) -> list[SliceHeader]:
    frames = _int(_get(ds, "NumberOfFrames"), 1)
    frames = 1 if frames == 0 else frames  # "0" is read as one frame, as before
    rows, columns = int(_get(ds, "Rows")), int(_get(ds, "Columns", 0))
    samples = _int(_get(ds, "SamplesPerPixel"), 1)
    bits = _int(_get(ds, "BitsAllocated"), 16)
    check_image_header(rows, columns, samples, bits, frames)
    photometric = str(_get(ds, "PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    if pixel is not None and pixel[1] is not None:
        _check_length(pixel[1], rows, columns, samples, bits, frames, photometric, ts)
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
        rows=rows,
        columns=columns,
        samples=samples,
        photometric=photometric,
        bits_allocated=bits,
        bits_stored=min(bits, max(1, _int(_get(ds, "BitsStored"), bits))),
        pixel_representation=_int(_get(ds, "PixelRepresentation"), 0),
        transfer_syntax=ts,
        number_of_frames=frames,
        planar_configuration=_int(_get(ds, "PlanarConfiguration"), 0),
        window=_window(ds),
        gantry_tilt=_num(_get(ds, "GantryDetectorTilt"), 0.0),
        has_modality_lut="ModalityLUTSequence" in ds,
        spacing_between_slices=_num(_get(ds, "SpacingBetweenSlices")),
    )
    if pixel is not None and pixel[1] is not None and ts in NATIVE_SYNTAXES:
        fh.pixel_offset, fh.pixel_length = pixel
    elif pixel is not None and pixel[1] is None:
        fh.frames_offset = pixel[0]
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


def _check_length(length, rows, columns, samples, bits, frames, photometric, ts) -> None:
    """Uncompressed pixel data shorter than the header's image size is refused up front,
    and so is deflated pixel data far longer (it would have to be inflated)."""
    if photometric == "YBR_FULL_422" and samples == 3:
        samples = 2  # two chroma samples shared by each pair of pixels (PS3.3 C.7.6.3.1.2)
    needed = pixel_bytes(rows, columns, samples, bits, frames)
    if length < needed:
        raise LimitError(
            f"pixel data too short: {fmt_bytes(length)} ({length} bytes) where the header's "
            f"{rows}×{columns}×{frames} pixels at {bits} bits need {needed} bytes"
        )
    if ts == DEFLATED_SYNTAX and length > 2 * needed + 1024**2:
        raise LimitError(
            f"deflated pixel data claims {fmt_bytes(length)} where the header's image needs "
            f"{fmt_bytes(needed)}; refused (possible zip bomb)"
        )


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

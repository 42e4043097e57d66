"""DICOM Segmentation (SEG) export and import of a :class:`LabelMap`, built with highdicom.

Why BINARY: the SEG is written as a *BINARY* Segmentation Storage instance (PS3.3 A.51,
SOP class 1.2.840.10008.5.1.4.1.1.66.4, one bit-packed frame per segment and slice, empty
frames omitted, no fractional type). It is the form every SEG reader handles (OHIF, 3D
Slicer / dcmqi, highdicom, dcmjs). The newer LABELMAP type (SOP class ...66.7, Sup 243) is
smaller, but dicom3tools' ``dciodvfy`` (2022) does not know it and most viewers cannot read
it yet.

What is written (PS3.3 C.8.20):

* one segment per *non-empty* label, in label order, numbered 1..N (DICOM requires
  consecutive segment numbers; reading gives back labels 1..N in the same order, so a map
  with labels 1 and 3 comes back as 1 and 2 with the same names). Empty segments are left
  out, as 3D Slicer does; an empty label map is refused.
* SegmentLabel = segment name; SegmentedPropertyCategory/Type from ``Segment.category`` /
  ``Segment.type`` (SNOMED CT / DCM codes); RecommendedDisplayCIELabValue from the colour.
* SegmentAlgorithmType from ``labelmap.provenance``: AUTOMATIC (a model's output) or
  SEMIAUTOMATIC (edited afterwards) with the model's name and version and the algorithm
  family "Artificial Intelligence" (DCM 123110); MANUAL without algorithm identification.
* references to the source instances (Referenced Series Sequence, per-frame Derivation
  Image / Source Image Sequences with the referenced frame for enhanced multi-frame
  sources), the source's patient, study and frame of reference; Content Qualification
  RESEARCH. Radiographs without a frame of reference are supported (no plane positions;
  Patient Orientation copied from the source).

:func:`read_seg` maps frames back onto the open series by referenced SOP Instance UID (and
frame number for multi-frame sources); a SEG of other instances in the same frame of
reference is placed by plane position when its planes coincide with the series' slices.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code as DicomCode

from viewer import __version__
from viewer.core.export.atomic import atomic_path, check_destination, source_dirs
from viewer.core.export.label_files import check_grid
from viewer.core.geometry import VolumeGeometry
from viewer.core.labelmap import Code, LabelMap, Provenance, Segment, segment_for
from viewer.core.volume import Volume

SEGMENTATION_TYPE = "BINARY"
_SEG_SOP_CLASSES = {"1.2.840.10008.5.1.4.1.1.66.4", "1.2.840.10008.5.1.4.1.1.66.7"}
_ALGORITHM_TYPES = ("AUTOMATIC", "SEMIAUTOMATIC", "MANUAL")
_CONTENT_LABEL = re.compile(r"[A-Z0-9_ ]{1,16}")


class SegImportWarning(UserWarning):
    """Something in a SEG was ignored or resolved while importing it (overlaps...)."""


# -- write ------------------------------------------------------------------------------------
def write_seg(
    labelmap: LabelMap,
    volume: Volume,
    path: str | os.PathLike,
    *,
    series_description: str = "radview segmentation",
    series_number: int | None = None,
    manufacturer: str = "radview",
    manufacturer_model_name: str = "radview",
    software_versions: str = __version__,
    device_serial_number: str = "0",
    content_label: str = "SEGMENTATION",
    content_description: str | None = None,
    content_creator_name: str | None = None,
    allow_into_source: bool = False,
) -> Path:
    """Write ``labelmap`` (on ``volume``'s grid) as a DICOM SEG file at ``path``.

    ``volume`` must be a DICOM series (its ``files`` are read, headers only). The default
    ``series_number`` is the source's series number + 1000. The write is atomic and refused
    inside the source folders unless ``allow_into_source``. Raises ``ValueError`` with a
    one-line reason (empty map, grid mismatch, non-DICOM source, invalid source header...).
    """
    check_grid(labelmap.geometry, volume.geometry)
    if not _CONTENT_LABEL.fullmatch(content_label):
        raise ValueError(f"content label must be 1-16 of A-Z 0-9 _ and space: {content_label!r}")
    refs = _source_refs(volume)
    out = check_destination(path, source_dirs(volume.files), allow_into_source)
    present = sorted(set(labelmap.counts()))
    if not present:
        raise ValueError("the label map is empty: nothing to export")
    lut = np.zeros(256, dtype=np.uint8)
    descriptions = []
    for number, label in enumerate(present, start=1):
        lut[label] = number
        segment = labelmap.segments.get(label) or segment_for(f"segment {label}", label)
        descriptions.append(_description(number, segment, labelmap.provenance))
    pixels = lut[labelmap.labels]
    datasets = refs.datasets
    plane_positions = None
    if refs.multiframe:
        plane_positions = [
            hd.PlanePositionSequence(
                hd.CoordinateSystemNames.PATIENT, volume.geometry.index_to_lps((k, 0, 0))
            )
            for k in range(volume.geometry.shape[0])
        ]
    if series_number is None:
        series_number = int(datasets[0].get("SeriesNumber") or 0) + 1000
    try:
        seg = hd.seg.Segmentation(
            source_images=datasets,
            pixel_array=pixels,
            segmentation_type=SEGMENTATION_TYPE,
            segment_descriptions=descriptions,
            series_instance_uid=hd.UID(),
            series_number=int(series_number),
            sop_instance_uid=hd.UID(),
            instance_number=1,
            manufacturer=manufacturer,
            manufacturer_model_name=manufacturer_model_name,
            software_versions=software_versions,
            device_serial_number=device_serial_number,
            fractional_type=None,
            content_description=content_description or _default_description(labelmap),
            content_creator_name=content_creator_name,
            content_label=content_label,
            plane_positions=plane_positions,
            omit_empty_frames=True,
            series_description=series_description,
            content_qualification="RESEARCH",
        )
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"cannot build the DICOM SEG: {_one_line(exc)}") from exc
    if "FrameOfReferenceUID" not in seg:
        # General Image module, Type 2C: needed when there is no patient position/orientation
        seg.PatientOrientation = datasets[0].get("PatientOrientation", "")
    with atomic_path(out) as tmp:
        seg.save_as(tmp)
    return out


def _description(number: int, segment: Segment, provenance: Provenance):
    algorithm_type = (provenance.algorithm_type or "MANUAL").upper()
    if algorithm_type not in _ALGORITHM_TYPES:
        raise ValueError(f"unknown algorithm type {provenance.algorithm_type!r}")
    identification = None
    if algorithm_type != "MANUAL":
        identification = hd.AlgorithmIdentificationSequence(
            name=provenance.model_name or "unnamed model",
            family=codes.DCM.ArtificialIntelligence,
            version=provenance.model_version or "unknown",
        )
    return hd.seg.SegmentDescription(
        segment_number=number,
        segment_label=segment.name[:64] or f"segment {number}",
        segmented_property_category=_dicom_code(segment.category),
        segmented_property_type=_dicom_code(segment.type),
        algorithm_type=algorithm_type,
        algorithm_identification=identification,
        display_color=hd.color.CIELabColor.from_rgb(*(int(c) for c in segment.color)),
    )


def _dicom_code(code: Code) -> DicomCode:
    return DicomCode(code.value, code.scheme, code.meaning)


def _default_description(labelmap: LabelMap) -> str:
    p = labelmap.provenance
    if p.algorithm_type == "MANUAL" or not p.model_name:
        return "radview segmentation"
    edited = ", edited" if p.algorithm_type == "SEMIAUTOMATIC" else ""
    return f"{p.model_name} {p.model_version}".strip()[:50] + edited


# -- the open series' instances -----------------------------------------------------------------
class _SourceRefs:
    """Header datasets of a volume's files and, per k, (SOP Instance UID, frame or None)."""

    def __init__(self, datasets: list, per_k: list[tuple[str, int | None]], multiframe: bool):
        self.datasets = datasets
        self.per_k = per_k
        self.multiframe = multiframe

    @property
    def frame_of_reference(self) -> str:
        return str(self.datasets[0].get("FrameOfReferenceUID", ""))


def _source_refs(volume: Volume) -> _SourceRefs:
    nk = volume.geometry.shape[0]
    if len(volume.files) != nk:
        raise ValueError("the open series has no DICOM source files to reference")
    unique = list(dict.fromkeys(volume.files))
    datasets = []
    for f in unique:
        try:
            ds = pydicom.dcmread(f, stop_before_pixels=True)
        except Exception as exc:  # noqa: BLE001 - any read error is one line for the user
            raise ValueError(
                f"DICOM SEG needs a DICOM source series; cannot read {os.path.basename(f)} "
                f"as DICOM ({_one_line(exc)})"
            ) from exc
        if "SOPInstanceUID" not in ds or "Rows" not in ds:
            raise ValueError(f"{os.path.basename(f)} is not a DICOM image")
        _sanitize(ds)
        datasets.append(ds)
    if len(unique) == nk and all(int(ds.get("NumberOfFrames", 1) or 1) == 1 for ds in datasets):
        per_k = [(str(ds.SOPInstanceUID), None) for ds in datasets]
        return _SourceRefs(datasets, per_k, multiframe=False)
    if len(unique) == 1:
        frames = _frame_numbers(datasets[0], volume.geometry)
        uid = str(datasets[0].SOPInstanceUID)
        return _SourceRefs(datasets, [(uid, n) for n in frames], multiframe=True)
    raise ValueError("series made of several multi-frame files are not supported for DICOM SEG")


def _sanitize(ds) -> None:
    """Fix, in the in-memory copy only, source flaws highdicom would copy into the SEG:

    * a zero Pixel Spacing (seen on radiographs without a frame of reference);
    * Referenced Study Sequence items without their Type 1 Referenced SOP Class UID (seen on
      TCIA CT): such items are dropped, the whole sequence when none is left.
    """
    if "FrameOfReferenceUID" not in ds and "PixelSpacing" in ds:
        values = ds.PixelSpacing
        if not values or any(float(v) <= 0 for v in values):
            del ds.PixelSpacing
    if "ReferencedStudySequence" in ds:
        items = [
            item
            for item in ds.ReferencedStudySequence
            if item.get("ReferencedSOPClassUID") and item.get("ReferencedSOPInstanceUID")
        ]
        if items:
            ds.ReferencedStudySequence = items
        else:
            del ds.ReferencedStudySequence


def _frame_numbers(ds, geometry: VolumeGeometry) -> list[int]:
    """For each k of ``geometry``: the 1-based frame of multi-frame ``ds`` at that position."""
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    n = int(ds.get("NumberOfFrames", 1) or 1)
    nk = geometry.shape[0]
    if not per_frame or len(per_frame) != n:
        if n == nk == 1:
            return [1]
        raise ValueError("multi-frame source without per-frame positions is not supported")
    positions = []
    for item in per_frame:
        try:
            positions.append([float(v) for v in item.PlanePositionSequence[0].ImagePositionPatient])
        except (AttributeError, IndexError):
            raise ValueError("multi-frame source frames have no Image Position (Patient)") from None
    positions = np.asarray(positions)
    tol = 0.05 * max(1e-3, min(geometry.spacing))
    out = []
    for k in range(nk):
        dist = np.linalg.norm(positions - geometry.index_to_lps((k, 0, 0)), axis=1)
        best = int(np.argmin(dist))
        if dist[best] > tol:
            raise ValueError(f"no frame of the source file lies at slice {k} of the series")
        out.append(best + 1)
    return out


# -- read -------------------------------------------------------------------------------------
def read_seg(path: str | os.PathLike, volume: Volume) -> LabelMap:
    """Read a DICOM SEG made on ``volume``'s series into a new LabelMap on its grid.

    Frames are placed by the SOP Instance UID (and frame number) of the source image they
    reference, so the SEG's own frame order does not matter. Segment numbers become labels;
    names, colours, codes and the algorithm (provenance) are restored. Where segments
    overlap the later one wins and a :class:`SegImportWarning` is issued; frames referencing
    images outside the open series are ignored with a warning. A SEG referencing none of the
    series' images but sharing its frame of reference is placed by plane position (with a
    warning) when its planes coincide with the slices. A SEG of another series or frame of
    reference, with another image size, or an unreadable file raises ``ValueError``.
    """
    name = os.path.basename(os.fspath(path))
    try:
        seg = hd.seg.segread(path)
    except Exception as exc:  # noqa: BLE001
        raise ValueError(f"{name}: not a readable DICOM SEG ({_one_line(exc)})") from exc
    if str(seg.SOPClassUID) not in _SEG_SOP_CLASSES:
        raise ValueError(f"{name}: not a DICOM Segmentation (SOP class {seg.SOPClassUID})")
    refs = _source_refs(volume)
    nk, rows, cols = volume.geometry.shape
    if (int(seg.Rows), int(seg.Columns)) != (rows, cols):
        raise ValueError(
            f"{name}: segmentation is {seg.Rows}x{seg.Columns} pixels, "
            f"the open series {rows}x{cols}"
        )
    seg_for = str(seg.get("FrameOfReferenceUID", ""))
    if seg_for and refs.frame_of_reference and seg_for != refs.frame_of_reference:
        raise ValueError(f"{name}: segmentation is in another frame of reference than the series")
    numbers = [int(n) for n in seg.segment_numbers]
    if numbers and max(numbers) > 255:
        raise ValueError(f"{name}: {max(numbers)} segments; at most 255 can be imported")
    stack = _frames_by_reference(seg, refs, numbers, name)
    if stack is None:
        sources = sorted({str(s) for _, s, _ in seg.get_source_image_uids()})
        if not (seg_for and seg_for == refs.frame_of_reference):
            raise ValueError(
                f"{name}: segmentation was made on another series "
                f"({', '.join(sources) or 'no source references'})"
            )
        stack = _frames_by_position(seg, volume.geometry, numbers, name)
        warnings.warn(
            f"{name}: made on another series of the same frame of reference; "
            "frames were placed by their positions",
            SegImportWarning,
            stacklevel=2,
        )
    labels = np.zeros((nk, rows, cols), dtype=np.uint8)
    overlap = 0
    fractional = str(seg.SegmentationType) == "FRACTIONAL"
    for index, number in enumerate(numbers):
        plane = stack[..., index]
        mask = plane >= 0.5 if fractional else plane > 0
        overlap += int(np.count_nonzero(labels[mask]))
        labels[mask] = number
    if overlap:
        warnings.warn(
            f"{name}: segments overlap on {overlap} voxels; the later segment was kept there",
            SegImportWarning,
            stacklevel=2,
        )
    segments = {n: _segment(seg.get_segment_description(n), n) for n in numbers}
    return LabelMap(volume.geometry, labels, segments, _provenance(seg, numbers))


def _frames_by_reference(seg, refs: _SourceRefs, numbers: list[int], name: str):
    """(k, rows, cols, segments) pixels placed by referenced SOP Instance UID and frame,
    or None when the SEG references none of the open series' images."""
    referenced = {str(sop) for _, _, sop in seg.get_source_image_uids()}
    ours = {uid for uid, _ in refs.per_k}
    if not referenced & ours:
        return None
    if referenced - ours:
        warnings.warn(
            f"{name}: {len(referenced - ours)} referenced image(s) are not in the open series; "
            "their frames are ignored",
            SegImportWarning,
            stacklevel=3,
        )
    options = dict(segment_numbers=numbers, combine_segments=False,
                   assert_missing_frames_are_empty=True)  # fmt: skip
    try:
        if refs.multiframe:
            frames = [n for _, n in refs.per_k]
            return seg.get_pixels_by_source_frame(refs.per_k[0][0], frames, **options)
        return seg.get_pixels_by_source_instance([u for u, _ in refs.per_k], **options)
    except (KeyError, ValueError, RuntimeError) as exc:
        raise ValueError(f"{name}: cannot map the segmentation frames ({_one_line(exc)})") from exc


def _frames_by_position(seg, geometry: VolumeGeometry, numbers: list[int], name: str):
    """(k, rows, cols, segments) pixels placed by plane position (same frame of reference):
    every SEG plane must coincide with a slice of ``geometry`` (same rows/columns axes and
    spacing, position within 1% of a voxel)."""
    try:
        planes = seg.get_volume(segment_numbers=numbers, combine_segments=False)
    except Exception as exc:  # noqa: BLE001 - highdicom raises several kinds here
        raise ValueError(f"{name}: frames cannot be placed by position ({_one_line(exc)})") from exc
    affine = planes.affine  # maps (slice, row, column) indices to LPS mm
    ours = geometry.ijk_to_lps_matrix()
    same_plane = np.allclose(affine[:3, 1], ours[:3, 1], atol=1e-3) and np.allclose(
        affine[:3, 2], ours[:3, 0], atol=1e-3
    )
    array = planes.array
    if array.ndim == 3:
        array = array[..., None]
    if not same_plane or array.shape[1:3] != geometry.shape[1:]:
        raise ValueError(f"{name}: segmentation planes are not on the open series' grid")
    out = np.zeros((*geometry.shape, len(numbers)), dtype=array.dtype)
    for s in range(array.shape[0]):
        kji = geometry.lps_to_index((affine @ [s, 0, 0, 1])[:3])
        k = int(round(kji[0]))
        if not (0 <= k < geometry.shape[0] and np.allclose(kji, (k, 0, 0), atol=0.01)):
            if array[s].any():
                raise ValueError(f"{name}: a segmentation plane lies between the series' slices")
            continue
        out[k] = array[s]
    return out


def _segment(desc, number: int) -> Segment:
    base = segment_for(str(desc.segment_label), number)
    color = base.color
    if "RecommendedDisplayCIELabValue" in desc:
        lab = hd.color.CIELabColor.from_dicom_value(desc.RecommendedDisplayCIELabValue)
        color = tuple(int(c) for c in lab.to_rgb(clip=True))
    return Segment(
        name=str(desc.segment_label),
        color=color,  # type: ignore[arg-type]
        category=_our_code(desc.segmented_property_category),
        type=_our_code(desc.segmented_property_type),
    )


def _our_code(concept) -> Code:
    return Code(str(concept.value), str(concept.scheme_designator), str(concept.meaning))


def _provenance(seg, numbers: list[int]) -> Provenance:
    kinds = [seg.get_segment_description(n).algorithm_type.value for n in numbers]
    if "SEMIAUTOMATIC" in kinds:
        kind = "SEMIAUTOMATIC"
    elif kinds and all(k == "AUTOMATIC" for k in kinds):
        kind = "AUTOMATIC"
    else:
        kind = "MANUAL"
    for n in numbers:
        algorithm = seg.get_segment_description(n).algorithm_identification
        if algorithm:
            item = algorithm[0]
            return Provenance(kind, str(item.AlgorithmName), str(item.AlgorithmVersion))
    return Provenance(kind)


# -- shared -----------------------------------------------------------------------------------
def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]

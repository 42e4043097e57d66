"""Anonymise a DICOM file or folder into a new folder (``radview anonymize``, the viewer's
"Export anonymised copy").

Layout of OUT (chosen because clinics' folder and file names often carry the patient's name
or ID, so the source's relative paths are *not* kept)::

    OUT/<pseudonym>/<study>/<series>/<instance>.dcm
    e.g. OUT/ANON-3F9A0C21B7/study-5d41402a/003-CT-a1b2c3/00012.dcm

* ``<pseudonym>``: the patient's pseudonym (``ANON-<10 hex>``, as in Patient's Name/ID);
* ``<study>``: ``study-`` + 8 hex of a hash of the *new* Study Instance UID;
* ``<series>``: Series Number (3 digits, or ``series``), modality, 6 hex of the new Series
  Instance UID hash;
* ``<instance>``: Instance Number on 5 digits, else 12 hex of the new SOP Instance UID hash
  (``-2``, ``-3``... when two instances of a series share a number).

OUT must be outside SRC (SRC is never written) and a new or empty folder: two runs with
different keys in one folder would break UID consistency. Every file is written atomically
(:func:`viewer.core.export.atomic.atomic_path`). Non-DICOM files and DICOMDIRs (whose paths
would not match the new layout) are skipped and reported; a DICOM file that cannot be read
or written is reported as failed and the others are still written.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.dataset import FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from viewer.core.anonymize.engine import Anonymizer
from viewer.core.dicom.scan import Skipped, iter_files
from viewer.core.export.atomic import atomic_path

#: SOP classes whose images usually carry burned-in text: secondary captures, ultrasound,
#: photographs/scanned documents and encapsulated documents
SECONDARY_CAPTURE = {f"1.2.840.10008.5.1.4.1.1.7{s}" for s in ("", ".1", ".2", ".3", ".4")}
ULTRASOUND = {"1.2.840.10008.5.1.4.1.1.6.1", "1.2.840.10008.5.1.4.1.1.6.2",
              "1.2.840.10008.5.1.4.1.1.3.1"}  # fmt: skip
DOCUMENTS = {f"1.2.840.10008.5.1.4.1.1.104.{n}" for n in range(1, 6)} | {
    "1.2.840.10008.5.1.4.1.1.77.1.4",  # VL Photographic Image
    "1.2.840.10008.5.1.4.1.1.77.1.1",  # VL Endoscopic Image
}
_DICOMDIR_CLASS = "1.2.840.10008.1.3.10"


class DestinationError(ValueError):
    """OUT cannot be used (inside SRC, not a folder, not empty...): a usage error."""


@dataclass
class FileWarning:
    source: str
    output: str
    message: str


@dataclass
class AnonymizeReport:
    """What a run did: (source, output) pairs written, skipped and failed inputs, warnings."""

    out: str
    written: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    failed: list[Skipped] = field(default_factory=list)
    warnings: list[FileWarning] = field(default_factory=list)
    cancelled: bool = False

    def grouped_warnings(self) -> list[tuple[str, str, int]]:
        """(output series folder, message, number of files): one line per series and cause."""
        counts: dict[tuple[str, str], int] = {}
        for w in self.warnings:
            key = (os.path.dirname(w.output), w.message)
            counts[key] = counts.get(key, 0) + 1
        return [(folder, msg, n) for (folder, msg), n in counts.items()]

    def summary(self) -> str:
        state = "cancelled: " if self.cancelled else ""
        return (
            f"{state}{len(self.written)} file(s) written to {self.out}, "
            f"{len(self.skipped)} skipped, {len(self.failed)} failed, "
            f"{len(self.grouped_warnings())} warning(s)"
        )

    def to_json(self) -> dict:
        return {
            "out": self.out,
            "written": [{"source": s, "output": o} for s, o in self.written],
            "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped],
            "failed": [{"path": s.path, "reason": s.reason} for s in self.failed],
            "warnings": [
                {"series": f, "message": m, "files": n} for f, m, n in self.grouped_warnings()
            ],
            "cancelled": self.cancelled,
        }


def burned_in_reason(ds) -> str | None:
    """Why the pixels of ``ds`` may carry burned-in identifying text, or None."""
    if str(ds.get("BurnedInAnnotation", "") or "").strip().upper() == "YES":
        return "pixels may show burned-in text (Burned In Annotation is YES)"
    sop = str(ds.get("SOPClassUID", "") or "")
    if sop in SECONDARY_CAPTURE:
        return "pixels may show burned-in text (secondary capture)"
    if sop in ULTRASOUND:
        return "pixels may show burned-in text (ultrasound image)"
    if sop in DOCUMENTS:
        return "content may show identifying text (photograph or document)"
    image_type = ds.get("ImageType") or []
    values = [image_type] if isinstance(image_type, str) else list(image_type)
    flagged = [v for v in ("SCREEN", "SECONDARY") if v in {str(x).upper() for x in values}]
    if flagged:
        return f"pixels may show burned-in text (Image Type {flagged[0]})"
    return None


def check_destination_folder(src: str | os.PathLike, out: str | os.PathLike) -> Path:
    """The absolute OUT folder after checks; raises :class:`DestinationError` (one line)."""
    src_real = Path(os.path.realpath(src))
    if not os.path.exists(src):
        raise DestinationError(f"no such file or folder: {src}")
    out_abs = Path(os.path.abspath(out))
    out_real = Path(os.path.realpath(out_abs))
    src_dir = src_real if src_real.is_dir() else src_real.parent
    if out_real == src_dir or src_dir in out_real.parents:
        raise DestinationError(f"OUT must not be inside the source folder {src_dir}: {out}")
    if out_real.exists() and not out_real.is_dir():
        raise DestinationError(f"OUT is a file, not a folder: {out}")
    if out_real.is_dir() and any(out_real.iterdir()):
        raise DestinationError(f"OUT must be a new or empty folder: {out}")
    return out_abs


def _short(value: str, n: int) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:n]


def _read(path: Path):
    """(dataset, None), or (None, (reason, failed)): failed for a broken DICOM file, not
    failed for a file that is simply not DICOM (skipped)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError as exc:
        return None, (f"unreadable: {exc.strerror or exc}", True)
    preamble = len(head) == 132 and head[128:132] == b"DICM"
    if not preamble and head[:2] not in (b"\x02\x00", b"\x08\x00"):
        return None, ("not a DICOM file", False)
    try:
        ds = pydicom.dcmread(path, force=not preamble)
    except InvalidDicomError:
        return None, ("not a DICOM file", False)
    except Exception as exc:  # noqa: BLE001 - any malformed file is reported, never fatal
        return None, (f"unreadable DICOM: {_line(exc)}", True)
    meta_class = str(getattr(ds, "file_meta", {}).get("MediaStorageSOPClassUID", "") or "")
    if _DICOMDIR_CLASS in (meta_class, str(ds.get("SOPClassUID", ""))) or (
        "DirectoryRecordSequence" in ds
    ):
        return None, ("DICOMDIR (its file paths would not match the new layout)", False)
    if "SOPClassUID" not in ds or "SOPInstanceUID" not in ds:
        return None, ("DICOM data set without SOP Class/Instance UID: not anonymised", True)
    return ds, None


def _line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


def _number(value) -> int | None:
    """A non-negative integer Series/Instance Number, else None (missing or malformed)."""
    try:
        n = int(float(value))
    except (TypeError, ValueError, OverflowError):
        return None
    return n if 0 <= n < 10**9 else None


class _Layout:
    def __init__(self, out: Path):
        self.out = out
        self.used: set[Path] = set()

    def path_for(self, ds) -> Path:
        patient = str(ds.get("PatientID", "") or "patient")
        study = "study-" + _short(str(ds.get("StudyInstanceUID", "") or ""), 8)
        number = _number(ds.get("SeriesNumber"))
        number = f"{number:03d}" if number is not None else "series"
        modality = "".join(c for c in str(ds.get("Modality", "") or "OT") if c.isalnum())
        series = f"{number}-{modality or 'OT'}-{_short(str(ds.get('SeriesInstanceUID', '')), 6)}"
        instance = _number(ds.get("InstanceNumber"))
        stem = f"{instance:05d}" if instance is not None else _short(str(ds.SOPInstanceUID), 12)
        folder = self.out / patient / study / series
        path, n = folder / f"{stem}.dcm", 1
        while path in self.used:
            n += 1
            path = folder / f"{stem}-{n}.dcm"
        self.used.add(path)
        return path


def anonymize_file(
    src: str | os.PathLike, dst: str | os.PathLike, anonymizer: Anonymizer
) -> str | None:
    """Anonymise the DICOM file ``src`` into ``dst`` (atomic write). Returns the
    burned-in-text warning for it, or None. Raises ``ValueError`` (one line) when ``src``
    is not a readable DICOM object."""
    ds, problem = _read(Path(src))
    if ds is None:
        raise ValueError(f"{os.path.basename(src)}: {problem[0]}")
    warning = burned_in_reason(ds)
    anonymizer.anonymize_dataset(ds)
    _write(ds, Path(dst))
    return warning


def anonymize_tree(
    src: str | os.PathLike,
    out: str | os.PathLike,
    anonymizer: Anonymizer,
    progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    files: list[str] | None = None,
) -> AnonymizeReport:
    """Write every DICOM file of ``src`` (a file or folder, recursive) anonymised under
    ``out`` (layout in the module docstring). ``files``: only these files (the viewer's
    current study or series), ``src`` then only serves the OUT-inside-SRC check.

    Raises :class:`DestinationError` before writing anything when OUT is unusable.
    progress(done, total) after each file; cancelled() is polled between files.
    """
    out_dir = check_destination_folder(src, out)
    paths = [Path(f) for f in files] if files is not None else list(iter_files(Path(src)))
    report = AnonymizeReport(str(out_dir))
    layout = _Layout(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for n, path in enumerate(paths):
        if cancelled is not None and cancelled():
            report.cancelled = True
            break
        apath = str(path.absolute())
        if not path.is_file():
            report.skipped.append(Skipped(apath, "not a regular file"))
        else:
            ds, problem = _read(path)
            if ds is None:
                reason, failed = problem
                (report.failed if failed else report.skipped).append(Skipped(apath, reason))
            else:
                warning = burned_in_reason(ds)
                try:
                    anonymizer.anonymize_dataset(ds)
                    dst = layout.path_for(ds)
                    _write(ds, dst)
                except Exception as exc:  # noqa: BLE001 - one bad file never stops the run
                    report.failed.append(Skipped(apath, f"cannot anonymise: {_line(exc)}"))
                else:
                    report.written.append((apath, str(dst)))
                    if warning:
                        report.warnings.append(FileWarning(apath, str(dst), warning))
        if progress is not None:
            progress(n + 1, len(paths))
    return report


def _write(ds, dst: Path) -> None:
    meta = ds.file_meta if hasattr(ds, "file_meta") else FileMetaDataset()
    if not meta.get("TransferSyntaxUID"):  # a raw data set without file meta information
        implicit, little = getattr(ds, "original_encoding", (True, True))
        meta.TransferSyntaxUID = (
            ImplicitVRLittleEndian
            if implicit
            else ExplicitVRLittleEndian
            if little is not False
            else ExplicitVRBigEndian
        )
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.file_meta = meta
    dst.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dst) as tmp:
        ds.save_as(tmp, enforce_file_format=True)

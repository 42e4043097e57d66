"""What a file or folder holds: series ready to load, and files skipped with a reason.

One entry point for the CLI, the viewer and the tests: :func:`build_index` scans headers
only, :func:`load_series` decodes one entry into a :class:`Volume`, :func:`check_series`
decodes it just to see that it can be.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from viewer.core.dicom.loaders import load_stack
from viewer.core.dicom.scan import Skipped, scan
from viewer.core.dicom.series import Stack, plan_stacks
from viewer.core.images import image_file_info, read_image_file
from viewer.core.volume import Volume


class PathError(Exception):
    """The path given by the user cannot be used at all."""


@dataclass
class SeriesEntry:
    uid: str
    patient: str
    study: str
    modality: str
    description: str
    files: list[str]
    shape: list[int]
    spacing: list[float]
    status: str = "ok"
    warnings: list[str] = field(default_factory=list)
    study_date: str = ""
    series_number: int | None = None
    stack: Stack | None = None
    image_path: str | None = None

    def to_json(self) -> dict:
        """The ``radview info --json`` contract for one series."""
        return {
            "uid": self.uid,
            "patient": self.patient,
            "study": self.study,
            "modality": self.modality,
            "description": self.description,
            "files": self.files,
            "shape": self.shape,
            "spacing": self.spacing,
            "status": self.status,
            "warnings": self.warnings,
        }


@dataclass
class StudyIndex:
    root: str
    series: list[SeriesEntry] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    cancelled: bool = False

    def find(self, uid: str | None) -> SeriesEntry:
        """The entry with this UID; without a UID, the only (or the largest) series."""
        usable = [s for s in self.series if not s.status.startswith("error")]
        if uid is None:
            if not usable:
                raise PathError(f"no loadable image series in {self.root}")
            return max(usable, key=lambda s: _voxels(s.shape))
        for s in self.series:
            if s.uid == uid:
                return s
        raise PathError(f"no series with UID {uid} in {self.root}")

    def to_json(self) -> dict:
        return {
            "series": [s.to_json() for s in self.series],
            "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped],
        }


def _voxels(shape) -> int:
    n = 1
    for v in shape:
        n *= v
    return n


def _check_path(path: str | os.PathLike) -> Path:
    p = Path(path)
    if not p.exists():
        raise PathError(f"no such file or folder: {p}")
    if not os.access(p, os.R_OK) or (p.is_dir() and not os.access(p, os.X_OK)):
        raise PathError(f"permission denied: {p}")
    if not (p.is_dir() or p.is_file()):
        raise PathError(f"not a file or folder: {p}")
    if p.is_file() and p.name.upper() == "DICOMDIR":
        return p.parent  # the files a DICOMDIR lists live beside it
    return p


def build_index(
    path: str | os.PathLike | list,
    progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    workers: int = 1,
) -> StudyIndex:
    """Scan headers under ``path`` and group them into series (no pixels decoded).

    ``path`` may also be a list of files and folders (files dropped on the viewer).
    ``workers`` > 1 parses headers in forked processes (for the CLI; not from GUI threads).
    """
    if isinstance(path, (list, tuple)):
        roots = [_check_path(p) for p in path]
        root = Path(os.path.commonpath([str(r.absolute()) for r in roots]))
    else:
        roots = [_check_path(path)]
        root = roots[0]
    result = scan(roots, progress, cancelled, workers=workers)
    stacks, dupes = plan_stacks(result.slices)
    index = StudyIndex(str(root.absolute()), skipped=result.skipped + dupes)
    index.cancelled = result.cancelled
    for st in stacks:
        f = st.first
        index.series.append(
            SeriesEntry(
                uid=st.uid,
                patient=f.patient_name or f.patient_id,
                study=f.study_uid,
                modality=f.modality,
                description=f.description,
                files=st.files,
                shape=list(st.shape),
                spacing=[round(v, 6) for v in st.geometry.spacing],
                status=f"error: {st.error}" if st.error else "ok",
                warnings=list(st.warnings),
                study_date=f.study_date,
                series_number=f.series_number,
                stack=st,
            )
        )
    for image in result.image_files:
        try:
            shape, geometry, _ = image_file_info(image)
        except Exception as exc:  # noqa: BLE001
            index.skipped.append(Skipped(image, f"unreadable image: {_first_line(exc)}"))
            continue
        index.series.append(
            SeriesEntry(
                uid=image,
                patient="",
                study="",
                modality="OT" if image.lower().endswith((".png", ".jpg", ".jpeg")) else "",
                description=Path(image).name,
                files=[image],
                shape=list(shape),
                spacing=[round(v, 6) for v in geometry.spacing],
                image_path=image,
            )
        )
    index.series.sort(
        key=lambda s: (s.patient, s.study_date, s.study, s.series_number or 0, s.uid)
    )
    return index


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("Exception thrown", "sitk::ERROR")):
            return line[:200]
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]


def load_series(
    entry: SeriesEntry,
    progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    processes: int = 1,
) -> Volume:
    """Decode one series into a Volume (raises ValueError with a one-line reason).

    ``processes`` > 1 decodes compressed planes in forked processes (CLI only).
    """
    if entry.status.startswith("error"):
        raise ValueError(entry.status[len("error: ") :])
    if entry.image_path is not None:
        try:
            return read_image_file(entry.image_path)
        except Exception as exc:  # noqa: BLE001
            raise ValueError(_first_line(exc)) from exc
    return load_stack(entry.stack, progress, cancelled, processes=processes)


def check_series(entry: SeriesEntry, processes: int = 1) -> None:
    """Decode every image of ``entry`` and set its status ("ok" or "error: <reason>")."""
    if entry.status.startswith("error"):
        return
    try:
        load_series(entry, processes=processes)
    except MemoryError:
        entry.status = "error: not enough memory to decode this series"
    except Exception as exc:  # noqa: BLE001
        entry.status = f"error: {_first_line(exc)}"
    else:
        entry.status = "ok"

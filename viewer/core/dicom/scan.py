"""Header-only pass over a folder: find DICOM files and describe each image plane.

Nothing here decodes pixels or writes anything. Every file met ends up either as one or
more :class:`SliceHeader` (one per frame) or as a :class:`Skipped` entry with a reason.
The records live in :mod:`~viewer.core.dicom.records`, the per-file reading in
:mod:`~viewer.core.dicom.headers`; both are re-exported here.

Hostile folders: the walk enters each directory once (symbolic-link loops end), pipes and
devices are never opened, and ``cancelled()`` is polled while walking and between files,
so a scan of tens of thousands of files stops within a few files of being cancelled.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from viewer.core.dicom.headers import (
    _DICOMDIR_REASON,
    DEFLATED_SYNTAX,
    NATIVE_SYNTAXES,
    read_file_header,
    read_header_dataset,
)
from viewer.core.dicom.records import FileHeader, Skipped, SliceHeader

__all__ = [
    "DEFLATED_SYNTAX", "IMAGE_EXTENSIONS", "NATIVE_SYNTAXES", "FileHeader", "ScanCancelled",
    "ScanResult", "Skipped", "SliceHeader", "is_image_file", "iter_files", "read_file_header",
    "read_header_dataset", "scan",
]  # fmt: skip

#: extensions opened through SimpleITK rather than pydicom
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")
#: the walk polls ``cancelled()`` every this many directory entries
_WALK_POLL = 256


@dataclass
class ScanResult:
    slices: list[SliceHeader] = field(default_factory=list)
    image_files: list[str] = field(default_factory=list)  # PNG/JPEG/NIfTI/NRRD...
    skipped: list[Skipped] = field(default_factory=list)
    cancelled: bool = False


class ScanCancelled(Exception):
    pass


# -- walking ---------------------------------------------------------------------------------
def iter_files(root: Path, errors: list[Skipped] | None = None) -> Iterator[Path]:
    """All non-directory entries under root (or root itself), following directory links once.

    A symbolic-link loop is entered only once: directories are remembered by (device, inode).
    Folders that cannot be listed are appended to ``errors`` (when given) with a reason.
    """
    if root.is_file():
        yield root
        return

    def onerror(exc: OSError) -> None:
        if errors is not None:
            where = str(Path(exc.filename or root).absolute())
            errors.append(Skipped(where, f"unreadable folder: {exc.strerror or exc}"))

    seen: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(root, onerror=onerror, followlinks=True):
        try:
            st = os.stat(dirpath)
        except OSError as exc:
            onerror(exc)
            dirnames[:] = []
            continue
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


# -- the pass --------------------------------------------------------------------------------
def _read_all(paths: list[Path], workers: int):
    """Yield (path, (slices, reason)) in order; several processes when asked and worth it.

    Processes are forked (header parsing is pure Python, so threads would not help); only
    callers without GUI threads should ask for workers > 1. Closing the generator early
    (a cancelled scan) terminates the pool at once.
    """
    if workers > 1 and len(paths) >= 64 and "fork" in mp.get_all_start_methods():
        ctx = mp.get_context("fork")
        chunk = max(1, min(64, len(paths) // (workers * 8)))
        with ctx.Pool(workers) as pool:  # __exit__ terminates the workers
            yield from zip(paths, pool.imap(read_file_header, paths, chunksize=chunk))
        return
    for path in paths:
        yield path, read_file_header(path)


def _collect(roots, result: ScanResult, cancelled) -> list[Path] | None:
    """Sort the entries under ``roots`` into DICOM candidates, image files and skips.

    Returns the candidates, or None when cancelled during the walk.
    """
    dicom_paths: list[Path] = []
    seen: set[Path] = set()  # a file dropped twice is scanned once
    n = 0
    for r in roots:
        for path in iter_files(r, result.skipped):
            n += 1
            if cancelled is not None and n % _WALK_POLL == 0 and cancelled():
                return None
            if path in seen:
                continue
            seen.add(path)
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
    return dicom_paths


def scan(
    root: str | os.PathLike | list,
    progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    workers: int = 1,
) -> ScanResult:
    """Header-only scan of a file or folder (recursive).

    progress(done, total) is called as files are read; cancelled() is polled while the
    folder is walked and between files, and stops the scan early (the result then has
    ``cancelled=True`` and holds what was read so far). ``workers`` > 1 reads headers in
    that many forked processes; they are terminated when the scan is cancelled.
    Memory: only the small records of :mod:`~viewer.core.dicom.records` are kept.
    """
    roots = [Path(r) for r in root] if isinstance(root, (list, tuple)) else [Path(root)]
    result = ScanResult()
    dicom_paths = _collect(roots, result, cancelled)
    if dicom_paths is None:
        result.cancelled = True
        return result
    total = len(dicom_paths)
    reader = _read_all(dicom_paths, workers)
    try:
        for n, (path, (slices, reason)) in enumerate(reader):
            if cancelled is not None and cancelled():
                result.cancelled = True
                break
            if reason is not None:
                result.skipped.append(Skipped(str(path), reason))
            result.slices.extend(slices)
            if progress is not None:
                progress(n + 1, total)
    finally:
        reader.close()  # stops the worker processes now, not when garbage collected
    return result

"""Safe output files: atomic replacement and a guard against writing into the source folders.

Every export (DICOM SEG, label NIfTI, label/overlay PNG, sidecar JSON) goes through
:func:`atomic_path`: the writer fills a temporary file in the destination folder, the file is
flushed to disk (fsync) and renamed over the destination (``os.replace``, atomic on POSIX and
Windows when both names are on one file system). A crash or an exception mid-write leaves the
old file untouched (or no file) and never a partial one; the temporary file is removed.

:func:`check_destination` refuses an output inside a folder that holds the open series'
files (unless the user asked for it): radview never modifies a source folder by accident, and
a SEG dropped beside the images would be picked up as part of the study at the next scan.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

#: double extensions kept at the end of temporary names (writers pick the format from them)
_DOUBLE_SUFFIXES = (".nii.gz",)


def _suffix(name: str) -> str:
    lower = name.lower()
    for double in _DOUBLE_SUFFIXES:
        if lower.endswith(double):
            return name[-len(double) :]
    return Path(name).suffix


def check_destination(
    path: str | os.PathLike,
    source_dirs: Iterable[str | os.PathLike] = (),
    allow_into_source: bool = False,
) -> Path:
    """The absolute output path, after checking that it may be written.

    Raises ``ValueError`` (one line) when the folder does not exist, when ``path`` is a
    folder, or when it lies inside one of ``source_dirs`` (the folders of the open series'
    files, subfolders included) and ``allow_into_source`` is false.
    """
    out = Path(os.path.abspath(os.fspath(path)))
    if out.is_dir():
        raise ValueError(f"output is a folder, not a file: {out}")
    folder = out.parent
    if not folder.is_dir():
        raise ValueError(f"output folder does not exist: {folder}")
    if not allow_into_source:
        real = Path(os.path.realpath(folder))
        for src in source_dirs:
            src_real = Path(os.path.realpath(os.fspath(src)))
            if real == src_real or src_real in real.parents:
                raise ValueError(
                    f"refusing to write into the source folder {src_real} "
                    "(choose another folder, or allow writing into the source folder)"
                )
    return out


def source_dirs(files: Iterable[str | os.PathLike]) -> list[str]:
    """The distinct absolute folders of ``files`` (a volume's source files)."""
    seen: dict[str, None] = {}
    for f in files:
        seen.setdefault(os.path.dirname(os.path.abspath(os.fspath(f))), None)
    return list(seen)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically.

    The temporary name keeps the destination's extension (``.png``, ``.nii.gz``...) so that
    writers choosing the format from the name (SimpleITK) work. The body must close the file
    it writes. After the body the file is fsync'ed, made ``0644`` and renamed; on any
    exception it is removed and the exception propagates.
    """
    path = Path(os.path.abspath(os.fspath(path)))
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".part" + _suffix(path.name), dir=path.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable (POSIX); a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

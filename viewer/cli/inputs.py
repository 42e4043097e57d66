"""What several ``radview`` commands share: the error for bad arguments, reading the series
of a PATH argument, picking one series, and checking an output file before any work.

Only ``viewer.core`` is imported here (no Qt, VTK or TensorFlow): ``radview info`` and
``convert`` must start fast.
"""

from __future__ import annotations

import os
import sys

from viewer.core.study_index import PathError, StudyIndex, build_index, load_series

PROG = "radview"


class UsageError(Exception):
    """The arguments are wrong: ``main`` prints it on one line and exits 2."""


def pick_series(index: StudyIndex, uid: str | None):
    """The series ``--series UID`` names, else the only series of ``index`` (its largest
    stack, with a warning, when it split); a PathError when there are several or none."""
    if uid is not None:
        return index.find(uid)
    usable = [s for s in index.series if not s.status.startswith("error")]
    bases = {s.uid.split("#")[0] for s in usable}
    if len(bases) > 1:
        raise PathError(
            f"{index.root} holds {len(bases)} series: choose one with --series UID "
            f"(see {PROG} info)"
        )
    if not usable:
        errors = [s.status for s in index.series]
        raise PathError(
            f"no loadable image series in {index.root}" + (f" ({errors[0]})" if errors else "")
        )
    if len(usable) > 1:
        print(
            f"{PROG}: warning: series split into {len(usable)} stacks; writing the largest "
            f"(choose another with --series UID#n)",
            file=sys.stderr,
        )
    return index.find(None)


def check_out_file(out: str, suffixes: tuple[str, ...]) -> None:
    """``--out`` ends in one of ``suffixes`` and its folder exists and is writable."""
    if not out.lower().endswith(suffixes):
        raise UsageError(f"--out must end in {' or '.join(suffixes)}: {out}")
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder):
        raise PathError(f"output folder does not exist: {folder}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PathError(f"output folder is not writable: {folder}")
    if os.path.isdir(out):
        raise PathError(f"--out is a folder: {out}")


def series_entries(path: str):
    """Yield (source, entry, error) for each image series of one PATH argument (headers only).

    ``entry`` is the series' SeriesEntry (``error`` None; load it with :func:`load_entry`),
    or None with a one-line ``error``; ``source`` is the series' first file, or PATH
    (absolute) when nothing could be read. Files of a folder that hold no image (except
    DICOMDIR) are reported as errors too.
    """
    absolute = os.path.abspath(path)
    if not os.path.exists(path):
        yield absolute, None, "no such file or folder"
        return
    try:
        index = build_index(path, workers=os.cpu_count() or 1)
    except (PathError, OSError, ValueError) as exc:
        yield absolute, None, one_line(exc)
        return
    for skipped in index.skipped:
        if os.path.basename(skipped.path).upper() != "DICOMDIR":
            yield skipped.path, None, skipped.reason
    if not index.series and not index.skipped:
        yield absolute, None, "no image found"
    for entry in index.series:
        yield (entry.files[0] if entry.files else absolute), entry, None


def load_entry(entry, processes: int = 1):
    """(Volume, None), or (None, one-line reason) when the series cannot be decoded."""
    try:
        return load_series(entry, processes=processes), None
    except MemoryError:
        return None, "not enough memory to load this series"
    except Exception as exc:  # noqa: BLE001 - a bad file is reported, the rest goes on
        return None, one_line(exc)


def make_out_dir(option: str, folder: str) -> None:
    """Create the output folder of ``option`` (``--out-dir``...) or raise a one-line PathError."""
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise PathError(f"cannot create {option} {folder}: {exc.strerror}") from None


def one_line(exc: BaseException) -> str:
    """The first non-empty line of ``exc`` (at most 300 characters), or its type's name."""
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    return (lines[0] if lines else type(exc).__name__)[:300]

"""What radview refuses to read or allocate, checked before any large allocation.

A DICOM header can claim anything: 10⁹ rows, a million frames, a deflated dataset that
inflates to terabytes, a JPEG frame far larger than the image it belongs to. Every size a
file claims is checked here against fixed limits (header scan and planning) and against
the memory this machine has free (before a series is loaded), so bad input ends in one
clear :class:`LimitError` message instead of a crash, a hang or the machine swapping.
"""

from __future__ import annotations

import math
import os

#: Rows and Columns are US (unsigned 16-bit) in DICOM
MAX_SIDE = 65535
#: frames in one file: far above any radiology multi-frame (cine, tomosynthesis, enhanced CT)
MAX_FRAMES = 100_000
#: decoded pixel bytes one file may claim (all frames together)
MAX_FILE_BYTES = 16 * 1024**3
#: voxels one stack (series) may claim; planning refuses larger ones up front
MAX_VOXELS = 4 * 1024**3
#: inflated size of the header of a deflated file (everything before the pixel data)
MAX_HEADER_BYTES = 64 * 1024**2
#: memory kept free when loading: this fraction of what is needed, plus RESERVE_BYTES
MEMORY_MARGIN = 0.10
RESERVE_BYTES = 256 * 1024**2
BITS_ALLOCATED = (1, 8, 16, 32, 64)


class LimitError(ValueError):
    """The input claims more than radview will read or allocate (message is one line)."""


def one_line(what: BaseException | str, limit: int = 200) -> str:
    """A printable one-line message: the first non-empty line (and the next when the first
    ends with a colon), control characters and other unprintable ones shown as ``?``, at
    most ``limit`` characters (header values of a damaged file can hold anything)."""
    text = str(what)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    text = lines[0] if lines else (type(what).__name__ if isinstance(what, BaseException) else "")
    if text.endswith(":") and len(lines) > 1:  # "... raised by all available plugins:"
        text = f"{text} {lines[1]}"
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def fmt_bytes(n: float) -> str:
    """1536 -> '1.5 KB', 2.5e9 -> '2.3 GB' (binary units, as memory is counted)."""
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1024 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PB"  # pragma: no cover - loop always returns


def pixel_bytes(rows: int, columns: int, samples: int, bits: int, frames: int = 1) -> int:
    """Bytes of decoded pixel data (bits packed for BitsAllocated 1)."""
    return math.ceil(rows * columns * samples * frames * bits / 8)


def check_image_header(
    rows: int, columns: int, samples: int, bits_allocated: int, frames: int
) -> None:
    """Refuse impossible or oversized image sizes before anything is allocated.

    Raises :class:`LimitError`, e.g. "claims 1000000000×512 pixels (…); larger than
    radview's limit of 65535 pixels a side".
    """
    if rows <= 0 or columns <= 0:
        raise LimitError(f"invalid image size {rows}×{columns} (rows×columns)")
    if rows > MAX_SIDE or columns > MAX_SIDE:
        raise LimitError(
            f"claims {rows}×{columns} pixels "
            f"({fmt_bytes(pixel_bytes(rows, columns, max(samples, 1), 8))} a frame at 8 bits); "
            f"larger than radview's limit of {MAX_SIDE} pixels a side"
        )
    if samples not in (1, 3, 4):
        raise LimitError(f"unsupported SamplesPerPixel {samples}")
    if bits_allocated not in BITS_ALLOCATED:
        raise LimitError(f"unsupported BitsAllocated {bits_allocated}")
    if frames <= 0:
        raise LimitError(f"invalid NumberOfFrames {frames}")
    if frames > MAX_FRAMES:
        raise LimitError(
            f"claims {frames} frames; larger than radview's limit of {MAX_FRAMES} frames a file"
        )
    nbytes = pixel_bytes(rows, columns, samples, bits_allocated, frames)
    if nbytes > MAX_FILE_BYTES:
        raise LimitError(
            f"claims {rows}×{columns}×{frames} pixels ({fmt_bytes(nbytes)}); larger than "
            f"radview's limit of {fmt_bytes(MAX_FILE_BYTES)} a file"
        )


# -- memory of this machine ------------------------------------------------------------------
def _meminfo() -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                key, _, rest = line.partition(":")
                parts = rest.split()
                if parts and parts[0].isdigit():
                    out[key] = int(parts[0]) * 1024
    except OSError:
        pass
    return out


def _cgroup_free() -> int | None:
    """Room left under a cgroup v2 memory limit (containers), None when unlimited."""
    try:
        with open("/sys/fs/cgroup/memory.max") as fh:
            limit = fh.read().strip()
        with open("/sys/fs/cgroup/memory.current") as fh:
            current = int(fh.read().strip())
    except (OSError, ValueError):
        return None
    if not limit.isdigit():
        return None
    return max(0, int(limit) - current)


def total_memory() -> int | None:
    """Physical memory of this machine in bytes (None if it cannot be told)."""
    try:
        import psutil  # optional

        return int(psutil.virtual_memory().total)
    except Exception:  # noqa: BLE001 - not installed or not supported here
        pass
    total = _meminfo().get("MemTotal")
    if total is None and hasattr(os, "sysconf"):
        try:
            total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError):
            total = None
    return total


def available_memory() -> int | None:
    """Bytes that can be allocated now without swapping (None if it cannot be told)."""
    free = None
    try:
        import psutil  # optional

        free = int(psutil.virtual_memory().available)
    except Exception:  # noqa: BLE001 - not installed or not supported here
        free = _meminfo().get("MemAvailable")
        if free is None and hasattr(os, "sysconf"):
            try:
                free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
            except (OSError, ValueError):
                free = None
    room = _cgroup_free()
    if room is not None:
        free = room if free is None else min(free, room)
    return free


def check_memory(nbytes: int, what: str) -> None:
    """Refuse to allocate ``nbytes`` for ``what`` when the machine cannot hold it.

    Two messages: larger than this machine's memory at all, or more than is free now
    (with a margin). Nothing is refused when the free memory cannot be told.
    """
    total = total_memory()
    if total is not None and nbytes > total * (1 - MEMORY_MARGIN):
        raise LimitError(
            f"{what} needs {fmt_bytes(nbytes)} of memory; too big for this machine "
            f"({fmt_bytes(total)} in all)"
        )
    free = available_memory()
    if free is not None and nbytes * (1 + MEMORY_MARGIN) + RESERVE_BYTES > free:
        spare = f" (and {fmt_bytes(RESERVE_BYTES)} kept spare)" if nbytes < free else ""
        raise LimitError(
            f"{what} needs {fmt_bytes(nbytes)} of memory{spare} and only {fmt_bytes(free)} is "
            "free; close other series or programs and try again"
        )

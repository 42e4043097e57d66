"""Build a :class:`Volume` from a planned :class:`Stack`.

Memory: the output array is allocated once with its final dtype and each decoded plane is
rescaled straight into its slot; no whole-volume int32/float64 temporaries. Planes decode in
parallel threads (file reads and the C decoders release the GIL).
"""

from __future__ import annotations

import mmap
import multiprocessing as mp
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from pydicom.pixels import apply_modality_lut

from viewer.core.dicom.headers import read_header_dataset
from viewer.core.dicom.limits import check_memory
from viewer.core.dicom.pixels import decode_plane
from viewer.core.dicom.series import Stack
from viewer.core.volume import Volume

_INT16 = np.iinfo(np.int16)
_UINT16 = np.iinfo(np.uint16)
_INT32 = np.iinfo(np.int32)


class LoadCancelled(Exception):
    pass


class _Overflow(Exception):
    pass


#: output types tried in turn when rescaled values do not fit (exact first, then float)
_WIDER = (np.dtype(np.int32), np.dtype(np.int64), np.dtype(np.float64))


def _stored_range(stack: Stack) -> tuple[int, int]:
    f = stack.first
    bits = min(f.bits_stored, f.bits_allocated)
    if f.pixel_representation:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def output_dtype(stack: Stack) -> np.dtype:
    """Smallest dtype holding the modality values (int16 for CT when it fits)."""
    f = stack.first
    if stack.components == 3:
        if f.photometric.startswith("PALETTE"):  # LUT entries may be 16-bit
            return np.dtype(np.uint16)
        if f.bits_allocated <= 8:
            return np.dtype(np.uint8)
        return np.dtype(np.uint16 if f.bits_allocated <= 16 else np.uint32)
    if any(s.file.has_modality_lut for s in stack.slices):
        return np.dtype(np.int32)  # LUT output: up to 16 bits, signedness from the LUT
    slopes = {s.slope for s in stack.slices}
    intercepts = {s.intercept for s in stack.slices}
    if any(v != int(v) for v in slopes | intercepts):
        return np.dtype(np.float32)
    lo, hi = _stored_range(stack)
    outs = [v * m + b for m in slopes for b in intercepts for v in (lo, hi)]
    lo, hi = min(outs), max(outs)
    if lo >= _INT16.min and hi <= _INT16.max:
        return np.dtype(np.int16)
    if lo >= 0 and hi <= _UINT16.max:
        return np.dtype(np.uint16)
    # values could exceed int16 in theory (signed 16-bit + intercept): try int16, widen if not
    return np.dtype(np.int16)


def volume_bytes(stack: Stack, dtype: np.dtype) -> int:
    """Bytes of the array :func:`load_stack` allocates for ``stack`` in ``dtype``."""
    return int(np.prod(stack.shape, dtype=np.int64)) * np.dtype(dtype).itemsize


def _dims(shape) -> str:
    """Columns×rows×slices (and ×3 for colour), as the CLI prints sizes."""
    text = "×".join(str(v) for v in reversed(shape[:3]))
    return text + " RGB" if len(shape) == 4 else text


def load_stack(
    stack: Stack,
    progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    workers: int | None = None,
    processes: int = 1,
) -> Volume:
    """Decode every plane of ``stack`` into one volume in modality units (HU for CT).

    Uncompressed planes are read by ``workers`` threads (I/O releases the GIL). Compressed
    planes hold the GIL while decoding, so with ``processes`` > 1 they are decoded by that
    many forked processes writing into one shared anonymous mapping (no copies); only
    callers without GUI threads (the CLI) should ask for processes.

    Before anything is allocated the volume's size is compared with the memory free on
    this machine (:func:`~viewer.core.dicom.limits.check_memory`): a series that would not
    fit raises :class:`~viewer.core.dicom.limits.LimitError` with the sizes in its message.
    ``cancelled()`` is polled after every plane (``LoadCancelled``).
    """
    if stack.error:
        raise ValueError(stack.error)
    dtype = output_dtype(stack)
    # values outside the chosen integer type after rescale: again, in a wider type
    wider = [d for d in _WIDER if d.kind == "f" or d.itemsize > dtype.itemsize]
    for n, out_dtype in enumerate([dtype, *wider] if dtype.kind in "iu" else [dtype]):
        what = f"this series ({_dims(stack.shape)} {out_dtype})"
        check_memory(volume_bytes(stack, out_dtype), what)
        try:
            array = _decode_all(stack, out_dtype, progress, cancelled, workers, processes)
            break
        except _Overflow:
            if n == len(wider):  # pragma: no cover - float64 never overflows
                raise ValueError("pixel values out of range after rescale") from None
    f = stack.first
    return Volume(
        array=array,
        geometry=stack.geometry,
        modality=f.modality,
        description=f.description,
        series_uid=stack.uid,
        invert_display=f.photometric == "MONOCHROME1",
        window=f.window or default_window(f.modality, array),
        files=[s.file.path for s in stack.slices],
        warnings=list(stack.warnings),
        header={
            "patient_name": f.patient_name,
            "patient_id": f.patient_id,
            "study_uid": f.study_uid,
            "study_date": f.study_date,
            "study_description": f.study_description,
            "series_number": f.series_number,
            "sop_class": f.sop_class,
        },
    )


def _decode_into(stack: Stack, out: np.ndarray, k: int) -> None:
    """Decode plane k of ``stack`` and store its modality values in ``out[k]``."""
    s = stack.slices[k]
    target = out[k]
    try:
        raw = decode_plane(s.file, s.frame, into=target if stack.components == 1 else None)
    except Exception as exc:  # noqa: BLE001 - reported with the file name
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{os.path.basename(s.file.path)}: {msg}") from exc
    if raw.shape != target.shape:
        raise ValueError(
            f"{os.path.basename(s.file.path)}: decoded shape {raw.shape}, expected {target.shape}"
        )
    if stack.components == 3:
        target[...] = raw
    elif s.file.has_modality_lut:
        target[...] = apply_modality_lut(raw, read_header_dataset(s.file.path))
    elif out.dtype.kind in "iu":
        info = np.iinfo(out.dtype)
        top, bottom = (2**62, -(2**62)) if info.bits == 64 else (info.max, info.min)
        lo, hi = int(raw.min()), int(raw.max())
        a, b = sorted((lo * s.slope + s.intercept, hi * s.slope + s.intercept))
        if a < bottom or b > top:  # (float bounds: int64 keeps a margin)
            raise _Overflow()
        if s.slope != 1:
            target[...] = raw.astype(np.int64) * int(s.slope) + int(s.intercept)
        elif raw is target:
            if s.intercept:
                target += target.dtype.type(s.intercept)
        else:
            np.add(raw, int(s.intercept), out=target, dtype=np.int64, casting="unsafe")
    else:
        np.multiply(raw, s.slope, out=target, dtype=out.dtype, casting="unsafe")
        target += out.dtype.type(s.intercept)


_FORKED: tuple | None = None  # (stack, out) inherited by forked decoder processes


def _decode_chunk(ks: list[int]) -> int:
    stack, out = _FORKED
    for k in ks:
        _decode_into(stack, out, k)
    return len(ks)


def _decode_all(stack, dtype, progress, cancelled, workers, processes) -> np.ndarray:
    global _FORKED
    n = len(stack.slices)
    compressed = not all(s.file.is_native for s in stack.slices)
    forked = compressed and processes > 1 and n >= 16 and "fork" in mp.get_all_start_methods()
    if forked:
        nbytes = int(np.prod(stack.shape, dtype=np.int64)) * dtype.itemsize
        shared = mmap.mmap(-1, max(nbytes, 1))  # MAP_SHARED: children write, parent reads
        out = np.frombuffer(shared, dtype=dtype, count=nbytes // dtype.itemsize)
        out = out.reshape(stack.shape)
    else:
        out = np.empty(stack.shape, dtype=dtype)
    done = 0

    def step(count: int) -> None:
        nonlocal done
        done += count
        if progress is not None:
            progress(done, n)
        if cancelled is not None and cancelled():
            raise LoadCancelled()

    if forked:
        _FORKED = (stack, out)
        chunks = [list(range(k, min(n, k + 4))) for k in range(0, n, 4)]
        try:
            with mp.get_context("fork").Pool(processes) as pool:
                for count in pool.imap_unordered(_decode_chunk, chunks):
                    step(count)
        finally:
            _FORKED = None
        return out
    workers = workers or min(4, os.cpu_count() or 1)
    if n < 8 or workers == 1:
        for k in range(n):
            _decode_into(stack, out, k)
            step(1)
        return out
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_decode_into, stack, out, k) for k in range(n)]
        try:
            for fut in futures:
                fut.result()
                step(1)
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise
    return out


def default_window(modality: str, array: np.ndarray) -> tuple[float, float]:
    """Window (centre, width) when the file gives none: mediastinum for CT, else robust range."""
    if modality == "CT":
        return 40.0, 400.0
    sample = array[..., ::4, ::4] if array.ndim >= 3 else array
    lo, hi = np.percentile(sample, [0.5, 99.5])
    if hi <= lo:
        hi = lo + 1
    return float((lo + hi) / 2), float(hi - lo)


def stored_plane_ranges(stack: Stack):
    """Where each plane's stored values sit on disk, if they can be copied without decoding.

    Returns ``(dtype, slope, intercept, [(path, byte offset), ...])`` in k order when every
    plane is native little-endian grayscale with BitsStored == BitsAllocated and one shared
    rescale, so a writer that can record a linear scaling (NIfTI scl_slope/scl_inter) may
    copy the bytes file-to-file; None otherwise.
    """
    from viewer.core.dicom.pixels import _native_dtype

    f = stack.first
    dtype = _native_dtype(f)
    if stack.error or dtype is None or stack.components != 1:
        return None
    rescale = {(s.slope, s.intercept) for s in stack.slices}
    if len(rescale) != 1:
        return None
    nbytes = f.rows * f.columns * dtype.itemsize
    ranges = []
    for s in stack.slices:
        p = s.file
        if (
            not p.is_native
            or _native_dtype(p) != dtype
            or p.bits_stored != p.bits_allocated
            or (p.rows, p.columns) != (f.rows, f.columns)
            or (p.pixel_length or 0) < (s.frame + 1) * nbytes
        ):
            return None
        ranges.append((p.path, p.pixel_offset + s.frame * nbytes))
    slope, intercept = rescale.pop()
    return dtype, slope, intercept, ranges

"""Decode one image plane (a file, or a frame of a multi-frame file) to a numpy array.

Native little-endian grayscale data is read straight from the file at the offset found
during the header scan (no dataset parse, one buffer). Everything else — compressed
syntaxes (JPEG baseline/lossless, JPEG-LS, JPEG 2000, RLE via pylibjpeg and gdcm),
big-endian, deflated, colour and palette images — goes through pydicom's pixel pipeline.

Nothing is decoded past what the header declares: a compressed frame whose codestream
claims another size is refused before a decoder sees it (:mod:`~viewer.core.dicom.codestream`),
a deflated dataset is inflated at most to its declared pixel size
(:mod:`~viewer.core.dicom.inflate`), and every failure is one :class:`DecodeError`.
"""

from __future__ import annotations

import numpy as np
from pydicom.encaps import get_frame
from pydicom.pixels import apply_color_lut, get_decoder
from pydicom.pixels import pixel_array as pydicom_pixel_array

from viewer.core.dicom.codestream import J2K_SYNTAXES, JPEG_SYNTAXES, check_frame
from viewer.core.dicom.headers import DEFLATED_SYNTAX, read_header_dataset
from viewer.core.dicom.inflate import read_deflated
from viewer.core.dicom.limits import (
    MAX_HEADER_BYTES,
    LimitError,
    check_image_header,
    check_memory,
    one_line,
    pixel_bytes,
)
from viewer.core.dicom.records import FileHeader

_CHECKED = JPEG_SYNTAXES | J2K_SYNTAXES
#: Pillow first: same libjpeg-turbo colour conversion as GDCM (pylibjpeg's YBR 4:2:2
#: upsampling differs by a few levels)
_PLUGIN_ORDER = ("pillow", "pylibjpeg", "pyjpegls", "pydicom")
_CHECK_MEMORY_ABOVE = 64 * 1024**2  # planes larger than this are checked against free memory


class DecodeError(ValueError):
    """A plane could not be decoded; the message is one line, fit to show a user."""


def _native_dtype(f: FileHeader) -> np.dtype | None:
    if f.samples != 1 or not f.photometric.startswith("MONOCHROME"):
        return None
    signed = {8: "i1", 16: "i2", 32: "i4"}
    kinds = signed if f.pixel_representation else {8: "u1", 16: "u2", 32: "u4"}
    code = kinds.get(f.bits_allocated)
    return np.dtype("<" + code) if code else None


def _fix_bits_stored(arr: np.ndarray, f: FileHeader) -> np.ndarray:
    """Drop bits above BitsStored (old files keep overlays there) and sign-extend."""
    extra = f.bits_allocated - f.bits_stored
    if extra <= 0 or f.bits_allocated > 32:
        return arr
    if f.pixel_representation:
        return (arr << extra) >> extra
    return arr & ((1 << f.bits_stored) - 1)


def decode_plane(f: FileHeader, frame: int, into: np.ndarray | None = None) -> np.ndarray:
    """Stored values of one plane: (rows, columns) or (rows, columns, 3) for colour.

    Colour data comes back as RGB (YBR converted, palette applied). When ``into`` is given
    and the file holds exactly that dtype uncompressed, the bytes are read straight into it
    and ``into`` is returned. Any decoding problem raises :class:`DecodeError` (a
    :class:`LimitError` when the data claims more than its header), with a one-line message;
    ``MemoryError`` passes through.
    """
    if not 0 <= frame < max(1, f.number_of_frames):
        raise DecodeError(f"frame {frame + 1} asked of an image with {f.number_of_frames}")
    check_image_header(f.rows, f.columns, f.samples, f.bits_allocated, f.number_of_frames)
    samples = max(f.samples, 3 if _is_palette(f) else 1)
    plane = 2 * pixel_bytes(f.rows, f.columns, samples, max(8, f.bits_allocated))
    if plane > _CHECK_MEMORY_ABOVE:  # the decoder's buffer and the array returned
        check_memory(plane, f"one {f.rows}×{f.columns} image plane")
    try:
        arr = _decode(f, frame, into)
    except (DecodeError, LimitError, MemoryError, KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - decoders raise anything on bad data,
        # even BaseException: pylibjpeg-rle's Rust panics (an RLE segment longer than the
        # header's rows×columns) arrive as pyo3's PanicException
        text = _one_line(exc)
        if not isinstance(exc, Exception):
            text = f"the decoder failed on this data ({text})"
        raise DecodeError(text) from exc
    expected = (f.rows, f.columns) if arr.ndim == 2 else (f.rows, f.columns, 3)
    if arr.shape != expected:
        raise DecodeError(
            f"decoded plane is {'×'.join(map(str, arr.shape))}, the header says "
            f"{'×'.join(map(str, expected))}"
        )
    return arr


def _one_line(exc: BaseException) -> str:
    return one_line(exc, 300)


def _decode(f: FileHeader, frame: int, into: np.ndarray | None) -> np.ndarray:
    dtype = _native_dtype(f)
    if f.is_native and dtype is not None:
        count = f.rows * f.columns
        nbytes = count * dtype.itemsize
        if f.pixel_length is not None and f.pixel_length < (frame + 1) * nbytes:
            raise DecodeError(
                f"pixel data too short: {f.pixel_length} bytes, expected "
                f"{f.number_of_frames * nbytes}"
            )
        direct = (
            into is not None
            and into.dtype == dtype
            and into.flags.c_contiguous
            and f.bits_stored == f.bits_allocated
        )
        arr = into if direct else np.empty((f.rows, f.columns), dtype=dtype)
        with open(f.path, "rb") as fh:
            fh.seek(f.pixel_offset + frame * nbytes)
            if fh.readinto(memoryview(arr).cast("B")) != nbytes:
                raise DecodeError("file truncated inside its pixel data")
        return arr if direct else _fix_bits_stored(arr, f)
    if f.transfer_syntax == DEFLATED_SYNTAX:  # pydicom needs the dataset: inflate, bounded
        declared = pixel_bytes(f.rows, f.columns, f.samples, f.bits_allocated, f.number_of_frames)
        if declared > _CHECK_MEMORY_ABOVE:
            check_memory(declared, "this deflated image")
        ds, _, _ = read_deflated(f.path, MAX_HEADER_BYTES + declared, stop_before_pixels=False)
        arr = ds.pixel_array
        arr = arr[frame] if f.number_of_frames > 1 else arr
        return apply_color_lut(arr, _palette_header(f)) if _is_palette(f) else arr
    if f.frames_offset is not None and f.transfer_syntax in _CHECKED:  # size check first
        with open(f.path, "rb") as fh:
            fh.seek(f.frames_offset)
            data = get_frame(fh, frame, number_of_frames=f.number_of_frames)
        check_frame(data, f.transfer_syntax, f.rows, f.columns, f.samples, frame)
    arr = _pydicom_decode(f, frame)
    return apply_color_lut(arr, _palette_header(f)) if _is_palette(f) else arr


def _plugins(transfer_syntax: str) -> list[str]:
    """pydicom decoding plugins to try, in order; GDCM only when nothing else decodes it.

    GDCM aborts the whole process on some damaged JPEG data (an uncaught C++ exception,
    found by fuzzing): the other plugins raise Python errors instead.
    """
    try:
        available = set(get_decoder(transfer_syntax).available_plugins)
    except (NotImplementedError, ValueError):
        return [""]  # no decoder registered: pydicom's own error says so
    ordered = [p for p in _PLUGIN_ORDER if p in available]
    ordered += sorted(available - set(_PLUGIN_ORDER) - {"gdcm"})
    return ordered or (["gdcm"] if "gdcm" in available else [""])


def _pydicom_decode(f: FileHeader, frame: int) -> np.ndarray:
    index = frame if f.number_of_frames > 1 else None
    # the scan's syntax also covers files without a File Meta header (ACR-NEMA style)
    options = {"transfer_syntax_uid": f.transfer_syntax} if f.transfer_syntax else {}
    errors = []
    for plugin in _plugins(f.transfer_syntax or "1.2.840.10008.1.2"):
        try:
            return pydicom_pixel_array(f.path, index=index, decoding_plugin=plugin, **options)
        except Exception as exc:  # noqa: BLE001 - the next plugin may read it
            errors.append((plugin, exc))
        # a BaseException (a decoder's Rust panic: data longer than the header's size) ends
        # the search: no other plugin is asked to make sense of it; see decode_plane
    if len(errors) == 1:
        raise errors[0][1]
    text = "; ".join(f"{name}: {_one_line(exc)}" for name, exc in errors)
    raise DecodeError(one_line(text, 400))


def _is_palette(f: FileHeader) -> bool:
    return f.photometric.startswith("PALETTE")


def _palette_header(f: FileHeader):
    """The header (no pixels) holding the palette LUTs, with 16-bit LUT data little endian.

    pydicom 3.0's apply_color_lut reads non-segmented LUT data (OW) as little endian even in
    big-endian files (OBXXXX1A_expb.dcm came out with every entry byte-swapped).
    """
    ds = read_header_dataset(f.path)
    if f.transfer_syntax == "1.2.840.10008.1.2.2":
        for colour in ("Red", "Green", "Blue", "Alpha"):
            data = f"{colour}PaletteColorLookupTableData"
            desc = f"{colour}PaletteColorLookupTableDescriptor"
            if data not in ds or desc not in ds or not isinstance(ds[data].value, bytes):
                continue
            elem = ds[data]
            entries = ds[desc].value[0] or 65536
            if len(elem.value) % 2 == 0 and len(elem.value) == 2 * entries:
                elem.value = np.frombuffer(elem.value, ">u2").astype("<u2").tobytes()
    return ds

"""Read Deflated Explicit VR Little Endian files (PS3.5 A.5) without unbounded inflation.

pydicom inflates the whole dataset of a deflated file in one ``zlib.decompress`` call:
a 10 MB file can inflate to 10 GB (a "zip bomb"). Here the dataset is inflated lazily,
as pydicom's reader asks for bytes, and never past a limit: the header scan stops at the
pixel data (and at :data:`~viewer.core.dicom.limits.MAX_HEADER_BYTES`), decoding stops at
what the header says the pixels take.
"""

from __future__ import annotations

import io
import zlib

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filereader import _read_file_meta_info, read_dataset, read_preamble

from viewer.core.dicom.limits import LimitError, fmt_bytes

_CHUNK = 64 * 1024


class BoundedInflateStream(io.RawIOBase):
    """A seekable read-only view of a raw deflate stream, inflated on demand up to ``limit``.

    Reading past ``limit`` inflated bytes raises :class:`LimitError` naming ``what``.
    Inflated bytes are kept (pydicom seeks back), so memory is bounded by ``limit``.
    """

    def __init__(self, raw, limit: int, what: str = "deflated dataset") -> None:
        super().__init__()
        self._raw = raw
        self._limit = limit
        self._what = what
        self._z = zlib.decompressobj(-zlib.MAX_WBITS)
        self._buf = bytearray()
        self._pos = 0
        self._done = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_CUR:
            offset += self._pos
        elif whence == io.SEEK_END:
            self._fill(None)
            offset += len(self._buf)
        if offset < 0:
            raise ValueError("negative seek position")
        self._pos = offset
        return self._pos

    def _fill(self, upto: int | None) -> None:
        """Inflate until ``upto`` bytes are held (None: all), the stream ends, or the limit."""
        while not self._done and (upto is None or len(self._buf) < upto):
            data = self._z.unconsumed_tail or self._raw.read(_CHUNK)
            if not data:
                self._buf += self._z.flush()
                self._done = True
                break
            room = self._limit - len(self._buf) + 1
            self._buf += self._z.decompress(data, max(1, min(room, 4 * _CHUNK)))
            if self._z.eof:
                self._done = True
            if len(self._buf) > self._limit:
                raise LimitError(
                    f"{self._what} inflates to more than {fmt_bytes(self._limit)}; "
                    "refused (possible zip bomb)"
                )

    def read(self, size: int = -1) -> bytes:
        end = None if size is None or size < 0 else self._pos + size
        self._fill(end)
        out = bytes(self._buf[self._pos : end])
        self._pos += len(out)
        return out

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


def _stop_at_pixels(tag, vr, length) -> bool:
    return tag == 0x7FE00010


def open_deflated(fh, limit: int, what: str) -> tuple[FileMetaDataset, BoundedInflateStream]:
    """File meta of an open deflated file and a bounded stream over its dataset."""
    fh.seek(0)
    read_preamble(fh, False)
    meta = _read_file_meta_info(fh)
    return meta, BoundedInflateStream(fh, limit, what)


def read_deflated(
    path: str, limit: int, *, stop_before_pixels: bool
) -> tuple[Dataset, bool, int | None]:
    """Dataset of a deflated file, inflating at most ``limit`` bytes.

    Returns (dataset with ``file_meta`` set, whether it has a PixelData element, the length
    that element claims when ``stop_before_pixels`` and it is not encapsulated, else None).
    The dataset's transfer syntax is rewritten to Explicit VR Little Endian: it is held
    inflated in memory, so pydicom's pixel handlers treat it as native data.
    """
    length = None
    with open(path, "rb") as fh:
        meta, stream = open_deflated(fh, limit, "deflated dataset")
        stop = _stop_at_pixels if stop_before_pixels else None
        ds = read_dataset(stream, False, True, stop_when=stop)
        head = stream.read(12)
        has_pixels = "PixelData" in ds or head[:4] == b"\xe0\x7f\x10\x00"
        if head[:4] == b"\xe0\x7f\x10\x00" and len(head) == 12:
            length = int.from_bytes(head[8:12], "little")
            length = None if length == 0xFFFFFFFF else length
    meta.TransferSyntaxUID = "1.2.840.10008.1.2.1"
    ds.file_meta = meta
    ds.set_original_encoding(False, True)
    return ds, has_pixels, length

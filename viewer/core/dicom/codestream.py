"""Image size written inside a compressed frame, read before the frame is decoded.

The JPEG, JPEG-LS and JPEG 2000 decoders allocate what the codestream says, not what the
DICOM header says: a 2 KB frame whose SOF claims 60000×60000 pixels made them allocate
tens of gigabytes (or abort the process). :func:`check_frame` compares the codestream's
size with the header's before any decoder sees the frame.
"""

from __future__ import annotations

from viewer.core.dicom.limits import LimitError

JPEG_SYNTAXES = {
    "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.57",
    "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81",
}  # fmt: skip
J2K_SYNTAXES = {
    "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.4.92",
    "1.2.840.10008.1.2.4.93", "1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202",
    "1.2.840.10008.1.2.4.203",
}  # fmt: skip
#: start-of-frame markers: SOF0-3, 5-7, 9-11, 13-15 (ITU T.81 B.1.1.3) and SOF55 (JPEG-LS)
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF, 0xF7}
_NO_LENGTH = {0x01, *range(0xD0, 0xDA)}  # TEM, RSTn, SOI, EOI (no length field)


def jpeg_size(data: bytes) -> tuple[int, int, int] | None:
    """(rows, columns, components) from the first SOF segment of a JPEG/JPEG-LS stream."""
    if data[:2] != b"\xff\xd8":
        return None
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _NO_LENGTH:
            i += 2
            continue
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if marker in _SOF:
            if i + 10 > n:
                return None
            rows = int.from_bytes(data[i + 5 : i + 7], "big")
            columns = int.from_bytes(data[i + 7 : i + 9], "big")
            return rows, columns, data[i + 9]
        if marker == 0xDA or length < 2:  # start of scan before any SOF
            return None
        i += 2 + length
    return None


def j2k_size(data: bytes) -> tuple[int, int, int] | None:
    """(rows, columns, components) from the SIZ segment of a JPEG 2000 codestream or JP2."""
    start = data.find(b"\xff\x4f\xff\x51", 0, 64 * 1024)
    if start < 0:
        return None
    siz = start + 4
    if siz + 38 > len(data):
        return None

    def u32(offset: int) -> int:
        return int.from_bytes(data[siz + offset : siz + offset + 4], "big")

    x, y, x0, y0 = u32(4), u32(8), u32(12), u32(16)
    components = int.from_bytes(data[siz + 36 : siz + 38], "big")
    return max(0, y - y0), max(0, x - x0), components


def check_frame(
    data: bytes, transfer_syntax: str, rows: int, columns: int, samples: int, frame: int
) -> None:
    """Raise :class:`LimitError` unless the codestream's size matches the header's.

    Only JPEG-family and JPEG 2000 syntaxes are checked (RLE output is sized by the header
    itself). A frame whose size cannot be read is refused too: a decoder would guess it.
    """
    if transfer_syntax in JPEG_SYNTAXES:
        size, kind = jpeg_size(data), "JPEG"
    elif transfer_syntax in J2K_SYNTAXES:
        size, kind = j2k_size(data), "JPEG 2000"
    else:
        return
    if size is None:
        raise LimitError(f"frame {frame + 1}: no readable {kind} image header")
    r, c, comps = size
    if (r, c) != (rows, columns) or comps > max(samples, 1):
        raise LimitError(
            f"frame {frame + 1}: the {kind} data is {r}×{c} pixels with {comps} "
            f"component(s), the header says {rows}×{columns} with {samples}; refused"
        )

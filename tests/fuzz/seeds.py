"""Small synthetic DICOM files, hostile ones included, for the hostile-input and fuzz tests.

Everything is built in memory with pydicom (no large file is ever written: a header that
*claims* a huge size is enough). Used by ``tests/core/dicom/test_hostile.py``,
``tests/core/dicom/test_fuzz.py`` and the long fuzz run ``python -m tests.fuzz.fuzz_dicom``.
"""

from __future__ import annotations

import warnings
import zlib
from io import BytesIO
from pathlib import Path

import numpy as np
import pydicom
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

DEFLATED = "1.2.840.10008.1.2.1.99"
#: pydicom test files used as fuzz seeds: one per decoding path, all under 40 KB
SEED_NAMES = (
    "CT_small.dcm", "MR_small.dcm", "MR_small_RLE.dcm", "MR_small_bigendian.dcm",
    "MR_small_jpeg_ls_lossless.dcm", "MR_small_jp2klossless.dcm", "SC_rgb_jpeg_dcmtk.dcm",
    "SC_rgb_rle_2frame.dcm", "SC_rgb_small_odd.dcm", "image_dfl.dcm", "rtdose_1frame.dcm",
    "JPEG2000.dcm", "no_meta.dcm",
)  # fmt: skip
_UID_PLACEHOLDER = "1.2.826.0.1.3680043.10.511.9.100000000"
_POS_PLACEHOLDER = "99999999"


def ct_dataset(rows: int = 8, columns: int = 8, frames: int = 1, uid_suffix: str = "1"):
    """A minimal valid CT image dataset (16-bit signed, HU rescale), pixels a ramp."""
    ds = Dataset()
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = f"1.2.826.0.1.3680043.10.511.9.2.{uid_suffix}"
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.10.511.9.3"
    ds.SeriesInstanceUID = "1.2.826.0.1.3680043.10.511.9.4"
    ds.Modality = "CT"
    ds.PatientName = "Hostile^Test"
    ds.PatientID = "H1"
    ds.ImagePositionPatient = [0, 0, 0]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [0.5, 0.5]
    ds.SliceThickness = 1
    ds.Rows, ds.Columns = rows, columns
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation = 1
    ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
    if frames > 1:
        ds.NumberOfFrames = frames
    pixels = np.arange(rows * columns * frames, dtype="<i2") % 2000
    ds.PixelData = pixels.tobytes()
    return ds


def _meta(ds: Dataset, transfer_syntax: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = transfer_syntax
    return meta


def body_bytes(ds: Dataset) -> bytes:
    """The dataset encoded explicit VR little endian, without preamble or File Meta."""
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, False
    write_dataset(fp, ds)
    return fp.getvalue()


def file_bytes(ds: Dataset, transfer_syntax: str = ExplicitVRLittleEndian, body=None) -> bytes:
    """Preamble, File Meta and ``body`` (default: the dataset explicit VR LE, deflated if
    ``transfer_syntax`` says so; a body given is written as it is)."""
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, False
    fp.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(fp, _meta(ds, transfer_syntax), enforce_standard=True)
    if body is None:
        body = body_bytes(ds)
        if transfer_syntax == DEFLATED:
            z = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
            body = z.compress(body) + z.flush()
    return fp.getvalue() + body


def element(tag: int, vr: bytes, value: bytes, length: int | None = None) -> bytes:
    """One explicit VR little endian element; ``length`` overrides the written length."""
    group, elem = tag >> 16, tag & 0xFFFF
    head = group.to_bytes(2, "little") + elem.to_bytes(2, "little") + vr
    n = len(value) if length is None else length
    if vr in (b"OB", b"OW", b"OF", b"SQ", b"UT", b"UN", b"UC", b"UR", b"OL", b"OD"):
        return head + b"\0\0" + n.to_bytes(4, "little") + value
    return head + n.to_bytes(2, "little") + value


# -- hostile files ---------------------------------------------------------------------------
def claims_rows(rows: int = 10**9, columns: int = 512, frames: int = 1) -> bytes:
    """A file whose Rows is written as UL (explicit VR says so) claiming ``rows`` rows."""
    ds = ct_dataset()
    del ds.PixelData
    if frames != 1:
        ds.NumberOfFrames = frames
    body = body_bytes(ds)
    rows_elem = element(0x00280010, b"US", (8).to_bytes(2, "little"))
    cols_elem = element(0x00280011, b"US", (8).to_bytes(2, "little"))
    body = body.replace(rows_elem, element(0x00280010, b"UL", rows.to_bytes(4, "little")))
    body = body.replace(cols_elem, element(0x00280011, b"UL", columns.to_bytes(4, "little")))
    body += element(0x7FE00010, b"OW", b"\0" * 128)
    return file_bytes(ds, body=body)


def compressed_claim(rows: int, columns: int, z: float = 0.0, uid_suffix: str = "1") -> bytes:
    """A JPEG Lossless file claiming rows×columns whose one fragment is an empty JPEG."""
    ds = ct_dataset(uid_suffix=uid_suffix)
    del ds.PixelData
    ds.Rows, ds.Columns = rows, columns
    ds.ImagePositionPatient = [0, 0, z]
    fragments = (
        b"\xfe\xff\x00\xe0" + bytes(4)  # empty Basic Offset Table
        + b"\xfe\xff\x00\xe0" + (4).to_bytes(4, "little") + b"\xff\xd8\xff\xd9"
        + b"\xfe\xff\xdd\xe0" + bytes(4)  # sequence delimiter
    )  # fmt: skip
    body = body_bytes(ds) + element(0x7FE00010, b"OB", fragments, length=0xFFFFFFFF)
    return file_bytes(ds, "1.2.840.10008.1.2.4.70", body=body)


def deflate_bomb(inflated: int, where: str = "header") -> bytes:
    """A deflated 8×8 CT whose dataset inflates to about ``inflated`` bytes of zeros.

    ``where="header"``: the zeros are a private OB element before the pixel data;
    ``where="pixels"``: the PixelData element itself is that long;
    ``where="trailer"``: they are Data Set Trailing Padding after normal pixel data.
    """
    ds = ct_dataset()
    del ds.PixelData
    z = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    out = [z.compress(body_bytes(ds))]
    if where == "header":
        out.append(z.compress(element(0x00291010, b"OB", b"", length=inflated)))
    elif where == "pixels":
        out.append(z.compress(element(0x7FE00010, b"OW", b"", length=inflated)))
    else:
        out.append(z.compress(element(0x7FE00010, b"OW", bytes(128))))
        out.append(z.compress(element(0xFFFCFFFC, b"OB", b"", length=inflated)))
    chunk = bytes(1 << 20)
    left = inflated
    while left > 0:
        out.append(z.compress(chunk[: min(left, len(chunk))]))
        left -= len(chunk)
    if where == "header":
        out.append(z.compress(element(0x7FE00010, b"OW", bytes(128))))
    out.append(z.flush())
    return file_bytes(ds, DEFLATED, body=b"".join(out))


def codestream_bomb(name: str, rows: int = 60000, columns: int = 60000) -> bytes:
    """A pydicom test file whose first JPEG/JPEG 2000 frame header claims rows×columns."""
    data = bytearray(testdata_bytes(name))
    siz = data.find(b"\xff\x4f\xff\x51")
    if siz >= 0:  # JPEG 2000 SIZ: Xsiz, Ysiz (offsets 0 stay)
        data[siz + 8 : siz + 12] = columns.to_bytes(4, "big")
        data[siz + 12 : siz + 16] = rows.to_bytes(4, "big")
        return bytes(data)
    soi = data.find(b"\xff\xd8\xff")
    for i in range(soi, len(data) - 9):
        if data[i] == 0xFF and data[i + 1] in (0xC0, 0xC1, 0xC3, 0xF7):
            data[i + 5 : i + 7] = rows.to_bytes(2, "big")
            data[i + 7 : i + 9] = columns.to_bytes(2, "big")
            return bytes(data)
    raise ValueError(f"no frame header found in {name}")


def with_rows(name: str, rows: int) -> bytes:
    """A pydicom test file (explicit VR little endian File Meta) with its Rows changed."""
    data = testdata_bytes(name)
    at = data.find(b"\x28\x00\x10\x00US\x02\x00")
    if at < 0:
        raise ValueError(f"no explicit VR Rows element in {name}")
    return data[: at + 8] + rows.to_bytes(2, "little") + data[at + 10 :]


def write_many(folder: Path, count: int) -> list[Path]:
    """``count`` distinct one-slice CT files (8×8) in ``folder``, fast (one template)."""
    ds = ct_dataset()
    ds.SOPInstanceUID = _UID_PLACEHOLDER
    ds.ImagePositionPatient = ["0", "0", _POS_PLACEHOLDER]
    template = file_bytes(ds)
    uid, pos = _UID_PLACEHOLDER.encode(), _POS_PLACEHOLDER.encode()
    assert template.count(uid) == 2 and template.count(pos) == 1
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(count):
        path = folder / f"im{k:06d}.dcm"
        data = template.replace(uid, uid[:-9] + f"1{k:08d}".encode())
        path.write_bytes(data.replace(pos, f"{k:08d}".encode()))
        paths.append(path)
    return paths


# -- seeds -----------------------------------------------------------------------------------
def testdata_bytes(name: str) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = get_testdata_file(name, download=False)
    if path is None:
        raise FileNotFoundError(f"pydicom test file {name} is not installed")
    return Path(path).read_bytes()


def synthetic_seeds() -> dict[str, bytes]:
    """Small files for code paths the pydicom seeds miss (multi-frame, deflated, 8-bit)."""
    multi = ct_dataset(4, 6, frames=3)
    eight = ct_dataset(5, 7)
    eight.BitsAllocated, eight.BitsStored, eight.HighBit, eight.PixelRepresentation = 8, 8, 7, 0
    eight.PixelData = bytes(range(35)) + b"\0"
    return {
        "ct.dcm": file_bytes(ct_dataset()),
        "multiframe.dcm": file_bytes(multi),
        "deflated.dcm": file_bytes(ct_dataset(6, 6), DEFLATED),
        "u8.dcm": file_bytes(eight),
        "claims_rows.dcm": claims_rows(),
    }


def seed_files() -> dict[str, bytes]:
    """Every seed available here: name -> bytes (pydicom files not installed are left out)."""
    seeds = {}
    for name in SEED_NAMES:
        try:
            seeds[name] = testdata_bytes(name)
        except FileNotFoundError:
            continue
    seeds.update(synthetic_seeds())
    return seeds


def read_back(data: bytes) -> Dataset:
    """pydicom's reading of ``data`` (for checks in tests)."""
    return pydicom.dcmread(BytesIO(data), force=True)

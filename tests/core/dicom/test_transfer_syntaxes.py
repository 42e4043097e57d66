"""Every common transfer syntax, decoded through build_index + load_series, against a reference.

A reference is the same image stored uncompressed (decoded by radview's own native reader,
which ``test_reference_is_pydicoms_modality_value`` checks against pydicom), the decoded
twin of a lossy file that pydicom-data ships (``*_UNCI.dcm`` is ``*_J2KI.dcm`` decoded), or
an independent decoder plugin. Lossy syntaxes are compared with a tolerance that still
fails on a wrong colour space, a byte swap or a frame mix-up.
"""

from __future__ import annotations

import warnings
import zlib
from dataclasses import dataclass

import numpy as np
import pydicom
import pytest
from pydicom.encaps import generate_frames
from pydicom.pixels import apply_color_lut, apply_rescale, pixel_array

IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
DEFLATED_LE = "1.2.840.10008.1.2.1.99"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
JPEG_EXTENDED = "1.2.840.10008.1.2.4.51"
JPEG_LOSSLESS_SV1 = "1.2.840.10008.1.2.4.70"
JPEG_LS_LOSSLESS = "1.2.840.10008.1.2.4.80"
JPEG_LS_NEAR = "1.2.840.10008.1.2.4.81"
J2K_LOSSLESS = "1.2.840.10008.1.2.4.90"
J2K = "1.2.840.10008.1.2.4.91"
RLE = "1.2.840.10008.1.2.5"


@dataclass(frozen=True)
class Case:
    id: str
    name: str  # file under test
    syntax: str  # its transfer syntax (checked, so a case cannot silently test another)
    reference: str  # uncompressed twin, or "plugin:<name>" for an independent decoder
    max_abs: float = 0.0  # largest allowed |difference| (0: bit-exact)
    mean_abs: float = 0.0  # largest allowed mean |difference|


CASES = [
    # 16-bit signed MR, single frame
    Case("implicit_vr_le", "MR_small_implicit.dcm", IMPLICIT_LE, "MR_small.dcm"),
    Case("explicit_vr_be", "MR_small_bigendian.dcm", EXPLICIT_BE, "MR_small.dcm"),
    Case("rle", "MR_small_RLE.dcm", RLE, "MR_small.dcm"),
    Case("j2k_lossless", "MR_small_jp2klossless.dcm", J2K_LOSSLESS, "MR_small.dcm"),
    Case("jpeg_ls_lossless", "MR_small_jpeg_ls_lossless.dcm", JPEG_LS_LOSSLESS, "MR_small.dcm"),
    # CT in HU (RescaleIntercept -1024 applied to both sides)
    Case("j2k_lossless_ct_hu", "693_J2KR.dcm", J2K_LOSSLESS, "693_UNCR.dcm"),
    Case("j2k_lossy_ct_hu", "693_J2KI.dcm", J2K, "693_UNCI.dcm"),
    # CR, MONOCHROME1, 1955 x 1841
    Case("j2k_lossless_cr", "RG1_J2KR.dcm", J2K_LOSSLESS, "RG1_UNCR.dcm"),
    Case("j2k_lossy_cr", "RG1_J2KI.dcm", J2K, "RG1_UNCI.dcm"),
    # lossy against the original: same image within 2 % of its 25605 range
    Case("j2k_lossy_cr_vs_original", "RG1_J2KI.dcm", J2K, "RG1_UNCR.dcm", 512, 64),
    # MR with a fractional RescaleSlope: float32 modality values
    Case("j2k_lossless_float_rescale", "MR2_J2KR.dcm", J2K_LOSSLESS, "MR2_UNCR.dcm"),
    # JPEG lossless process 14 SV1: no uncompressed twin; two other decoders agree
    Case("jpeg_lossless_16bit", "JPEG-LL.dcm", JPEG_LOSSLESS_SV1, "plugin:gdcm"),
    Case("jpeg_lossless_16bit_b", "JPEG-LL.dcm", JPEG_LOSSLESS_SV1, "plugin:pylibjpeg"),
    Case("jpeg_lossless_8bit", "JPGLosslessP14SV1_1s_1f_8b.dcm", JPEG_LOSSLESS_SV1, "plugin:gdcm"),
    Case("jpeg_lossless_rgb", "SC_rgb_jpeg_gdcm.dcm", JPEG_LOSSLESS_SV1, "SC_rgb.dcm"),
    # JPEG extended, 12-bit lossy, against the lossless encoding of the same image
    Case("jpeg_extended_12bit", "JPGExtended.dcm", JPEG_EXTENDED, "JPEG-LL.dcm", 48, 4),
    # JPEG baseline: YBR_FULL, RGB (no colour transform), YBR_FULL_422, multi-frame
    Case("jpeg_baseline_ybr", "SC_rgb_jpeg_dcmtk.dcm", JPEG_BASELINE, "SC_rgb.dcm", 8, 1),
    Case("jpeg_baseline_rgb", "SC_rgb_dcmtk_+eb+cr.dcm", JPEG_BASELINE, "SC_rgb.dcm", 4, 0.5),
    Case("jpeg_baseline_422", "SC_rgb_dcmtk_+eb+cy+s2.dcm", JPEG_BASELINE, "SC_rgb.dcm", 8, 1),
    Case("jpeg_baseline_30f", "examples_ybr_color.dcm", JPEG_BASELINE, "plugin:pylibjpeg", 4, 0.1),
    # JPEG-LS near-lossless: the error bound is the NEAR parameter (checked separately)
    Case("jpeg_ls_near_rgb", "SC_rgb_jls_lossy_line.dcm", JPEG_LS_NEAR, "SC_rgb.dcm", 2, 1),
    # JPEG 2000 colour: reversible (YBR_RCT) and irreversible (YBR_ICT) colour transforms
    Case("j2k_lossless_rgb", "US1_J2KR.dcm", J2K_LOSSLESS, "US1_UNCR.dcm"),
    Case("j2k_lossy_rgb", "US1_J2KI.dcm", J2K, "US1_UNCI.dcm"),
    Case("j2k_rgb_gdcm", "SC_rgb_gdcm_KY.dcm", J2K, "SC_rgb.dcm"),
    # RLE and big endian colour, 8 and 16 bits per sample
    Case("rle_rgb", "SC_rgb_rle.dcm", RLE, "SC_rgb.dcm"),
    Case("rle_rgb_16bit", "SC_rgb_rle_16bit.dcm", RLE, "SC_rgb_16bit.dcm"),
    Case("explicit_vr_be_rgb", "SC_rgb_expb.dcm", EXPLICIT_BE, "SC_rgb.dcm"),
    Case("explicit_vr_be_rgb_16bit", "SC_rgb_expb_16bit.dcm", EXPLICIT_BE, "SC_rgb_16bit.dcm"),
    # palette colour: RLE, and big endian (16-bit LUT data must not come out byte-swapped)
    Case("rle_palette", "OBXXXX1A_rle.dcm", RLE, "OBXXXX1A.dcm"),
    Case("explicit_vr_be_palette", "OBXXXX1A_expb.dcm", EXPLICIT_BE, "OBXXXX1A.dcm"),
    # multi-frame (10 frames, 12 bits stored)
    Case("rle_10f", "emri_small_RLE.dcm", RLE, "emri_small.dcm"),
    Case("explicit_vr_be_10f", "emri_small_big_endian.dcm", EXPLICIT_BE, "emri_small.dcm"),
    Case("j2k_lossless_10f", "emri_small_jpeg_2k_lossless.dcm", J2K_LOSSLESS, "emri_small.dcm"),
    Case(
        "jpeg_ls_lossless_10f",
        "emri_small_jpeg_ls_lossless.dcm",
        JPEG_LS_LOSSLESS,
        "emri_small.dcm",
    ),
    Case("rle_rgb_2f", "SC_rgb_rle_2frame.dcm", RLE, "SC_rgb_2frame.dcm"),
    # 32-bit unsigned RT dose, 15 frames
    Case("rle_32bit_15f", "rtdose_rle.dcm", RLE, "rtdose.dcm"),
    Case("explicit_vr_be_32bit_15f", "rtdose_expb.dcm", EXPLICIT_BE, "rtdose.dcm"),
]


def _pydicom_modality(path, plugin: str = "") -> np.ndarray:
    """pydicom's own decoding of ``path`` (optionally with one plugin), in modality units."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        arr = pixel_array(str(path), decoding_plugin=plugin)
    if ds.PhotometricInterpretation == "PALETTE COLOR":
        arr = apply_color_lut(arr, ds)
    elif ds.SamplesPerPixel == 1:
        arr = apply_rescale(arr, ds)
    return arr


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_syntax_decodes_like_reference(case: Case, testdata, load_only):
    entry, volume = load_only(case.name)
    assert entry.stack.first.transfer_syntax == case.syntax
    if case.reference.startswith("plugin:"):
        expected = _pydicom_modality(testdata(case.name), plugin=case.reference.split(":", 1)[1])
        expected = expected.reshape(volume.array.shape)
    else:
        _, ref = load_only(case.reference)
        g, rg = volume.geometry, ref.geometry
        assert g.shape == rg.shape
        np.testing.assert_allclose(g.spacing, rg.spacing, atol=1e-6)
        np.testing.assert_allclose(g.origin, rg.origin, atol=1e-6)
        np.testing.assert_allclose(g.direction, rg.direction, atol=1e-6)
        assert volume.array.dtype == ref.array.dtype
        expected = ref.array
    assert volume.array.shape == expected.shape
    diff = np.abs(volume.array.astype(np.float64) - expected.astype(np.float64))
    if case.max_abs == 0:
        assert np.array_equal(volume.array, expected.astype(volume.array.dtype)), (
            f"max difference {diff.max()}"
        )
    else:
        assert diff.max() <= case.max_abs, f"max difference {diff.max()}"
        assert diff.mean() <= case.mean_abs, f"mean difference {diff.mean()}"
        # a tolerance compare must still see the same picture, not a blank or shifted one
        r = np.corrcoef(volume.array.ravel().astype(float), expected.ravel().astype(float))[0, 1]
        assert r > 0.98, f"correlation {r}"


def test_lossy_cases_really_differ(load_only):
    """The lossy references are not identical images (else the tolerance tests prove less)."""
    _, lossy = load_only("RG1_J2KI.dcm")
    _, original = load_only("RG1_UNCR.dcm")
    assert not np.array_equal(lossy.array, original.array)
    _, jpeg = load_only("SC_rgb_jpeg_dcmtk.dcm")
    _, rgb = load_only("SC_rgb.dcm")
    assert not np.array_equal(jpeg.array, rgb.array)


def test_jpeg_ls_near_lossless_error_is_within_near(testdata, load_only):
    """JPEG-LS near-lossless guarantees |error| <= NEAR (ITU-T T.87); read NEAR from the SOS."""
    path = testdata("SC_rgb_jls_lossy_line.dcm")
    ds = pydicom.dcmread(path)
    frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    sos = frame.index(b"\xff\xda")
    ns = frame[sos + 4]
    near = frame[sos + 5 + 2 * ns]
    assert near > 0
    _, volume = load_only("SC_rgb_jls_lossy_line.dcm")
    _, rgb = load_only("SC_rgb.dcm")
    assert np.abs(volume.array.astype(int) - rgb.array.astype(int)).max() <= near


def test_deflated_matches_inflated_stream(testdata, load_only):
    """Deflated explicit VR LE: compare with the pixels read from the zlib-inflated stream."""
    entry, volume = load_only("image_dfl.dcm")
    assert entry.stack.first.transfer_syntax == DEFLATED_LE
    raw = testdata("image_dfl.dcm").read_bytes()
    ds = pydicom.dcmread(testdata("image_dfl.dcm"), stop_before_pixels=True)
    meta_end = 132 + 12 + ds.file_meta.FileMetaInformationGroupLength
    inflated = zlib.decompress(raw[meta_end:], -zlib.MAX_WBITS)
    count = ds.Rows * ds.Columns
    assert ds.BitsAllocated == 8 and ds.SamplesPerPixel == 1
    # Pixel Data (7FE0,0010) OB is the last element: tag, VR, 2 reserved, 4-byte length
    assert inflated[-count - 12 : -count - 6] == b"\xe0\x7f\x10\x00OB"
    expected = np.frombuffer(inflated[-count:], np.uint8).reshape(1, ds.Rows, ds.Columns)
    assert volume.array.shape == expected.shape
    assert np.array_equal(volume.array, expected)
    assert np.ptp(expected) > 0


REFERENCES = [
    "MR_small.dcm",
    "CT_small.dcm",
    "693_UNCR.dcm",
    "693_UNCI.dcm",
    "RG1_UNCR.dcm",
    "RG1_UNCI.dcm",
    "MR2_UNCR.dcm",
    "JPEG-LL.dcm",
    "SC_rgb.dcm",
    "SC_rgb_16bit.dcm",
    "SC_rgb_2frame.dcm",
    "US1_UNCR.dcm",
    "US1_UNCI.dcm",
    "OBXXXX1A.dcm",
    "emri_small.dcm",
    "rtdose.dcm",
]


@pytest.mark.parametrize("name", REFERENCES)
def test_reference_is_pydicoms_modality_value(name, testdata, load_only):
    """The uncompressed references equal pydicom's pixel_array after the modality rescale
    (CT: HU) or the palette LUT, so the syntax tests above compare against true values."""
    _, volume = load_only(name)
    expected = _pydicom_modality(testdata(name)).reshape(volume.array.shape)
    if expected.dtype.kind == "f" and (expected != np.round(expected)).any():
        assert volume.array.dtype == np.float32
        np.testing.assert_allclose(volume.array, expected, rtol=1e-6, atol=1e-4)
    else:
        assert np.array_equal(volume.array, expected)


@pytest.mark.parametrize("name", ["CT_small.dcm", "693_UNCR.dcm", "693_J2KR.dcm"])
def test_ct_is_int16_hounsfield(name, testdata, load_only):
    ds = pydicom.dcmread(testdata(name), stop_before_pixels=True)
    assert float(ds.RescaleIntercept) != 0  # so stored values and HU really differ
    _, volume = load_only(name)
    stored = pixel_array(str(testdata(name)))
    assert volume.array.dtype == np.int16
    hu = stored.astype(np.int64) * int(ds.RescaleSlope) + int(ds.RescaleIntercept)
    assert np.array_equal(volume.array[0], hu)

"""Real images: geometry in LPS mm, display flags, colour models, multi-frame and odd objects.

Geometry conventions (viewer/core/geometry.py): arrays (k, j, i); spacing in array order;
origin = LPS centre of voxel (0, 0, 0); direction columns = i, j, k axes in LPS.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.pixels import (
    apply_color_lut,
    apply_modality_lut,
    apply_rescale,
    convert_color_space,
    pixel_array,
)
from pydicom.uid import ImplicitVRLittleEndian

from viewer.core.dicom.pixels import decode_plane
from viewer.core.study_index import build_index, check_series, load_series


def _read(path, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path, **kwargs)


def _iop_direction(iop) -> np.ndarray:
    row, col = np.asarray(iop[:3], float), np.asarray(iop[3:], float)
    return np.column_stack([row, col, np.cross(row, col)])


# -- radiograph ------------------------------------------------------------------------------
def test_cr_monochrome1_keeps_values_and_flags_inversion(testdata, load_only):
    path = testdata("RG1_UNCR.dcm")
    ds = _read(path)
    assert ds.PhotometricInterpretation == "MONOCHROME1"
    entry, volume = load_only("RG1_UNCR.dcm")
    assert volume.invert_display is True
    assert volume.modality == "CR"
    assert volume.array.shape == (1, ds.Rows, ds.Columns) == (1, 1955, 1841)
    assert entry.shape == [1, 1955, 1841]
    # values are the stored values: the display inverts, the data never does
    assert np.array_equal(volume.array[0], ds.pixel_array)


@pytest.mark.parametrize("name", ["RG1_UNCR.dcm", "RG3_UNCR.dcm"])
def test_cr_without_usable_pixel_spacing_gets_1mm(name, testdata, load_only):
    """RG1 has PixelSpacing 0\\0, RG3 none and no ImagerPixelSpacing: 1 mm, never 0 mm."""
    ds = _read(testdata(name), stop_before_pixels=True)
    assert "ImagerPixelSpacing" not in ds
    assert "PixelSpacing" not in ds or [float(v) for v in ds.PixelSpacing] == [0.0, 0.0]
    entry, volume = load_only(name)
    assert volume.geometry.spacing[1:] == (1.0, 1.0)
    assert entry.spacing[1:] == [1.0, 1.0]
    assert all(s > 0 for s in volume.geometry.spacing)


@pytest.mark.parametrize("name", ["RG1_UNCR.dcm", "RG3_UNCR.dcm"])
def test_cr_without_pixel_spacing_warns(name, load_only):
    entry, volume = load_only(name)
    assert any("pixel spacing" in w and "1 mm" in w for w in volume.warnings), volume.warnings
    assert entry.warnings == volume.warnings


def _cr_copy(testdata, tmp_path, **changes):
    """A copy of a small real CR (16 x 16, dicomdirtests) with some header values changed."""
    src = testdata("DICOMDIR").parent / "77654033" / "CR1" / "6154"
    ds = _read(src)
    for keyword, value in changes.items():
        if value is None:
            if keyword in ds:
                delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    out = tmp_path / "cr" / "cr.dcm"
    out.parent.mkdir()
    ds.save_as(out)
    return out


def test_cr_spacing_from_pixel_spacing(testdata, tmp_path, load_only):
    path = _cr_copy(testdata, tmp_path, PixelSpacing=[0.2, 0.3], ImagerPixelSpacing=[0.5, 0.5])
    _, volume = load_only(path.parent)
    assert volume.geometry.spacing[1:] == (0.2, 0.3)  # (row spacing, column spacing)


def test_cr_spacing_falls_back_to_imager_pixel_spacing(testdata, tmp_path, load_only):
    path = _cr_copy(testdata, tmp_path, PixelSpacing=None, ImagerPixelSpacing=[0.2, 0.3])
    _, volume = load_only(path.parent)
    assert volume.geometry.spacing[1:] == (0.2, 0.3)


def test_cr_zero_pixel_spacing_falls_back_to_imager_pixel_spacing(testdata, tmp_path, load_only):
    path = _cr_copy(testdata, tmp_path, PixelSpacing=[0, 0], ImagerPixelSpacing=[0.2, 0.3])
    _, volume = load_only(path.parent)
    assert volume.geometry.spacing[1:] == (0.2, 0.3)


# -- CT --------------------------------------------------------------------------------------
def test_ct_small_hu_and_geometry(testdata, load_only):
    path = testdata("CT_small.dcm")
    ds = _read(path)
    entry, volume = load_only("CT_small.dcm")
    assert volume.modality == "CT"
    assert volume.array.dtype == np.int16
    assert np.array_equal(volume.array[0], apply_rescale(ds.pixel_array, ds))
    g = volume.geometry
    ipp = np.asarray(ds.ImagePositionPatient, float)
    np.testing.assert_allclose(g.origin, ipp, atol=1e-6)
    np.testing.assert_allclose(g.direction, _iop_direction(ds.ImageOrientationPatient), atol=1e-9)
    row_spacing, col_spacing = (float(v) for v in ds.PixelSpacing)
    assert g.spacing[1:] == (row_spacing, col_spacing)
    assert g.spacing[0] == float(ds.SliceThickness)  # one slice: thickness stands in
    # PS3.3 C.7.6.2.1.1: P(i, j) = IPP + i * col_spacing * IOP[0:3] + j * row_spacing * IOP[3:6]
    iop = np.asarray(ds.ImageOrientationPatient, float)
    i, j = 127, 100
    expected = ipp + i * col_spacing * iop[:3] + j * row_spacing * iop[3:]
    np.testing.assert_allclose(g.index_to_lps((0, j, i)), expected, atol=1e-6)
    assert entry.shape == [1, 128, 128]


def test_oblique_mr_direction_is_iop(testdata, load_only):
    """MR2_UNCR is oblique (IOP 0.57 0.82 0 / 0 0 -1): direction columns are the cosines."""
    ds = _read(testdata("MR2_UNCR.dcm"), stop_before_pixels=True)
    _, volume = load_only("MR2_UNCR.dcm")
    g = volume.geometry
    np.testing.assert_allclose(g.direction, _iop_direction(ds.ImageOrientationPatient), atol=1e-6)
    np.testing.assert_allclose(g.origin, [float(v) for v in ds.ImagePositionPatient], atol=1e-6)
    assert g.axis_letters()[1] == "I"  # rows run toward the feet
    assert g.is_orthonormal()


def test_real_multi_file_ct_is_sorted_along_the_normal(testdata, tmp_path, load_only):
    """Five single-frame CT files (dicomdirtests 98892001/CT5N), copied under names whose
    order is the reverse of their position along the slice normal."""
    src = testdata("DICOMDIR").parent / "98892001" / "CT5N"
    files = sorted(p for p in src.iterdir() if p.is_file())
    assert len(files) == 5
    datasets = [_read(f) for f in files]
    normal = _iop_direction(datasets[0].ImageOrientationPatient)[:, 2]

    def dist(ds):
        return float(np.dot(np.asarray(ds.ImagePositionPatient, float), normal))

    order = sorted(range(5), key=lambda n: dist(datasets[n]))
    dest = tmp_path / "ct5"
    dest.mkdir()
    for rank, n in enumerate(order):
        shutil.copy(files[n], dest / f"{4 - rank:02d}.dcm")
    by_dist = [datasets[n] for n in order]
    entry, volume = load_only(dest)
    g = volume.geometry
    assert g.shape[0] == 5
    assert [Path(f).name for f in volume.files] == [
        "04.dcm",
        "03.dcm",
        "02.dcm",
        "01.dcm",
        "00.dcm",
    ]
    np.testing.assert_allclose(g.origin, [float(v) for v in by_dist[0].ImagePositionPatient])
    np.testing.assert_allclose(g.spacing[0], np.diff([dist(d) for d in by_dist]).mean(), atol=1e-6)
    np.testing.assert_allclose(g.direction[:, 2], normal, atol=1e-9)
    for k, ds in enumerate(by_dist):
        assert np.array_equal(volume.array[k], apply_rescale(ds.pixel_array, ds))
        np.testing.assert_allclose(
            g.index_to_lps((k, 0, 0)), [float(v) for v in ds.ImagePositionPatient], atol=1e-4
        )


# -- colour ----------------------------------------------------------------------------------
def test_rgb_is_uint8_rgb(testdata, load_only):
    ds = _read(testdata("SC_rgb.dcm"))
    entry, volume = load_only("SC_rgb.dcm")
    assert volume.is_color
    assert volume.array.shape == (1, ds.Rows, ds.Columns, 3)
    assert volume.array.dtype == np.uint8
    assert entry.shape == [1, ds.Rows, ds.Columns, 3]
    assert np.array_equal(volume.array[0], ds.pixel_array)


@pytest.mark.parametrize("name", ["SC_ybr_full_uncompressed.dcm", "color-pl.dcm"])
def test_planar_and_ybr_come_out_as_interleaved_rgb(name, testdata, load_only):
    ds = _read(testdata(name))
    _, volume = load_only(name)
    raw = pixel_array(str(testdata(name)), raw=True)  # stored samples, interleaved
    if ds.PhotometricInterpretation.startswith("YBR"):
        expected = convert_color_space(raw, ds.PhotometricInterpretation, "RGB")
    else:
        assert ds.PlanarConfiguration == 1  # colour-by-plane on disk
        expected = raw
    assert volume.array.shape == (1, *expected.shape)
    assert np.array_equal(volume.array[0], expected)


def test_ybr_is_converted_to_rgb(load_only):
    """The YBR_FULL copy of SC_rgb decodes close to SC_rgb itself (not to its YBR samples)."""
    _, ybr = load_only("SC_ybr_full_uncompressed.dcm")
    _, rgb = load_only("SC_rgb.dcm")
    assert np.abs(ybr.array.astype(int) - rgb.array.astype(int)).max() <= 8
    assert not np.array_equal(ybr.array, rgb.array)  # really went through a conversion


def test_palette_without_file_meta_uses_the_lut(testdata, load_only):
    """OT-PAL-8-face.dcm: ACR-NEMA style (no preamble, no File Meta), PALETTE COLOR."""
    path = testdata("OT-PAL-8-face.dcm")
    assert path.read_bytes()[128:132] != b"DICM"
    ds = _read(path, force=True)
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    expected = apply_color_lut(ds.pixel_array, ds)
    entry, volume = load_only("OT-PAL-8-face.dcm")
    assert volume.is_color
    assert volume.array.shape == (1, ds.Rows, ds.Columns, 3)
    assert np.array_equal(volume.array[0], expected)
    assert len(np.unique(volume.array[0].reshape(-1, 3), axis=0)) > 16  # a picture, not a ramp


def test_palette_big_endian_lut_is_not_byte_swapped(load_only):
    """pydicom 3.0 reads big-endian OW LUT data as little endian; radview must not."""
    _, le = load_only("OBXXXX1A.dcm")
    _, be = load_only("OBXXXX1A_expb.dcm")
    assert np.array_equal(be.array, le.array)
    assert be.array.max() > 255  # 16-bit LUT entries


def test_rgb_32bit_keeps_its_values(testdata, load_only):
    ds = _read(testdata("SC_rgb_32bit.dcm"))
    _, volume = load_only("SC_rgb_32bit.dcm")
    assert np.array_equal(volume.array[0], ds.pixel_array)


def test_modality_lut_sequence_is_applied(testdata, load_only):
    """mlut_18.dcm maps signed 12-bit stored values through a 4096-entry Modality LUT."""
    ds = _read(testdata("mlut_18.dcm"))
    assert "ModalityLUTSequence" in ds and "RescaleSlope" not in ds
    _, volume = load_only("mlut_18.dcm")
    assert np.array_equal(volume.array[0], apply_modality_lut(ds.pixel_array, ds))


# -- multi-frame -----------------------------------------------------------------------------
def test_enhanced_mr_without_functional_groups(testdata, load_only):
    """emri_small.dcm: Enhanced MR, 10 frames, but its functional groups were stripped."""
    ds = _read(testdata("emri_small.dcm"))
    assert "PerFrameFunctionalGroupsSequence" not in ds and ds.NumberOfFrames == 10
    _, volume = load_only("emri_small.dcm")
    assert volume.array.shape == (10, 64, 64)
    assert np.array_equal(volume.array, ds.pixel_array)  # frame order kept
    assert volume.geometry.spacing[0] == float(ds.SpacingBetweenSlices)
    assert any("no patient position" in w for w in volume.warnings)


def test_enhanced_ct_frames_sorted_along_normal(testdata, load_only):
    """eCT_Supplemental.dcm: 2 frames; per-frame positions, shared orientation/spacing/rescale."""
    ds = _read(testdata("eCT_Supplemental.dcm"))
    shared = ds.SharedFunctionalGroupsSequence[0]
    iop = shared.PlaneOrientationSequence[0].ImageOrientationPatient
    normal = _iop_direction(iop)[:, 2]
    ipps = [
        np.asarray(f.PlanePositionSequence[0].ImagePositionPatient, float)
        for f in ds.PerFrameFunctionalGroupsSequence
    ]
    order = np.argsort([float(np.dot(p, normal)) for p in ipps])
    assert list(order) == [1, 0]  # the file lists them against the normal: a real re-sort
    intercept = float(shared.PixelValueTransformationSequence[0].RescaleIntercept)
    entry, volume = load_only("eCT_Supplemental.dcm")
    g = volume.geometry
    assert volume.array.shape == (2, 512, 512)
    np.testing.assert_allclose(g.origin, ipps[order[0]], atol=1e-6)
    np.testing.assert_allclose(g.spacing[0], np.linalg.norm(ipps[1] - ipps[0]), atol=1e-6)
    np.testing.assert_allclose(g.spacing[1:], [0.388672, 0.388672])
    np.testing.assert_allclose(g.direction, _iop_direction(iop), atol=1e-9)
    for k, frame in enumerate(order):
        np.testing.assert_allclose(g.index_to_lps((k, 0, 0)), ipps[frame], atol=1e-6)
        assert np.array_equal(volume.array[k], ds.pixel_array[frame].astype(int) + intercept)
    assert volume.window == (49.0, 102.0)  # Frame VOI LUT of the shared groups


def test_two_frame_rgb_gives_two_planes(testdata, load_only):
    ds = _read(testdata("SC_rgb_2frame.dcm"))
    _, volume = load_only("SC_rgb_2frame.dcm")
    assert volume.array.shape == (2, 100, 100, 3)
    assert np.array_equal(volume.array, ds.pixel_array)
    assert not np.array_equal(volume.array[0], volume.array[1])


def test_two_frame_palette_gives_two_planes(testdata, load_only):
    ds = _read(testdata("OBXXXX1A_2frame.dcm"))
    _, volume = load_only("OBXXXX1A_2frame.dcm")
    assert volume.array.shape == (2, 600, 800, 3)
    assert np.array_equal(volume.array, apply_color_lut(ds.pixel_array, ds))


def test_rt_dose_frames_placed_by_grid_frame_offsets(testdata, load_only):
    """RT Dose: one IPP, frames along the normal at GridFrameOffsetVector (PS3.3 C.8.8.3.2)."""
    ds = _read(testdata("rtdose.dcm"))
    offsets = [float(v) for v in ds.GridFrameOffsetVector]
    entry, volume = load_only("rtdose.dcm")
    g = volume.geometry
    assert volume.array.shape == (ds.NumberOfFrames, ds.Rows, ds.Columns)
    np.testing.assert_allclose(g.origin, [float(v) for v in ds.ImagePositionPatient])
    np.testing.assert_allclose(g.spacing[0], np.diff(offsets).mean())
    assert np.array_equal(volume.array, ds.pixel_array)
    assert not volume.warnings


def test_multiframe_jpeg_baseline_plane(testdata):
    """color3d_jpeg_baseline.dcm (120 YBR_FULL_422 frames): indexed without decoding; one
    decoded frame equals pydicom's RGB frame (the full load is left to the benchmarks)."""
    path = testdata("color3d_jpeg_baseline.dcm")
    index = build_index(path)
    assert len(index.series) == 1
    entry = index.series[0]
    assert entry.shape == [120, 480, 640, 3]
    plane = entry.stack.slices[60]
    got = decode_plane(plane.file, plane.frame)
    assert np.array_equal(got, pixel_array(str(path), index=plane.frame))


def test_jpeg2000_missing_sequence_delimiter_still_decodes(load_only):
    """emri_small_jpeg_2k_lossless_too_short.dcm lacks the final (FFFE,E0DD): frames intact."""
    _, damaged = load_only("emri_small_jpeg_2k_lossless_too_short.dcm")
    _, original = load_only("emri_small.dcm")
    assert np.array_equal(damaged.array, original.array)


# -- odd objects -----------------------------------------------------------------------------
def test_dicom_seg_loads_as_binary_mask_on_its_geometry(testdata, load_only):
    """liver.dcm (SEG, 1 bit, 3 frames): shown as a 0/1 image on its per-frame geometry."""
    ds = _read(testdata("liver.dcm"))
    assert ds.Modality == "SEG" and ds.BitsAllocated == 1
    ipps = [
        np.asarray(f.PlanePositionSequence[0].ImagePositionPatient, float)
        for f in ds.PerFrameFunctionalGroupsSequence
    ]
    entry, volume = load_only("liver.dcm")
    assert volume.array.shape == (3, 512, 512)
    assert set(np.unique(volume.array)) == {0, 1}
    assert np.array_equal(volume.array, ds.pixel_array)
    np.testing.assert_allclose(volume.geometry.origin, ipps[0])
    np.testing.assert_allclose(volume.geometry.spacing[0], 1.0)


@pytest.mark.parametrize("name", ["test-SR.dcm", "rtplan.dcm", "waveform_ecg.dcm", "rtstruct.dcm"])
def test_non_image_objects_are_skipped_with_a_reason(name, testdata):
    index = build_index(testdata(name))
    assert index.series == []
    assert len(index.skipped) == 1
    assert index.skipped[0].reason.startswith(("no image pixel data", "not a DICOM file"))


@pytest.mark.parametrize(
    "name", ["JPEG-lossy.dcm", "JPEG2000-embedded-sequence-delimiter.dcm", "MR_truncated.dcm"]
)
def test_undecodable_real_files_report_an_error(name, testdata):
    """Files no installed decoder can read (pydicom fails on them too) or cut short."""
    index = build_index(testdata(name))
    assert len(index.series) == 1
    entry = index.series[0]
    check_series(entry)
    assert entry.status.startswith("error: ")
    assert "\n" not in entry.status
    with pytest.raises(ValueError):
        load_series(entry)

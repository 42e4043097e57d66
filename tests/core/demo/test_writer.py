"""Round-trip tests of viewer.core.demo.write_series: tags, geometry, pixels, encodings."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.uid import (
    CTImageStorage,
    EnhancedCTImageStorage,
    EnhancedMRImageStorage,
    ExplicitVRBigEndian,
    JPEG2000Lossless,
    JPEGLosslessSV1,
    MRImageStorage,
)

from viewer.core.demo import writable_transfer_syntaxes, write_series

SPACING = (2.0, 0.6, 0.8)  # (slice, row, column) mm: rows and columns deliberately differ
ORIGIN = (-12.5, 30.0, 104.0)


def _volume(shape=(5, 6, 7), seed=1) -> np.ndarray:
    return np.random.default_rng(seed).integers(-1024, 2000, shape).astype(np.int16)


def _oblique(reverse: bool = False) -> np.ndarray:
    """Columns = row direction, column direction, stacking direction (LPS unit vectors)."""
    a, b = np.radians(20.0), np.radians(-35.0)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    d = rz @ rx
    if reverse:
        d[:, 2] *= -1
    return d


def _hu(ds: pydicom.Dataset) -> np.ndarray:
    return ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(
        ds.RescaleIntercept
    )


@pytest.mark.parametrize("reverse", [False, True])
def test_single_frame_geometry(tmp_path, reverse):
    hu = _volume()
    d = _oblique(reverse)
    paths = write_series(hu, tmp_path, spacing=SPACING, origin=ORIGIN, direction=d)
    assert len(paths) == hu.shape[0]
    normal = np.cross(d[:, 0], d[:, 1])
    for k, path in enumerate(paths):
        ds = pydicom.dcmread(path)
        expected = np.asarray(ORIGIN) + k * SPACING[0] * d[:, 2]
        np.testing.assert_allclose(np.asarray(ds.ImagePositionPatient, float), expected,
                                   atol=1e-6)
        np.testing.assert_allclose(np.asarray(ds.ImageOrientationPatient, float),
                                   np.concatenate([d[:, 0], d[:, 1]]), atol=1e-9)
        # PS3.3 C.7.6.2.1.1: first value = spacing between rows (adjacent row centres).
        assert [float(v) for v in ds.PixelSpacing] == [0.6, 0.8]
        assert float(ds.SliceThickness) == 2.0
        assert (ds.Rows, ds.Columns) == (6, 7)
        assert float(ds.SliceLocation) == pytest.approx(float(expected @ normal))
        np.testing.assert_array_equal(_hu(ds), hu[k])  # pixel_array[j, i] is voxel (k, j, i)
    locations = [float(pydicom.dcmread(p).SliceLocation) for p in paths]
    assert (np.diff(locations) < 0).all() if reverse else (np.diff(locations) > 0).all()


def test_scanner_tags(tmp_path):
    hu = _volume()
    paths = write_series(hu, tmp_path, series_description="Chest", series_number=3,
                         patient_name="Doe^Jane", patient_id="P1")
    datasets = [pydicom.dcmread(p) for p in paths]
    ds = datasets[0]
    assert ds.SOPClassUID == CTImageStorage
    assert ds.file_meta.MediaStorageSOPClassUID == CTImageStorage
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert ds.Modality == "CT" and ds.Manufacturer == "radview"
    assert (str(ds.PatientName), ds.PatientID) == ("Doe^Jane", "P1")
    assert ds.SeriesDescription == "Chest" and ds.SeriesNumber == 3
    assert ds.PhotometricInterpretation == "MONOCHROME2" and ds.SamplesPerPixel == 1
    assert (ds.BitsAllocated, ds.BitsStored, ds.HighBit) == (16, 16, 15)
    assert ds.PixelRepresentation == 0  # hu >= -1024 with intercept -1024: unsigned
    assert ds.RescaleType == "HU" and float(ds.RescaleIntercept) == -1024.0
    assert [float(v) for v in ds.WindowCenter] == [-600.0, 40.0]
    for keyword in ("PatientBirthDate", "PatientSex", "StudyDate", "StudyTime", "KVP",
                    "FrameOfReferenceUID", "StudyID", "AccessionNumber", "PatientPosition"):
        assert keyword in ds, keyword
    assert len({d.SeriesInstanceUID for d in datasets}) == 1
    assert len({d.StudyInstanceUID for d in datasets}) == 1
    assert len({d.FrameOfReferenceUID for d in datasets}) == 1
    assert len({d.SOPInstanceUID for d in datasets}) == len(datasets)
    assert [d.InstanceNumber for d in datasets] == list(range(1, len(datasets) + 1))
    assert [p.name for p in paths] == [f"IM{n:05d}.dcm" for n in range(1, len(paths) + 1)]
    assert not [p for p in tmp_path.iterdir() if p.suffix != ".dcm"]  # no temp files left


def test_signed_pixels_and_slope(tmp_path):
    hu = _volume()
    paths = write_series(hu, tmp_path, rescale_intercept=0.0, rescale_slope=2.0)
    ds = pydicom.dcmread(paths[2])
    assert ds.PixelRepresentation == 1
    assert np.abs(_hu(ds) - hu[2]).max() <= 1.0  # within rounding of slope / 2


def test_shuffle_permutes_names_and_instance_numbers(tmp_path):
    hu = _volume((9, 6, 7))
    paths = write_series(hu, tmp_path, shuffle=True, seed=3)
    datasets = [pydicom.dcmread(p) for p in paths]
    z = [float(ds.ImagePositionPatient[2]) for ds in datasets]
    assert z == sorted(z)  # returned in spatial order
    for k, ds in enumerate(datasets):
        np.testing.assert_array_equal(_hu(ds), hu[k])
    by_name = sorted(paths, key=lambda p: p.name)
    assert by_name != paths and by_name != paths[::-1]
    numbers = [ds.InstanceNumber for ds in datasets]
    assert sorted(numbers) == list(range(1, 10))
    assert numbers != sorted(numbers) and numbers != sorted(numbers, reverse=True)


def test_file_names_and_extra(tmp_path):
    hu = _volume((3, 6, 7))
    paths = write_series(hu, tmp_path, file_names=["a", "b", "c"],
                         extra={"GantryDetectorTilt": 12.5, "AcquisitionNumber": lambda k: k + 7})
    assert [p.name for p in paths] == ["a", "b", "c"]
    datasets = [pydicom.dcmread(p) for p in paths]
    assert all(float(ds.GantryDetectorTilt) == 12.5 for ds in datasets)
    assert [ds.AcquisitionNumber for ds in datasets] == [7, 8, 9]
    with pytest.raises(ValueError, match="not a DICOM keyword"):
        write_series(hu, tmp_path / "x", extra={"NoSuchKeyword": 1})


def test_uids_deterministic(tmp_path):
    hu = _volume((2, 6, 7))
    a = pydicom.dcmread(write_series(hu, tmp_path / "a")[0])
    b = pydicom.dcmread(write_series(hu, tmp_path / "b")[0])
    c = pydicom.dcmread(write_series(hu + 1, tmp_path / "c")[0])
    assert a.SOPInstanceUID == b.SOPInstanceUID
    assert a.StudyInstanceUID == c.StudyInstanceUID
    assert a.SeriesInstanceUID != c.SeriesInstanceUID
    paths = write_series(hu, tmp_path / "d", study_uid="1.2.3", series_uid="1.2.3.4")
    d = pydicom.dcmread(paths[0])
    assert (d.StudyInstanceUID, d.SeriesInstanceUID) == ("1.2.3", "1.2.3.4")


@pytest.mark.parametrize("ts", writable_transfer_syntaxes(), ids=lambda u: u.keyword)
@pytest.mark.parametrize("intercept", [-1024.0, 0.0], ids=["unsigned", "signed"])
def test_transfer_syntax_round_trip(tmp_path, ts, intercept):
    hu = _volume((2, 40, 36))  # JPEG 2000 needs >= 32 rows and columns
    paths = write_series(hu, tmp_path, transfer_syntax=ts, rescale_intercept=intercept)
    for k, path in enumerate(paths):
        ds = pydicom.dcmread(path)
        assert ds.file_meta.TransferSyntaxUID == ts
        np.testing.assert_array_equal(_hu(ds), hu[k])
        if ts == ExplicitVRBigEndian:
            assert ds.is_little_endian is False
        else:
            assert ds.is_little_endian is True


def test_multiframe_round_trip(tmp_path, ts=JPEG2000Lossless):
    hu = _volume((3, 40, 36))
    if ts not in writable_transfer_syntaxes():
        pytest.skip("no JPEG 2000 encoder")
    (path,) = write_series(hu, tmp_path, multiframe=True, transfer_syntax=ts)
    ds = pydicom.dcmread(path)
    assert ds.NumberOfFrames == 3
    np.testing.assert_array_equal(ds.pixel_array.astype(int) - 1024, hu)


def test_unsupported_transfer_syntax(tmp_path):
    with pytest.raises(ValueError, match="cannot write"):
        write_series(_volume(), tmp_path, transfer_syntax=JPEGLosslessSV1)
    with pytest.raises(ValueError, match="32 rows"):
        write_series(_volume(), tmp_path, transfer_syntax=JPEG2000Lossless)


@pytest.mark.parametrize("reverse", [False, True])
def test_multiframe_enhanced_ct(tmp_path, reverse):
    hu = _volume((5, 6, 7))
    d = _oblique(reverse)
    (path,) = write_series(hu, tmp_path, spacing=SPACING, origin=ORIGIN, direction=d,
                           multiframe=True)
    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == EnhancedCTImageStorage
    assert ds.NumberOfFrames == 5
    shared = ds.SharedFunctionalGroupsSequence[0]
    measures = shared.PixelMeasuresSequence[0]
    assert [float(v) for v in measures.PixelSpacing] == [0.6, 0.8]
    assert float(measures.SliceThickness) == 2.0
    np.testing.assert_allclose(
        np.asarray(shared.PlaneOrientationSequence[0].ImageOrientationPatient, float),
        np.concatenate([d[:, 0], d[:, 1]]), atol=1e-9)
    transform = shared.PixelValueTransformationSequence[0]
    assert float(transform.RescaleIntercept) == -1024.0 and transform.RescaleType == "HU"
    for k, item in enumerate(ds.PerFrameFunctionalGroupsSequence):
        ipp = np.asarray(item.PlanePositionSequence[0].ImagePositionPatient, float)
        np.testing.assert_allclose(ipp, np.asarray(ORIGIN) + k * 2.0 * d[:, 2], atol=1e-6)
        assert item.FrameContentSequence[0].InStackPositionNumber == k + 1
    np.testing.assert_array_equal(ds.pixel_array.astype(int) - 1024, hu)

    image = sitk.ReadImage(str(path))
    assert image.GetSize() == (7, 6, 5)
    np.testing.assert_allclose(image.GetSpacing(), (0.8, 0.6, 2.0))
    np.testing.assert_allclose(image.GetOrigin(), ORIGIN, atol=1e-4)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), hu)  # rescaled to HU


def test_multiframe_shuffled_frames(tmp_path):
    hu = _volume((6, 6, 7))
    (path,) = write_series(hu, tmp_path, multiframe=True, shuffle=True)
    ds = pydicom.dcmread(path)
    frames = ds.pixel_array.astype(int) - 1024
    stack = [item.FrameContentSequence[0].InStackPositionNumber
             for item in ds.PerFrameFunctionalGroupsSequence]
    assert stack != sorted(stack)
    z = [float(item.PlanePositionSequence[0].ImagePositionPatient[2])
         for item in ds.PerFrameFunctionalGroupsSequence]
    order = np.argsort(z)
    np.testing.assert_array_equal(frames[order], hu)
    np.testing.assert_array_equal(np.asarray(stack)[order], np.arange(1, 7))


def test_mr(tmp_path):
    hu = np.random.default_rng(0).integers(0, 900, (3, 6, 7))
    paths = write_series(hu, tmp_path / "sf", modality="MR", rescale_intercept=0.0)
    ds = pydicom.dcmread(paths[0])
    assert ds.SOPClassUID == MRImageStorage and ds.Modality == "MR"
    assert ds.PixelRepresentation == 0 and "RepetitionTime" in ds
    np.testing.assert_array_equal(ds.pixel_array, hu[0])
    (path,) = write_series(hu, tmp_path / "mf", modality="MR", multiframe=True,
                           rescale_intercept=0.0)
    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == EnhancedMRImageStorage
    np.testing.assert_array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(path))), hu)


def test_input_validation(tmp_path):
    with pytest.raises(ValueError, match="16 bits"):
        write_series(np.full((2, 4, 4), 70000.0), tmp_path)
    with pytest.raises(ValueError, match="unit vectors"):
        write_series(_volume(), tmp_path, direction=np.eye(3) * 2)
    with pytest.raises(ValueError, match="file_names"):
        write_series(_volume(), tmp_path, file_names=["a"])
    paths = write_series(np.zeros((6, 7), np.int16), tmp_path / "2d")  # one slice
    assert len(paths) == 1

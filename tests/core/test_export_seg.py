"""DICOM SEG export/import (viewer.core.export.dicom_seg) on synthetic and real series.

Every SEG is read back twice: with highdicom directly (an independent reader: pixels per
referenced source instance, references, frame of reference) and with our ``read_seg``;
dciodvfy (dicom3tools) validates the files against the standard.
"""

from __future__ import annotations

import shutil
import subprocess
import warnings
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.sr.coding import Code as DicomCode

from viewer.core.demo.writer import write_series
from viewer.core.export import dicom_seg
from viewer.core.export.dicom_seg import SegImportWarning, read_seg, write_seg
from viewer.core.labelmap import LabelMap, Provenance
from viewer.core.study_index import build_index, load_series


def _testdata(name: str) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"pydicom test file {name} is not installed")
    return Path(path)


def _load(path):
    index = build_index(path)
    assert len(index.series) == 1, [s.uid for s in index.series]
    return load_series(index.series[0])


def _oblique_reversed() -> np.ndarray:
    """Rows/columns rotated 20 degrees about the patient's A-P axis, slices stacked toward
    the feet (k axis opposite to the slice normal)."""
    c, s = np.cos(np.deg2rad(20)), np.sin(np.deg2rad(20))
    rot = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
    return rot @ np.diag([1.0, 1.0, -1.0])


def _synthetic(tmp_path: Path, kind: str):
    src = tmp_path / "src"
    hu = np.full((7, 24, 30), -1000, dtype=np.int16)
    if kind == "ct-oblique-reversed":
        write_series(hu, src, direction=_oblique_reversed(), spacing=(2.0, 0.8, 0.8),
                     shuffle=True)  # fmt: skip
    else:  # enhanced CT, frames shuffled in the file
        write_series(hu, src, multiframe=True, shuffle=True)
    return _load(src)


@pytest.fixture(params=["ct-oblique-reversed", "enhanced-ct", "CT_small.dcm", "RG1_UNCR.dcm"])
def case(request, tmp_path):
    """(volume, label map with labels 1 and 3, output folder) for each kind of source."""
    if request.param.endswith(".dcm"):
        volume = _load(_testdata(request.param))
    else:
        volume = _synthetic(tmp_path, request.param)
    nk, nj, ni = volume.geometry.shape
    labels = np.zeros((nk, nj, ni), dtype=np.uint8)
    labels[:, nj // 5 : nj // 2, ni // 6 : ni // 2] = 1
    labels[nk // 2 :, nj // 2 : nj - 2, ni // 3 : ni - 3] = 3  # 3: label numbers with a gap
    labelmap = LabelMap.from_names(
        volume.geometry, labels, {1: "right lung", 3: "consolidation"},
        Provenance("AUTOMATIC", "ct-infection", "1.0.0"),
    )  # fmt: skip
    out = tmp_path / "out"
    out.mkdir()
    return volume, labelmap, out


def _source_refs(volume):
    """[(SOP Instance UID, frame number or None)] per k, read independently of the module."""
    files = list(dict.fromkeys(volume.files))
    datasets = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    if len(files) == len(volume.files):
        return datasets, [(str(ds.SOPInstanceUID), None) for ds in datasets]
    ds = datasets[0]
    positions = np.array([[float(v) for v in fg.PlanePositionSequence[0].ImagePositionPatient]
                          for fg in ds.PerFrameFunctionalGroupsSequence])  # fmt: skip
    refs = []
    for k in range(volume.geometry.shape[0]):
        d = np.linalg.norm(positions - volume.geometry.index_to_lps((k, 0, 0)), axis=1)
        refs.append((str(ds.SOPInstanceUID), int(np.argmin(d)) + 1))
    return datasets, refs


def test_round_trip_highdicom_and_read_seg(case):
    volume, labelmap, out = case
    path = write_seg(labelmap, volume, out / "seg.dcm")
    expected = labelmap.labels.copy()
    expected[expected == 3] = 2  # segments are numbered 1..N in label order

    seg = hd.seg.segread(path)
    assert seg.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4"
    assert seg.SegmentationType == "BINARY"
    assert [seg.get_segment_description(n).segment_label for n in (1, 2)] == [
        "right lung", "consolidation"]  # fmt: skip
    datasets, refs = _source_refs(volume)
    assert seg.StudyInstanceUID == datasets[0].StudyInstanceUID
    assert seg.get("FrameOfReferenceUID") == datasets[0].get("FrameOfReferenceUID")
    referenced = {
        str(item.ReferencedSOPInstanceUID)
        for series in seg.ReferencedSeriesSequence
        for item in series.ReferencedInstanceSequence
    }
    assert referenced == {str(ds.SOPInstanceUID) for ds in datasets}
    assert {str(s.SeriesInstanceUID) for s in seg.ReferencedSeriesSequence} == {
        str(datasets[0].SeriesInstanceUID)}  # fmt: skip
    # empty frames are omitted: one frame per (slice, segment) holding voxels
    frames = sum(int(np.any(labelmap.labels[k] == v)) for k in range(len(refs)) for v in (1, 3))
    assert int(seg.NumberOfFrames) == frames

    if refs[0][1] is None:
        got = seg.get_pixels_by_source_instance(
            [uid for uid, _ in refs], combine_segments=True, assert_missing_frames_are_empty=True
        )
    else:
        got = seg.get_pixels_by_source_frame(
            refs[0][0], [n for _, n in refs], combine_segments=True,
            assert_missing_frames_are_empty=True,
        )  # fmt: skip
    assert np.array_equal(got, expected)

    back = read_seg(path, volume)
    assert np.array_equal(back.labels, expected)
    assert back.geometry == volume.geometry or back.geometry is volume.geometry
    assert back.names() == {1: "right lung", 2: "consolidation"}
    for new, old in ((1, 1), (2, 3)):
        assert back.segments[new].color == labelmap.segments[old].color
        assert back.segments[new].category == labelmap.segments[old].category
        assert back.segments[new].type == labelmap.segments[old].type
    assert back.provenance.algorithm_type == "AUTOMATIC"
    assert (back.provenance.model_name, back.provenance.model_version) == ("ct-infection",
                                                                           "1.0.0")  # fmt: skip


def test_dciodvfy_reports_no_errors(case):
    if shutil.which("dciodvfy") is None:
        pytest.skip("dciodvfy (dicom3tools) is not installed")
    volume, labelmap, out = case
    path = write_seg(labelmap, volume, out / "seg.dcm")
    proc = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    report = proc.stdout + proc.stderr
    assert "Segmentation" in report  # it recognised the IOD
    errors = [line for line in report.splitlines() if line.startswith("Error")]
    assert not errors, report


def test_provenance_automatic_then_semiautomatic_then_manual(tmp_path):
    volume = _synthetic(tmp_path, "ct-oblique-reversed")
    labels = np.zeros(volume.geometry.shape, dtype=np.uint8)
    labels[2:5, 5:15, 5:20] = 1
    labelmap = LabelMap.from_names(volume.geometry, labels, {1: "ground-glass opacity"},
                                   Provenance("AUTOMATIC", "ct-infection", "2.1"))  # fmt: skip

    def written(name):
        path = write_seg(labelmap, volume, tmp_path / name)
        return pydicom.dcmread(path).SegmentSequence[0]

    auto = written("auto.dcm")
    assert auto.SegmentAlgorithmType == "AUTOMATIC"
    algo = auto.SegmentationAlgorithmIdentificationSequence[0]
    assert (algo.AlgorithmName, algo.AlgorithmVersion) == ("ct-infection", "2.1")
    assert algo.AlgorithmFamilyCodeSequence[0].CodeValue == "123110"  # Artificial Intelligence
    assert auto.SegmentedPropertyTypeCodeSequence[0].CodeValue == "112120"  # GGO

    labelmap.write(((3, 4), (6, 7), (6, 7)), np.zeros((1, 1, 1), np.uint8))  # a hand edit
    semi = written("semi.dcm")
    assert semi.SegmentAlgorithmType == "SEMIAUTOMATIC"
    assert semi.SegmentationAlgorithmIdentificationSequence[0].AlgorithmName == "ct-infection"
    assert read_seg(tmp_path / "semi.dcm", volume).provenance.algorithm_type == "SEMIAUTOMATIC"

    labelmap.provenance = Provenance("MANUAL")
    manual = written("manual.dcm")
    assert manual.SegmentAlgorithmType == "MANUAL"
    assert "SegmentationAlgorithmIdentificationSequence" not in manual


def test_overlapping_segments_later_wins_with_warning(tmp_path):
    volume = _synthetic(tmp_path, "ct-oblique-reversed")
    datasets, _ = _source_refs(volume)
    nk, nj, ni = volume.geometry.shape
    masks = np.zeros((nk, nj, ni, 2), dtype=bool)
    masks[1:4, 2:12, 2:12, 0] = True
    masks[2:5, 8:20, 8:20, 1] = True
    category = DicomCode("91723000", "SCT", "Anatomical Structure")
    descriptions = [
        hd.seg.SegmentDescription(n, name, category, DicomCode("85756007", "SCT", "Tissue"),
                                  "MANUAL")
        for n, name in ((1, "first"), (2, "second"))
    ]  # fmt: skip
    seg = hd.seg.Segmentation(
        datasets, masks.astype(np.uint8), "BINARY", descriptions, hd.UID(), 5, hd.UID(), 1,
        "other", "other", "1", "1", fractional_type=None,
    )  # fmt: skip
    seg.save_as(tmp_path / "overlap.dcm")
    with pytest.warns(SegImportWarning, match="overlap"):
        back = read_seg(tmp_path / "overlap.dcm", volume)
    assert np.all(back.labels[masks[..., 1]] == 2)
    assert np.all(back.labels[masks[..., 0] & ~masks[..., 1]] == 1)
    assert back.counts() == {1: int((masks[..., 0] & ~masks[..., 1]).sum()),
                             2: int(masks[..., 1].sum())}  # fmt: skip
    assert back.provenance.algorithm_type == "MANUAL"


def test_seg_of_another_series_is_refused(tmp_path):
    volume = _synthetic(tmp_path, "ct-oblique-reversed")
    labels = np.zeros(volume.geometry.shape, dtype=np.uint8)
    labels[2, 3:9, 3:9] = 1
    path = write_seg(LabelMap(volume.geometry, labels), volume, tmp_path / "seg.dcm")
    other = _load(_testdata("CT_small.dcm"))
    with pytest.raises(ValueError, match="pixels"):  # 24x30 on a 128x128 image
        read_seg(path, other)
    same_size = tmp_path / "same"
    write_series(np.zeros((7, 24, 30), np.int16), same_size, seed=7, spacing=(2.0, 0.8, 0.8),
                 direction=_oblique_reversed())  # fmt: skip
    with pytest.raises(ValueError, match="another") as err:
        read_seg(path, _load(same_size))
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="not a readable DICOM SEG"):
        read_seg(volume.files[0], volume)  # a CT image, not a SEG


def test_bad_exports_are_refused_and_leave_nothing(tmp_path, monkeypatch):
    volume = _synthetic(tmp_path, "ct-oblique-reversed")
    empty = LabelMap(volume.geometry)
    with pytest.raises(ValueError, match="empty"):
        write_seg(empty, volume, tmp_path / "empty.dcm")
    labels = np.zeros(volume.geometry.shape, dtype=np.uint8)
    labels[1, 2:5, 2:5] = 1
    labelmap = LabelMap(volume.geometry, labels)
    with pytest.raises(ValueError, match="source folder"):
        write_seg(labelmap, volume, tmp_path / "src" / "seg.dcm")
    assert write_seg(labelmap, volume, tmp_path / "src" / "seg.dcm", allow_into_source=True)
    other = _load(_testdata("CT_small.dcm"))
    with pytest.raises(ValueError, match="voxels"):
        write_seg(labelmap, other, tmp_path / "mismatch.dcm")
    assert not list(tmp_path.glob("*.dcm"))

    target = tmp_path / "seg.dcm"
    target.write_bytes(b"previous export")

    def fail_mid_write(self, filename, *args, **kwargs):
        Path(filename).write_bytes(b"DICM partial")
        raise OSError("disk full")

    monkeypatch.setattr(hd.seg.Segmentation, "save_as", fail_mid_write)
    with pytest.raises(OSError, match="disk full"):
        write_seg(labelmap, volume, target)
    assert target.read_bytes() == b"previous export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seg.dcm", "src"]


def test_non_dicom_source_is_refused(tmp_path):
    import SimpleITK as sitk

    from viewer.core.images import read_image_file

    (tmp_path / "pictures").mkdir()
    png = tmp_path / "pictures" / "picture.png"
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((20, 30), np.uint8)), str(png))
    volume = read_image_file(str(png))
    labels = np.zeros(volume.geometry.shape, dtype=np.uint8)
    labels[0, 2:5, 2:5] = 1
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ValueError, match="DICOM"):
        write_seg(LabelMap(volume.geometry, labels), volume, out / "seg.dcm")
    assert not list(out.iterdir())
    assert dicom_seg.SEGMENTATION_TYPE == "BINARY"


def test_seg_of_another_series_in_the_same_frame_is_placed_by_position(tmp_path):
    """Same frame of reference, other instances (here a 4-slice part of the same grid):
    frames go where their plane positions say, with a warning."""
    frame = "1.2.826.0.1.3680043.8.498.1234567890"
    hu = np.full((6, 16, 20), -1000, dtype=np.int16)
    write_series(hu, tmp_path / "a", spacing=(2.0, 0.8, 0.8), direction=_oblique_reversed(),
                 seed=1, extra={"FrameOfReferenceUID": frame})  # fmt: skip
    a = _load(tmp_path / "a")
    write_series(hu[:4], tmp_path / "b", spacing=(2.0, 0.8, 0.8), direction=a.geometry.direction,
                 origin=a.geometry.index_to_lps((1, 0, 0)), seed=2,
                 extra={"FrameOfReferenceUID": frame})  # fmt: skip
    b = _load(tmp_path / "b")
    assert b.series_uid != a.series_uid
    labels_b = np.zeros(b.geometry.shape, dtype=np.uint8)
    labels_b[0, 2:6, 3:9] = 1  # slices 0 and 3 of b (a gap between) = slices 1 and 4 of a
    labels_b[3, 8:12, 4:15] = 2
    path = write_seg(LabelMap(b.geometry, labels_b), b, tmp_path / "seg.dcm")
    with pytest.warns(SegImportWarning, match="positions"):
        back = read_seg(path, a)
    expected = np.zeros(a.geometry.shape, dtype=np.uint8)
    expected[1:5] = labels_b
    assert np.array_equal(back.labels, expected)
    shifted = tmp_path / "shifted"  # same frame of reference, planes between a's slices
    write_series(hu[:4], shifted, spacing=(2.0, 0.8, 0.8), direction=a.geometry.direction,
                 origin=a.geometry.index_to_lps((1.5, 0, 0)), seed=3,
                 extra={"FrameOfReferenceUID": frame})  # fmt: skip
    c = _load(shifted)
    path = write_seg(LabelMap(c.geometry, labels_b), c, tmp_path / "seg_c.dcm")
    with pytest.raises(ValueError, match="between"):
        read_seg(path, a)


@pytest.mark.parametrize("seg_type", ["LABELMAP", "FRACTIONAL"])
def test_reads_labelmap_and_fractional_segs_of_other_tools(tmp_path, seg_type):
    volume = _synthetic(tmp_path, "ct-oblique-reversed")
    datasets, _ = _source_refs(volume)
    labels = np.zeros(volume.geometry.shape, dtype=np.uint8)
    labels[1:3, 5:10, 5:20] = 1
    labels[2:5, 12:20, 10:28] = 2
    code = DicomCode("85756007", "SCT", "Tissue")
    descriptions = [
        hd.seg.SegmentDescription(n, f"tool segment {n}", code, code, "MANUAL") for n in (1, 2)
    ]
    if seg_type == "LABELMAP":
        pixels = labels
    else:  # probabilities: 0.8 inside, 0.3 in a rim that must not count
        pixels = np.stack([(labels == n) * 0.8 for n in (1, 2)], axis=-1).astype(np.float32)
        pixels[0, 0:3, 0:3, 0] = 0.3
    seg = hd.seg.Segmentation(
        datasets, pixels, seg_type, descriptions, hd.UID(), 9, hd.UID(), 1,
        "other", "other", "1", "1",
    )  # fmt: skip
    seg.save_as(tmp_path / "tool.dcm")
    back = read_seg(tmp_path / "tool.dcm", volume)
    assert np.array_equal(back.labels, labels)
    assert back.names() == {1: "tool segment 1", 2: "tool segment 2"}


def test_source_flaws_are_not_copied_into_the_seg(tmp_path):
    """TCIA CT carries Referenced Study Sequence items without their Type 1 Referenced SOP
    Class UID; highdicom would copy them and dciodvfy would report an error in the SEG."""
    if shutil.which("dciodvfy") is None:
        pytest.skip("dciodvfy (dicom3tools) is not installed")
    src = tmp_path / "src"
    files = write_series(np.full((3, 16, 16), -1000, dtype=np.int16), src)
    for f in files:
        ds = pydicom.dcmread(f)
        item = pydicom.Dataset()
        item.ReferencedSOPInstanceUID = pydicom.uid.generate_uid()
        ds.ReferencedStudySequence = [item]
        ds.save_as(f)
    volume = _load(src)
    labels = np.zeros(volume.geometry.shape, dtype=np.uint8)
    labels[1, 4:10, 4:10] = 1
    labelmap = LabelMap.from_names(volume.geometry, labels, {1: "right lung"})
    out = tmp_path / "out"
    out.mkdir()
    path = write_seg(labelmap, volume, out / "seg.dcm")
    report = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True,
                            timeout=60)  # fmt: skip
    errors = [line for line in (report.stdout + report.stderr).splitlines()
              if line.startswith("Error")]  # fmt: skip
    assert not errors, errors
    assert "ReferencedStudySequence" not in pydicom.dcmread(path, stop_before_pixels=True)

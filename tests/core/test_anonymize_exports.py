"""Anonymised mask exports: a SEG de-identified with the key of an anonymised copy lands on
the copy's images; the label sidecar has no folder path and the copy's UIDs; a screenshot
volume carries no patient identity."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydicom
import pytest

from viewer.core.anonymize import AnonymizeOptions, Anonymizer, anonymize_tree
from viewer.core.anonymize.exports import (
    anonymized_volume,
    write_label_nifti_anonymized,
    write_seg_anonymized,
)
from viewer.core.demo import write_series
from viewer.core.export.dicom_seg import read_seg
from viewer.core.labelmap import LabelMap, Provenance
from viewer.core.study_index import build_index, load_series

NAME, PID = "Doe^Jane", "PID-424242"


@pytest.fixture
def series(tmp_path):
    src = tmp_path / "Doe_Jane"
    hu = np.random.default_rng(3).integers(-1000, 500, (4, 10, 12)).astype(np.int16)
    write_series(hu, src, patient_name=NAME, patient_id=PID,
                 extra={"InstitutionName": "Saint Elsewhere", "StudyDate": "20240311"})  # fmt: skip
    volume = load_series(build_index(src).series[0])
    labels = np.zeros(volume.geometry.shape, dtype=np.uint8)
    labels[2, 3:7, 4:9] = 1
    labelmap = LabelMap.from_names(volume.geometry, labels, {1: "nodule"}, Provenance("MANUAL"))
    return src, volume, labelmap


def test_seg_with_the_copy_key_lands_on_the_anonymised_images(series, tmp_path):
    src, volume, labelmap = series
    key = Anonymizer()
    report = anonymize_tree(src, tmp_path / "copy", key)
    (tmp_path / "masks").mkdir()
    out = write_seg_anonymized(labelmap, volume, tmp_path / "masks" / "seg.dcm", key)
    assert [p.name for p in (tmp_path / "masks").iterdir()] == ["seg.dcm"]  # no temp left
    data = out.read_bytes()
    for secret in ("Doe", "Jane", PID, "Elsewhere", "20240311", volume.series_uid):
        assert secret.encode() not in data, secret
    seg = pydicom.dcmread(out)
    copy = [pydicom.dcmread(dst) for _src, dst in report.written]
    assert seg.PatientID == copy[0].PatientID and seg.PatientIdentityRemoved == "YES"
    assert seg.StudyInstanceUID == copy[0].StudyInstanceUID
    refs = {
        str(i.ReferencedSOPInstanceUID)
        for s in seg.ReferencedSeriesSequence
        for i in s.ReferencedInstanceSequence
    }
    assert refs == {str(ds.SOPInstanceUID) for ds in copy}
    anon_volume = load_series(build_index(tmp_path / "copy").series[0])
    back = read_seg(out, anon_volume)
    assert np.array_equal(back.labels, labelmap.labels)


def test_seg_anonymized_refused_in_the_source_folder(series):
    src, volume, labelmap = series
    before = sorted(p.name for p in src.iterdir())
    with pytest.raises(ValueError, match="source folder"):
        write_seg_anonymized(labelmap, volume, src / "seg.dcm", Anonymizer())
    assert sorted(p.name for p in src.iterdir()) == before


@pytest.mark.parametrize("keep_uids", [False, True])
def test_nifti_sidecar_without_identity(series, tmp_path, keep_uids):
    src, volume, labelmap = series
    key = Anonymizer(AnonymizeOptions(keep_uids=keep_uids))
    report = anonymize_tree(src, tmp_path / "copy", key)
    out = write_label_nifti_anonymized(labelmap, tmp_path / "labels.nii.gz", volume, key)
    side = tmp_path / "labels.json"
    text = side.read_text()
    assert str(src) not in text and "Doe" not in text and PID not in text
    source = json.loads(text)["source"]
    copy = pydicom.dcmread(report.written[0][1])
    assert source["files_dir"] == "" and source["anonymized"] is True
    assert source["series_uid"] == str(copy.SeriesInstanceUID)
    assert source["study_uid"] == str(copy.StudyInstanceUID)
    assert source["frame_of_reference_uid"] == str(copy.FrameOfReferenceUID)
    assert (source["series_uid"] == volume.series_uid) is keep_uids
    assert Path(out).is_file()


def test_anonymized_volume_drops_identity_keeps_voxels(series):
    _src, volume, _ = series
    anon = anonymized_volume(volume)
    assert anon.array is volume.array and anon.geometry == volume.geometry
    assert "patient_name" not in anon.header and "study_date" not in anon.header
    assert anon.description == "" and volume.header["patient_id"] == PID  # source untouched

"""File > Export anonymised copy / anonymised screenshot / anonymised mask exports, driven
on a real window (pytest-qt under xvfb)."""

from __future__ import annotations

import time

import numpy as np
import pydicom
import pytest
from PySide6.QtWidgets import QApplication, QDialog

from viewer.core.anonymize import AnonymizeOptions
from viewer.core.demo import write_series
from viewer.core.labelmap import LabelMap
from viewer.qt import anonymize_export
from viewer.qt.anonymize_export import AnonymizeDialog

STUDY = "1.2.826.0.1.3680043.8.498.777"
WHO = {"patient_name": "Doe^Jane", "patient_id": "PID-77", "study_uid": STUDY}


@pytest.fixture
def study(tmp_path):
    src = tmp_path / "Doe_Jane"
    hu = np.full((4, 40, 40), -1000, np.int16)
    hu[:, 15:25, 15:25] = 200
    write_series(hu, src / "ct", series_number=1, extra={"StudyDate": "20240311"}, **WHO)
    write_series(hu[:2], src / "sc", series_number=2, extra={"BurnedInAnnotation": "YES"}, **WHO)
    return src


def _files(folder):
    return sorted(p for p in folder.rglob("*") if p.is_file())


def test_export_study_from_the_menu_dialog(qtbot, window, load, study, tmp_path, monkeypatch):
    load(window, study)
    assert window.session.volume.geometry.shape[0] == 4  # the CT is shown
    export = window.anonymize_export
    out = tmp_path / "anon"

    def accept(dialog):
        assert dialog.scope.count() == 2 and "2 series" in dialog.scope.itemText(1)
        assert dialog._start_dir != str(study)  # never starts in the source folder
        dialog.scope.setCurrentIndex(1)
        dialog.folder.setText(str(out))
        dialog.keep_dates.setChecked(True)
        return QDialog.Accepted

    monkeypatch.setattr(AnonymizeDialog, "exec", accept)
    action = next(a for a in window.menuBar().actions()[0].menu().actions()
                  if a.text().startswith("Export &anonymised copy"))  # fmt: skip
    action.trigger()
    qtbot.waitUntil(lambda: export.report is not None, timeout=20000)
    written = _files(out)
    assert len(written) == 6 and not export.report.failed
    ds = pydicom.dcmread(written[0])
    assert ds.PatientID.startswith("ANON-") and ds.StudyDate == "20240311"  # kept dates
    assert str(ds.StudyInstanceUID) != STUDY
    assert export.last_message.startswith("6 file(s) written")
    assert "burned-in text" in export.last_message  # the warning is shown, files written
    assert not any(p.parent == study for p in _files(study))  # nothing new in the source


def test_output_inside_the_source_is_refused(qtbot, window, load, study):
    load(window, study / "ct")
    export = window.anonymize_export
    assert export.start("series", str(study / "ct" / "anon"), AnonymizeOptions()) is None
    assert "inside the source folder" in window.last_error
    assert not (study / "ct" / "anon").exists()
    window.settings.setValue(anonymize_export.OUT_DIR_KEY, str(study / "ct"))
    assert export.default_folder() != str(study / "ct")


def test_anonymised_screenshot_hides_the_patient_corner(qtbot, window, load, study, tmp_path):
    load(window, study / "ct")
    export = window.anonymize_export
    plain, anon = tmp_path / "plain.png", tmp_path / "anon.png"
    window.views.screenshot(str(plain), True)
    export.save_screenshot(str(anon))
    from PIL import Image

    def bright_corner(path):
        rgb = np.asarray(Image.open(path).convert("RGB"))
        return int((rgb[:60, :140].min(axis=2) > 200).sum())

    assert bright_corner(plain) > 30 and bright_corner(anon) == 0
    view = window.views.active.slice_view
    assert "PID-77" in view.corners.text("top_left")  # restored on screen


def test_mask_exports_use_the_copy_key(qtbot, window, load, study, tmp_path):
    load(window, study / "ct")
    export = window.anonymize_export
    export.start("series", str(tmp_path / "anon"), AnonymizeOptions())
    qtbot.waitUntil(lambda: export.report is not None, timeout=20000)
    export.set_masks_anonymized(True)
    io = window.segments.io
    assert io.anonymizer is export.key
    geometry = window.session.volume.geometry
    labels = np.zeros(geometry.shape, np.uint8)
    labels[1, 15:25, 15:25] = 1
    labelmap = LabelMap.from_names(geometry, labels, {1: "nodule"})
    seg = io.export_seg(tmp_path / "seg.dcm", labelmap)
    ds = pydicom.dcmread(seg)
    copy = pydicom.dcmread(export.report.written[0][1])
    assert ds.PatientID == copy.PatientID and ds.StudyInstanceUID == copy.StudyInstanceUID
    export.set_masks_anonymized(False)
    assert io.anonymizer is None
    QApplication.processEvents()


def test_cancel_from_the_progress_dialog(qtbot, window, load, study, tmp_path, monkeypatch):
    load(window, study / "ct")
    export = window.anonymize_export
    real = anonymize_export.anonymize_tree

    def wait_for_cancel(src, out, key, progress, cancelled, files):
        deadline = time.monotonic() + 5  # the worker thread waits for the user's Cancel
        while not cancelled() and time.monotonic() < deadline:
            time.sleep(0.01)
        return real(src, out, key, progress, cancelled, files)

    monkeypatch.setattr(anonymize_export, "anonymize_tree", wait_for_cancel)
    task = export.start("series", str(tmp_path / "anon"), AnonymizeOptions())
    export._progress.canceled.emit()  # the dialog's Cancel button
    assert task.is_cancelled()
    qtbot.waitUntil(lambda: export.report is not None, timeout=10000)
    assert export.report.cancelled and not export.report.written
    assert export.last_message.startswith("cancelled: 0 file(s) written")
    assert export._progress is None and not _files(tmp_path / "anon")

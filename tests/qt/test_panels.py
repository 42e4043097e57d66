"""Series browser, tag browser and window histogram, driven as real widgets under pytest-qt."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

from viewer.core.demo import write_series
from viewer.core.study_index import SeriesEntry, StudyIndex, build_index, load_series
from viewer.qt.panels import SeriesBrowser, TagBrowser, WindowHistogram
from viewer.qt.panels.histogram import histogram
from viewer.qt.panels.thumbnails import thumbnail_array

STUDY_A = "1.2.826.0.1.3680043.8.498.1"
STUDY_B = "1.2.826.0.1.3680043.8.498.2"


def left_bright(shape=(4, 24, 32)) -> np.ndarray:
    hu = np.full(shape, -1000, dtype=np.int16)
    hu[..., : shape[2] // 2] = 1000
    return hu


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory):
    """Two patients, three series (one multi-frame), plus a text file that is skipped."""
    root = tmp_path_factory.mktemp("study")
    write_series(left_bright(), root / "a1", patient_name="Alpha^Ann", patient_id="A",
                 study_uid=STUDY_A, series_description="Chest bright left", series_number=1)
    write_series(np.zeros((3, 16, 16), np.int16), root / "a2", patient_name="Alpha^Ann",
                 patient_id="A", study_uid=STUDY_A, series_description="Lung multiframe",
                 series_number=2, multiframe=True)
    write_series(np.arange(5 * 20 * 20, dtype=np.int16).reshape(5, 20, 20) % 400,
                 root / "b1", modality="MR", patient_name="Beta^Bob", patient_id="B",
                 study_uid=STUDY_B, series_description="Brain T1", series_number=3)
    (root / "notes.txt").write_text("not an image\n")
    return root


@pytest.fixture(scope="module")
def index(study_dir):
    return build_index(study_dir)


@pytest.fixture
def browser(qtbot, index):
    w = SeriesBrowser()
    qtbot.addWidget(w)
    w.resize(700, 500)
    w.show()
    qtbot.waitExposed(w)
    with qtbot.waitSignal(w.thumbnails_finished, timeout=10000):
        w.set_index(index)
    yield w
    w.cancel_thumbnails()
    w.close()


def by_description(index, text) -> SeriesEntry:
    return next(s for s in index.series if s.description == text)


def qimage_array(image: QImage) -> np.ndarray:
    image = image.convertToFormat(QImage.Format.Format_Grayscale8)
    rows, cols, stride = image.height(), image.width(), image.bytesPerLine()
    return np.frombuffer(image.constBits(), np.uint8, rows * stride).reshape(rows, stride)[
        :, :cols].copy()


def test_browser_tree_structure_and_columns(browser, index):
    tree = browser.tree
    assert tree.topLevelItemCount() == 2
    patients = {tree.topLevelItem(i).text(0): tree.topLevelItem(i) for i in range(2)}
    assert set(patients) == {"Alpha^Ann", "Beta^Bob"}
    alpha = patients["Alpha^Ann"]
    assert alpha.childCount() == 1  # one study
    study = alpha.child(0)
    assert study.text(0).startswith("2025-01-02")
    assert study.childCount() == 2
    rows = {study.child(i).text(0): study.child(i) for i in range(2)}
    chest, lung = rows["Chest bright left"], rows["Lung multiframe"]
    assert (chest.text(1), chest.text(2), chest.text(3), chest.text(4)) == (
        "CT", "4", "32×24×4", "ok")
    assert lung.text(2) == "1 / 3"  # one file, three frames
    assert patients["Beta^Bob"].child(0).child(0).text(1) == "MR"
    assert browser.skipped_button.isVisible()
    assert browser.skipped_button.text() == "1 file skipped"
    assert "notes.txt" in browser.skipped_button.toolTip()
    browser.skipped_button.click()
    assert browser.skipped_list.topLevelItemCount() == 1
    assert browser.skipped_list.topLevelItem(0).text(0).endswith("notes.txt")


def test_double_click_and_enter_emit_series_activated(qtbot, browser, index):
    entry = by_description(index, "Brain T1")
    item = browser.series_item(entry.uid)
    browser.tree.scrollToItem(item)
    pos = browser.tree.visualItemRect(item).center()
    viewport = browser.tree.viewport()
    with qtbot.waitSignal(browser.series_activated, timeout=2000) as blocker:
        # a real double-click is press, release, then a second press (QTest's
        # mouseDClick sends only the second half in Qt 6)
        qtbot.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=pos)
        qtbot.mouseDClick(viewport, Qt.MouseButton.LeftButton, pos=pos)
    assert blocker.args[0] is entry
    assert browser.current_series() is entry

    other = by_description(index, "Chest bright left")
    assert browser.select_series(other.uid)
    with qtbot.waitSignal(browser.series_activated, timeout=2000) as blocker:
        qtbot.keyClick(browser.tree, Qt.Key.Key_Return)
    assert blocker.args[0] is other


def test_filter_hides_rows(browser, index):
    mr = browser.series_item(by_description(index, "Brain T1").uid)
    ct = browser.series_item(by_description(index, "Chest bright left").uid)
    browser.filter_edit.setText("mr")
    assert not mr.isHidden() and ct.isHidden()
    assert ct.parent().parent().isHidden()  # patient Alpha has nothing left to show
    browser.filter_edit.setText("alpha lung")  # every word must match
    assert mr.isHidden() and ct.isHidden()
    assert not browser.series_item(by_description(index, "Lung multiframe").uid).isHidden()
    browser.filter_edit.clear()
    assert not mr.isHidden() and not ct.isHidden()


def test_thumbnails_appear_and_keep_left_bright(browser, index):
    for entry in index.series:
        assert browser.thumbnail(entry.uid) is not None, entry.description
    image = qimage_array(browser.thumbnail(by_description(index, "Chest bright left").uid))
    assert max(image.shape) == 64
    half = image.shape[1] // 2
    assert image[:, : half - 2].mean() > image[:, half + 2 :].mean() + 100


def test_error_and_warning_series(qtbot, index):
    ok = index.series[0]
    broken = SeriesEntry(uid="9.9", patient="Gamma", study="9", modality="CT", description="bad",
                         files=["x.dcm"], shape=[1, 8, 8], spacing=[1, 1, 1],
                         status="error: pixel data missing")
    warned = SeriesEntry(uid="9.8", patient="Gamma", study="9", modality="CT", description="odd",
                         files=["y.dcm"], shape=[2, 8, 8], spacing=[1, 1, 1],
                         warnings=["gantry tilt 12.00 degrees", "irregular slice spacing"])
    w = SeriesBrowser()
    qtbot.addWidget(w)
    w.set_index(StudyIndex("/x", series=[ok, broken, warned]))
    bad_item = w.series_item("9.9")
    assert bad_item.text(4) == "pixel data missing"
    assert bad_item.foreground(0).color() != w.series_item(ok.uid).foreground(0).color()
    warn_item = w.series_item("9.8")
    assert warn_item.text(4).startswith("⚠ 2")
    assert "gantry tilt" in warn_item.toolTip(4)
    with qtbot.assertNotEmitted(w.series_activated):
        w.tree.itemActivated.emit(bad_item, 0)
    assert not w.skipped_button.isVisibleTo(w)
    w.cancel_thumbnails()
    w.close()


def test_thousand_series_fill_and_filter_quickly(qtbot):
    series = [
        SeriesEntry(uid=f"1.{n}", patient=f"P{n // 50}", study=f"S{n // 10}", modality="CT",
                    description=f"series {n}", files=[f"f{n}"], shape=[1, 8, 8],
                    spacing=[1, 1, 1], status="error: synthetic")
        for n in range(1000)
    ]
    w = SeriesBrowser()
    qtbot.addWidget(w)
    w.show()
    t0 = time.perf_counter()
    w.set_index(StudyIndex("/x", series=series))
    w.filter_edit.setText("series 99")
    elapsed = time.perf_counter() - t0
    shown = sum(not it.isHidden() for it in (w.series_item(f"1.{n}") for n in (99, 990, 5)))
    assert shown == 2
    assert elapsed < 2.0, f"1000 series took {elapsed:.2f} s"
    w.close()


def test_thumbnail_of_monochrome1_is_inverted(tmp_path):
    write_series(left_bright((1, 16, 16)), tmp_path / "m1",
                 extra={"PhotometricInterpretation": "MONOCHROME1"})
    entry = build_index(tmp_path).series[0]
    image = thumbnail_array(entry)
    assert image[:, :30].mean() < image[:, 34:].mean()


def test_tag_browser_shows_and_filters(qtbot, study_dir):
    w = TagBrowser()
    qtbot.addWidget(w)
    first = sorted((study_dir / "a1").iterdir())[0]
    assert w.show_file(first)
    rows = [w.tree.topLevelItem(i) for i in range(w.tree.topLevelItemCount())]
    name = next(r for r in rows if r.text(1) == "PatientName")
    assert (name.text(0), name.text(2), name.text(3)) == ("(0010,0010)", "PN", "Alpha^Ann")
    w.search_edit.setText("patientname")
    assert [r.text(1) for r in rows if not r.isHidden()] == ["PatientName"]
    w.search_edit.setText("(0008,0060)")
    assert [r.text(3) for r in rows if not r.isHidden()] == ["CT"]
    w.search_edit.clear()
    assert all(not r.isHidden() for r in rows)
    w.close()


def test_tag_browser_nests_sequences_and_keeps_parents(qtbot, study_dir):
    w = TagBrowser()
    qtbot.addWidget(w)
    assert w.show_file(next((study_dir / "a2").iterdir()))
    w.search_edit.setText("imagepositionpatient")
    shown = [w.tree.topLevelItem(i) for i in range(w.tree.topLevelItemCount())
             if not w.tree.topLevelItem(i).isHidden()]
    assert shown and all(r.text(2) == "SQ" for r in shown)
    per_frame = next(r for r in shown if r.text(1) == "PerFrameFunctionalGroupsSequence")
    assert per_frame.text(3) == "3 items"
    item1 = per_frame.child(0)
    assert item1.text(1) == "Item 1" and not item1.isHidden()
    w.close()


def test_tag_browser_reports_odd_files(qtbot, study_dir, tmp_path):
    w = TagBrowser()
    qtbot.addWidget(w)
    assert not w.show_file(study_dir / "notes.txt")
    assert "not a DICOM file" in w.message_label.text()
    assert w.tree.topLevelItemCount() == 0
    (tmp_path / "empty.dcm").write_bytes(b"")
    assert not w.show_file(tmp_path / "empty.dcm")
    assert not w.show_file(tmp_path / "missing.dcm")
    assert "no such file" in w.message_label.text()
    w.close()


def test_histogram_counts_a_strided_sample():
    values = np.zeros((10, 100, 100), np.int16)
    values[:, :, 50:] = 100
    edges, counts = histogram(values, max_samples=10_000)
    assert counts.sum() == pytest.approx(values.size, rel=0.01)
    assert counts[np.searchsorted(edges, 0.0) - 1] == pytest.approx(values.size / 2, rel=0.05)


def test_histogram_region_emits_window_changed(qtbot, index):
    volume = load_series(by_description(index, "Chest bright left"))
    w = WindowHistogram()
    qtbot.addWidget(w)
    w.show()
    with qtbot.assertNotEmitted(w.window_changed):
        w.set_volume(volume)
        w.set_window(40.0, 400.0)
    assert w.unit == "HU"
    assert w.plot.getPlotItem().getAxis("bottom").labelText == "HU"
    assert w.region.getRegion() == pytest.approx((-160.0, 240.0))

    received = []
    w.window_changed.connect(lambda c, wd: received.append((c, wd)))
    with qtbot.waitSignal(w.window_changed, timeout=1000) as blocker:
        w.region.setRegion((-1000.0, 200.0))  # what a drag does
        w.region.sigRegionChangeFinished.emit(w.region)
    assert blocker.args == pytest.approx([-400.0, 1200.0])
    assert received == [pytest.approx((-400.0, 1200.0))]  # drag end does not repeat it

    with qtbot.assertNotEmitted(w.window_changed):
        w.set_window(-600.0, 1500.0)
    assert w.window() == pytest.approx((-600.0, 1500.0))
    w.close()

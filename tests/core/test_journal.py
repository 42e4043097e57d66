"""Autosave journal (viewer.core.journal, viewer.core.journal_recorder): every committed edit
is replayed exactly, damaged tails are dropped, compaction keeps the state, a journal never
lands in a source folder or on another series' grid, and it stays small."""

from __future__ import annotations

import os

import numpy as np
import pytest

from viewer.core.brush import Brush
from viewer.core.editing import flood_fill
from viewer.core.geometry import VolumeGeometry
from viewer.core.history import UndoStack
from viewer.core.journal import (
    MAGIC,
    JournalError,
    find_journals,
    in_use,
    pending_journals,
    read_info,
    recover,
)
from viewer.core.journal_recorder import JournalRecorder
from viewer.core.labelmap import LabelMap

UID = "1.2.826.0.1.3680043.8.498.12345"
SHAPE = (6, 64, 80)
GEOMETRY = VolumeGeometry(SHAPE, (2.5, 0.8, 0.8), (-30.0, -20.0, 10.0))


def _setup(folder, labelmap=None, **kwargs):
    lm = labelmap if labelmap is not None else LabelMap(GEOMETRY)
    stack = UndoStack(lm)
    rec = JournalRecorder(lm, folder, series_uid=UID, source="/data/ct", stack=stack, **kwargs)
    return lm, stack, rec


def _stroke(lm, stack, label, k, start, end, erase=False) -> None:
    brush = Brush(lm, stack, label=label, radius_mm=3.0, axis=0, erase=erase)
    brush.press((k, *start))
    for t in np.linspace(0, 1, 6)[1:]:
        brush.move((k, start[0] + (end[0] - start[0]) * t, start[1] + (end[1] - start[1]) * t))
    brush.release()


def _same(recovered: LabelMap, lm: LabelMap) -> None:
    np.testing.assert_array_equal(recovered.labels, lm.labels)
    assert recovered.segments == lm.segments
    assert recovered.provenance == lm.provenance


def test_every_committed_edit_is_replayed_exactly(tmp_path):
    lm, stack, rec = _setup(tmp_path)
    assert rec.path is None and not list(tmp_path.iterdir())  # nothing before the first edit
    lesion = lm.add_segment("lesion")
    _stroke(lm, stack, lesion, 2, (10, 10), (50, 60))
    other = lm.add_segment("cyst")
    lm.update_segment(other, color=(1, 2, 3), locked=False, visible=False)
    _stroke(lm, stack, other, 3, (40, 5), (20, 70))
    _stroke(lm, stack, lesion, 2, (30, 30), (35, 40), erase=True)
    image = np.zeros(SHAPE, np.int16)
    image[4, 20:40, 20:40] = 100
    flood_fill(lm, stack, (4, 30, 30), lesion, image, hu_range=(50, 150), axis=0)
    stack.undo()
    stack.undo()
    stack.redo()
    lm.provenance.model_name = "ct-lungs"  # no signal: the owner commits after setting it
    rec.commit()
    recovered = recover(rec.path, GEOMETRY)
    _same(recovered.labelmap, lm)
    assert recovered.info.n_edits == 7  # 3 strokes, 1 fill, 2 undos, 1 redo
    assert not recovered.info.dropped_tail
    assert recovered.info.series_uid == UID and recovered.info.source == "/data/ct"
    assert lm.labels.any()


def test_a_stroke_is_one_record_written_at_release(tmp_path):
    lm, stack, rec = _setup(tmp_path)
    label = lm.add_segment("lesion")
    brush = Brush(lm, stack, label=label, radius_mm=3.0, axis=0)
    brush.press((1, 10, 10))
    brush.move((1, 30, 30))
    size = rec.journal.size  # the table record made the file
    assert recover(rec.path).labelmap.labels.sum() == 0  # the open stroke is not written
    brush.move((1, 50, 30))
    assert rec.journal.size == size
    brush.release()
    info = read_info(rec.path)
    assert info.n_edits == 1 and rec.journal.size > size
    _same(recover(rec.path).labelmap, lm)


def _three_strokes(folder):
    lm, stack, rec = _setup(folder)
    label = lm.add_segment("lesion")
    states = []
    for k in range(3):
        _stroke(lm, stack, label, k, (10 + 5 * k, 10), (40, 60 - 5 * k))
        states.append((lm.labels.copy(), os.path.getsize(rec.path)))
    return lm, rec, states


@pytest.mark.parametrize("cut", [1, 9, 30])
def test_a_torn_last_record_is_dropped_and_the_rest_recovered(tmp_path, cut):
    lm, rec, states = _three_strokes(tmp_path)
    rec.close()
    data = rec.path.read_bytes()
    rec.path.write_bytes(data[:-cut])  # the kill came in the middle of the last write
    recovered = recover(rec.path, GEOMETRY)
    assert recovered.info.dropped_tail
    np.testing.assert_array_equal(recovered.labelmap.labels, states[1][0])
    assert recovered.labelmap.segments == lm.segments
    assert recovered.info.n_edits == 2


def test_a_crc_mismatch_ends_the_replay_there(tmp_path):
    lm, rec, states = _three_strokes(tmp_path)
    rec.close()
    data = bytearray(rec.path.read_bytes())
    data[states[1][1] + 20] ^= 0xFF  # one flipped bit pattern inside the third stroke
    rec.path.write_bytes(bytes(data))
    recovered = recover(rec.path)
    assert recovered.info.dropped_tail
    np.testing.assert_array_equal(recovered.labelmap.labels, states[1][0])
    data[states[0][1] + 20] ^= 0xFF  # and one in the second: only the first is left
    rec.path.write_bytes(bytes(data))
    np.testing.assert_array_equal(recover(rec.path).labelmap.labels, states[0][0])


def test_compaction_keeps_the_state_and_the_file_small(tmp_path):
    lm, stack, rec = _setup(tmp_path, max_bytes=4000)
    label = lm.add_segment("lesion")
    sizes = []
    for n in range(40):
        _stroke(lm, stack, label, n % SHAPE[0], (5 + n, 5), (60 - n, 75))
        sizes.append(rec.journal.size)
    assert max(sizes) < 3 * 4000  # compacted again and again instead of growing
    assert any(b < a for a, b in zip(sizes, sizes[1:]))
    assert not list(tmp_path.glob("*.tmp"))
    recovered = recover(rec.path, GEOMETRY)
    _same(recovered.labelmap, lm)
    assert recovered.info.n_edits == 40


def test_writes_outside_the_undo_stack_become_a_checkpoint(tmp_path):
    lm, stack, rec = _setup(tmp_path)
    a, b = lm.add_segment("a"), lm.add_segment("b")
    _stroke(lm, stack, a, 1, (10, 10), (40, 40))
    _stroke(lm, stack, b, 1, (40, 10), (10, 40))
    lm.remove_segment(a)  # changed(None): clears the undo history too
    _same(recover(rec.path).labelmap, lm)
    labels = np.zeros(SHAPE, np.uint8)
    labels[2:4, 5:9, 5:9] = b
    lm.replace_all(labels)
    _same(recover(rec.path).labelmap, lm)


def test_a_map_that_already_held_voxels_starts_with_a_checkpoint(tmp_path):
    labels = np.zeros(SHAPE, np.uint8)
    labels[1:5, 10:30, 10:50] = 1
    imported = LabelMap.from_names(GEOMETRY, labels, {1: "right lung"})
    lm, stack, rec = _setup(tmp_path, imported)
    assert rec.path is None  # opening an import writes nothing
    _stroke(lm, stack, 1, 0, (50, 10), (50, 70))
    recovered = recover(rec.path)
    _same(recovered.labelmap, lm)
    assert recovered.labelmap.segments[1].name == "right lung"


def test_another_grid_is_refused_with_a_clear_message(tmp_path):
    _, rec, _ = _three_strokes(tmp_path)
    moved = VolumeGeometry(SHAPE, (2.5, 0.8, 0.8), (-30.0, -20.0, 12.5))
    with pytest.raises(JournalError, match=r"80\u00d764\u00d76 grid that does not match"):
        recover(rec.path, moved)
    with pytest.raises(JournalError, match="does not match"):
        recover(rec.path, VolumeGeometry((6, 64, 81), (2.5, 0.8, 0.8)))


def test_not_a_journal_and_empty_files_are_clear_errors(tmp_path):
    bad = tmp_path / "x.rvjournal"
    bad.write_bytes(b"DICM" * 40)
    with pytest.raises(JournalError, match="not a radview autosave journal"):
        recover(bad)
    bad.write_bytes(MAGIC)
    with pytest.raises(JournalError, match="no header"):
        read_info(bad)
    with pytest.raises(JournalError, match="cannot read"):
        read_info(tmp_path / "missing.rvjournal")


def test_never_in_the_source_folder(tmp_path):
    source = tmp_path / "dicom"
    source.mkdir()
    failures = []
    lm, stack, rec = _setup(source / "autosave", source_dirs=[source])
    rec.failed.connect(failures.append)
    label = lm.add_segment("lesion")
    _stroke(lm, stack, label, 1, (10, 10), (40, 40))
    assert not (source / "autosave").exists()
    assert failures == [rec.error] and "source folder" in rec.error
    assert lm.labels.any()  # the edit itself is untouched


def test_a_write_error_stops_autosave_once_and_keeps_the_edits(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    failures = []
    lm, stack, rec = _setup(blocker / "autosave")
    rec.failed.connect(failures.append)
    label = lm.add_segment("lesion")
    _stroke(lm, stack, label, 1, (10, 10), (40, 40))
    _stroke(lm, stack, label, 2, (10, 10), (40, 40))
    assert len(failures) == 1 and "autosave stopped" in failures[0]
    assert lm.labels[1].any() and lm.labels[2].any()


def test_lifecycle_keep_unsaved_delete_saved_discard(tmp_path):
    lm, stack, rec = _setup(tmp_path)
    label = lm.add_segment("lesion")
    _stroke(lm, stack, label, 1, (10, 10), (40, 40))
    assert in_use(rec.path) and pending_journals(tmp_path, UID) == []  # ours, live
    kept = rec.close()  # unsaved edits: kept for recovery
    assert kept == rec.path and not in_use(kept)
    (info,) = pending_journals(tmp_path, UID)
    assert info.path == kept and info.n_edits == 1
    assert pending_journals(tmp_path, "1.2.3.other") == []

    lm2, stack2, rec2 = _setup(tmp_path)
    label = lm2.add_segment("lesion")
    _stroke(lm2, stack2, label, 1, (10, 10), (40, 40))
    rec2.mark_saved()  # exported
    assert rec2.close() is None and not rec2.path.exists()

    lm3, stack3, rec3 = _setup(tmp_path)
    _stroke(lm3, stack3, lm3.add_segment("x"), 1, (10, 10), (40, 40))
    generation = rec3.generation
    _stroke(lm3, stack3, 1, 2, (10, 10), (40, 40))
    rec3.mark_saved(generation)  # an export of an older state does not cover the last edit
    assert rec3.close() == rec3.path
    rec3.path.unlink()
    rec.path.unlink()

    lm4, stack4, rec4 = _setup(tmp_path)
    _stroke(lm4, stack4, lm4.add_segment("x"), 1, (10, 10), (40, 40))
    rec4.discard()
    assert find_journals(tmp_path, UID) == []


def test_a_recovered_state_is_written_before_the_old_journal_goes(tmp_path):
    lm, rec, states = _three_strokes(tmp_path)
    rec.close()
    recovered = recover(rec.path, GEOMETRY)
    stack = UndoStack(recovered.labelmap)
    again = JournalRecorder(recovered.labelmap, tmp_path, series_uid=UID, stack=stack)
    again.start(edits=recovered.info.n_edits)
    assert again.unsaved
    rec.path.unlink()
    replay = recover(again.path, GEOMETRY)
    _same(replay.labelmap, lm)
    assert replay.info.n_edits == 3


def test_the_journal_is_small_compared_to_the_volume(tmp_path):
    """Bytes per finished stroke on a 300x512x512 map (a 6 mm brush dragged over ~180 mm)."""
    geometry = VolumeGeometry((300, 512, 512), (1.0, 0.7, 0.7))
    lm = LabelMap(geometry)
    stack = UndoStack(lm)
    rec = JournalRecorder(lm, tmp_path, series_uid=UID, stack=stack)
    label = lm.add_segment("lesion")
    start = None
    for n in range(10):
        brush = Brush(lm, stack, label=label, radius_mm=6.0, axis=0)
        brush.press((100 + n, 100, 100))
        for t in np.linspace(0, 1, 12)[1:]:
            brush.move((100 + n, 100 + 250 * t, 100 + 150 * t))
        brush.release()
        start = start or rec.journal.size
    per_stroke = (rec.journal.size - start) / 9
    assert per_stroke < 2000  # vs 78 MB of labels: edits, not copies
    _same(recover(rec.path, geometry).labelmap, lm)

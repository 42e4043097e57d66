"""UndoStack: grouping, exact undo/redo, one changed(bbox) per undo, memory bound, safety."""

from __future__ import annotations

import numpy as np
import pytest

from viewer.core.geometry import VolumeGeometry
from viewer.core.history import Edit, UndoStack, diff_edit
from viewer.core.labelmap import LabelMap, Provenance, bbox_slices


def _labelmap(shape=(6, 20, 30), provenance=None) -> LabelMap:
    geometry = VolumeGeometry(shape, (2.5, 0.8, 0.6))
    labels = np.zeros(shape, np.uint8)
    labels[1:3, 2:5, 3:9] = 2
    return LabelMap.from_names(geometry, labels, {1: "lung", 2: "consolidation"}, provenance)


def _edit(lm: LabelMap, bbox, value) -> Edit:
    new = np.full([b - a for a, b in bbox], value, np.uint8)
    return diff_edit(lm.labels, bbox, new)


@pytest.fixture
def lm_stack():
    lm = _labelmap()
    stack = UndoStack(lm)
    log = {"labels": [], "history": 0}
    lm.changed.connect(lambda bbox: log["labels"].append(bbox))
    stack.changed.connect(lambda: log.__setitem__("history", log["history"] + 1))
    return lm, stack, log


def test_diff_edit_crops_to_changed_voxels_and_is_none_when_equal():
    lm = _labelmap()
    new = lm.labels[0:4, 0:10, 0:10].copy()
    assert diff_edit(lm.labels, ((0, 4), (0, 10), (0, 10)), new) is None
    new[2, 6, 7] = 1
    new[3, 8, 2] = 1
    edit = diff_edit(lm.labels, ((0, 4), (0, 10), (0, 10)), new)
    assert edit.bbox == ((2, 4), (6, 9), (2, 8))
    assert edit.changed_voxels == 2
    assert not np.shares_memory(edit.old, lm.labels)


def test_edit_rejects_arrays_of_the_wrong_shape():
    with pytest.raises(ValueError, match="shape"):
        Edit(((0, 2), (0, 2), (0, 2)), np.zeros((2, 2, 2), np.uint8), np.zeros((2, 2), np.uint8))
    with pytest.raises(ValueError, match="non-empty"):
        Edit(((0, 0), (0, 2), (0, 2)), np.zeros((0, 2, 2), np.uint8), np.zeros((0, 2, 2), np.uint8))


def test_single_apply_is_a_step_and_undo_redo_restore_exactly(lm_stack):
    lm, stack, log = lm_stack
    before = lm.labels.copy()
    assert not stack.can_undo and not stack.can_redo and stack.undo_name == ""
    stack.apply(_edit(lm, ((1, 4), (3, 7), (5, 12)), 1), "Paint lung")
    after = lm.labels.copy()
    assert (after == 1).sum() == 3 * 4 * 7
    assert stack.can_undo and stack.undo_name == "Paint lung" and log["history"] == 1
    assert stack.undo()
    np.testing.assert_array_equal(lm.labels, before)
    assert stack.can_redo and stack.redo_name == "Paint lung" and not stack.can_undo
    assert stack.redo()
    np.testing.assert_array_equal(lm.labels, after)
    assert not stack.redo()  # nothing left to redo
    assert log["labels"] == [((1, 4), (3, 7), (5, 12))] * 3


def test_group_is_one_step_and_undo_emits_once_with_the_union_bbox(lm_stack):
    lm, stack, log = lm_stack
    before = lm.labels.copy()
    stack.begin("Stroke")
    stack.apply(_edit(lm, ((0, 1), (0, 3), (0, 3)), 1))
    stack.begin("inner")  # nested groups join the outer one
    stack.apply(_edit(lm, ((2, 3), (10, 12), (20, 25)), 1))
    stack.end()
    stack.apply(_edit(lm, ((1, 2), (1, 4), (4, 6)), 1))  # overlaps label 2
    assert stack.in_group and not stack.can_undo
    stack.end()
    assert len(stack) == 1 and stack.undo_name == "Stroke"
    after = lm.labels.copy()
    log["labels"].clear()
    stack.undo()
    np.testing.assert_array_equal(lm.labels, before)
    assert log["labels"] == [((0, 3), (0, 12), (0, 25))]
    stack.redo()
    np.testing.assert_array_equal(lm.labels, after)


def test_empty_group_pushes_nothing(lm_stack):
    lm, stack, _ = lm_stack
    with stack.group("nothing"):
        pass
    assert not stack.can_undo


def test_undo_inside_an_open_group_is_refused(lm_stack):
    lm, stack, _ = lm_stack
    stack.apply(_edit(lm, ((0, 1), (0, 1), (0, 1)), 1))
    stack.begin("Stroke")
    with pytest.raises(RuntimeError, match="Stroke"):
        stack.undo()
    stack.end()
    with pytest.raises(RuntimeError):
        stack.end()


def test_new_step_after_undo_drops_the_redo_side(lm_stack):
    lm, stack, _ = lm_stack
    stack.apply(_edit(lm, ((0, 1), (0, 1), (0, 1)), 1), "a")
    stack.undo()
    stack.apply(_edit(lm, ((0, 1), (1, 2), (0, 1)), 1), "b")
    assert not stack.can_redo and stack.undo_name == "b" and len(stack) == 1


def test_stale_edit_is_rejected_and_labels_untouched(lm_stack):
    lm, stack, _ = lm_stack
    edit = _edit(lm, ((1, 2), (2, 4), (3, 5)), 1)  # old = label 2 there
    lm.labels[1, 2, 3] = 0  # the map changed behind the edit's back
    snapshot = lm.labels.copy()
    with pytest.raises(ValueError, match="stale"):
        stack.apply(edit)
    np.testing.assert_array_equal(lm.labels, snapshot)
    assert not stack.can_undo


def test_edit_holding_views_of_the_map_is_copied_before_writing(lm_stack):
    lm, stack, _ = lm_stack
    box = ((0, 2), (0, 2), (0, 2))
    view = lm.labels[bbox_slices(box)]
    stack.apply(Edit(box, view, np.ones((2, 2, 2), np.uint8)))
    stack.undo()
    assert not lm.labels[bbox_slices(box)].any()


def test_memory_bound_drops_the_oldest_steps():
    lm = _labelmap(shape=(4, 40, 40))
    stack = UndoStack(lm, max_bytes=3 * (2 * 400 + 256))  # three 1x20x20 steps
    for k in range(4):
        stack.apply(_edit(lm, ((k, k + 1), (0, 20), (20, 40)), 1), f"step {k}")
    assert len(stack) == 3 and stack.nbytes <= stack.max_bytes
    while stack.undo():
        pass
    assert (lm.labels[0, 0:20, 20:40] == 1).all()  # step 0 was dropped: not undoable
    assert not lm.labels[1:, 0:20, 20:40].any()


def test_newest_step_is_kept_even_when_larger_than_the_bound():
    lm = _labelmap(shape=(4, 40, 40))
    stack = UndoStack(lm, max_bytes=100)
    stack.apply(_edit(lm, ((0, 4), (0, 40), (0, 40)), 1))
    assert stack.can_undo
    stack.undo()
    assert not (lm.labels == 1).any()


def test_overlapping_edits_are_merged_into_one_smaller_record(lm_stack):
    lm, stack, _ = lm_stack
    before = lm.labels.copy()
    stack.begin("Drag")
    for i in range(10):  # ten 1x6x6 boxes, each shifted by one column
        stack.apply(_edit(lm, ((4, 5), (5, 11), (i, i + 6)), 1))
    stack.end()
    assert stack.nbytes <= 2 * 6 * 15 + 256
    after = lm.labels.copy()
    stack.undo()
    np.testing.assert_array_equal(lm.labels, before)
    stack.redo()
    np.testing.assert_array_equal(lm.labels, after)


def test_whole_map_replacement_clears_the_history(lm_stack):
    lm, stack, log = lm_stack
    stack.apply(_edit(lm, ((0, 1), (0, 1), (0, 1)), 1))
    lm.replace_all(np.zeros(lm.shape, np.uint8))
    assert not stack.can_undo and not stack.can_redo
    stack.clear()
    assert not stack.can_undo


def test_automatic_labels_turn_semiautomatic_after_an_edit():
    lm = _labelmap(provenance=Provenance("AUTOMATIC", "ct-infection", "1"))
    stack = UndoStack(lm)
    stack.apply(_edit(lm, ((0, 1), (0, 1), (0, 1)), 1))
    assert lm.provenance.algorithm_type == "SEMIAUTOMATIC"
    stack.undo()  # undoing a hand edit is still a hand-made state
    assert lm.provenance.algorithm_type == "SEMIAUTOMATIC"

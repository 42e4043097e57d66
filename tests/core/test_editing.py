"""Editing operations on small anisotropic label maps: voxels, sizes in mm, undo, locks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from viewer.core import editing
from viewer.core.editing import Brush
from viewer.core.geometry import VolumeGeometry
from viewer.core.history import UndoStack, union_bbox
from viewer.core.labelmap import LabelMap, Provenance, bbox_slices
from viewer.core.volume import Volume

SPACING = (2.0, 0.7, 0.5)  # k, j, i (mm)
SHAPE = (16, 64, 72)
LUNG, GGO, LOCKED = 1, 2, 3


def _setup(shape=SHAPE, spacing=SPACING, provenance=None):
    geometry = VolumeGeometry(shape, spacing)
    names = {LUNG: "lung", GGO: "ground-glass opacity", LOCKED: "reference"}
    lm = LabelMap.from_names(geometry, np.zeros(shape, np.uint8), names, provenance)
    stack = UndoStack(lm)
    bboxes = []
    lm.changed.connect(bboxes.append)
    return lm, stack, bboxes


def _centres_mm(mask: np.ndarray, centre, spacing=SPACING) -> np.ndarray:
    """Distances (mm) from ``centre`` (k, j, i) to the centres of the True voxels."""
    idx = np.argwhere(mask)
    return np.sqrt((((idx - np.asarray(centre)) * np.asarray(spacing)) ** 2).sum(axis=1))


# -- brush -------------------------------------------------------------------------------------


def test_drag_is_one_undo_step_and_undo_redo_are_exact():
    lm, stack, _ = _setup()
    lm.labels[8, 20:30, 20:30] = GGO  # a drag over another segment overwrites it
    before = lm.labels.copy()
    brush = Brush(lm, stack, label=LUNG, radius_mm=3.0, axis=0)
    brush.press((8, 10, 10))
    for point in [(8, 15, 18), (8, 25, 25), (8, 30, 40), (8.3, 40, 50)]:
        brush.move(point)
    assert stack.in_group and not stack.can_undo  # the stroke is still open
    brush.release()
    after = lm.labels.copy()
    assert len(stack) == 1 and stack.undo_name == "Paint lung"
    assert (after == LUNG).sum() > 500 and (after[8, 20:30, 20:30] == LUNG).any()
    assert not np.any(after[np.arange(16) != 8] != before[np.arange(16) != 8])
    stack.undo()
    np.testing.assert_array_equal(lm.labels, before)
    stack.redo()
    np.testing.assert_array_equal(lm.labels, after)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_disc_size_in_mm_on_each_axis(axis):
    lm, stack, _ = _setup()
    centre = (8, 32, 36)
    Brush(lm, stack, label=LUNG, radius_mm=5.0, axis=axis).press(centre)
    mask = lm.labels == LUNG
    assert np.unique(np.argwhere(mask)[:, axis]).tolist() == [centre[axis]]  # one slice
    plane = [s for d, s in enumerate(SPACING) if d != axis]
    expected = math.pi * 5.0**2 / (plane[0] * plane[1])
    # within 10%: a 5 mm disc spans only 5 rows of 2 mm slices on axes 1 and 2
    assert abs(mask.sum() - expected) / expected < (0.03 if axis == 0 else 0.1)
    dist = _centres_mm(mask, centre)
    assert dist.max() <= 5.0 + 1e-9
    # every voxel centre of that slice within 5 mm is painted
    slab = np.zeros_like(mask)
    slab[tuple(slice(c, c + 1) if d == axis else slice(None) for d, c in enumerate(centre))] = 1
    assert (_centres_mm(slab & ~mask, centre) > 5.0).all()


def test_5mm_disc_on_07mm_pixels_is_about_14_pixels_wide():
    lm, stack, _ = _setup(spacing=(2.0, 0.7, 0.7))
    Brush(lm, stack, label=LUNG, radius_mm=5.0).press((8, 32, 36))
    row = lm.labels[8, 32] == LUNG
    assert row.sum() == 15  # centres at -7..7 pixels = -4.9..4.9 mm
    assert lm.labels[8, :, 36].sum() == 15


def test_sphere_is_an_ellipsoid_on_anisotropic_voxels():
    lm, stack, bboxes = _setup()
    centre = (8, 32, 36)
    Brush(lm, stack, label=LUNG, radius_mm=6.0, sphere=True).press(centre)
    mask = lm.labels == LUNG
    expected = 4 / 3 * math.pi * 6.0**3 / np.prod(SPACING)
    assert abs(mask.sum() - expected) / expected < 0.06
    assert np.unique(np.argwhere(mask)[:, 0]).tolist() == [5, 6, 7, 8, 9, 10, 11]
    assert _centres_mm(mask, centre).max() <= 6.0 + 1e-9
    box = bboxes[-1]
    assert box == ((5, 12), (24, 41), (24, 49))  # ceil(6/0.7)=9 -> 23.4 .. 40.6 rows


def test_tiny_brush_paints_the_nearest_voxel_and_no_more():
    lm, stack, _ = _setup()
    brush = Brush(lm, stack, label=LUNG, radius_mm=0.1, sphere=True)
    brush.press((8.2, 30.4, 30.6))
    assert np.argwhere(lm.labels == LUNG).tolist() == [[8, 30, 31]]
    brush.release()
    # 1 mm on 2 mm slices: one slice, a 1 mm disc in-plane (not inflated by the slice gap)
    Brush(lm, stack, label=GGO, radius_mm=1.0, axis=1).press((4, 10, 10))
    assert (lm.labels == GGO).sum() == 5  # i = 8..12 at 0.5 mm on slice k=4


def test_fast_drag_leaves_no_gap():
    lm, stack, bboxes = _setup()
    brush = Brush(lm, stack, label=LUNG, radius_mm=2.0, axis=0)
    brush.press((4, 10, 5))
    brush.move((4, 50, 65))  # one jump of 60 columns, 40 rows
    brush.release()
    plane = lm.labels[4] == LUNG
    # the segment between the points is painted, with the same width all along
    for t in np.linspace(0, 1, 200):
        j, i = 10 + 40 * t, 5 + 60 * t
        assert plane[round(j), round(i)]
    widths = [plane[:, i].sum() for i in range(12, 58)]
    assert max(widths) - min(widths) <= 1
    assert len(bboxes) == 2 and bboxes[1][0] == (4, 5)


def test_each_move_touches_only_the_box_of_its_new_disc():
    lm, stack, bboxes = _setup()
    brush = Brush(lm, stack, label=LUNG, radius_mm=2.0)
    brush.press((8, 30, 30))
    brush.move((8, 30, 33))
    brush.release()
    assert bboxes[0] == ((8, 9), (28, 33), (26, 35))
    # the move's edit covers only voxels the first disc had not painted
    assert bboxes[1][1] == (28, 33) and bboxes[1][2][0] >= 31 and bboxes[1][2][1] == 38
    assert all(a >= 0 for box in bboxes for a, _ in box)


def test_threshold_brush_paints_only_inside_the_hu_range():
    lm, stack, _ = _setup()
    rng = np.random.default_rng(0)
    image = rng.integers(-1000, 200, size=SHAPE).astype(np.int16)
    brush = Brush(lm, stack, label=GGO, radius_mm=6.0, hu_range=(-700, -300), image=image)
    brush.press((8, 32, 36))
    brush.move((8, 36, 40))
    brush.release()
    painted = lm.labels == GGO
    assert painted.sum() > 50
    assert ((image[painted] >= -700) & (image[painted] <= -300)).all()
    disc = np.zeros(SHAPE, bool)
    idx = np.argwhere(np.ones(SHAPE[1:], bool))
    d = np.sqrt((((idx - [32, 36]) * [0.7, 0.5]) ** 2).sum(axis=1))
    disc[8][tuple(idx[d <= 6.0].T)] = True
    in_range = (image >= -700) & (image <= -300)
    assert (painted[disc & in_range]).all()


def test_threshold_brush_needs_the_image():
    lm, stack, _ = _setup()
    with pytest.raises(ValueError, match="needs the image"):
        Brush(lm, stack, label=GGO, radius_mm=3, hu_range=(-700, -300))
    with pytest.raises(ValueError, match="does not match"):
        Brush(lm, stack, label=GGO, radius_mm=3, hu_range=(0, 1), image=np.zeros((2, 2, 2)))


def test_eraser_clears_only_the_active_label():
    lm, stack, _ = _setup()
    lm.labels[8, 20:44, 20:36] = LUNG
    lm.labels[8, 20:44, 36:52] = GGO
    eraser = Brush(lm, stack, label=LUNG, radius_mm=5.0, erase=True)
    eraser.press((8, 32, 36))
    eraser.release()
    assert (lm.labels[8, 20:44, 36:52] == GGO).all()  # the other segment is untouched
    assert lm.labels[8, 32, 35] == 0 and lm.labels[8, 32, 20] == LUNG
    assert stack.undo_name == "Erase lung"
    stack.undo()
    assert (lm.labels[8, 20:44, 20:36] == LUNG).all()


def test_locked_segment_is_never_overwritten_nor_erased():
    lm, stack, _ = _setup()
    lm.labels[8, 28:36, 30:40] = LOCKED
    lm.update_segment(LOCKED, locked=True)
    brush = Brush(lm, stack, label=LUNG, radius_mm=8.0)
    brush.press((8, 32, 36))
    brush.release()
    assert (lm.labels[8, 28:36, 30:40] == LOCKED).all()
    assert (lm.labels == LUNG).sum() > 300
    for erase in (False, True):
        with pytest.raises(ValueError, match="locked"):
            Brush(lm, stack, label=LOCKED, radius_mm=3.0, erase=erase)
    with pytest.raises(ValueError, match="locked"):
        editing.clear_segment(lm, stack, LOCKED)
    editing.grow_shrink(lm, stack, LUNG, 3.0)
    assert (lm.labels[8, 28:36, 30:40] == LOCKED).all()


def test_overwrite_false_paints_background_only():
    lm, stack, _ = _setup()
    lm.labels[8, 30:34, 30:40] = GGO
    Brush(lm, stack, label=LUNG, radius_mm=5.0, overwrite=False).press((8, 32, 36))
    assert (lm.labels[8, 30:34, 30:40] == GGO).all()
    assert lm.labels[8, 36, 36] == LUNG


def test_brush_stroke_memory_is_proportional_to_its_box_not_the_volume():
    shape = (40, 256, 256)
    lm, stack, bboxes = _setup(shape=shape)
    brush = Brush(lm, stack, label=LUNG, radius_mm=5.0)
    brush.press((20, 100, 100))
    for step in range(1, 30):
        brush.move((20, 100 + step, 100 + 2 * step))
    brush.release()
    union = np.prod([b - a for a, b in union_bbox(bboxes)])
    assert union <= (29 + 15) * (58 + 21)  # the capsule: path plus the disc (14 x 20 px)
    assert stack.nbytes <= 2 * union + 4096
    assert stack.nbytes < lm.labels.nbytes / 100


def test_bad_brush_settings_are_clear_errors():
    lm, stack, _ = _setup()
    with pytest.raises(ValueError, match="radius"):
        Brush(lm, stack, label=LUNG, radius_mm=0)
    with pytest.raises(ValueError, match="axis"):
        Brush(lm, stack, label=LUNG, radius_mm=2, axis=3)
    with pytest.raises(ValueError, match="not a segment"):
        Brush(lm, stack, label=9, radius_mm=2)
    with pytest.raises(RuntimeError, match="press"):
        Brush(lm, stack, label=LUNG, radius_mm=2).move((1, 1, 1))


def test_brush_outside_the_volume_paints_the_part_inside():
    lm, stack, _ = _setup()
    Brush(lm, stack, label=LUNG, radius_mm=3.0).press((8, -2, 0))
    assert 0 < (lm.labels == LUNG).sum() < math.pi * 9 / 0.35 / 2


def test_provenance_automatic_turns_semiautomatic_after_a_stroke():
    lm, stack, _ = _setup(provenance=Provenance("AUTOMATIC", "ct-infection", "1.0"))
    Brush(lm, stack, label=GGO, radius_mm=2.0).press((3, 3, 3))
    assert lm.provenance.algorithm_type == "SEMIAUTOMATIC"


# -- flood fill and threshold -------------------------------------------------------------------


def _two_rooms_image():
    """-800 HU rooms at i < 30 and i > 32 (a 0 HU wall between), on slices 4..11."""
    image = np.full(SHAPE, 50, np.int16)
    image[4:12, 10:50, 10:30] = -800
    image[4:12, 10:50, 33:60] = -800
    image[4:12, 10:50, 30:33] = 0
    image[4:12, 30, 15] = -300  # a voxel out of range inside the room
    return image


def test_flood_fill_2d_stays_in_range_connected_and_on_its_slice():
    lm, stack, bboxes = _setup()
    image = _two_rooms_image()
    edit = editing.flood_fill(lm, stack, (6, 20, 20), LUNG, image, hu_range=(-1000, -500), axis=0)
    filled = lm.labels == LUNG
    assert filled.sum() == 40 * 20 - 1
    assert filled[6, 10:50, 10:30].sum() == 40 * 20 - 1 and not filled[6, 30, 15]
    assert bboxes == [edit.bbox] == [((6, 7), (10, 50), (10, 30))]
    assert len(stack) == 1 and stack.undo_name == "Flood fill"


def test_flood_fill_3d_crosses_slices_but_not_the_wall():
    lm, stack, _ = _setup()
    image = _two_rooms_image()
    editing.flood_fill(lm, stack, (6, 20, 20), LUNG, image, hu_range=(-1000, -500))
    filled = lm.labels == LUNG
    assert filled.sum() == 8 * (40 * 20 - 1)
    assert not filled[:, :, 30:].any() and not filled[:4].any() and not filled[12:].any()


def test_flood_fill_face_connectivity_and_tolerance():
    lm, stack, _ = _setup()
    image = np.zeros(SHAPE, np.int16)
    image[5, 10, 10] = image[5, 11, 11] = 100  # touch by a corner only
    image[5, 10, 11] = 90  # within 15 of 100? yes -> joins both
    editing.flood_fill(lm, stack, (5, 10, 10), LUNG, image, tolerance=5, axis=0)
    assert (lm.labels == LUNG).sum() == 1
    editing.flood_fill(lm, stack, (5, 10, 10), LUNG, image, tolerance=15, axis=0)
    assert (lm.labels == LUNG).sum() == 3


def test_flood_fill_takes_a_volume_and_ranges_wider_than_its_pixel_type():
    lm, stack, _ = _setup()
    volume = Volume(_two_rooms_image(), lm.geometry, modality="CT")
    editing.flood_fill(lm, stack, (0, 0, 0), LUNG, volume, hu_range=(-1e6, 1e6), axis=2)
    assert (lm.labels[:, :, 0] == LUNG).all() and (lm.labels == LUNG).sum() == 16 * 64


def test_flood_fill_with_seed_out_of_range_changes_nothing():
    lm, stack, _ = _setup()
    image = _two_rooms_image()
    assert editing.flood_fill(lm, stack, (6, 30, 31), LUNG, image, hu_range=(-1000, -500)) is None
    assert not stack.can_undo and not lm.labels.any()
    with pytest.raises(ValueError, match="either"):
        editing.flood_fill(lm, stack, (6, 30, 31), LUNG, image)
    with pytest.raises(ValueError, match="outside"):
        editing.flood_fill(lm, stack, (16, 0, 0), LUNG, image, tolerance=1)


def test_threshold_within_a_segment():
    lm, stack, _ = _setup()
    image = _two_rooms_image()
    lm.labels[:, :, :31] = LUNG  # "lung" covers the left room and its wall
    editing.threshold(lm, stack, GGO, image, (-1000, -500), within_mask=LUNG)
    ggo = lm.labels == GGO
    assert ggo.sum() == 8 * (40 * 20 - 1) and not ggo[:, :, 30:].any()
    with pytest.raises(ValueError, match="above"):
        editing.threshold(lm, stack, GGO, image, (0, -10))


# -- islands, holes, margin ---------------------------------------------------------------------


def _islands(lm):
    lm.labels[2:5, 2:5, 2:5] = LUNG  # 27 voxels
    lm.labels[8:10, 20:22, 20:22] = LUNG  # 8 voxels
    lm.labels[12, 40, 40] = LUNG  # 1 voxel
    lm.labels[12, 41, 41] = LUNG  # 1 voxel, corner-touching the previous one
    lm.labels[12, 50:52, 50:52] = GGO


def test_remove_small_islands():
    lm, stack, _ = _setup()
    _islands(lm)
    editing.remove_small_islands(lm, stack, LUNG, min_voxels=8)
    assert (lm.labels == LUNG).sum() == 27 + 8
    assert (lm.labels == GGO).sum() == 4
    stack.undo()
    # min_size_mm3: one voxel is 0.7 mm3; 10 mm3 -> 15 voxels
    editing.remove_small_islands(lm, stack, LUNG, 10.0)
    assert (lm.labels == LUNG).sum() == 27
    stack.undo()
    editing.remove_small_islands(lm, stack, LUNG, min_voxels=2, full_connectivity=True)
    assert (lm.labels == LUNG).sum() == 27 + 8 + 2


def test_keep_largest_island():
    lm, stack, bboxes = _setup()
    _islands(lm)
    editing.keep_largest_island(lm, stack, LUNG)
    assert (lm.labels == LUNG).sum() == 27 and lm.labels[3, 3, 3] == LUNG
    assert bboxes[-1] == ((8, 13), (20, 42), (20, 42))
    assert (lm.labels == GGO).sum() == 4


def test_fill_holes_3d_and_per_slice():
    lm, stack, _ = _setup()
    lm.labels[4:9, 10:20, 10:20] = LUNG
    lm.labels[5:8, 12:18, 12:18] = 0
    lm.labels[6, 14, 14] = GGO  # another segment inside the hole is kept by default
    editing.fill_holes(lm, stack, LUNG)
    assert (lm.labels[4:9, 10:20, 10:20] == LUNG).sum() == 500 - 1
    stack.undo()
    lm.labels[5:8, 10:12, 15] = 0  # open the box on one side: no 3D hole, but none per k slice
    assert editing.fill_holes(lm, stack, LUNG) is None
    editing.fill_holes(lm, stack, LUNG, axis=1)  # closed in the (k, i) planes
    assert lm.labels[6, 15, 15] == LUNG and lm.labels[6, 14, 14] == GGO


def test_grow_and_shrink_by_a_margin_in_mm():
    lm, stack, _ = _setup()
    lm.labels[8, 32, 36] = LUNG
    editing.grow_shrink(lm, stack, LUNG, 3.0)
    grown = lm.labels == LUNG
    every = np.argwhere(np.ones(SHAPE, bool))
    d = np.sqrt((((every - [8, 32, 36]) * np.asarray(SPACING)) ** 2).sum(axis=1))
    expected = np.zeros(SHAPE, bool)
    expected[tuple(every[d <= 3.0].T)] = True
    np.testing.assert_array_equal(grown, expected)
    editing.grow_shrink(lm, stack, LUNG, -3.0)
    assert (lm.labels == LUNG).sum() == 1
    assert len(stack) == 2 and stack.undo_name == "Shrink"


# -- fill between slices -------------------------------------------------------------------------


def _disc(shape2d, centre, radius_mm, spacing2d):
    idx = np.indices(shape2d).reshape(2, -1).T
    d = np.sqrt((((idx - centre) * np.asarray(spacing2d)) ** 2).sum(axis=1))
    return (d <= radius_mm).reshape(shape2d)


def test_interpolation_between_two_drawn_slices():
    lm, stack, _ = _setup()
    small = _disc(SHAPE[1:], (30, 30), 4.0, SPACING[1:])
    large = _disc(SHAPE[1:], (34, 38), 9.0, SPACING[1:])
    lm.labels[3][small] = LUNG
    lm.labels[11][large] = LUNG
    lm.labels[7, 0:5, 0:5] = GGO  # elsewhere on an in-between slice
    before = lm.labels.copy()
    edit = editing.interpolate_slices(lm, stack, LUNG, axis=0)
    areas = [(lm.labels[k] == LUNG).sum() for k in range(SHAPE[0])]
    np.testing.assert_array_equal(lm.labels[[3, 11]], before[[3, 11]])  # drawn slices kept
    assert areas[:3] == [0, 0, 0] and areas[12:] == [0] * 4  # nothing outside the span
    between = areas[3:12]
    assert all(a < b for a, b in zip(between, between[1:]))  # grows from small to large
    assert 0.3 < between[4] / ((small.sum() + large.sum()) / 2) < 1.3
    for k in range(4, 11):  # one blob whose centre moves from (30, 30) to (34, 38)
        w = (k - 3) / 8
        centre = np.argwhere(lm.labels[k] == LUNG).mean(axis=0)
        assert np.abs(centre - (30 + 4 * w, 30 + 8 * w)).max() < 1.0
    assert (lm.labels[7, 0:5, 0:5] == GGO).all()
    assert edit.bbox[0] == (4, 11) and len(stack) == 1
    stack.undo()
    np.testing.assert_array_equal(lm.labels, before)


def test_interpolation_carries_a_drifting_shape_along():
    lm, stack, _ = _setup()
    lm.labels[2][_disc(SHAPE[1:], (20, 15), 3.0, SPACING[1:])] = LUNG
    lm.labels[10][_disc(SHAPE[1:], (40, 55), 3.0, SPACING[1:])] = LUNG  # no overlap
    editing.interpolate_slices(lm, stack, LUNG)
    area = (lm.labels[2] == LUNG).sum()
    for k in range(3, 10):
        w = (k - 2) / 8
        blob = lm.labels[k] == LUNG
        assert abs(blob.sum() - area) <= 0.1 * area  # the same disc, not a fading one
        centre = np.argwhere(blob).mean(axis=0)
        assert np.abs(centre - (20 + 20 * w, 15 + 40 * w)).max() <= 0.5


def test_interpolation_of_several_pieces_stays_within_their_union():
    lm, stack, _ = _setup()
    two = _disc(SHAPE[1:], (20, 15), 3.0, SPACING[1:]) | _disc(
        SHAPE[1:], (20, 50), 3.0, SPACING[1:]
    )
    one = _disc(SHAPE[1:], (20, 15), 5.0, SPACING[1:])
    lm.labels[2][two] = LUNG
    lm.labels[6][one] = LUNG
    editing.interpolate_slices(lm, stack, LUNG)
    for k in (3, 4, 5):
        blob = lm.labels[k] == LUNG
        assert blob[:, :33].any() and not (blob & ~(one | two)).any()
    assert (lm.labels[3, :, 33:] == LUNG).sum() > (lm.labels[5, :, 33:] == LUNG).sum()


def test_interpolation_over_several_gaps_with_different_drifts():
    lm, stack, _ = _setup()
    lm.labels[1][_disc(SHAPE[1:], (20, 10), 2.0, SPACING[1:])] = LUNG
    lm.labels[5][_disc(SHAPE[1:], (20, 60), 2.0, SPACING[1:])] = LUNG  # far drift
    lm.labels[8][_disc(SHAPE[1:], (22, 60), 2.0, SPACING[1:])] = LUNG  # small drift
    editing.interpolate_slices(lm, stack, LUNG)
    centres = {k: np.argwhere(lm.labels[k] == LUNG).mean(axis=0) for k in range(1, 9)}
    assert np.abs(centres[3] - (20, 35)).max() <= 0.5
    assert np.abs(centres[6] - (20 + 2 / 3, 60)).max() <= 0.5
    assert np.abs(centres[7] - (20 + 4 / 3, 60)).max() <= 0.5


def test_interpolation_along_i_and_nothing_to_do():
    lm, stack, _ = _setup()
    assert editing.interpolate_slices(lm, stack, LUNG, axis=2) is None
    lm.labels[4:10, 20:30, 10] = LUNG
    assert editing.interpolate_slices(lm, stack, LUNG, axis=2) is None  # one slice drawn
    lm.labels[4:10, 20:30, 20] = LUNG
    editing.interpolate_slices(lm, stack, LUNG, axis=2)
    assert (lm.labels[4:10, 20:30, 10:21] == LUNG).all()
    assert (lm.labels == LUNG).sum() == 6 * 10 * 11


def test_clear_and_replace_label():
    lm, stack, _ = _setup()
    lm.labels[1:3, 1:3, 1:3] = LUNG
    editing.replace_label(lm, stack, LUNG, GGO)
    assert (lm.labels == GGO).sum() == 8 and stack.undo_name == "Merge lung"
    editing.clear_segment(lm, stack, GGO)
    assert not lm.labels.any()
    stack.undo()
    stack.undo()
    assert (lm.labels == LUNG).sum() == 8


def test_paint_mask_checks_its_shape():
    lm, stack, _ = _setup()
    box = ((0, 2), (0, 2), (0, 2))
    editing.paint_mask(lm, stack, LUNG, np.ones((2, 2, 2), bool), bbox=box)
    assert (lm.labels[bbox_slices(box)] == LUNG).all()
    with pytest.raises(ValueError, match="mask shape"):
        editing.paint_mask(lm, stack, LUNG, np.ones((2, 2), bool), bbox=box)

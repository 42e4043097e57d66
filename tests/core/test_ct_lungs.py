"""Classical CT lung segmentation (ai.ct_lungs, no TensorFlow) on the synthetic chest phantom:
Dice per lung, right/left from the geometry, trachea left out, single slices, junction split,
clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from ai.classify import Cancelled
from ai.ct_lungs import LEFT_LUNG, RIGHT_LUNG, segment_lungs, segment_volume
from viewer.core.demo import anatomy
from viewer.core.demo.phantom import chest_phantom
from viewer.core.geometry import VolumeGeometry
from viewer.core.volume import Volume

# 40 slices of 7.5 mm, 1 mm pixels: the working grid is 2 mm in-plane, refined to 1 mm
SHAPE, SPACING = (40, 360, 360), (7.5, 1.0, 1.0)


def _truth(labels: np.ndarray) -> np.ndarray:
    """Phantom labels as right (1) / left (2) lungs: lesions (3, 4) join the lung of their
    side (the phantom's i axis points to the patient's left, its centre is the midline)."""
    ni = labels.shape[2]
    side = np.where(np.arange(ni) < (ni - 1) / 2, RIGHT_LUNG, LEFT_LUNG).astype(np.uint8)
    out = labels.copy()
    lesion = labels >= 3
    out[lesion] = np.broadcast_to(side[None, None, :], labels.shape)[lesion]
    return out


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


@pytest.fixture(scope="module")
def phantom():
    hu, info = chest_phantom(SHAPE, SPACING, seed=3)
    return hu, _truth(info["labels"])


@pytest.fixture(scope="module")
def result(phantom):
    hu, _ = phantom
    steps = []
    out = segment_lungs(hu, SPACING, progress=lambda f, m: steps.append(f))
    return out, steps


def test_dice_per_lung_and_sides(phantom, result):
    _, truth = phantom
    out, steps = result
    assert out.dtype == np.uint8 and out.shape == SHAPE
    assert set(np.unique(out)) == {0, 1, 2}
    for label in (RIGHT_LUNG, LEFT_LUNG):
        assert _dice(out == label, truth == label) >= 0.95, label
    # identity direction: i points to the patient's left, so the right lung is at low i
    cols = np.arange(SHAPE[2])
    assert cols[(out == RIGHT_LUNG).any(axis=(0, 1))].mean() < SHAPE[2] / 2
    assert cols[(out == LEFT_LUNG).any(axis=(0, 1))].mean() > SHAPE[2] / 2
    assert steps == sorted(steps) and steps[0] == 0.0 and steps[-1] == 1.0


def test_trachea_not_included(phantom, result):
    hu, _ = phantom
    out, _ = result
    g = anatomy.Grid(SHAPE, SPACING)
    # the trachea: lumen radius 8.5 model mm around (x 0, y 22) from the carina (z 190) up
    top_k = [k for k in range(SHAPE[0]) if g.z[k] > 196]
    _, j0, i0 = g.to_kji((0.0, 22.0, 250.0))
    r = 8.5 * g.s
    jj, ii = np.ogrid[: SHAPE[1], : SHAPE[2]]
    disc = (jj - j0) ** 2 + (ii - i0) ** 2 <= r**2
    lumen = np.zeros(SHAPE, dtype=bool)
    lumen[top_k] = disc & (hu[top_k] < -900)
    assert lumen.sum() > 1000
    assert not (out[lumen] > 0).any()


def test_flipped_axes_give_the_same_anatomy(phantom, result):
    """Columns running to the patient's right (direction -x), or slices running down (-z):
    the same voxels get the same anatomical labels."""
    hu, _ = phantom
    out, _ = result
    flip_i = segment_lungs(hu[:, :, ::-1], SPACING, direction=np.diag([-1.0, 1.0, 1.0]))
    flip_k = segment_lungs(hu[::-1], SPACING, direction=np.diag([1.0, 1.0, -1.0]))
    for flipped in (flip_i[:, :, ::-1], flip_k[::-1]):
        for label in (RIGHT_LUNG, LEFT_LUNG):
            assert _dice(flipped == label, out == label) > 0.99


def test_coronal_acquisition(phantom, result):
    """The same chest stored as coronal slices (k = posterior, rows = inferior): the
    slice-wise steps still run axially and the answer is the same."""
    hu, _ = phantom
    out, _ = result
    coronal = np.ascontiguousarray(np.transpose(hu, (1, 0, 2))[:, ::-1, :])
    direction = np.array([[1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]])  # columns i, j, k
    labels = segment_lungs(coronal, (SPACING[1], SPACING[0], SPACING[2]), direction=direction)
    back = np.transpose(labels[:, ::-1, :], (1, 0, 2))
    for label in (RIGHT_LUNG, LEFT_LUNG):
        assert _dice(back == label, out == label) > 0.99


def test_single_slice(phantom):
    hu, truth = phantom
    k = 20
    out = segment_lungs(hu[k : k + 1], SPACING)
    assert out.shape == (1,) + SHAPE[1:]
    for label in (RIGHT_LUNG, LEFT_LUNG):
        assert _dice(out[0] == label, truth[k] == label) >= 0.95


def test_lungs_touching_at_a_junction_are_split(phantom):
    """An air bridge joins the lungs across the mediastinum over 8 slices: the joined
    component is eroded until it parts, then grown back."""
    hu, truth = phantom
    hu, truth = hu.copy(), truth.copy()
    cols = np.arange(150, 216)
    hu[17:25, 196:202, 150:216] = -850
    truth[17:25, 196:202, 150:216] = np.where(cols < 179.5, RIGHT_LUNG, LEFT_LUNG)
    out = segment_lungs(hu, SPACING)
    for label in (RIGHT_LUNG, LEFT_LUNG):
        assert _dice(out == label, truth == label) >= 0.95
    bridge = out[17:25, 196:202, 150:216]
    assert (bridge[:, :, :10] == RIGHT_LUNG).mean() > 0.9
    assert (bridge[:, :, -10:] == LEFT_LUNG).mean() > 0.9


def test_one_lung_only(phantom):
    """The left lung filled with fluid (40 HU): the right lung alone, still labelled right."""
    hu, truth = phantom
    hu = hu.copy()
    hu[truth == LEFT_LUNG] = 40
    out = segment_lungs(hu, SPACING)
    assert not (out == LEFT_LUNG).any()
    assert _dice(out == RIGHT_LUNG, truth == RIGHT_LUNG) >= 0.95


def test_segment_volume_gives_a_named_labelmap(phantom):
    hu, _ = phantom
    k = slice(18, 22)
    geometry = VolumeGeometry(hu[k].shape, SPACING, (0.0, 0.0, 0.0), np.diag([-1.0, 1.0, 1.0]))
    volume = Volume(np.ascontiguousarray(hu[k][:, :, ::-1]), geometry, modality="CT")
    lm = segment_volume(volume)
    assert lm.names() == {1: "right lung", 2: "left lung"}
    assert lm.provenance.algorithm_type == "AUTOMATIC"
    assert lm.provenance.model_name
    # columns run to the patient's right here: the right lung is at high i
    cols = np.arange(SHAPE[2])
    assert cols[(lm.labels == RIGHT_LUNG).any(axis=(0, 1))].mean() > SHAPE[2] / 2


def test_no_air_and_no_lungs_raise_clear_errors():
    with pytest.raises(ValueError, match="no air"):
        segment_lungs(np.full((4, 64, 64), 40, dtype=np.int16), SPACING)
    with pytest.raises(ValueError, match="no air"):  # 8-bit pictures are not HU
        segment_lungs(np.full((1, 64, 64), 200, dtype=np.uint8), SPACING)
    # a water cylinder in air: a body, no air inside it
    jj, ii = np.ogrid[:64, :64]
    water = np.where((jj - 32) ** 2 + (ii - 32) ** 2 < 25**2, 0, -1000).astype(np.int16)
    with pytest.raises(ValueError, match="no lungs found"):
        segment_lungs(np.repeat(water[None], 6, axis=0), (5.0, 2.0, 2.0))
    with pytest.raises(ValueError, match="spacing"):
        segment_lungs(water[None], (5.0, 0.0, 2.0))
    with pytest.raises(ValueError, match="shape"):
        segment_lungs(water, (5.0, 2.0, 2.0))


def test_cancel(phantom):
    hu, _ = phantom
    with pytest.raises(Cancelled):
        segment_lungs(hu[:4], SPACING, cancelled=lambda: True)


def test_imports_no_tensorflow_or_gui():
    """ai.ct_lungs runs in the viewer's process too: no TensorFlow, Qt or VTK."""
    import subprocess
    import sys

    code = "import sys, ai.ct_lungs, viewer.core.quantify\nprint(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = {name.split(".")[0] for name in out.stdout.split()}
    assert not loaded & {"tensorflow", "keras", "PySide6", "vtkmodules", "vtk", "pyqtgraph"}

"""ct-infection training pieces (ai.train.infection) on a small synthetic data folder."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ai import transforms
from ai.train import infection as inf
from viewer.core.demo.writer import write_series

LUNG_HU, FAT_HU = -935, -105  # centres of the histogram bins estimate_window uses
TRUE_WINDOW = (-600.0, 1400.0)


def _hu_chest(rows, cols, k):
    """A synthetic axial slice in HU: air, fat, a muscle block, two lungs, two lesions."""
    hu = np.full((rows, cols), -1000.0)
    hu[2:-2, 2:-2] = FAT_HU
    hu[-7:-3, cols // 2 - 4 : cols // 2 + 4] = 40
    hu[8:-8, 7 : cols // 2 - 2] = LUNG_HU
    hu[8:-8, cols // 2 + 2 : -7] = LUNG_HU
    hu[10 + k % 3 : 18, 9:16] = -450  # GGO
    hu[-16:-10, cols // 2 + 4 : cols // 2 + 10] = 20  # consolidation
    return hu


def _to8(hu, window=TRUE_WINDOW):
    c, w = window
    return np.clip((hu - (c - w / 2)) / w * 255, 0, 255).round().astype(np.uint8)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """ct-infection/ (8 JPEG slices windowed with TRUE_WINDOW, stored transposed) and
    ct-slices/ (two DICOM slices of the same anatomy in HU)."""
    root = tmp_path_factory.mktemp("data")
    (root / "ct-infection" / "images").mkdir(parents=True)
    (root / "ct-infection" / "masks").mkdir()
    sizes = [(60, 72), (60, 72), (64, 70), (58, 80), (66, 66), (70, 60), (62, 76), (68, 74)]
    for n, (rows, cols) in enumerate(sizes):
        hu = _hu_chest(rows, cols, n)
        mask = np.zeros((rows, cols), np.uint8)
        mask[hu == -450] = 1
        mask[hu == 20] = 2
        Image.fromarray(_to8(hu).T).save(root / "ct-infection" / "images" / f"{n}.jpg", quality=95)
        Image.fromarray(mask.T).save(root / "ct-infection" / "masks" / f"{n}.png")
    for n in range(2):
        write_series(
            _hu_chest(64, 64, n)[None].astype(np.int16),
            root / "ct-slices" / f"P{n}" / "axial",
            spacing=(5.0, 0.7, 0.7),
        )
    return root


def test_slices_are_transposed_to_display_orientation(data_dir):
    slices = inf.load_slices(data_dir)
    assert [s.stem for s in slices] == [str(n) for n in range(8)]
    stored = np.asarray(Image.open(data_dir / "ct-infection" / "images" / "3.jpg"))
    assert slices[3].image.shape == (58, 80) == stored.T.shape
    assert np.array_equal(slices[3].image, stored.T.astype(np.float32))
    # the lungs are side by side (left/right in the image), the GGO is in the right half
    assert slices[3].mask.shape == (58, 80) and (slices[3].mask[:, :40] == 1).any()
    assert not (slices[3].mask[:, 40:] == 1).any()


def test_window_estimate_recovers_the_window_of_the_8bit_images(data_dir):
    est = inf.estimate_window(data_dir)
    assert est["n_dicom"] == 2
    assert (est["hu_lung_mode"], est["hu_tissue_mode"]) == (LUNG_HU, FAT_HU)
    assert est["centre_percentiles"]["50"] == pytest.approx(TRUE_WINDOW[0], abs=30)
    assert est["width_percentiles"]["50"] == pytest.approx(TRUE_WINDOW[1], rel=0.05)


def test_hu_pipeline_equals_the_8bit_pipeline_the_model_was_trained_with():
    hu = _hu_chest(50, 64, 0)
    hu_in, _ = transforms.build_pipeline(inf.steps_for(32, TRUE_WINDOW)).forward(
        hu.astype(np.float32), {"modality": "CT"}
    )
    eight, _ = transforms.build_pipeline(inf.steps_8bit(32)).forward(
        _to8(hu).astype(np.float32), inf.OT_META
    )
    assert np.abs(hu_in - eight).max() <= 1 / 255 + 1e-6
    # the shipped spec uses the estimated window on CT only
    assert inf.steps_for()[0] == {
        "op": "window",
        "center": inf.HU_WINDOW[0],
        "width": inf.HU_WINDOW[1],
        "modalities": ["CT"],
    }
    # and a picture of a windowed slice (OT) gets exactly the training input
    picture, _ = transforms.build_pipeline(inf.steps_for(32, TRUE_WINDOW)).forward(
        _to8(hu).astype(np.float32), inf.OT_META
    )
    np.testing.assert_array_equal(picture, eight)


def test_masks_follow_the_letterbox(data_dir):
    slices = inf.load_slices(data_dir)[:2]
    x, y = inf.to_model_grid(slices, 32)
    assert x.shape == (2, 32, 32, 1) and y.shape == (2, 32, 32, 3)
    assert np.allclose(y.sum(-1), 1) and 0 <= x.min() and x.max() <= 1
    # 60x72 -> 27x32 letterboxed rows 2..28: padding is background
    assert (y[0, :2, :, 0] == 1).all() and (y[0, 29:, :, 0] == 1).all()
    geo = transforms.build_pipeline(inf.steps_8bit(32)[-1:])
    ggo, _ = geo.forward((slices[0].mask == 1).astype(np.float32), inf.OT_META)
    assert np.array_equal(y[0, ..., 1] == 1, ggo > 0.5)


def _slice(shape):
    return inf.Slice("x", np.zeros(shape, np.float32), np.zeros(shape, np.uint8))


def test_groups_link_same_crops_and_look_alikes_and_folds_keep_them_together():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(60, 60)) * 40 + 128
    slices = [_slice((100, 120)), _slice((102, 118)), _slice((140, 90))]
    slices[2].image = np.kron(rng.normal(size=(14, 9)), np.ones((10, 10))) * 40 + 128
    more = [
        inf.Slice("a", a, np.zeros_like(a, np.uint8)),
        inf.Slice(
            "b",
            np.asarray(Image.fromarray(a.astype(np.uint8)).resize((70, 64)), np.float32),
            np.zeros((64, 70), np.uint8),
        ),
    ]
    for s in slices[:2]:
        s.image = rng.normal(size=s.image.shape) * 40 + 128
    groups = inf.group_slices(slices + more)
    assert groups[0] == groups[1]  # crop sizes within 3 px
    assert groups[3] == groups[4]  # same picture at two sizes
    assert len({groups[0], groups[2], groups[3]}) == 3
    folds = inf.assign_folds([0, 0, 0, 1, 2, 3, 4, 4, 5, 6], 3)
    assert folds[0] == folds[1] == folds[2] and folds[6] == folds[7]
    assert sorted(folds.count(f) for f in range(3)) == [3, 3, 4]


def test_slice_scores_and_summary():
    truth = np.zeros((10, 10), np.uint8)
    truth[:4, :5] = 1  # 20 px GGO
    pred = np.zeros_like(truth)
    pred[:4, :3] = 1  # 12 px, all inside
    pred[9, 9] = 2  # a false consolidation pixel; no consolidation in the reference
    s = inf.slice_scores(pred, truth)
    assert s["ggo"] == pytest.approx(2 * 12 / 32)
    assert s["consolidation"] is None and s["consolidation_fp_pixels"] == 1
    assert s["infection"] == pytest.approx(2 * 12 / 33)
    other = inf.slice_scores(truth * 2, truth * 2)  # perfect consolidation, no GGO
    scores = [{**s, "group": 0}, {**other, "group": 1}]
    summary = inf.summarise(scores, n_boot=0)
    assert summary["ggo_dice"] == pytest.approx(0.75)
    assert summary["consolidation_dice"] == 1.0
    assert summary["mean_dice"] == pytest.approx((0.75 + 1.0) / 2, abs=1e-4)
    assert summary["n_with"] == {"ggo": 1, "consolidation": 1}
    ci = inf.summarise(scores, n_boot=50)["ggo_dice"]
    assert len(ci) == 3 and ci[1] <= ci[0] <= ci[2]


def test_train_writes_a_valid_model_folder(data_dir, tmp_path):
    from ai.backends.keras_backend import load_model
    from ai.model_spec import ModelSpec
    from ai.registry import verify_weights
    from ai.segment import segment_probabilities

    out = tmp_path / "ct-infection"
    inf.train(
        data_dir,
        out,
        tmp_path / "cv",
        command="python -m ai train infection (test)",
        log=lambda *a: None,
        size=32,
        base=2,
        depth=1,
        epochs=1,
        folds=2,
        batch=4,
        group_min_corr=1.01,  # the synthetic chests all look alike: group by crop size only
    )
    spec = ModelSpec.load(out)
    verify_weights(spec)
    assert spec.name == "ct-infection" and spec.task == "segmentation"
    assert spec.labels == {0: "background", 1: "ground-glass opacity", 2: "consolidation"}
    assert spec.preprocessing[0] == {
        "op": "window",
        "center": inf.HU_WINDOW[0],
        "width": inf.HU_WINDOW[1],
        "modalities": ["CT"],
    }
    assert spec.modalities == ("CT", "OT") or list(spec.modalities) == ["CT", "OT"]
    assert spec.postprocessing == (
        {"op": "within_lungs", "model": "ct-lungs", "dilate_mm": 10.0, "touching": True},
    )
    cv = spec.metrics["cross_validation"]
    assert cv["n_slices"] == 8 and len(spec.metrics["folds"]) == 2
    for key in ("ggo_dice", "consolidation_dice", "mean_dice"):
        assert len(cv[key]) == 3 and 0 <= cv[key][1] <= cv[key][0] <= cv[key][2] <= 1
    assert spec.training["device"] == "CPU" and "Inf-Net" in spec.training["data"]
    text = (out / "MODEL_CARD.md").read_text()
    assert "Research use only - not for diagnostic use" in text and "fold 2" in text
    for png in ("training_curves.png", "cv_examples.png", "real_ct_examples.png"):
        assert (out / png).stat().st_size > 1000
    # the shipped spec segments a slice in HU, probabilities on the slice's own grid
    hu = _hu_chest(50, 64, 0).astype(np.float32)
    probs = segment_probabilities(hu, {"modality": "CT"}, spec, load_model(spec.weights_path))
    assert probs.shape == (3, 50, 64) and np.allclose(probs.sum(0), 1, atol=1e-3)
    # the recipe recorded with the CV must match the final training's
    with pytest.raises(ValueError, match="other settings .*epochs"):
        inf.train(
            data_dir,
            out,
            tmp_path / "cv",
            run_cv=False,
            log=lambda *a: None,
            size=32,
            base=2,
            depth=1,
            epochs=2,
            folds=2,
            batch=4,
        )
    with pytest.raises(ValueError, match="only 1 patient groups: cannot make 2 folds"):
        inf.cross_validate(data_dir, tmp_path / "cv2", log=lambda *a: None, size=32, folds=2)
    # `python -m ai evaluate --model ct-infection` rewrites model.json and the card from cv.json
    from ai.__main__ import main

    (out / "model.json").unlink()
    args = ["evaluate", "--model", "ct-infection", "--data", str(data_dir)]
    args += ["--models-dir", str(tmp_path), "--cv-dir", str(tmp_path / "cv"), "--n-boot", "50"]
    assert main(args) == 0
    again = ModelSpec.load(out)
    assert again.weights_sha256 == spec.weights_sha256
    assert again.metrics["cross_validation"]["ggo_dice"][0] == cv["ggo_dice"][0]

"""End-to-end smoke run of `python -m ai train/evaluate` on a tiny synthetic data folder.

Twelve 80x72 "radiographs" (two dark lungs in a bright body; covid ones with bright blobs in
the lungs), masks for the covid ones; one epoch of each model at 64x64. Checks the model
folders the shipped models are made of: model.json readable by ai.model_spec with the right
sha256, weights loading in Keras safe mode, card and plots written.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

pytest.importorskip("tensorflow")
PIL = pytest.importorskip("PIL.Image")

N = 12


def _ellipses(shape, seed):
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    rng = np.random.default_rng(seed)
    mask = np.zeros(shape, bool)
    for cx in (0.3, 0.7):
        cy = 0.5 + rng.uniform(-0.05, 0.05)
        mask |= ((rows / shape[0] - cy) / 0.3) ** 2 + ((cols / shape[1] - cx) / 0.15) ** 2 < 1
    return mask


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    (root / "cxr" / "images").mkdir(parents=True)
    (root / "cxr-lung-masks").mkdir()
    rng = np.random.default_rng(0)
    labels = ["covid"] * 8 + ["other", "other", "normal", "normal"]
    with open(root / "cxr" / "labels.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["patient_id", "label", "reference", "license", "image"])
        for k, label in enumerate(labels):
            mask = _ellipses((80, 72), k)
            image = 200 - 140 * mask + rng.normal(0, 8, mask.shape)
            if label == "covid":
                image[mask & (rng.random(mask.shape) < 0.2)] += 90
            name = f"img{k}.png"
            PIL.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(root / "cxr/images" / name)
            if label == "covid":
                PIL.fromarray(mask.astype(np.uint8) * 255).save(root / "cxr-lung-masks" / name)
            w.writerow([f"p{k}", label, f"ref{k}", "CC BY", f"images/{name}"])
    return root


def _check_folder(folder, task):
    from ai.backends.keras_backend import load_model
    from ai.model_spec import ModelSpec
    from ai.train.common import sha256

    spec = ModelSpec.load(folder)
    assert spec.task == task
    assert spec.weights_sha256 == sha256(folder / "model.keras")
    assert (folder / "MODEL_CARD.md").read_text().count("not for diagnostic use") >= 1
    assert (folder / "training_curves.png").stat().st_size > 1000
    load_model(folder / "model.keras")  # safe mode, built-in layers only
    return json.loads((folder / "model.json").read_text())


@pytest.mark.slow
def test_train_and_evaluate_both_models(data_dir, tmp_path):
    from ai.train import classifier, lungs

    lungs_dir, covid_dir = tmp_path / "cxr-lungs", tmp_path / "cxr-covid"
    lungs.train(data_dir, lungs_dir, size=64, base=4, depth=2, epochs=1, batch=4, threads=1,
                command="pytest")
    lungs.evaluate(lungs_dir, data_dir, n_boot=20)
    spec = _check_folder(lungs_dir, "segmentation")
    assert spec["labels"] == {"0": "background", "1": "lung"}
    assert 0.0 <= spec["metrics"]["test"]["dice"][0] <= 1.0
    assert spec["training"]["command"] == "pytest" and spec["training"]["device"] == "CPU"

    classifier.train(data_dir, covid_dir, lungs_dir, size=64, filters=[4, 8], epochs=1, batch=4,
                     threads=1)
    classifier.evaluate(covid_dir, data_dir, lungs_dir, n_boot=20)
    spec = _check_folder(covid_dir, "classification")
    assert spec["classes"] == ["covid", "other"] and spec["positive_class"] == "covid"
    assert spec["cam"] == {"method": "cam", "conv_layer": "last_conv", "dense_layer": "predictions"}
    assert [s["op"] for s in spec["preprocessing"]] == [
        "to_display", "percentile_scale", "lung_crop", "resize"]
    test = spec["metrics"]["test"]
    assert set(test["confusion"]) == {"tp", "fn", "fp", "tn"}
    assert len(test["auc"]) == 3
    assert (covid_dir / "roc_test.png").exists() and (covid_dir / "cam_test.png").exists()

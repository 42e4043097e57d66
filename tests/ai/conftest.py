"""Tiny Keras models built by the tests (no trained weights), saved with their model.json.

Keras is imported inside the fixtures only, so test modules that need no TensorFlow stay
light. The models folder is made once per session and used as a user models folder.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

SIZE = 32


def write_model(folder: Path, model, spec: dict, weights: str = "model.keras") -> Path:
    """Save ``model`` in ``folder`` with a model.json built from ``spec`` (+ sha256)."""
    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder / weights)
    sha = hashlib.sha256((folder / weights).read_bytes()).hexdigest()
    data = {"format": 1, "version": "0.0.1", "modalities": ["CR", "DX", "OT"], **spec,
            "weights": {"file": weights, "sha256": sha}, "card": "MODEL_CARD.md",
            "intended_use": "Tests only."}
    (folder / "model.json").write_text(json.dumps(data, indent=1))
    (folder / "MODEL_CARD.md").write_text(f"# {spec['name']}\n\nTest model.\n")
    return folder


def classifier_spec(name: str, preprocessing=None, cam=None) -> dict:
    return {
        "name": name,
        "task": "classification",
        "input": {"height": SIZE, "width": SIZE, "channels": 1},
        "preprocessing": preprocessing
        or [
            {"op": "to_display", "invert_monochrome1": True},
            {"op": "percentile_scale", "low": 0.5, "high": 99.5},
            {"op": "letterbox", "height": SIZE, "width": SIZE},
        ],
        "classes": ["covid", "other"],
        "positive_class": "covid",
        "cam": cam or {"method": "cam", "conv_layer": "last_conv", "dense_layer": "predictions"},
    }


def gap_model(seed: int = 0, channels: int = 1):
    """conv → conv (last_conv) → global average pooling → dense softmax (predictions)."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    inp = keras.Input((SIZE, SIZE, channels))
    x = layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(inp)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(6, 3, padding="same", activation="relu", name="last_conv")(x)
    x = layers.GlobalAveragePooling2D()(x)
    out = layers.Dense(2, activation="softmax", name="predictions")(x)
    return keras.Model(inp, out, name="tiny_gap")


def lungs_model():
    """A 'segmenter' whose lung probability is high where the image is bright."""
    import keras
    from keras import layers

    inp = keras.Input((SIZE, SIZE, 1))
    out = layers.Conv2D(2, 1, activation="softmax", name="seg")(inp)
    model = keras.Model(inp, out, name="tiny_lungs")
    # channel 1 (lung) logit = 20 * (x - 0.5), background 0
    model.get_layer("seg").set_weights([np.array([[[[0.0, 20.0]]]], np.float32),
                                        np.array([0.0, -10.0], np.float32)])
    return model


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory) -> Path:
    """A user models folder: tiny-cam, tiny-gradcam, tiny-lungs and tiny-crop (lung_crop)."""
    root = tmp_path_factory.mktemp("models")
    write_model(root / "tiny-cam", gap_model(0), classifier_spec("tiny-cam"))
    write_model(root / "tiny-gradcam", gap_model(1), classifier_spec(
        "tiny-gradcam", cam={"method": "gradcam"}))
    write_model(root / "tiny-lungs", lungs_model(), {
        "name": "tiny-lungs", "task": "segmentation",
        "input": {"height": SIZE, "width": SIZE, "channels": 1},
        "preprocessing": [{"op": "percentile_scale", "low": 0.5, "high": 99.5},
                          {"op": "resize", "height": SIZE, "width": SIZE}],
        "labels": {"0": "background", "1": "lung"},
    })
    write_model(root / "tiny-crop", gap_model(2), classifier_spec("tiny-crop", preprocessing=[
        {"op": "to_display", "invert_monochrome1": True},
        {"op": "percentile_scale", "low": 0.5, "high": 99.5},
        {"op": "lung_crop", "model": "tiny-lungs", "margin": 0.05},
        {"op": "letterbox", "height": SIZE, "width": SIZE},
    ]))
    return root


def chest_like(rows: int = 60, cols: int = 90, seed: int = 0) -> np.ndarray:
    """A non-square test image in 'modality units' with a bright blob (float32)."""
    rng = np.random.default_rng(seed)
    image = rng.normal(1000, 50, (rows, cols)).astype(np.float32)
    image[20:40, 50:75] += 2000
    return image


@pytest.fixture(scope="session")
def helpers():
    """The builders above, for test modules (conftest is not importable by name)."""
    from types import SimpleNamespace

    return SimpleNamespace(write_model=write_model, classifier_spec=classifier_spec,
                           gap_model=gap_model, lungs_model=lungs_model,
                           chest_like=chest_like, size=SIZE)

"""lung_crop's segmenter works on a block-averaged copy of large radiographs and blows the
mask back up to the image grid: the mask must land on the right pixels."""

from __future__ import annotations

import numpy as np

from ai.model_spec import ModelSpec
from ai.segment import block_mean, make_segmenter, upsample_mask

SIZE = 64


class ThresholdModel:
    """Softmax 'segmenter' in numpy: foreground where the input is above 0.5."""

    def predict(self, x):
        fg = (np.asarray(x)[..., 0] > 0.5).astype(np.float32)
        return np.stack([1 - fg, fg], axis=-1)


def _spec(tmp_path) -> ModelSpec:
    data = {
        "format": 1,
        "name": "tiny-lungs",
        "version": "1.0.0",
        "task": "segmentation",
        "modalities": ["OT"],
        "input": {"height": SIZE, "width": SIZE, "channels": 1},
        "preprocessing": [{"op": "letterbox", "height": SIZE, "width": SIZE}],
        "labels": {"0": "background", "1": "lung"},
        "weights": {"file": "model.keras", "sha256": "0" * 64},
    }
    return ModelSpec.from_dict(data, tmp_path)


def test_block_mean_and_upsample_geometry():
    image = np.arange(7 * 10, dtype=np.float32).reshape(7, 10)
    small = block_mean(image, 3)
    assert small.shape == (2, 3)  # partial blocks (row 6, column 9) dropped
    assert small[0, 0] == image[:3, :3].mean()
    assert small[1, 2] == image[3:6, 6:9].mean()
    mask = small > small.mean()
    big = upsample_mask(mask, 3, image.shape)
    assert big.shape == image.shape
    for r in range(7):
        for c in range(10):
            assert big[r, c] == mask[min(r // 3, 1), min(c // 3, 2)]
    assert upsample_mask(mask, 1, mask.shape) is mask


def test_large_image_mask_lands_on_the_same_pixels(tmp_path):
    spec, model = _spec(tmp_path), ThresholdModel()
    rows, cols = 1900, 1700
    image = np.zeros((rows, cols), np.float32)
    image[400:1500, 200:800] = 1.0  # "right lung"
    image[420:1480, 950:1500] = 1.0  # "left lung"
    calls = []

    def get_model(name):
        calls.append(name)
        return spec, model

    mask = make_segmenter(get_model, max_side=512)("tiny-lungs", image)
    assert calls == ["tiny-lungs"] and mask.shape == (rows, cols) and mask.dtype == bool
    # the box lung_crop takes from it is the true one within a block (4 px) + resampling
    r, c = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    assert abs(r[0] - 400) <= 40 and abs(r[-1] - 1479) <= 40
    assert abs(c[0] - 200) <= 40 and abs(c[-1] - 1499) <= 40
    truth = image > 0.5
    dice = 2 * (mask & truth).sum() / (mask.sum() + truth.sum())
    assert dice > 0.95


def test_small_image_is_not_resampled(tmp_path):
    spec, model = _spec(tmp_path), ThresholdModel()
    image = np.zeros((SIZE, SIZE), np.float32)
    image[10:30, 5:50] = 1.0
    mask = make_segmenter(lambda name: (spec, model))("tiny-lungs", image)
    assert np.array_equal(mask, image > 0.5)

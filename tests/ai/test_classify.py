"""classify_image with a stand-in model (numpy, no TensorFlow) and image_from_volume."""

from __future__ import annotations

import numpy as np
import pytest

from ai.classify import classify_image, image_from_volume
from ai.model_spec import ModelSpec
from viewer.core.geometry import VolumeGeometry
from viewer.core.volume import Volume


class BrightSpotModel:
    """'covid' when the input has a bright spot; its CAM is the input itself (8x8 grid)."""

    def __init__(self):
        self.calls = []

    def predict(self, batch):
        self.calls.append(batch.shape)
        p = float(batch.max() > 0.9)
        return np.array([[0.9 * p + 0.05, 0.95 - 0.9 * p]])

    def predict_with_cam(self, batch, class_index, conv_layer, dense_layer):
        probs = self.predict(batch)
        x = batch[0, :, :, 0]
        cam = x.reshape(8, x.shape[0] // 8, 8, x.shape[1] // 8).mean(axis=(1, 3))
        return probs, cam / cam.max(), int(np.argmax(probs[0]))

    predict_with_gradcam = None


def _spec(tmp_path, channels=1):
    return ModelSpec.from_dict({
        "format": 1, "name": "fake", "version": "1", "task": "classification",
        "input": {"height": 32, "width": 32, "channels": channels},
        "preprocessing": [{"op": "window", "center": 500, "width": 1000},
                          {"op": "letterbox", "height": 32, "width": 32}],
        "classes": ["covid", "other"], "cam": {"method": "cam"},
        "weights": {"file": "m.keras", "sha256": "0" * 64},
    }, tmp_path)


def test_classify_puts_the_cam_on_the_image_grid(tmp_path):
    image = np.zeros((48, 96), np.float32)  # non-square: letterboxed into 16 rows of 32
    image[20:28, 60:72] = 1000.0
    model, seen = BrightSpotModel(), []
    pred = classify_image(image, {"photometric": "MONOCHROME2", "modality": "CR"},
                          _spec(tmp_path, channels=3), model, device="CPU",
                          progress=lambda f, m: seen.append(f))
    assert model.calls == [(1, 32, 32, 3)]
    assert pred.label == "covid" and pred.cam_class == "covid"
    assert sum(pred.probabilities.values()) == pytest.approx(1.0)
    assert pred.cam.shape == (48, 96) and pred.cam.dtype == np.float32
    assert 0.0 <= pred.cam.min() and pred.cam.max() <= 1.0
    r, c = np.unravel_index(np.argmax(pred.cam), pred.cam.shape)
    assert 16 <= r <= 32 and 56 <= c <= 76
    assert seen[-1] == 1.0 and seen == sorted(seen)
    assert set(pred.timings_s) == {"preprocess", "predict", "cam"}


def test_classify_without_cam_and_cancel(tmp_path):
    from ai.classify import Cancelled

    image = np.zeros((40, 40), np.float32)
    pred = classify_image(image, {}, _spec(tmp_path), BrightSpotModel(), cam=False)
    assert pred.cam is None and pred.label == "other"

    def stop():
        raise Cancelled("cancelled")

    with pytest.raises(Cancelled):
        classify_image(image, {}, _spec(tmp_path), BrightSpotModel(), check_cancel=stop)


def _volume(array, invert=False, modality="CR"):
    shape = array.shape[:3]
    geometry = VolumeGeometry(shape=shape, spacing=(2.0, 0.5, 0.25), origin=(0, 0, 0),
                              direction=np.eye(3))
    return Volume(array=array, geometry=geometry, modality=modality, invert_display=invert)


def test_image_from_volume_radiograph_ct_and_rgb():
    cr = np.arange(12, dtype=np.uint16).reshape(1, 3, 4)
    image, meta = image_from_volume(_volume(cr, invert=True))
    assert image.dtype == np.float32 and image.shape == (3, 4)
    assert meta["photometric"] == "MONOCHROME1" and meta["modality"] == "CR"
    assert meta["pixel_spacing_mm"] == (0.5, 0.25)
    ct = np.stack([np.full((3, 4), k, np.int16) for k in range(5)])
    image, meta = image_from_volume(_volume(ct, modality="CT"))
    assert meta["slice_index"] == 2 and image[0, 0] == 2 and meta["photometric"] == "MONOCHROME2"
    image, _ = image_from_volume(_volume(ct, modality="CT"), index=4)
    assert image[0, 0] == 4
    rgb = np.zeros((1, 2, 2, 3), np.uint8)
    rgb[..., 0] = 100
    image, _ = image_from_volume(_volume(rgb, modality="OT"))
    np.testing.assert_allclose(image, 29.9, rtol=1e-5)
    with pytest.raises(IndexError):
        image_from_volume(_volume(ct), index=5)

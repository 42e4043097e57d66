"""The Keras backend: safe loading, CAM and Grad-CAM against hand computations."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from ai.backends import keras_backend as kb  # noqa: E402


@pytest.fixture(scope="module")
def cam_model(models_dir):
    return kb.load_model(models_dir / "tiny-cam" / "model.keras", "tiny-cam")


def test_device_name():
    name = kb.device_name()
    assert name == "CPU" or name.startswith("GPU: ")


def test_cam_equals_the_weighted_sum_of_conv_features_and_dense_weights(cam_model, helpers):
    x = np.random.default_rng(0).random((1, helpers.size, helpers.size, 1)).astype(np.float32)
    probs, cam, index = cam_model.predict_with_cam(x, None, "last_conv", "predictions")
    model = cam_model.model
    np.testing.assert_allclose(probs, np.asarray(model(x)), rtol=1e-5, atol=1e-6)
    assert index == int(np.argmax(probs[0]))
    features = np.asarray(keras.Model(model.inputs, model.get_layer("last_conv").output)(x))[0]
    kernel = model.get_layer("predictions").get_weights()[0]  # (channels, classes)
    for c in (0, 1):
        _, cam_c, _ = cam_model.predict_with_cam(x, c, "last_conv", "predictions")
        by_hand = np.zeros(features.shape[:2])
        for k in range(features.shape[2]):
            by_hand += kernel[k, c] * features[:, :, k]
        by_hand = np.maximum(by_hand, 0)
        by_hand /= by_hand.max()
        assert cam_c.shape == (helpers.size // 2, helpers.size // 2)
        np.testing.assert_allclose(cam_c, by_hand, rtol=1e-4, atol=1e-5)
    # layers found without names: the last 4-D output and the last Dense
    _, cam_auto, _ = cam_model.predict_with_cam(x, 0)
    np.testing.assert_allclose(cam_auto, cam_model.predict_with_cam(x, 0, "last_conv")[1])


def _no_gap_model(size=16):
    """conv (2 filters: bright / dark detectors) → flatten → dense softmax: no pooling."""
    from keras import layers

    inp = keras.Input((size, size, 1))
    conv = layers.Conv2D(2, 3, padding="same", activation="relu", name="conv")
    x = layers.Flatten()(conv(inp))
    dense = layers.Dense(2, activation="softmax", name="out")
    model = keras.Model(inp, dense(x))
    kernel = np.zeros((3, 3, 1, 2), np.float32)
    kernel[..., 0, 0], kernel[..., 0, 1] = 1 / 9, -1 / 9
    conv.set_weights([kernel, np.zeros(2, np.float32)])
    w = np.zeros((size, size, 2, 2), np.float32)  # (row, col, channel, class), Flatten order
    w[..., 0, 0], w[..., 1, 0] = 1.0, -1.0  # class 0 "bright": + bright, - dark
    w[..., 0, 1], w[..., 1, 1] = -1.0, 1.0
    dense.set_weights([w.reshape(-1, 2), np.zeros(2, np.float32)])
    return model, w


def test_gradcam_without_gap_peaks_where_the_pattern_is(tmp_path):
    model, w = _no_gap_model()
    path = tmp_path / "nogap.keras"
    model.save(path)
    loaded = kb.load_model(path)
    x = np.zeros((1, 16, 16, 1), np.float32)
    x[0, 3:6, 10:13, 0] = 1.0  # the discriminative pattern: a bright 3x3 square at (4, 11)
    probs, cam, index = loaded.predict_with_gradcam(x)
    assert index == 0 and probs[0, 0] > 0.5
    assert cam.shape == (16, 16) and cam.max() == 1.0
    assert np.unravel_index(np.argmax(cam), cam.shape) == (4, 11)
    # by hand: the class score is linear in the features, so alpha_k = mean of its weights
    features = np.asarray(keras.Model(model.inputs, model.get_layer("conv").output)(x))[0]
    alpha = w[..., 0].mean(axis=(0, 1))
    by_hand = np.maximum(np.tensordot(features, alpha, axes=([2], [0])), 0)
    np.testing.assert_allclose(cam, by_hand / by_hand.max(), rtol=1e-4, atol=1e-5)


def test_lambda_layer_is_refused(tmp_path):
    from keras import layers

    inp = keras.Input((8, 8, 1))
    x = layers.Lambda(lambda t: t * 2, name="doubler")(layers.Conv2D(2, 3)(inp))
    model = keras.Model(inp, layers.Dense(2)(layers.GlobalAveragePooling2D()(x)))
    model.save(tmp_path / "lambda.keras")
    with pytest.raises(kb.ModelLoadError, match="layer 'doubler' of class 'Lambda' is not a "
                                                 "built-in Keras layer.*refused") as info:
        kb.load_model(tmp_path / "lambda.keras")
    assert "\n" not in str(info.value)


def test_registered_custom_layer_is_refused_even_when_registered(tmp_path):
    from keras import layers

    @keras.saving.register_keras_serializable(package="RadviewTest")
    class Twice(layers.Layer):
        def call(self, x):
            return x * 2

    inp = keras.Input((8, 8, 1))
    x = Twice(name="twice")(layers.Conv2D(2, 3)(inp))
    model = keras.Model(inp, layers.Dense(2)(layers.GlobalAveragePooling2D()(x)))
    for suffix in (".keras", ".h5"):
        model.save(tmp_path / f"custom{suffix}")
        with pytest.raises(kb.ModelLoadError, match="not a built-in Keras layer"):
            kb.load_model(tmp_path / f"custom{suffix}")


def test_legacy_h5_model_loads(tmp_path, helpers):
    model = helpers.gap_model(3)
    model.save(tmp_path / "legacy.h5")
    loaded = kb.load_model(tmp_path / "legacy.h5")
    x = np.ones((1, helpers.size, helpers.size, 1), np.float32)
    np.testing.assert_allclose(loaded.predict(x), np.asarray(model(x)), rtol=1e-5)


def test_not_a_model_file(tmp_path):
    (tmp_path / "junk.keras").write_bytes(b"not a zip")
    with pytest.raises(kb.ModelLoadError, match="not a readable Keras model file"):
        kb.load_model(tmp_path / "junk.keras")

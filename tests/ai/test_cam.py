"""CAM and Grad-CAM arithmetic on numpy arrays (no TensorFlow)."""

from __future__ import annotations

import numpy as np
import pytest

from ai.cam import class_activation_map, grad_cam, relu_normalise, resize_to_input, weighted_sum


def test_weighted_sum_by_hand():
    f = np.zeros((2, 3, 2), np.float32)
    f[..., 0] = [[1, 2, 3], [4, 5, 6]]
    f[..., 1] = 1.0
    np.testing.assert_allclose(weighted_sum(f, [2.0, -1.0]), [[1, 3, 5], [7, 9, 11]])
    with pytest.raises(ValueError, match="3 weights for 2"):
        weighted_sum(f, [1, 2, 3])


def test_relu_normalise():
    np.testing.assert_allclose(relu_normalise(np.array([[-2.0, 1.0], [2.0, 4.0]])),
                               [[0, 0.25], [0.5, 1.0]])
    assert not relu_normalise(np.full((2, 2), -1.0)).any()


def test_class_activation_map_uses_the_class_column():
    rng = np.random.default_rng(0)
    f = rng.random((4, 5, 3))
    kernel = np.array([[0.5, -1.0], [-0.2, 2.0], [1.0, 0.3]])
    for c in (0, 1):
        raw = np.einsum("hwk,k->hw", f, kernel[:, c])
        expected = np.maximum(raw, 0) / np.maximum(raw, 0).max()
        np.testing.assert_allclose(class_activation_map(f[None], kernel, c), expected, rtol=1e-5)
    with pytest.raises(ValueError, match="pooled conv channels"):
        class_activation_map(f, kernel[:2], 0)


def test_grad_cam_weights_channels_by_mean_gradient():
    f = np.zeros((3, 3, 2), np.float32)
    f[0, 0, 0] = 1.0  # channel 0 fires top-left
    f[2, 2, 1] = 1.0  # channel 1 fires bottom-right
    g = np.zeros_like(f)
    g[..., 0], g[..., 1] = 1.0, -1.0  # the score grows with channel 0, falls with channel 1
    cam = grad_cam(f, g)
    assert cam[0, 0] == 1.0 and cam[2, 2] == 0.0


def test_resize_to_input_keeps_the_peak_cell():
    cam = np.zeros((4, 4), np.float32)
    cam[1, 2] = 1.0
    up = resize_to_input(cam, 32, 32)
    r, c = np.unravel_index(np.argmax(up), up.shape)
    assert 8 <= r < 16 and 16 <= c < 24  # inside the 8x8 block of cell (1, 2)

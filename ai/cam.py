"""Class activation maps on numpy arrays (no TensorFlow): CAM and Grad-CAM arithmetic.

The backend gets the conv features (and gradients) out of the model; this module combines
them. Maps are on the conv layer's grid (h, w), channels-last like Keras: features are
``(h, w, k)``. Putting a map on the image's own grid is the job of
:meth:`ai.transforms.Pipeline.inverse_map` (after :func:`resize_to_input`).

- CAM (Zhou et al., 2016), for conv → global average pooling → dense models:
  ``M_c = sum_k w_{k,c} A_k`` with ``w`` the dense kernel (k, classes).
- Grad-CAM (Selvaraju et al., 2017), for any model:
  ``M_c = sum_k alpha_k A_k`` with ``alpha_k`` the spatial mean of ``d y_c / d A_k``.

Both are then passed through ReLU and divided by their maximum (0..1; all zeros if the
map has no positive value).
"""

from __future__ import annotations

import numpy as np

from ai.transforms import resample_linear


def _features(features: np.ndarray) -> np.ndarray:
    f = np.asarray(features, dtype=np.float32)
    if f.ndim == 4 and f.shape[0] == 1:
        f = f[0]
    if f.ndim != 3:
        raise ValueError(f"conv features must be (h, w, channels), got shape {f.shape}")
    return f


def weighted_sum(features: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``sum_k weights[k] * features[..., k]``: (h, w, k) and (k,) → (h, w) float32."""
    f = _features(features)
    w = np.asarray(weights, dtype=np.float32).reshape(-1)
    if w.shape[0] != f.shape[-1]:
        raise ValueError(f"{w.shape[0]} weights for {f.shape[-1]} feature channels")
    return np.tensordot(f, w, axes=([2], [0])).astype(np.float32)


def relu_normalise(cam: np.ndarray) -> np.ndarray:
    """ReLU then division by the maximum: values 0..1 float32 (zeros if nothing positive)."""
    m = np.maximum(np.asarray(cam, dtype=np.float32), 0.0)
    top = float(m.max()) if m.size else 0.0
    if not np.isfinite(top) or top <= 0:
        return np.zeros_like(m)
    return m / top


def class_activation_map(
    features: np.ndarray, dense_kernel: np.ndarray, class_index: int
) -> np.ndarray:
    """CAM of one class: features (h, w, k), dense kernel (k, classes) → (h, w) in 0..1."""
    kernel = np.asarray(dense_kernel, dtype=np.float32)
    f = _features(features)
    if kernel.ndim != 2 or kernel.shape[0] != f.shape[-1]:
        raise ValueError(
            f"CAM needs the dense layer to read the pooled conv channels: kernel "
            f"{kernel.shape} vs {f.shape[-1]} channels"
        )
    return relu_normalise(weighted_sum(f, kernel[:, class_index]))


def grad_cam(features: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    """Grad-CAM: features and d(score)/d(features), both (h, w, k) → (h, w) in 0..1."""
    f, g = _features(features), _features(gradients)
    if f.shape != g.shape:
        raise ValueError(f"features {f.shape} and gradients {g.shape} differ")
    return relu_normalise(weighted_sum(f, g.mean(axis=(0, 1))))


def resize_to_input(cam: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bring a conv-grid map (h, w) to the model input grid (height, width), linearly.

    The conv grid is assumed to cover the input like a strided layer does (each conv cell
    the centre of an input block), the half-pixel convention of :mod:`ai.transforms`.
    """
    return resample_linear(cam, (height, width), antialias=False)

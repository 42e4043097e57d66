"""Random augmentations for tf.data pipelines (geometric ones shared by image and mask)."""

from __future__ import annotations


def make_augmenter(seed: int, rotation_deg: float = 10.0, shift: float = 0.06,
                   zoom: tuple[float, float] = (-0.1, 0.1), gamma: float = 0.3,
                   contrast: float = 0.2, brightness: float = 0.08, noise: float = 0.0,
                   flip: bool = False, fill_mode: str = "constant"):
    """Return `augment(x, y_map=None)` for batched tensors (B, H, W, 1) in 0..1.

    Geometry (rotation ±`rotation_deg`, shift ± `shift` of the size, zoom `zoom` (negative =
    zoom in, i.e. a random crop), optional horizontal flip) is applied identically to the image
    and to `y_map` (a one-hot mask, (B, H, W, C)); the mask is re-binarised afterwards. Pixels
    brought in from outside are 0 (`fill_mode` "constant") or mirrored ("reflect": no
    artificial straight edges for a classifier to latch on to). Intensity
    (gamma exp(±`gamma`), contrast 1 ± `contrast`, brightness ± `brightness`, Gaussian noise
    with sigma up to `noise`) touches the image only; the result is clipped to 0..1.
    """
    import keras
    import tensorflow as tf

    geometric = [
        keras.layers.RandomRotation(rotation_deg / 360.0, fill_mode=fill_mode, seed=seed),
        keras.layers.RandomTranslation(shift, shift, fill_mode=fill_mode, seed=seed + 1),
        keras.layers.RandomZoom(zoom, zoom, fill_mode=fill_mode, seed=seed + 2),
    ]
    if flip:
        geometric.insert(0, keras.layers.RandomFlip("horizontal", seed=seed + 3))
    rng = tf.random.Generator.from_seed(seed + 4)

    def intensity(x):
        b = tf.shape(x)[0]
        g = tf.exp(rng.uniform([b, 1, 1, 1], -gamma, gamma))
        a = rng.uniform([b, 1, 1, 1], 1 - contrast, 1 + contrast)
        c = rng.uniform([b, 1, 1, 1], -brightness, brightness)
        x = tf.pow(tf.clip_by_value(x, 1e-6, 1.0), g)
        x = (x - 0.5) * a + 0.5 + c
        if noise > 0:
            sigma = rng.uniform([b, 1, 1, 1], 0.0, noise)
            x = x + sigma * rng.normal(tf.shape(x))
        return tf.clip_by_value(x, 0.0, 1.0)

    def augment(x, y_map=None):
        if y_map is None:
            for layer in geometric:
                x = layer(x, training=True)
            return intensity(x)
        n = tf.shape(x)[-1]
        both = tf.concat([x, tf.cast(y_map, x.dtype)], axis=-1)
        for layer in geometric:
            both = layer(both, training=True)
        x, y = both[..., :n], both[..., n:]
        y = tf.one_hot(tf.argmax(y, axis=-1), tf.shape(y_map)[-1], dtype=y_map.dtype)
        # pixels rotated/shifted in from outside are all-zero in every channel -> background (0)
        return intensity(x), y

    return augment

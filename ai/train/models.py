"""Keras architectures of the shipped models (built only from standard layers: safe_mode loads)."""

from __future__ import annotations


def unet(input_shape: tuple[int, int, int] = (256, 256, 1), base: int = 8, depth: int = 4,
         n_classes: int = 2, name: str = "cxr_lungs_unet"):
    """Small U-Net: `depth` poolings, filters base*2**level, BatchNorm+ReLU, softmax output.

    Output (batch, H, W, n_classes): per-pixel softmax (channel 1 = lung).
    """
    import keras
    from keras import layers

    def block(x, filters, prefix):
        for k in (1, 2):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False,
                              name=f"{prefix}_conv{k}")(x)
            x = layers.BatchNormalization(momentum=0.9, name=f"{prefix}_bn{k}")(x)
            x = layers.Activation("relu", name=f"{prefix}_relu{k}")(x)
        return x

    inputs = keras.Input(input_shape, name="image")
    x, skips = inputs, []
    for level in range(depth):
        x = block(x, base * 2**level, f"down{level}")
        skips.append(x)
        x = layers.MaxPooling2D(name=f"pool{level}")(x)
    x = block(x, base * 2**depth, "bottom")
    for level in reversed(range(depth)):
        x = layers.Conv2DTranspose(base * 2**level, 2, strides=2, name=f"up{level}")(x)
        x = layers.Concatenate(name=f"skip{level}")([x, skips[level]])
        x = block(x, base * 2**level, f"dec{level}")
    outputs = layers.Conv2D(n_classes, 1, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)


def vgg_gap(input_shape: tuple[int, int, int] = (224, 224, 1), filters=(16, 32, 64, 128),
            n_classes: int = 2, dropout: float = 0.3, name: str = "cxr_covid_vgg"):
    """Compact VGG-style CNN: conv blocks -> "last_conv" -> global average pool -> "predictions".

    CAM-capable: the class map is sum_k w[k, c] * last_conv[..., k] (Zhou et al. 2016); "last_conv"
    is a Conv2D with a ReLU, so its features are non-negative.
    """
    import keras
    from keras import layers

    inputs = keras.Input(input_shape, name="image")
    x = inputs
    for i, f in enumerate(filters):
        for k in (1, 2):
            if i == len(filters) - 1 and k == 2:  # the CAM layer: plain conv + ReLU, no BN after
                x = layers.Conv2D(f, 3, padding="same", activation="relu", name="last_conv")(x)
                continue
            x = layers.Conv2D(f, 3, padding="same", use_bias=False, name=f"block{i}_conv{k}")(x)
            x = layers.BatchNormalization(momentum=0.9, name=f"block{i}_bn{k}")(x)
            x = layers.Activation("relu", name=f"block{i}_relu{k}")(x)
        if i < len(filters) - 1:
            x = layers.MaxPooling2D(name=f"block{i}_pool")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)

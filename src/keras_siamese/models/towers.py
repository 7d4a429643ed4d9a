"""Embedding towers: the seed's CNN, a stronger small CNN, and `keras.applications` backbones.

Every tower takes raw pixels (0..255, shape `(height, width, channels)`) and
rescales them itself, so a saved model needs no outside preprocessing.
"""

import keras
from keras import layers

from keras_siamese.models.layers import L2Normalize


def _seed_body(x):
    """The tutorial's tower: 2 x [Conv64 2x2 relu, MaxPool 2, Dropout 0.3], global average pooling."""
    x = layers.Rescaling(1.0 / 255)(x)
    for _ in range(2):
        x = layers.Conv2D(64, 2, padding="same", activation="relu")(x)
        x = layers.MaxPooling2D(2)(x)
        x = layers.Dropout(0.3)(x)
    return layers.GlobalAveragePooling2D()(x)


def _conv_bn(x, filters):
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization(momentum=0.9)(x)  # moving statistics settle within a short run
    return layers.Activation("relu")(x)


def _small_body(x):
    """3x3 convolutions with batch normalisation: 16 > pool > 64 > pool > 128, global average pooling."""
    x = layers.Rescaling(1.0 / 255)(x)
    x = _conv_bn(x, 16)
    x = layers.MaxPooling2D(2)(x)
    x = _conv_bn(x, 64)
    x = layers.MaxPooling2D(2)(x)
    x = _conv_bn(x, 128)
    return layers.GlobalAveragePooling2D()(x)


def _application(constructor, rescale):
    """A `keras.applications` backbone without its top, average-pooled."""

    def body(x, weights=None):
        if x.shape[-1] == 1:
            x = layers.Concatenate()([x, x, x])  # backbones with ImageNet weights want 3 channels
        if rescale:
            x = layers.Rescaling(1.0 / 127.5, offset=-1.0)(x)
        backbone = constructor(input_shape=tuple(x.shape[1:]), weights=weights)
        return backbone(x)

    return body


def _mobilenet_v3_small(input_shape, weights):
    return keras.applications.MobileNetV3Small(
        input_shape=input_shape, include_top=False, weights=weights, pooling="avg", include_preprocessing=True
    )


def _efficientnet_b0(input_shape, weights):
    return keras.applications.EfficientNetB0(input_shape=input_shape, include_top=False, weights=weights, pooling="avg")


def _resnet50_v2(input_shape, weights):
    return keras.applications.ResNet50V2(input_shape=input_shape, include_top=False, weights=weights, pooling="avg")


SMALL_PRESETS = {"seed": _seed_body, "small": _small_body}
APPLICATION_PRESETS = {
    "mobilenet_v3_small": _application(_mobilenet_v3_small, rescale=False),
    "efficientnet_b0": _application(_efficientnet_b0, rescale=False),
    "resnet50_v2": _application(_resnet50_v2, rescale=True),
}
PRESETS = tuple(SMALL_PRESETS) + tuple(APPLICATION_PRESETS)
MIN_APPLICATION_SIZE = 32


def build_tower(preset="small", input_shape=(28, 28, 1), embedding_dim=48, normalize=False, weights=None):
    """An embedding tower: images `input_shape` (pixels 0..255) to `embedding_dim` floats.

    `preset` is one of PRESETS; `normalize` adds unit-length scaling; `weights`
    ("imagenet" or None) initialises an application backbone (downloaded by
    Keras on first use, so it needs internet).
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown tower preset. Received: preset={preset!r}; choose one of {', '.join(PRESETS)}")
    if int(embedding_dim) < 1:
        raise ValueError(f"embedding_dim must be at least 1. Received: embedding_dim={embedding_dim}")
    height, width, channels = input_shape
    if channels not in (1, 3):
        raise ValueError(f"images need 1 or 3 channels. Received: input_shape={tuple(input_shape)}")
    inputs = keras.Input(tuple(input_shape), name="image")
    if preset in SMALL_PRESETS:
        if weights:
            raise ValueError(
                f"weights apply to application presets only. Received: preset={preset!r}, weights={weights!r}")
        if min(height, width) < 4:
            raise ValueError(
                f"preset {preset!r} needs images of at least 4x4. Received: input_shape={tuple(input_shape)}")
        x = SMALL_PRESETS[preset](inputs)
    else:
        if min(height, width) < MIN_APPLICATION_SIZE:
            raise ValueError(
                f"preset {preset!r} needs images of at least {MIN_APPLICATION_SIZE}x{MIN_APPLICATION_SIZE}. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        x = APPLICATION_PRESETS[preset](inputs, weights=weights)
    x = layers.Dense(int(embedding_dim), dtype="float32", name="embedding")(x)
    if normalize:
        x = L2Normalize(dtype="float32", name="l2_normalize")(x)
    return keras.Model(inputs, x, name=f"tower_{preset}")

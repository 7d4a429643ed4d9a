"""Embedding towers: the seed's CNN, a stronger small CNN, and `keras.applications` backbones.

Every tower takes raw pixels (0..255, shape `(height, width, channels)`) and
rescales them itself, so a saved model needs no outside preprocessing.
"""

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import keras
from keras import layers

from keras_siamese.errors import SiameseError, check
from keras_siamese.models.layers import L2Normalize
from keras_siamese.registry import Registry

GRID_CELLS = 3


def _seed_body(x):
    """The tutorial's tower: 2 x [Conv64 2x2 relu, MaxPool 2, Dropout 0.3], global average pooling."""
    x = layers.Rescaling(1.0 / 255)(x)
    for _ in range(2):
        x = layers.Conv2D(64, 2, padding="same", activation="relu")(x)
        x = layers.MaxPooling2D(2)(x)
        x = layers.Dropout(0.3)(x)
    return layers.GlobalAveragePooling2D()(x)


def _conv_bn(x, filters, pool=False):
    """A 3x3 convolution, then (with `pool`) 2x2 max pooling, batch norm and ReLU. Pooling comes before batch
    norm, which then runs on a quarter of the values: a training step 1.25x faster (docs/benchmarks.md)."""
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
    if pool:
        x = layers.MaxPooling2D(2)(x)
    x = layers.BatchNormalization(momentum=0.9)(x)  # moving statistics settle within a short run
    return layers.Activation("relu")(x)


def _small_features(x):
    """3x3 convolutions with batch normalisation: 16 > pool > 64 > pool > 128."""
    x = layers.Rescaling(1.0 / 255)(x)
    x = _conv_bn(x, 16, pool=True)
    x = _conv_bn(x, 64, pool=True)
    return _conv_bn(x, 128)


def _small_body(x):
    """The small tower's features, global average pooling."""
    return layers.GlobalAveragePooling2D()(_small_features(x))


def _grid_pool(x, cells=GRID_CELLS):
    """Average `x` over a `cells` x `cells` grid of equal windows, overlapping where a side is not a multiple
    of `cells` (a side shorter than `cells` is averaged whole), and flatten, so the embedding keeps where
    features are, not only which."""
    strides = [max(size // cells, 1) for size in x.shape[1:3]]
    pool = [size - (cells - 1) * stride if size >= cells else size for size, stride in zip(x.shape[1:3], strides)]
    return layers.Flatten()(layers.AveragePooling2D(tuple(pool), tuple(strides))(x))


def _small_grid_body(x):
    """The small tower's features, averaged over a 3 x 3 grid instead of the whole image."""
    return _grid_pool(_small_features(x))


def _application(constructor, rescale):
    """A `keras.applications` backbone without its top, average-pooled."""

    def body(x, weights=None):
        if x.shape[-1] == 1:
            x = layers.Concatenate()([x, x, x])  # backbones with ImageNet weights want 3 channels
        if rescale:
            x = layers.Rescaling(1.0 / 127.5, offset=-1.0)(x)
        try:
            with warnings.catch_warnings():  # Keras notes that inputs other than 224 x 224 load the 224 weights
                warnings.simplefilter("ignore", UserWarning)
                backbone = constructor(input_shape=tuple(x.shape[1:]), weights=weights)
        except Exception as error:  # Keras' `get_file`: a bare Exception, OSError, ValueError (bad hash), ...
            if weights is None:
                raise
            reason = (str(error).splitlines() or [type(error).__name__])[0]
            raise SiameseError(f"could not load the {weights} weights of "
                               f"{constructor.__name__.strip('_').replace('_', '-')} ({reason}); Keras downloads them "
                               "once into ~/.keras/models: connect to the internet, or train without --weights"
                               ) from None
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


@dataclass(frozen=True)
class TowerBody:
    """How a tower turns pixels into features; `application` bodies are `keras.applications` backbones."""

    build: Callable
    application: bool = False


TOWERS = Registry("tower")
TOWERS.add("small", TowerBody(_small_body), "3x3 conv + batch norm, 16 > 64 > 128, GAP (default)")
TOWERS.add("small-grid", TowerBody(_small_grid_body),
           "the small tower pooled over a 3 x 3 grid, keeping where features are: measured better on new "
           "digits, worse on new garments")
TOWERS.add("seed", TowerBody(_seed_body), "the tutorial's 2 x [Conv64 2x2, MaxPool, Dropout 0.3], GAP")
TOWERS.add("mobilenet-v3-small", TowerBody(_application(_mobilenet_v3_small, rescale=False), True))
TOWERS.add("efficientnet-b0", TowerBody(_application(_efficientnet_b0, rescale=False), True))
TOWERS.add("resnet50-v2", TowerBody(_application(_resnet50_v2, rescale=True), True))
MIN_APPLICATION_SIZE = 32


def build_tower(tower="small", input_shape=(28, 28, 1), embedding_dim=48, normalize=False, weights=None):
    """An embedding tower: images `input_shape` (pixels 0..255) to `embedding_dim` floats.

    `tower` is a name in TOWERS; `normalize` adds unit-length scaling; `weights`
    ("imagenet" or None) initialises an application backbone (downloaded by
    Keras on first use, so it needs internet).
    """
    name = TOWERS.name(tower)
    body = TOWERS[name]
    check(int(embedding_dim) >= 1, "embedding_dim", embedding_dim, "must be at least 1")
    height, width, channels = input_shape
    check(channels in (1, 3), "input_shape", tuple(input_shape), "must have 1 or 3 channels")
    check(weights in (None, "imagenet"), "weights", weights, "must be 'imagenet' or None")
    check(not weights or body.application, "weights", weights,
          f"apply to the application towers ({', '.join(n for n in TOWERS if TOWERS[n].application)}) only")
    smallest = MIN_APPLICATION_SIZE if body.application else 4
    check(min(height, width) >= smallest, "input_shape", tuple(input_shape),
          f"must be at least {smallest}x{smallest} for tower {name!r} (--image-size resizes the images)")
    inputs = keras.Input(tuple(input_shape), name="image")
    x = body.build(inputs, weights=weights) if body.application else body.build(inputs)
    x = layers.Dense(int(embedding_dim), dtype="float32", name="embedding")(x)
    if normalize:
        x = L2Normalize(dtype="float32", name="l2_normalize")(x)
    return keras.Model(inputs, x, name=f"tower_{name.replace('-', '_')}")

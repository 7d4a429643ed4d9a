"""Serializable layers of the Siamese model (no `Lambda`, so safe-mode loading works)."""

import math

import keras
from keras import ops

from keras_siamese.models.distance import clamped_sqrt, euclidean
from keras_siamese.numeric import EPSILON


@keras.saving.register_keras_serializable(package="keras_siamese")
class EuclideanDistance(keras.layers.Layer):
    """Euclidean distance between two batches of embeddings, shape `(batch, 1)`.

    The squared distance is clamped below at `epsilon` before the square root,
    so identical inputs give a finite gradient (as the seed's `K.epsilon()`).
    """

    def __init__(self, epsilon=EPSILON, **kwargs):
        super().__init__(**kwargs)
        if not epsilon > 0:
            raise ValueError(f"epsilon must be positive. Received: epsilon={epsilon}")
        self.epsilon = epsilon

    def call(self, inputs):
        a, b = inputs
        a, b = ops.cast(a, self.compute_dtype), ops.cast(b, self.compute_dtype)
        return ops.expand_dims(euclidean(a, b, self.epsilon), -1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], 1)

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


def unit_length(vectors, epsilon):
    """`vectors` scaled to length 1 along the last axis (the squared length clamped below at `epsilon`),
    computed in float32 at least: in float16 an epsilon of 1e-12 is 0, and small squared lengths too."""
    dtype = keras.backend.standardize_dtype(vectors.dtype)
    wide = ops.cast(vectors, "float32") if dtype in ("float16", "bfloat16") else vectors
    return ops.cast(wide / clamped_sqrt(ops.sum(ops.square(wide), axis=-1, keepdims=True), epsilon), dtype)


@keras.saving.register_keras_serializable(package="keras_siamese")
class L2Normalize(keras.layers.Layer):
    """Scale each embedding to unit length, so distances lie in [0, 2]."""

    def __init__(self, epsilon=1e-12, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def call(self, inputs):
        return unit_length(ops.cast(inputs, self.compute_dtype), self.epsilon)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="keras_siamese")
class Recenter(keras.layers.Layer):
    """Subtract a stored centre from unit-length embeddings and scale them back to unit length.

    A model trained on some classes maps images of other classes into a small region of the sphere, around
    a mean direction that carries little about which of the new classes an image shows; measuring from
    that mean spreads them apart. `center` (not trained) is set by `ks.recenter`; zero is the identity on
    unit-length inputs.
    """

    def __init__(self, epsilon=1e-12, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def build(self, input_shape):
        self.center = self.add_weight(shape=(input_shape[-1],), initializer="zeros", trainable=False, name="center")

    def call(self, inputs):
        return unit_length(ops.cast(inputs, self.compute_dtype) - ops.cast(self.center, self.compute_dtype),
                           self.epsilon)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="keras_siamese")
class RandomAffine(keras.layers.Layer):
    """Random shift, rotation and zoom of each image, composed into one affine warp (one interpolation, where
    `RandomTranslation`, `RandomRotation` and `RandomZoom` in a row take three). Identity outside training.

    The draws match those layers': shifts uniform in +-`shift` of the height and width, angles uniform in
    +-`rotation` of a full turn about the centre, zoom factors uniform in 1 +- `zoom`.
    """

    def __init__(self, shift=0.08, rotation=0.03, zoom=0.08, fill_mode="nearest", seed=None, **kwargs):
        super().__init__(**kwargs)
        self.shift, self.rotation, self.zoom, self.fill_mode, self.seed = shift, rotation, zoom, fill_mode, seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=None):
        if not training:
            return images
        images = ops.cast(images, self.compute_dtype)
        n, height, width = ops.shape(images)[0], images.shape[1], images.shape[2]

        def uniform(bound):
            return keras.random.uniform((n,), -bound, bound, seed=self.seed_generator)

        angle = uniform(self.rotation * 2 * math.pi)
        scale = 1.0 + uniform(self.zoom)
        dx, dy = uniform(self.shift) * width, uniform(self.shift) * height
        # output pixel p maps to input pixel c + scale * R(angle) (p - c) - (dx, dy), c the centre
        cos, sin = scale * ops.cos(angle), scale * ops.sin(angle)
        cx, cy = (width - 1) / 2, (height - 1) / 2
        transform = ops.stack([cos, -sin, cx - cos * cx + sin * cy - dx,
                               sin, cos, cy - sin * cx - cos * cy - dy,
                               ops.zeros_like(cos), ops.zeros_like(cos)], axis=1)
        return ops.image.affine_transform(images, transform, fill_mode=self.fill_mode)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "shift": self.shift, "rotation": self.rotation, "zoom": self.zoom,
                "fill_mode": self.fill_mode, "seed": self.seed}

"""Serializable layers of the Siamese model (no `Lambda`, so safe-mode loading works)."""

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


@keras.saving.register_keras_serializable(package="keras_siamese")
class L2Normalize(keras.layers.Layer):
    """Scale each embedding to unit length, so distances lie in [0, 2]."""

    def __init__(self, epsilon=1e-12, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def call(self, inputs):
        inputs = ops.cast(inputs, self.compute_dtype)
        return inputs / clamped_sqrt(ops.sum(ops.square(inputs), axis=-1, keepdims=True), self.epsilon)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}

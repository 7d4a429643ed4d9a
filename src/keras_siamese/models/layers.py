"""Serializable layers of the Siamese model (no `Lambda`, so safe-mode loading works)."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_siamese")
class EuclideanDistance(keras.layers.Layer):
    """Euclidean distance between two batches of embeddings, shape `(batch, 1)`.

    The squared distance is clamped below at `epsilon` before the square root,
    so identical inputs give a finite gradient (as the seed's `K.epsilon()`).
    """

    def __init__(self, epsilon=1e-7, **kwargs):
        super().__init__(**kwargs)
        if not epsilon > 0:
            raise ValueError(f"epsilon must be positive. Received: epsilon={epsilon}")
        self.epsilon = epsilon

    def call(self, inputs):
        a, b = inputs
        a, b = ops.cast(a, self.compute_dtype), ops.cast(b, self.compute_dtype)
        squared = ops.sum(ops.square(a - b), axis=-1, keepdims=True)
        return ops.sqrt(ops.maximum(squared, self.epsilon))

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
        norm = ops.sqrt(ops.maximum(ops.sum(ops.square(inputs), axis=-1, keepdims=True), self.epsilon))
        return inputs / norm

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}

"""A model's fingerprint: a hash of its weights, so a gallery is only searched with the model that built it."""

import hashlib

import numpy as np


def model_fingerprint(model):
    """`sha256:<hex>` over the shapes and values of the tower's weights, in order.

    The threshold is not part of it: recalibrating a model keeps its galleries valid.
    """
    import keras

    tower = getattr(model, "tower", model)
    digest = hashlib.sha256()
    for weight in tower.weights:
        value = np.ascontiguousarray(keras.ops.convert_to_numpy(weight.value))
        digest.update(f"{value.dtype}{value.shape}".encode())
        digest.update(value.tobytes())
    return f"sha256:{digest.hexdigest()}"

"""Euclidean distances in `keras.ops`, for layers and losses (host arrays: `metrics.neighbours`)."""

from keras import ops

from keras_siamese.numeric import EPSILON


def clamped_sqrt(squared, epsilon=EPSILON):
    """`sqrt(max(squared, epsilon))`: a finite gradient where the distance is 0."""
    return ops.sqrt(ops.maximum(squared, epsilon))


def euclidean(a, b, epsilon=EPSILON):
    """Distances between `a` and `b` along the last axis (leading axes broadcast), computed directly."""
    return clamped_sqrt(ops.sum(ops.square(a - b), axis=-1), epsilon)


def pairwise_euclidean(embeddings, epsilon=EPSILON):
    """Distances between all rows of one batch, `(batch, batch)` in float32, as `|a|^2 + |b|^2 - 2 a.b`."""
    e = ops.cast(embeddings, "float32")
    squared_norms = ops.sum(ops.square(e), axis=1)
    return clamped_sqrt(squared_norms[:, None] + squared_norms[None, :] - 2.0 * ops.matmul(e, ops.transpose(e)),
                        epsilon)

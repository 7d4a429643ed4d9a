"""Distance matrices and pair masks over one batch of embeddings, for in-batch losses."""

from keras import ops


def pairwise_distances(embeddings, epsilon=1e-12):
    """Euclidean distances between all rows, shape `(batch, batch)`; the square root is clamped."""
    e = ops.cast(embeddings, "float32")
    squared_norms = ops.sum(ops.square(e), axis=1)
    squared = squared_norms[:, None] + squared_norms[None, :] - 2.0 * ops.matmul(e, ops.transpose(e))
    return ops.sqrt(ops.maximum(squared, epsilon))


def pair_masks(labels):
    """Float masks `(positive, negative)`: same label off the diagonal, and different label."""
    labels = ops.reshape(labels, (-1,))
    same = ops.equal(labels[:, None], labels[None, :])
    eye = ops.eye(ops.shape(labels)[0], dtype="bool")
    positive = ops.logical_and(same, ops.logical_not(eye))
    return ops.cast(positive, "float32"), ops.cast(ops.logical_not(same), "float32")


def masked_mean(values, mask):
    """Mean of `values` where `mask` is 1; 0 when the mask is empty."""
    return ops.sum(values * mask) / ops.maximum(ops.sum(mask), 1.0)

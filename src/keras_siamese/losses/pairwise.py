"""Pair masks and per-anchor reductions over one batch of embeddings, for in-batch losses.

The in-batch losses return one value per anchor (row of the batch), as Keras losses
do per sample, so that `reduction` and `sample_weight` apply to them. Their labels
are class codes: Keras hands `y_true` to a loss in the loss's dtype, so codes are
compared as floats, exact below 2**24 in float32 (2**11 in float16, 2**8 in
bfloat16). Training passes codes 0..classes-1; map other labels to codes first.
"""

from keras import ops


def pair_masks(labels):
    """Float masks `(positive, negative)`: same label off the diagonal, and different label."""
    labels = ops.reshape(labels, (-1,))
    same = ops.equal(labels[:, None], labels[None, :])
    eye = ops.eye(ops.shape(labels)[0], dtype="bool")
    positive = ops.logical_and(same, ops.logical_not(eye))
    return ops.cast(positive, "float32"), ops.cast(ops.logical_not(same), "float32")


def anchor_shares(values, mask):
    """Each anchor's share of the mean of `values` over the pairs where `mask` is 1, shape `(batch,)`.

    Anchor `i` gets `batch * sum_j(mask * values)[i] / sum(mask)`: its own mean over
    its pairs when every anchor has as many pairs, and in any case values whose
    mean over the batch is the mean over all pairs. 0 for an anchor without
    pairs; all 0 when the mask is empty.
    """
    batch = ops.cast(ops.shape(mask)[0], "float32")
    return batch * ops.sum(values * mask, axis=1) / ops.maximum(ops.sum(mask), 1.0)

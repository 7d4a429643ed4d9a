"""Triplet loss over a batch with batch-hard or semi-hard mining."""

import keras
from keras import ops

from keras_siamese.errors import check
from keras_siamese.losses.pairwise import anchor_shares, pair_masks
from keras_siamese.models.distance import pairwise_euclidean
from keras_siamese.registry import Registry

_BIG = 1e9


def batch_hard_triplet(labels, embeddings, margin=1.0):
    """For each anchor: `max(hardest positive - hardest negative + margin, 0)`.

    The hardest positive is the farthest same-class image, the hardest negative the
    closest other-class one (Hermans et al., 2017). Returns one value per anchor,
    shape `(batch,)`; an anchor without a positive or a negative gets 0.
    """
    d = pairwise_euclidean(embeddings)
    positive, negative = pair_masks(labels)
    hardest_positive = ops.max(d * positive, axis=1)
    hardest_negative = ops.min(d + _BIG * (1.0 - negative), axis=1)
    valid = ops.cast(ops.logical_and(ops.max(positive, axis=1) > 0, ops.max(negative, axis=1) > 0), "float32")
    return ops.maximum(hardest_positive - hardest_negative + margin, 0.0) * valid


def semi_hard_triplet(labels, embeddings, margin=1.0):
    """For each positive pair (a, p): the closest negative farther than d(a, p) (FaceNet, 2015).

    When no negative lies beyond d(a, p), the farthest negative is used. Loss
    `max(d(a, p) - d(a, n) + margin, 0)`, averaged over positive pairs whose
    anchor has a negative; 0 when there are none. Returns each anchor's share
    of that mean (see `anchor_shares`), shape `(batch,)`.
    """
    d = pairwise_euclidean(embeddings)
    positive, negative = pair_masks(labels)
    d_ap = d[:, :, None]  # [anchor, positive, 1]
    d_an = d[:, None, :]  # [anchor, 1, negative]
    beyond = negative[:, None, :] * ops.cast(d_an > d_ap, "float32")
    semi_hard = ops.min(d_an + _BIG * (1.0 - beyond), axis=2)
    farthest = ops.max(d * negative, axis=1)[:, None]
    has_beyond = ops.max(beyond, axis=2) > 0
    chosen = ops.where(has_beyond, semi_hard, farthest)
    has_negative = ops.cast(ops.max(negative, axis=1, keepdims=True) > 0, "float32")
    return anchor_shares(ops.maximum(d - chosen + margin, 0.0), positive * has_negative)


MINING = Registry("mining")
MINING.add("semi-hard", semi_hard_triplet, "the closest negative beyond the positive (FaceNet)")
MINING.add("batch-hard", batch_hard_triplet, "the farthest positive and the closest negative of each anchor")


@keras.saving.register_keras_serializable(package="keras_siamese")
class TripletLoss(keras.losses.Loss):
    """Triplet loss with `mining` "batch-hard" or "semi-hard": `y_true` = labels, `y_pred` = embeddings."""

    def __init__(self, margin=1.0, mining="batch-hard", name="triplet", reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        check(margin > 0, "margin", margin, "must be positive")
        self.margin, self.mining = margin, MINING.name(mining)

    def call(self, y_true, y_pred):
        return MINING[self.mining](y_true, y_pred, self.margin)

    def get_config(self):
        return {**super().get_config(), "margin": self.margin, "mining": self.mining}

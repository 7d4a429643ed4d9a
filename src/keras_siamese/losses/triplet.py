"""Triplet loss over a batch with batch-hard or semi-hard mining."""

import keras
from keras import ops

from keras_siamese.losses.pairwise import masked_mean, pair_masks, pairwise_distances

MINING = ("batch_hard", "semi_hard")
_BIG = 1e9


def batch_hard_triplet(labels, embeddings, margin=1.0):
    """For each anchor: `max(hardest positive - hardest negative + margin, 0)`.

    The hardest positive is the farthest same-class image, the hardest negative the
    closest other-class one (Hermans et al., 2017). Averaged over anchors that
    have both; 0 when none has.
    """
    d = pairwise_distances(embeddings)
    positive, negative = pair_masks(labels)
    hardest_positive = ops.max(d * positive, axis=1)
    hardest_negative = ops.min(d + _BIG * (1.0 - negative), axis=1)
    valid = ops.cast(ops.logical_and(ops.max(positive, axis=1) > 0, ops.max(negative, axis=1) > 0), "float32")
    return masked_mean(ops.maximum(hardest_positive - hardest_negative + margin, 0.0), valid)


def semi_hard_triplet(labels, embeddings, margin=1.0):
    """For each positive pair (a, p): the closest negative farther than d(a, p) (FaceNet, 2015).

    When no negative lies beyond d(a, p), the farthest negative is used. Loss
    `max(d(a, p) - d(a, n) + margin, 0)`, averaged over positive pairs whose
    anchor has a negative; 0 when there are none.
    """
    d = pairwise_distances(embeddings)
    positive, negative = pair_masks(labels)
    d_ap = d[:, :, None]  # [anchor, positive, 1]
    d_an = d[:, None, :]  # [anchor, 1, negative]
    beyond = negative[:, None, :] * ops.cast(d_an > d_ap, "float32")
    semi_hard = ops.min(d_an + _BIG * (1.0 - beyond), axis=2)
    farthest = ops.max(d * negative, axis=1)[:, None]
    has_beyond = ops.max(beyond, axis=2) > 0
    chosen = ops.where(has_beyond, semi_hard, farthest)
    has_negative = ops.cast(ops.max(negative, axis=1, keepdims=True) > 0, "float32")
    return masked_mean(ops.maximum(d - chosen + margin, 0.0), positive * has_negative)


@keras.saving.register_keras_serializable(package="keras_siamese")
class TripletLoss(keras.losses.Loss):
    """Triplet loss with `mining` "batch_hard" or "semi_hard": `y_true` = labels, `y_pred` = embeddings."""

    def __init__(self, margin=1.0, mining="batch_hard", name="triplet", reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if mining not in MINING:
            raise ValueError(f"unknown triplet mining. Received: mining={mining!r}; choose one of {', '.join(MINING)}")
        if not margin > 0:
            raise ValueError(f"margin must be positive. Received: margin={margin}")
        self.margin, self.mining = margin, mining

    def call(self, y_true, y_pred):
        loss = batch_hard_triplet if self.mining == "batch_hard" else semi_hard_triplet
        return loss(y_true, y_pred, self.margin)

    def get_config(self):
        return {**super().get_config(), "margin": self.margin, "mining": self.mining}

"""Contrastive loss over every pair of a batch, from one embedding per image."""

import keras
from keras import ops

from keras_siamese.errors import check
from keras_siamese.losses.pairwise import anchor_shares, pair_masks
from keras_siamese.models.distance import pairwise_euclidean


def in_batch_contrastive(labels, embeddings, margin=1.0, pos_margin=0.0, pos_bound=None, neg_bound=None):
    """Contrastive loss over all pairs of a batch, positives and negatives averaged separately.

    A positive pair costs `max(d - pos_margin, 0)^2`, a negative `max(margin - d, 0)^2`.
    The batch loss is mean(positive costs) + mean(negative costs), so the O(B^2)
    negatives do not swamp the O(B*K) positives. Hard-pair mining: with
    `pos_bound`, only positives farther than it count; with `neg_bound`, only
    negatives closer than it. An empty set of pairs contributes 0. Returns each
    anchor's share (see `anchor_shares`), shape `(batch,)`: their mean is the batch loss.
    """
    d = pairwise_euclidean(embeddings)
    positive, negative = pair_masks(labels)
    if pos_bound is not None:
        positive = positive * ops.cast(d > pos_bound, "float32")
    if neg_bound is not None:
        negative = negative * ops.cast(d < neg_bound, "float32")
    positive_cost = ops.square(ops.maximum(d - pos_margin, 0.0))
    negative_cost = ops.square(ops.maximum(margin - d, 0.0))
    return anchor_shares(positive_cost, positive) + anchor_shares(negative_cost, negative)


@keras.saving.register_keras_serializable(package="keras_siamese")
class InBatchContrastiveLoss(keras.losses.Loss):
    """`in_batch_contrastive` as a Keras loss: `y_true` = class labels, `y_pred` = embeddings."""

    def __init__(self, margin=1.0, pos_margin=0.0, pos_bound=None, neg_bound=None, name="in_batch_contrastive",
                 reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        check(margin > 0, "margin", margin, "must be positive")
        check(0 <= pos_margin < margin, "pos_margin", pos_margin, f"must be in [0, margin={margin})")
        self.margin, self.pos_margin = margin, pos_margin
        self.pos_bound, self.neg_bound = pos_bound, neg_bound

    def call(self, y_true, y_pred):
        return in_batch_contrastive(y_true, y_pred, self.margin, self.pos_margin, self.pos_bound, self.neg_bound)

    def get_config(self):
        return {
            **super().get_config(), "margin": self.margin, "pos_margin": self.pos_margin,
            "pos_bound": self.pos_bound, "neg_bound": self.neg_bound,
        }

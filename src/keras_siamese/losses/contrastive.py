"""Contrastive loss (Hadsell, Chopra and LeCun, 2006) on pair distances. Label 1 = same class."""

import keras
from keras import ops

from keras_siamese.errors import check


def contrastive(y_true, y_pred, margin=1.0):
    """Per-pair contrastive loss `y * d^2 + (1 - y) * max(margin - d, 0)^2`.

    `y_true` is 1 for same-class pairs and 0 otherwise; `y_pred` holds distances
    `d`, shape `(batch,)` or `(batch, 1)`. Returns shape `(batch,)`.
    """
    d = ops.reshape(ops.convert_to_tensor(y_pred), (-1,))
    y = ops.cast(ops.reshape(y_true, (-1,)), d.dtype)
    return y * ops.square(d) + (1.0 - y) * ops.square(ops.maximum(margin - d, 0.0))


@keras.saving.register_keras_serializable(package="keras_siamese")
class ContrastiveLoss(keras.losses.Loss):
    """The seed's contrastive loss over a batch of pairs (mean by default)."""

    def __init__(self, margin=1.0, name="contrastive", reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        check(margin > 0, "margin", margin, "must be positive")
        self.margin = margin

    def call(self, y_true, y_pred):
        return contrastive(y_true, y_pred, self.margin)

    def get_config(self):
        return {**super().get_config(), "margin": self.margin}

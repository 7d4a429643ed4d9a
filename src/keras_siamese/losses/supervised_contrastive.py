"""Supervised contrastive loss (Khosla et al., 2020) over the pairs of one batch."""

import keras
from keras import ops

from keras_siamese.errors import check
from keras_siamese.losses.pairwise import pair_masks


def supervised_contrastive(labels, embeddings, temperature=0.1):
    """For each anchor, the mean over its positives of -log softmax(similarity / temperature).

    Similarities are dot products of the (unit-length) embeddings; the softmax
    runs over every other image of the batch. Returns one value per anchor,
    shape `(batch,)`; an anchor without a positive gets 0.
    """
    e = ops.cast(embeddings, "float32")
    positive, _ = pair_masks(labels)
    n = ops.shape(e)[0]
    logits = ops.matmul(e, ops.transpose(e)) / temperature
    logits = logits - 1e9 * ops.eye(n)  # an image is not its own candidate
    log_probability = logits - ops.logsumexp(logits, axis=1, keepdims=True)
    per_anchor_positives = ops.sum(positive, axis=1)
    return -ops.sum(log_probability * positive, axis=1) / ops.maximum(per_anchor_positives, 1.0)


@keras.saving.register_keras_serializable(package="keras_siamese")
class SupervisedContrastiveLoss(keras.losses.Loss):
    """`supervised_contrastive` as a Keras loss: `y_true` = class labels, `y_pred` = embeddings."""

    def __init__(self, temperature=0.1, name="supervised_contrastive", reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        check(temperature > 0, "temperature", temperature, "must be positive")
        self.temperature = temperature

    def call(self, y_true, y_pred):
        return supervised_contrastive(y_true, y_pred, self.temperature)

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature}

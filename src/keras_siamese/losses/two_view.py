"""Supervised contrastive loss over two augmented views of each image, with a self-supervised term.

The self-supervised term is SimCLR's NT-Xent (Chen et al., 2020): each view's
one positive is the other view of its image. It keeps features that tell
images apart within a class, which classes never seen in training need, and it
lets unlabelled images (label -1) take part in training.
"""

import keras
from keras import ops

from keras_siamese.errors import check
from keras_siamese.losses.supervised_contrastive import supervised_contrastive


def two_view_contrastive(labels, views, temperature=0.1, ssl_weight=1.0):
    """Per image, the mean over its two views of supcon + `ssl_weight` x NT-Xent, shape `(batch,)`.

    `views` is `(batch, 2, dim)`, unit length. `labels` are class codes, or -1
    for an unlabelled image: a class of its own, whose only positive in the
    supervised term is then its other view, as in the self-supervised one (so it
    trains on that pair with weight 1 + `ssl_weight`).
    """
    labels = ops.reshape(ops.cast(labels, "int32"), (-1,))
    n = ops.shape(labels)[0]
    instance = ops.arange(n, dtype="int32")
    classes = ops.where(labels >= 0, labels, -1 - instance)
    both = ops.concatenate([views[:, 0], views[:, 1]], axis=0)
    per_view = supervised_contrastive(ops.tile(classes, [2]), both, temperature)
    if ssl_weight:
        per_view = per_view + ssl_weight * supervised_contrastive(ops.tile(instance, [2]), both, temperature)
    return (per_view[:n] + per_view[n:]) / 2


@keras.saving.register_keras_serializable(package="keras_siamese")
class TwoViewContrastiveLoss(keras.losses.Loss):
    """`two_view_contrastive` as a Keras loss: `y_true` = labels (-1: unlabelled), `y_pred` = `(batch, 2, dim)`."""

    def __init__(self, temperature=0.1, ssl_weight=1.0, name="two_view_contrastive",
                 reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        check(temperature > 0, "temperature", temperature, "must be positive")
        check(ssl_weight >= 0, "ssl_weight", ssl_weight, "must be 0 or more")
        self.temperature, self.ssl_weight = temperature, ssl_weight

    def call(self, y_true, y_pred):
        return two_view_contrastive(y_true, y_pred, self.temperature, self.ssl_weight)

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature, "ssl_weight": self.ssl_weight}

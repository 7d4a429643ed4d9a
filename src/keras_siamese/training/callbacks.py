"""Callbacks: validation verification metrics each epoch, and batch-norm statistics refresh."""

import keras
import numpy as np

from keras_siamese.inference.embedding import embed_images, pair_distances
from keras_siamese.metrics.verification import best_accuracy, roc_auc


class ValidationMetrics(keras.callbacks.Callback):
    """Adds `val_auc` and `val_accuracy` (at the best threshold) on fixed validation pairs to the logs."""

    def __init__(self, tower, images, pairs, same):
        super().__init__()
        self.tower, self.images, self.pairs, self.same = tower, images, pairs, same

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        distances = pair_distances(embed_images(self.tower, self.images), self.pairs)
        if not np.isfinite(distances).all():
            logs["val_auc"], logs["val_accuracy"] = float("nan"), float("nan")
            return
        logs["val_auc"] = roc_auc(distances, self.same)
        logs["val_accuracy"] = best_accuracy(distances, self.same)[0]


def batch_norm_layers(model):
    """Every BatchNormalization layer inside `model`, nested models included."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            found.append(layer)
        elif isinstance(layer, keras.Model):
            found += batch_norm_layers(layer)
    return found


def refresh_batch_norm(tower, images, batch_size=256, batches=32, seed=0):
    """Set batch-norm moving statistics to averages over training batches.

    After a short run the exponential moving averages still remember their
    initial values; this replaces them with the mean of per-batch statistics
    over up to `batches` seeded batches (a cumulative average), so inference
    matches what the network saw in training.
    """
    layers = batch_norm_layers(tower)
    if not layers or len(images) == 0:
        return
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(images))
    chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)][:batches]
    chunks = [c for c in chunks if len(c) > 1] or chunks
    momenta = [layer.momentum for layer in layers]
    try:
        for step, chunk in enumerate(chunks):
            for layer in layers:
                layer.momentum = step / (step + 1)  # cumulative average of batch statistics
            tower(images[chunk], training=True)
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum

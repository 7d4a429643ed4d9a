"""Callbacks: validation verification metrics each epoch, and batch-norm statistics refresh."""

import keras
import numpy as np
from keras import ops

from keras_siamese.data.pairs import one_positive_one_negative
from keras_siamese.inference.embedding import default_batch_size, embed_images, pair_distances
from keras_siamese.metrics.verification import best_accuracy, roc_auc

TRAINING_EMBED_BATCH = 256  # small batches while training keep the process's peak memory low


class ValidationMetrics(keras.callbacks.Callback):
    """Adds `val_loss`, `val_auc` and `val_accuracy` (at the best threshold) to each epoch's logs.

    The validation images are embedded once per epoch; the loss and the
    metrics all come from those embeddings: pair losses on fixed validation
    pairs (through `head` for bce), in-batch losses on fixed index `batches`.
    This is much cheaper than Keras' own validation pass, which rebuilds its
    input pipeline every epoch. With `local` (a LocalTower, when training on
    several devices) the embeddings come from its plain copy of the tower.
    """

    def __init__(self, tower, images, loss, seed, batches=None, head=None, local=None):
        super().__init__()
        self.tower, self.images, self.loss, self.batches, self.head = tower, images, loss, batches, head
        self.local = local
        self.pairs, self.same = one_positive_one_negative(images.labels, np.random.default_rng(seed))

    def validation_loss(self, embeddings, distances):
        if self.batches is None:
            predictions = distances[:, None] if self.head is None else self.head(distances[:, None])
            return self.mean_loss(self.same.astype("float32")[:, None], predictions)
        labels = self.images.labels.astype("int32")
        return float(np.mean([self.mean_loss(labels[rows], embeddings[rows]) for rows in self.batches]))

    def mean_loss(self, y_true, y_pred):
        """The loss's batch mean, from `call`: `__call__` would divide it by the replicas of a strategy scope."""
        return float(np.mean(ops.convert_to_numpy(self.loss.call(y_true, ops.convert_to_tensor(y_pred)))))

    def measure(self, tower):
        """The validation images' embeddings by `tower`, the validation pairs' distances, and the loss."""
        embeddings = embed_images(tower, self.images.images, batch_size=TRAINING_EMBED_BATCH)
        distances = pair_distances(embeddings, self.pairs)
        return embeddings, distances, self.validation_loss(embeddings, distances)

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        if self.local is None:
            embeddings, distances, logs["val_loss"] = self.measure(self.tower)
        else:
            tower = self.local.synced()
            embeddings, distances, logs["val_loss"] = self.local.outside(lambda: self.measure(tower))
        finite = np.isfinite(distances).all()
        logs["val_auc"] = roc_auc(distances, self.same) if finite else float("nan")
        logs["val_accuracy"] = best_accuracy(distances, self.same)[0] if finite else float("nan")


class StopWhenDiverged(keras.callbacks.Callback):
    """Ends training after an epoch whose loss is not finite. Checked at epoch ends only: Keras' own
    TerminateOnNaN looks at every batch, which makes JAX and PyTorch wait for each step's loss."""

    def on_epoch_end(self, epoch, logs=None):
        if logs and not np.isfinite(logs.get("loss", 0.0)):
            self.model.stop_training = True


def batch_norm_layers(model):
    """Every BatchNormalization layer inside `model`, nested models included."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            found.append(layer)
        elif isinstance(layer, keras.Model):
            found += batch_norm_layers(layer)
    return found


REFRESH_IMAGES = 4096  # training images whose batch statistics the refresh averages


def refresh_batch_norm(tower, images, batch_size=None, seed=0):
    """Set batch-norm moving statistics to averages over training batches.

    After a short run the exponential moving averages still remember their
    initial values; this replaces them with the mean of per-batch statistics
    over seeded batches of up to REFRESH_IMAGES images (a cumulative average),
    so inference matches what the network saw in training. Batches are as large
    as inference's for the image size (`default_batch_size`: 1,024 at 28x28,
    16 at 224x224), so memory is bounded by pixels and eager calls are few.
    """
    layers = batch_norm_layers(tower)
    if not layers or len(images) == 0:
        return
    batch_size = batch_size or default_batch_size(tuple(tower.input_shape[1:]))
    order = np.random.default_rng(seed).permutation(len(images))[:max(REFRESH_IMAGES, batch_size)]
    chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
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

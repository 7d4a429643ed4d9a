"""What training optimises: one registered objective per `loss` name.

An objective is the model `fit` trains, its loss, and whether it takes image
pairs (the seed's pair losses) or labelled images (the in-batch losses, whose
batches are P classes x K images).
"""

from collections.abc import Callable
from dataclasses import dataclass

import keras

from keras_siamese.losses.contrastive import ContrastiveLoss
from keras_siamese.losses.in_batch import InBatchContrastiveLoss
from keras_siamese.losses.supervised_contrastive import SupervisedContrastiveLoss
from keras_siamese.losses.triplet import TripletLoss
from keras_siamese.losses.two_view import TwoViewContrastiveLoss
from keras_siamese.models.layers import RandomAffine
from keras_siamese.registry import Registry


@dataclass
class Objective:
    """What `fit` trains (`model`, `loss`), whether it takes image pairs or labelled images, the
    head (bce's learned sigmoid) that turns distances into the loss's input, and the tower."""

    model: keras.Model
    loss: keras.losses.Loss
    takes_pairs: bool
    tower: keras.Model
    head: keras.layers.Layer | None = None
    validation_loss: keras.losses.Loss | None = None  # when the training loss takes what validation lacks


@dataclass(frozen=True)
class LossSpec:
    """A registered loss: `make(config)` builds it; `takes_pairs` says which batches it trains on;
    `settings` are the TrainConfig fields it reads."""

    make: Callable
    takes_pairs: bool
    settings: tuple = ()


LOSSES = Registry("loss")
LOSSES.add("supcon", LossSpec(lambda c: SupervisedContrastiveLoss(c.temperature), False, ("temperature",)),
           "supervised contrastive over every pair of the batch (default)")
LOSSES.add("in-batch", LossSpec(
    lambda c: InBatchContrastiveLoss(c.margin, c.pos_margin, c.pos_bound, c.neg_bound), False,
    ("margin", "pos_margin", "pos_bound", "neg_bound")), "contrastive over all pairs of the batch")
LOSSES.add("triplet", LossSpec(lambda c: TripletLoss(c.margin, c.mining), False, ("margin", "mining")),
           "triplet with --mining")
LOSSES.add("contrastive", LossSpec(lambda c: ContrastiveLoss(c.margin), True, ("margin",)),
           "the seed's pairwise loss, margin 1, label 1 = same")
LOSSES.add("bce", LossSpec(lambda c: keras.losses.BinaryCrossentropy(), True),
           "binary cross-entropy on a learned sigmoid of the distance")


def build_objective(siamese, config):
    """The training model and loss for `config.loss`; towers train directly for in-batch losses."""
    spec = LOSSES[config.loss]
    loss = spec.make(config)
    shape = siamese.input_image_shape
    augment = augmentation() if config.augment else (lambda x: x)
    if spec.takes_pairs:
        a, b = keras.Input(shape), keras.Input(shape)
        distance = siamese([augment(a), augment(b)])
        if config.loss != "bce":
            return Objective(keras.Model([a, b], distance), loss, True, siamese.tower)
        # p(same) = sigmoid(1 - d) at the start: closer pairs more likely the same, whatever the seed
        # (a random initial slope can be positive, and training then stalls at chance)
        head = keras.layers.Dense(1, activation="sigmoid", name="distance_sigmoid",
                                  kernel_initializer=keras.initializers.Constant(-1.0),
                                  bias_initializer=keras.initializers.Constant(1.0))
        return Objective(keras.Model([a, b], head(distance)), loss, True, siamese.tower, head)
    if config.two_views:
        return two_view_objective(siamese, config)
    model = siamese.tower
    if config.augment:
        images = keras.Input(shape)
        model = keras.Model(images, model(augment(images)))
    return Objective(model, loss, False, siamese.tower)


def two_view_objective(siamese, config):
    """Two independently augmented views of every image through the tower, stacked `(batch, 2, dim)`,
    trained with supervised contrastive plus the self-supervised term."""
    images = keras.Input(siamese.input_image_shape)
    augment = view_augmentation()
    views = [keras.layers.Reshape((1, -1))(siamese.tower(augment(images))) for _ in range(2)]
    model = keras.Model(images, keras.layers.Concatenate(axis=1)(views))
    loss = TwoViewContrastiveLoss(config.temperature, config.self_supervised_weight)
    return Objective(model, loss, False, siamese.tower, validation_loss=SupervisedContrastiveLoss(config.temperature))


def view_augmentation():
    """Stronger augmentation for the self-supervised views: crops out and in, shifts, contrast."""
    return keras.Sequential([
        keras.layers.RandomZoom((-0.3, 0.1), fill_mode="constant"),
        keras.layers.RandomTranslation(0.12, 0.12, fill_mode="constant"),
        keras.layers.RandomRotation(0.04, fill_mode="constant"),
        keras.layers.RandomContrast(0.5),
    ], name="view_augmentation")


def augmentation():
    """Small random shifts, rotations and zooms in one warp, applied in training only."""
    return RandomAffine(shift=0.08, rotation=0.03, zoom=0.08, fill_mode="nearest", name="augmentation")

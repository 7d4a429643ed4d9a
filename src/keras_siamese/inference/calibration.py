"""Choosing the decision threshold of a model from labelled images."""

import numpy as np

from keras_siamese.data.pairs import one_positive_one_negative
from keras_siamese.errors import SiameseError
from keras_siamese.inference.embedding import embed_images, pair_distances
from keras_siamese.metrics.verification import calibrate_threshold
from keras_siamese.models.layers import L2Normalize, Recenter
from keras_siamese.seeds import CALIBRATION_SEED

CALIBRATION_DRAWS = 5  # rounds of one positive + one negative partner per image


def calibration_pairs(labels, draws=CALIBRATION_DRAWS, seed=CALIBRATION_SEED):
    """Balanced pairs from several seeded rounds of the seed's scheme."""
    rng = np.random.default_rng(seed)
    rounds = [one_positive_one_negative(labels, rng) for _ in range(draws)]
    return np.concatenate([p for p, _ in rounds]), np.concatenate([s for _, s in rounds])


def calibrate_model(model, images, rule="accuracy", split="val", source=None, batch_size=None):
    """Set `model.threshold` from `images` (an ImageSet) by `rule`; returns the figures.

    `rule` is "accuracy", "f1" or "far=X" (a target false-accept rate).
    """
    pairs, same = calibration_pairs(images.labels)
    distances = pair_distances(embed_images(model, images.images, batch_size), pairs)
    threshold, figures = calibrate_threshold(distances, same, rule)
    model.threshold = float(threshold)
    model.calibration = {"split": split, "images": len(images), **({"data": source} if source else {}),
                         "classes": images.classes_present(), **figures}
    if isinstance(model.tower.layers[-1], Recenter):
        model.calibration["recentered"] = True  # by `recenter_model`; the threshold holds for these embeddings
    return figures


def recenter_model(model, images, batch_size=None):
    """A copy of `model` whose embeddings are measured from the mean embedding of `images` (no labels needed).

    A tower trained on some classes maps images of new classes close together on
    the unit sphere; subtracting their mean direction and renormalising (a
    `Recenter` layer at the end of the tower, replacing any earlier one) spreads
    them out again. Calibrate the threshold afterwards. Only for unit-length
    embeddings: a shift leaves plain Euclidean distances unchanged. `model`
    itself is left as it was; the copy shares its other layers.
    """
    import keras

    from keras_siamese.models.siamese import SiameseModel

    if not has_unit_length(model):
        raise SiameseError("recentering needs a model with unit-length embeddings (trained with normalize on); "
                           "shifting this model's embeddings would not change any distance")
    if len(images) < 2:
        raise SiameseError(f"recentering needs at least 2 images; received {len(images)}")
    tower = model.tower
    last = tower.layers[-1]
    features = last.input if isinstance(last, Recenter) else tower.outputs[0]
    center = embed_images(keras.Model(tower.input, features), images, batch_size).mean(axis=0)
    recenter = Recenter(dtype="float32", name="recenter")
    recentered = keras.Model(tower.input, recenter(features), name=tower.name)
    recenter.center.assign(center.astype("float32"))
    return SiameseModel(recentered, model.threshold, model.calibration, model.info, name=model.name)


def has_unit_length(model):
    """Whether `model`'s embeddings have unit length, so `recenter_model` applies."""
    return isinstance(model.tower.layers[-1], (L2Normalize, Recenter))

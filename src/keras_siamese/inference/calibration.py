"""Choosing the decision threshold of a model from labelled images."""

import numpy as np

from keras_siamese.data.pairs import one_positive_one_negative
from keras_siamese.inference.embedding import embed_images, pair_distances
from keras_siamese.metrics.verification import calibrate_threshold
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
    return figures

"""Choosing the decision threshold of a model from labelled images."""

from pathlib import Path

import numpy as np

from keras_siamese.data.dataset import as_image_set
from keras_siamese.data.folder import list_images
from keras_siamese.data.pairs import one_positive_one_negative
from keras_siamese.errors import SiameseError
from keras_siamese.inference.embedding import as_model, embed_images, pair_distances
from keras_siamese.metrics.verification import calibrate_threshold
from keras_siamese.models.layers import L2Normalize, Recenter
from keras_siamese.seeds import CALIBRATION_SEED

CALIBRATION_DRAWS = 5  # rounds of one positive + one negative partner per image
# Above this, the images' unit-length embeddings nearly coincide and what recentring leaves is rounding noise.
MAX_CENTER_LENGTH = 0.999


def calibration_pairs(labels, draws=CALIBRATION_DRAWS, seed=CALIBRATION_SEED):
    """Balanced pairs from several seeded rounds of the seed's scheme."""
    rng = np.random.default_rng(seed)
    rounds = [one_positive_one_negative(labels, rng) for _ in range(draws)]
    return np.concatenate([p for p, _ in rounds]), np.concatenate([s for _, s in rounds])


def calibrate_model(model, images, rule="accuracy", split="val", source=None, batch_size=None):
    """Set `model.threshold` from `images` (an ImageSet, or an `(images, labels)` tuple) by `rule`; returns
    the figures.

    `rule` is "accuracy", "f1" or "far=X" (a target false-accept rate).
    """
    if isinstance(model, (str, Path)):
        raise SiameseError("calibrate sets the threshold of a model in memory: ks.load_model the file, calibrate, "
                           "then ks.save_model it")
    model, images = as_model(model, siamese=True), as_image_set(images, "images")
    pairs, same = calibration_pairs(images.labels)
    distances = pair_distances(embed_images(model, images.images, batch_size), pairs)
    threshold, figures = calibrate_threshold(distances, same, rule)
    model.threshold = float(threshold)
    model.calibration = {"split": split, "images": len(images), **({"data": source} if source else {}),
                         "classes": images.classes_present(), **figures}
    if isinstance(model.tower.layers[-1], Recenter):
        model.calibration["recentered"] = True  # by `recenter_model`; the threshold holds for these embeddings
    return figures


FEATURES = ("embedding", "pooled")  # what `recenter_model` measures from the new classes' mean
RECENTER_DEFAULT = "pooled"  # measured better on new classes in 4 of 6 class splits, 0.037 AUC on average


def recenter_model(model, images, batch_size=None, features=RECENTER_DEFAULT):
    """A copy of `model` whose embeddings are measured from the mean embedding of `images` (no labels needed).

    A tower trained on some classes maps images of new classes close together on
    the unit sphere; subtracting their mean direction and renormalising (a
    `Recenter` layer at the end of the tower, replacing any earlier one) spreads
    them out again. `images` are images of the new classes (arrays, paths, a
    folder, an ImageSet or an (images, labels) pair; labels unused); `model` is
    a model or its file. With `features="pooled"` (the default) the copy embeds
    with the tower's pooled features, the input of its final `embedding` projection,
    scaled to unit length: they keep more of what tells new classes apart (the
    projection serves the training classes; docs/design.md, "Open set"). With
    "embedding", the model's own embeddings, which must have unit length: a
    shift leaves plain Euclidean distances unchanged.
    The copy has no threshold until `calibrate_model` sets one for its new
    distances; `model` itself is left as it was.
    """
    import keras

    from keras_siamese.models.siamese import SiameseModel

    model = as_model(model, siamese=True)
    images = getattr(images, "images", images)  # an ImageSet's images
    if isinstance(images, tuple) and len(images) == 2 and np.ndim(images[1]) == 1 and np.ndim(images[0]) >= 3 \
            and len(images[0]) == len(images[1]):  # (images, labels), as `calibrate_model` takes them
        images = images[0]
    if isinstance(images, (str, Path)):  # a folder: every image under it; else one file
        images = list_images(images) if Path(images).is_dir() else [Path(images)]
    if features not in FEATURES:
        raise SiameseError(f"features must be one of {', '.join(FEATURES)}; received {features!r}")
    if features == "embedding":
        check_recenterable(model)
    tower = keras.models.clone_model(model.tower)  # a copy: training `model` on must not move it
    tower.set_weights(model.tower.get_weights())
    last = tower.layers[-1]
    if features == "embedding" and any(layer.name == "l2_normalize_pooled" for layer in tower.layers):
        raise SiameseError("this model was recentred on its pooled features; to recentre embeddings, start from "
                           "the trained model")
    if features == "pooled" and any(layer.name == "embedding" for layer in tower.layers):
        measured = L2Normalize(dtype="float32", name="l2_normalize_pooled")(tower.get_layer("embedding").input)
    elif features == "pooled" and not isinstance(last, Recenter):
        raise SiameseError("this model's tower has no `embedding` projection to take the pooled features from")
    else:  # the embeddings, or the features an earlier recentering measured from
        measured = last.input if isinstance(last, Recenter) else tower.outputs[0]
    features_of = embed_images(keras.Model(tower.input, measured), images, batch_size)
    if len(features_of) < 2:  # counted as embedded: one (H, W) array is one image, not H
        raise SiameseError(f"recentering needs at least 2 images; received {len(features_of)}")
    center = features_of.mean(axis=0)
    if np.linalg.norm(center) > MAX_CENTER_LENGTH:
        advice = "use images of several of the new classes"
        if features == "pooled":  # a tower whose pooled features point one way for any image (the seed's)
            advice += ", or if they are, recentre the embeddings (features='embedding', --recenter embedding)"
        raise SiameseError(f"the {len(images)} images' {features} features are almost alike (the mean of them at "
                           f"unit length has length {np.linalg.norm(center):.4f}), so recentering on them would "
                           f"leave only noise; {advice}")
    recenter = Recenter(dtype="float32", name="recenter")
    recentered = keras.Model(tower.input, recenter(measured), name=tower.name)
    recenter.center.assign(center.astype("float32"))
    return SiameseModel(recentered, info=model.info, name=model.name)


def check_recenterable(model):
    """Raise SiameseError unless `recenter_model` applies to `model` (unit-length embeddings)."""
    if not has_unit_length(model):
        raise SiameseError("recentering needs a model with unit-length embeddings (trained with normalize on); "
                           "shifting this model's embeddings would not change any distance")


def has_unit_length(model):
    """Whether `model`'s embeddings have unit length, so `recenter_model` applies."""
    return isinstance(model.tower.layers[-1], (L2Normalize, Recenter))

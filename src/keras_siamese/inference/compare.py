"""Distances and same/different decisions for pairs of images."""

import numpy as np

from keras_siamese.errors import SiameseError
from keras_siamese.inference.embedding import as_model, embed_images
from keras_siamese.metrics.neighbours import euclidean


def decide(model, distances):
    """'same' / 'different' for each distance, or None when the model has no threshold."""
    if model.threshold is None:
        return None
    return ["same" if d < model.threshold else "different" for d in np.atleast_1d(distances)]


def distances(model, images_a, images_b):
    """Distances between `images_a[i]` and `images_b[i]` (arrays or paths), embedding each batch once.
    `model` is a SiameseModel or a model file."""
    model = as_model(model)
    a = embed_images(model, images_a)
    b = embed_images(model, images_b)
    if len(a) != len(b):
        raise SiameseError(f"images_a and images_b differ in length: {len(a)} and {len(b)}")
    return euclidean(a, b)


def compare(model, image_a, image_b):
    """Distance of two images, and the decision when the model is calibrated (`distances` for batches)."""
    model = as_model(model, siamese=True)
    pair = distances(model, image_a, image_b)
    if len(pair) != 1:
        raise SiameseError(f"compare takes one image on each side; received {len(pair)} pairs (ks.distances "
                           "compares batches)")
    distance = float(pair[0])
    decision = decide(model, distance)
    return {"distance": distance, "threshold": model.threshold, "decision": decision[0] if decision else None}

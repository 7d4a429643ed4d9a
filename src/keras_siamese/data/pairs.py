"""Index pairs for Siamese training and evaluation (never copies of images)."""

import numpy as np

from keras_siamese.errors import SiameseError
from keras_siamese.numeric import group_by_class

# `all_pairs` refuses more pairs than this (about 64 MB of indices, labels and distances).
MAX_ALL_PAIRS = 2_000_000


def one_positive_one_negative(labels, rng):
    """The seed's scheme, vectorised: for every image one same-class and one other-class partner.

    Returns `(pairs, same)`: `pairs` is an `(M, 2)` int array of indices into
    `labels`, `same` is 1 for same-class pairs and 0 otherwise. The positive
    partner is never the image itself; images alone in their class get no
    positive pair. Partners are drawn uniformly with `rng` (a numpy Generator).
    """
    labels = np.asarray(labels)
    n = len(labels)
    classes, codes = np.unique(labels, return_inverse=True)
    if len(classes) < 2:
        raise SiameseError(f"pairs need at least 2 classes; received {len(classes)}")
    order, starts, counts, rank = group_by_class(codes)
    size, start = counts[codes], starts[codes]

    # positive: shift the image's rank within its class by 1..size-1 (never itself)
    has_partner = size > 1
    shift = (rng.random(n) * (size - 1)).astype(np.int64) + 1
    positive = order[start + (rank + shift) % size]

    # negative: a uniform position among the n - size images outside the class
    position = (rng.random(n) * (n - size)).astype(np.int64)
    negative = order[np.where(position < start, position, position + size)]

    anchors = np.arange(n)
    pairs = np.concatenate([
        np.stack([anchors[has_partner], positive[has_partner]], 1),
        np.stack([anchors, negative], 1),
    ])
    same = np.concatenate([np.ones(has_partner.sum(), np.int64), np.zeros(n, np.int64)])
    # interleave so that pair 2i, 2i+1 belong to image i, as in the seed
    key = np.concatenate([anchors[has_partner] * 2, anchors * 2 + 1])
    keep = np.argsort(key, kind="stable")
    return pairs[keep], same[keep]


def all_pairs(labels, limit=MAX_ALL_PAIRS):
    """Every unordered pair `i < j`, refused when there would be more than `limit`."""
    labels = np.asarray(labels)
    n = len(labels)
    count = n * (n - 1) // 2
    if count > limit:
        raise SiameseError(
            f"--all-pairs on {n} images gives {count:,} pairs, over the cap of {limit:,}; "
            "use the default sampled pairs or a smaller split"
        )
    first, second = np.triu_indices(n, k=1)
    pairs = np.stack([first, second], 1)
    return pairs, (labels[first] == labels[second]).astype(np.int64)

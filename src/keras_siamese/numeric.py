"""Numeric conventions and numpy helpers that every floor shares (no Keras here).

Euclidean distances are computed in two places only: `keras_siamese.models.distance`
(`keras.ops`, for layers and losses) and `keras_siamese.metrics.neighbours` (numpy,
for host arrays). Both clamp the squared distance below at `EPSILON` before the
square root, so identical embeddings give `sqrt(EPSILON)` and a finite gradient.
"""

from typing import NamedTuple

import numpy as np

EPSILON = 1e-7  # the seed's `K.epsilon()`; representable in float16


class ClassGroups(NamedTuple):
    """Indices grouped by class code.

    `order` lists the indices of class 0, then class 1, and so on, each class in
    increasing index order; class `c` holds `order[starts[c]:starts[c] + counts[c]]`.
    `rank[i]` is the position of index `i` within its class.
    """

    order: np.ndarray
    starts: np.ndarray
    counts: np.ndarray
    rank: np.ndarray


def group_by_class(codes):
    """`ClassGroups` of integer class codes `0..C-1` (a class with no index has count 0)."""
    codes = np.asarray(codes, np.int64).reshape(-1)
    counts = np.bincount(codes) if len(codes) else np.zeros(0, np.int64)
    order = np.argsort(codes, kind="stable")
    starts = np.cumsum(counts) - counts
    rank = np.empty(len(codes), np.int64)
    rank[order] = np.arange(len(codes)) - starts[codes[order]]
    return ClassGroups(order, starts, counts, rank)

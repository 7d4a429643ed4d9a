"""N-way one-shot classification from embeddings, by random episodes (Koch et al., 2015)."""

import numpy as np

from keras_siamese.errors import SiameseError
from keras_siamese.metrics.neighbours import euclidean
from keras_siamese.metrics.retrieval import check_embeddings, check_positive_int
from keras_siamese.numeric import group_by_class

# Episodes are drawn in blocks holding about this many random numbers or embedding values.
_BLOCK_VALUES = 1 << 20


def n_way_one_shot_accuracy(embeddings, labels, n_way, episodes=1000, seed=0):
    """Share of `episodes` in which the nearest of `n_way` one-image supports has the query's class.

    Each episode draws a query class uniformly among classes with 2 or more
    images, `n_way - 1` other distinct classes uniformly among the rest, a
    query image, and one support image per class, the query class's support
    being another image than the query. Distances are Euclidean. A tie at the
    nearest distance counts as the expected hit of a random pick (1/number
    tied when the query's class is among them). `n_way` is capped at the
    number of classes; SiameseError when there are fewer than 2 classes or no
    class has 2 images. Seeded: equal arguments give equal results.
    """
    embeddings, classes = check_embeddings(embeddings, labels)
    n_way = check_positive_int(n_way, "n_way")
    episodes = check_positive_int(episodes, "episodes")
    if n_way < 2:
        raise SiameseError(f"n_way must be at least 2; received {n_way}")
    members, starts, counts, _ = group_by_class(classes)
    query_classes = np.flatnonzero(counts >= 2)
    if len(counts) < 2 or len(query_classes) == 0:
        raise SiameseError(
            f"one-shot needs 2 or more classes, one with 2 or more images; received "
            f"{len(counts)} classes, the largest with {counts.max()} images"
        )
    n_way = min(n_way, len(counts))
    rng = np.random.default_rng(seed)
    block = max(1, _BLOCK_VALUES // max(len(counts), n_way * embeddings.shape[1]))
    hits = 0.0
    for first in range(0, episodes, block):
        size = min(block, episodes - first)
        query_class = query_classes[rng.integers(len(query_classes), size=size)]
        episode_classes = np.concatenate(
            [query_class[:, None], _other_classes(query_class, len(counts), n_way - 1, rng)], axis=1
        )
        query_rank = (rng.random(size) * counts[query_class]).astype(np.int64)
        support_rank = (rng.random((size, n_way)) * counts[episode_classes]).astype(np.int64)
        # the query class's support: shift the query's rank by 1..count-1, never the query itself
        own_count = counts[query_class]
        shift = 1 + (rng.random(size) * (own_count - 1)).astype(np.int64)
        support_rank[:, 0] = (query_rank + shift) % own_count
        query = members[starts[query_class] + query_rank]
        support = members[starts[episode_classes] + support_rank]
        distances = euclidean(embeddings[support], embeddings[query][:, None, :])
        tied = distances == distances.min(axis=1, keepdims=True)
        hits += (tied[:, 0] / tied.sum(axis=1)).sum()  # column 0 is the query's class
    return float(hits / episodes)


def one_shot_report(embeddings, labels, ways=(5, 10), episodes=1000, seed=0):
    """One-shot accuracy per N in `ways`, as {"5_way": acc, "10_way": acc, "episodes": episodes}.

    An N above the number of classes becomes that number, and the key names
    the N actually used (two Ns becoming the same give one key).
    """
    embeddings, classes = check_embeddings(embeddings, labels)
    if len(ways) == 0:
        raise SiameseError("ways must name at least one N; received none")
    n_classes = int(classes.max()) + 1
    report = {}
    for n_way in ways:
        used = min(check_positive_int(n_way, "n_way"), n_classes)
        if f"{used}_way" not in report:
            report[f"{used}_way"] = n_way_one_shot_accuracy(embeddings, classes, used, episodes, seed)
    report["episodes"] = episodes
    return report


def _other_classes(query_class, n_classes, count, rng):
    """`count` distinct classes per episode, uniformly among those other than its query class."""
    keys = rng.random((len(query_class), n_classes))
    keys[np.arange(len(query_class)), query_class] = np.inf  # never drawn: sorts last
    return np.argpartition(keys, count - 1, axis=1)[:, :count]

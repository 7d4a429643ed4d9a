"""Retrieval metrics over labelled embeddings: leave-one-out search with Euclidean distance.

Definitions follow pytorch-metric-learning's AccuracyCalculator with
`embeddings_come_from_same_source=True`: every image queries all the others,
and a query whose class has no other image is skipped (it has nothing to find).
Unlike that library (faiss), neighbour lists are exact and not capped at 1023.
"""

import numpy as np

from keras_siamese.errors import SiameseError
from keras_siamese.metrics.neighbours import squared_distances

DEFAULT_K = 5


def check_embeddings(embeddings, labels):
    """Validated `(embeddings, classes)`: a finite float64 `(N, D)` array and class codes 0..C-1.

    Raises SiameseError unless there are at least 2 embeddings, one label each.
    """
    try:
        embeddings = np.asarray(embeddings, dtype=np.float64)
    except (TypeError, ValueError):
        raise SiameseError(f"embeddings must be numbers; received {embeddings!r:.80}") from None
    if embeddings.ndim != 2:
        raise SiameseError(
            f"embeddings must be 2-D (images, features); received shape {embeddings.shape}"
        )
    labels = np.asarray(labels)
    if labels.shape != (len(embeddings),):
        raise SiameseError(
            f"labels must be 1-D with one label per embedding; received shape {labels.shape} "
            f"for {len(embeddings)} embeddings"
        )
    if len(embeddings) < 2:
        raise SiameseError(f"need at least 2 images; received {len(embeddings)}")
    bad_rows = np.flatnonzero(~np.isfinite(embeddings).all(axis=1))
    if len(bad_rows):
        raise SiameseError(f"embeddings must be finite; row {bad_rows[0]} holds NaN or infinity")
    _, classes = np.unique(labels, return_inverse=True)
    return embeddings, classes.reshape(-1)


def check_positive_int(value, name):
    """`value` as an int, or SiameseError naming it unless it is an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise SiameseError(f"{name} must be a positive integer; received {value!r}")
    return int(value)


def retrieval_report(embeddings, labels, k=None, chunk=1024):
    """precision_at_1, map_at_r and k-NN accuracy, leave-one-out, as a dict of plain numbers.

    For a query with R other images of its class, precision_at_1 scores whether
    its nearest neighbour shares the class, and MAP@R averages
    `(1/R) * sum_{i<=R} P(i) * rel(i)` over queries (P(i): precision of the
    first i neighbours; rel(i): whether neighbour i shares the class).
    knn_accuracy is the share of queries whose `k` nearest neighbours (default
    5, at most N - 1) vote for the query's class by majority; a tie between
    classes goes to the one with the nearest member. Queries with R = 0 are
    skipped by all three; `n_queries` counts the rest, `median_same_class` their
    median R (with R well below k, other classes mostly outvote a query's own, whatever
    the embedding). Ties in distance are
    ordered arbitrarily. Queries run `chunk` at a time, so memory is
    O(chunk * N).
    """
    embeddings, classes = check_embeddings(embeddings, labels)
    n = len(classes)
    relevant = np.bincount(classes)[classes] - 1  # R: other images of the query's class
    queries = np.flatnonzero(relevant > 0)
    if len(queries) == 0:
        raise SiameseError(f"retrieval needs a class with 2 or more images; all {n} labels are unique")
    k = min(check_positive_int(DEFAULT_K if k is None else k, "k"), n - 1)
    chunk = check_positive_int(chunk, "chunk")
    depth = max(k, int(relevant.max()))
    squared_norms = np.einsum("ij,ij->i", embeddings, embeddings)

    nearest_hits = average_precision = vote_hits = 0.0
    for start in range(0, len(queries), chunk):
        rows = queries[start:start + chunk]
        neighbours = _nearest_neighbours(embeddings, squared_norms, rows, depth)
        neighbour_classes = classes[neighbours]
        matches = neighbour_classes == classes[rows, None]
        nearest_hits += matches[:, 0].sum()
        average_precision += _average_precision_at_r(matches, relevant[rows]).sum()
        vote_hits += (_majority_vote(neighbour_classes[:, :k]) == classes[rows]).sum()
    n_queries = len(queries)
    return {
        "precision_at_1": float(nearest_hits / n_queries),
        "map_at_r": float(average_precision / n_queries),
        "knn_accuracy": float(vote_hits / n_queries),
        "k": k,
        "n_queries": n_queries,
        "median_same_class": float(np.median(relevant[queries])),  # R: against k, how far a vote can go
    }


def _nearest_neighbours(embeddings, squared_norms, rows, depth):
    """Indices of the `depth` nearest other images for each query in `rows`, nearest first."""
    squared = squared_distances(embeddings[rows], embeddings, squared_norms)
    squared[np.arange(len(rows)), rows] = np.inf  # a query never retrieves itself
    candidates = np.argpartition(squared, depth - 1, axis=1)[:, :depth]
    order = np.argsort(np.take_along_axis(squared, candidates, axis=1), axis=1)
    return np.take_along_axis(candidates, order, axis=1)


def _average_precision_at_r(matches, relevant):
    """Per query `(1/R) * sum_{i<=R} P(i) * rel(i)` from its ranked neighbour matches."""
    ranks = np.arange(1, matches.shape[1] + 1)
    counted = matches & (ranks <= relevant[:, None])
    precision = np.cumsum(counted, axis=1) / ranks
    return (precision * counted).sum(axis=1) / relevant


def _majority_vote(neighbour_classes):
    """Most frequent class per row of nearest-first classes; ties go to the nearest member's class."""
    votes = (neighbour_classes[:, :, None] == neighbour_classes[:, None, :]).sum(axis=2)
    winner = np.argmax(votes, axis=1)  # first maximum: the nearest neighbour among tied classes
    return neighbour_classes[np.arange(len(neighbour_classes)), winner]

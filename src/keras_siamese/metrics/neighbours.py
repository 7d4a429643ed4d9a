"""Exact nearest neighbours under the model's own Euclidean distance, in bounded memory."""

import numpy as np

from keras_siamese.numeric import EPSILON  # the model's clamp, so host distances equal the model's

QUERY_BLOCK = 256
BASE_BLOCK = 65536  # QUERY_BLOCK x BASE_BLOCK float32 scores: 64 MiB at a time
# Candidates kept beyond k, so that rows whose float32 scores round alike are still ranked by exact distance.
SPARE_CANDIDATES = 8


def euclidean(a, b, epsilon=EPSILON):
    """Distances `sqrt(max(|a - b|^2, epsilon))` along the last axis, as the model computes them."""
    squared = np.sum(np.square(np.asarray(a, np.float64) - np.asarray(b, np.float64)), axis=-1)
    return np.sqrt(np.maximum(squared, epsilon))


def squared_norms(vectors):
    """`|v|^2` of each row, for `exact_search(..., base_norms=)`."""
    vectors = np.asarray(vectors, np.float32)
    return np.einsum("ij,ij->i", vectors, vectors)


def squared_distances(queries, base, base_norms=None):
    """`|q - b|^2` of every query and base row, `(Q, N)`, as `|q|^2 + |b|^2 - 2 q.b` in the inputs' precision.

    For ranking only: rounding can take it slightly below 0, and it is not clamped.
    """
    base_norms = np.einsum("ij,ij->i", base, base) if base_norms is None else base_norms
    return np.einsum("ij,ij->i", queries, queries)[:, None] + base_norms[None, :] - 2.0 * queries @ base.T


def exact_search(base, queries, k, epsilon=EPSILON, base_norms=None):
    """Indices and distances `(Q, min(k, N))` of each query's nearest rows of `base`, nearest first.

    Candidates (k and a few spare) are found with `|q|^2 + |b|^2 - 2 q.b` in
    float32 blocks, then ranked by distances recomputed directly in float64 (see
    `euclidean`), so they equal the model's distances and are never squared.
    """
    base = np.asarray(base, np.float32)
    queries = np.asarray(queries, np.float32)
    k = min(int(k), len(base))
    if k == 0 or len(queries) == 0:
        return np.zeros((len(queries), k), np.int64), np.zeros((len(queries), k))
    norms = squared_norms(base) if base_norms is None else base_norms
    candidates = min(k + SPARE_CANDIDATES, len(base))
    rows, distances = [], []
    for start in range(0, len(queries), QUERY_BLOCK):  # ranked block by block: memory bounded by the block
        block = queries[start:start + QUERY_BLOCK]
        ranked, exact = rank_candidates(base, block, _nearest_block(base, norms, block, candidates), epsilon)
        rows.append(ranked[:, :k])
        distances.append(exact[:, :k])
    return np.concatenate(rows), np.concatenate(distances)


def rank_candidates(base, queries, candidates, epsilon=EPSILON):
    """Candidate rows `(Q, c)` of `base` ordered by their exact distance to each query; returns both."""
    distances = euclidean(base[candidates], queries[:, None, :], epsilon)
    order = np.argsort(distances, axis=1, kind="stable")
    return np.take_along_axis(candidates, order, axis=1), np.take_along_axis(distances, order, axis=1)


def _nearest_block(base, norms, queries, k):
    """Rows `(Q, k)` of the k smallest `|b|^2 - 2 q.b` per query (|q|^2 is constant per query)."""
    queries_t = np.ascontiguousarray(queries.T)
    best = best_scores = None
    for start in range(0, len(base), BASE_BLOCK):
        block = base[start:start + BASE_BLOCK]
        # block @ queries_t keeps BLAS on contiguous rows (one query: a fast matrix-vector product);
        # the copy to (Q, B) makes the partition below run along contiguous memory
        scores = np.ascontiguousarray((norms[start:start + len(block), None] - 2.0 * (block @ queries_t)).T)
        take = min(k, len(block))
        local = np.argpartition(scores, take - 1, axis=1)[:, :take]
        local_scores = np.take_along_axis(scores, local, axis=1)
        if best is None:
            best, best_scores = local + start, local_scores
        else:
            merged, merged_scores = np.hstack([best, local + start]), np.hstack([best_scores, local_scores])
            take = min(k, merged.shape[1])  # while k exceeds the rows seen so far, keep them all
            keep = np.argpartition(merged_scores, take - 1, axis=1)[:, :take]
            best, best_scores = np.take_along_axis(merged, keep, axis=1), np.take_along_axis(merged_scores, keep, 1)
    return best

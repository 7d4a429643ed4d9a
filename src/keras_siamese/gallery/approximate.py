"""The approximate backend: an HNSW graph from usearch that proposes candidates for the exact ranking."""

import importlib.util

import numpy as np

from keras_siamese.errors import SiameseError

# Graph settings measured with benchmarks/search.py (recall@10 and latency at 1M vectors).
CONNECTIVITY = 16
EXPANSION_ADD = 128
EXPANSION_SEARCH = 64


def require_usearch():
    if importlib.util.find_spec("usearch") is None:
        raise SiameseError("approximate search needs usearch, a dependency of keras-siamese: pip install usearch")
    from usearch.index import Index

    return Index


class ApproximateIndex:
    """Row numbers of a gallery's embeddings in an HNSW graph over squared L2 distance.

    `candidates` returns the rows the graph finds nearest; the gallery then
    recomputes their distances exactly, so every reported distance is the
    model's own.
    """

    def __init__(self, dim, connectivity=CONNECTIVITY, expansion_add=EXPANSION_ADD,
                 expansion_search=EXPANSION_SEARCH, index=None):
        self.dim = int(dim)
        self.index = index if index is not None else require_usearch()(
            ndim=self.dim, metric="l2sq", dtype="f32", connectivity=connectivity,
            expansion_add=expansion_add, expansion_search=expansion_search,
        )

    def __len__(self):
        return len(self.index)

    @property
    def expansion_search(self):
        return self.index.expansion_search

    @expansion_search.setter
    def expansion_search(self, value):
        self.index.expansion_search = int(value)

    def add(self, vectors, threads=0):
        """Append `vectors`; their keys continue the row numbers."""
        vectors = np.ascontiguousarray(vectors, np.float32)
        if len(vectors):
            keys = np.arange(len(self.index), len(self.index) + len(vectors), dtype=np.uint64)
            self.index.add(keys, vectors, threads=threads)

    def candidates(self, queries, k, threads=0):
        """Rows `(Q, k)` found nearest to each query, and a mask of the rows the graph filled completely."""
        queries = np.ascontiguousarray(queries, np.float32)
        matches = self.index.search(queries, k, threads=threads)
        counts = getattr(matches, "counts", None)  # one query gives Matches, its keys cut to those found
        found = np.asarray(matches.keys, np.int64).reshape(len(queries), -1)[:, :k]
        keys = np.zeros((len(queries), k), np.int64)  # rows the graph did not fill are searched exactly
        keys[:, :found.shape[1]] = found
        counts = np.full(1, found.shape[1]) if counts is None else np.asarray(counts).reshape(-1)
        complete = counts >= min(k, len(self.index))
        return keys, complete

    def to_bytes(self):
        return np.frombuffer(bytes(self.index.save()), np.uint8)

    @classmethod
    def from_bytes(cls, data, dim):
        try:
            index = require_usearch().restore(bytes(np.asarray(data, np.uint8)))
        except (RuntimeError, ValueError):
            index = None
        if index is None or index.ndim != dim:
            raise SiameseError("the gallery's approximate index is damaged; rebuild it with siamese index")
        return cls(dim, index=index)

"""Retrieval metrics against hand-worked cases and a brute-force reference."""

from collections import Counter

import numpy as np
import pytest

from keras_siamese.errors import SiameseError
from keras_siamese.metrics.retrieval import retrieval_report

# 1-D points: A at 0, 1, 4.5; B at 2.5, 10; a lone C at 100 (never a query).
HAND_POINTS = np.array([[0.0], [1.0], [2.5], [4.5], [10.0], [100.0]])
HAND_LABELS = np.array(["A", "A", "B", "A", "B", "C"])


def brute_force(embeddings, labels, k):
    """The metrics by direct definition: full distance matrix, one query at a time."""
    distances = np.linalg.norm(embeddings[:, None] - embeddings[None], axis=2)
    nearest_hits, average_precisions, vote_hits = [], [], []
    for query, label in enumerate(labels):
        relevant = np.sum(labels == label) - 1
        if relevant == 0:
            continue
        others = np.delete(np.arange(len(labels)), query)
        ranked = labels[others[np.argsort(distances[query, others])]]
        nearest_hits.append(ranked[0] == label)
        precision_sum = sum(np.mean(ranked[:i] == label) for i in range(1, relevant + 1)
                            if ranked[i - 1] == label)
        average_precisions.append(precision_sum / relevant)
        votes = Counter(ranked[:k])
        top = max(votes.values())
        vote_hits.append(next(c for c in ranked[:k] if votes[c] == top) == label)
    return np.mean(nearest_hits), np.mean(average_precisions), np.mean(vote_hits)


def test_hand_case():
    # Neighbours of each query, nearest first (R = other images of its class):
    #   A@0    (R=2): A@1, B@2.5 -> P@1 = 1, AP@R = (1/2) * (1/1)         = 0.5
    #   A@1    (R=2): A@0, B@2.5 -> P@1 = 1, AP@R = (1/2) * (1/1)         = 0.5
    #   B@2.5  (R=1): A@1        -> P@1 = 0, AP@R = 0
    #   A@4.5  (R=2): B@2.5, A@1 -> P@1 = 0, AP@R = (1/2) * (1/2)         = 0.25
    #   B@10   (R=1): A@4.5      -> P@1 = 0, AP@R = 0
    #   C@100 has R = 0 and is skipped.
    # precision_at_1 = 2/5 = 0.4; map_at_r = (0.5 + 0.5 + 0 + 0.25 + 0) / 5 = 0.25
    report = retrieval_report(HAND_POINTS, HAND_LABELS, k=3)
    assert report["precision_at_1"] == pytest.approx(0.4)
    assert report["map_at_r"] == pytest.approx(0.25)
    assert report["n_queries"] == 5 and report["k"] == 3
    assert report["median_same_class"] == 2  # R of the five queries: 2, 2, 1, 2, 1


def test_knn_hand_case_and_tie_breaking():
    # k = 3 votes: A@0 AAB->A hit, A@1 AAB->A hit, B@2.5 AAA->A miss,
    # A@4.5 BAA->A hit, B@10 ABA->A miss: 3/5.
    assert retrieval_report(HAND_POINTS, HAND_LABELS, k=3)["knn_accuracy"] == pytest.approx(0.6)
    # k = 2: A@0 (A, B) and A@1 (A, B) tie, the nearest is A: hits; B@2.5 (A, A) miss;
    # A@4.5 (B, A) ties, the nearest is B: miss; B@10 (A, B) ties to A: miss. 2/5.
    assert retrieval_report(HAND_POINTS, HAND_LABELS, k=2)["knn_accuracy"] == pytest.approx(0.4)


@pytest.mark.parametrize("seed", range(3))
def test_matches_brute_force_on_random_data(seed):
    rng = np.random.default_rng(seed)
    n = 150
    labels = rng.integers(0, 12, n)
    labels[-3:] = [97, 98, 99]  # lone classes: skipped as queries, still retrievable
    embeddings = rng.normal(size=(n, 6)) + labels[:, None] % 4  # some class structure
    for k in (1, 4, 7):
        expected = brute_force(embeddings, labels, k)
        for chunk in (1024, 7):
            report = retrieval_report(embeddings, labels, k=k, chunk=chunk)
            assert (report["precision_at_1"], report["map_at_r"], report["knn_accuracy"]) \
                == pytest.approx(expected)
            assert report["n_queries"] == n - 3


def test_separable_clusters_score_one():
    rng = np.random.default_rng(5)
    labels = np.repeat(np.arange(4), 10)
    embeddings = 100.0 * labels[:, None] + rng.normal(size=(40, 3))
    report = retrieval_report(embeddings, labels)
    assert report["precision_at_1"] == report["map_at_r"] == report["knn_accuracy"] == 1.0
    assert report["k"] == 5


def test_k_is_capped_at_the_other_images():
    report = retrieval_report([[0.0], [1.0], [5.0], [6.0]], [0, 0, 1, 1], k=10)
    assert report["k"] == 3 and report["precision_at_1"] == 1.0


@pytest.mark.parametrize("embeddings, labels, kwargs, message", [
    ([[0.0]], [0], {}, "at least 2 images"),
    ([[0.0], [1.0], [2.0]], [0, 1, 2], {}, "all 3 labels are unique"),
    ([0.0, 1.0], [0, 0], {}, "2-D"),
    ([[0.0], [1.0]], [0, 0, 0], {}, "one label per embedding"),
    ([[0.0], [np.nan]], [0, 0], {}, "row 1"),
    ([[0.0], [1.0]], [0, 0], {"k": 0}, "k must be"),
    ([[0.0], [1.0]], [0, 0], {"chunk": 0}, "chunk must be"),
])
def test_rejects_bad_input(embeddings, labels, kwargs, message):
    with pytest.raises(SiameseError, match=message):
        retrieval_report(embeddings, labels, **kwargs)

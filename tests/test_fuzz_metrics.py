"""The metrics against brute-force reference implementations, on random inputs.

Distances and embeddings are drawn from a small grid of values so that ties,
which the references must handle like the library, are common.
"""

import itertools
import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from keras_siamese.metrics.one_shot import n_way_one_shot_accuracy
from keras_siamese.metrics.retrieval import retrieval_report
from keras_siamese.metrics.verification import (
    decision_metrics,
    equal_error_rate,
    roc_auc,
    tar_at_far,
)


@st.composite
def pair_sets(draw):
    """(distances, same) with both kinds of pair; distances on a coarse grid, so ties happen."""
    n = draw(st.integers(2, 40))
    distances = np.array(draw(st.lists(st.integers(0, 12), min_size=n, max_size=n)), float) / 4
    same = np.array(draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)))
    assume(0 < same.sum() < n)
    return distances, same


def cuts(distances, same):
    """(far, tar) of every cut "accept the pairs at or below the k-th smallest distinct distance", k = 0..m."""
    values = [-math.inf, *sorted(set(distances))]
    positives, negatives = distances[same == 1], distances[same == 0]
    return [((negatives <= v).mean(), (positives <= v).mean()) for v in values]


@given(pair_sets())
def test_roc_auc_is_the_chance_a_same_pair_is_closer(pairs):
    distances, same = pairs
    wins = [1.0 if p < q else 0.5 if p == q else 0.0
            for p in distances[same == 1] for q in distances[same == 0]]
    assert roc_auc(distances, same) == pytest.approx(np.mean(wins), abs=1e-12)


@given(pair_sets(), st.sampled_from([0.0, 0.001, 0.01, 0.1, 0.25, 0.5, 1.0]))
def test_tar_at_far_is_the_best_accept_rate_within_the_false_accept_rate(pairs, far):
    distances, same = pairs
    best = max(tar for f, tar in cuts(distances, same) if f <= far)
    tar, threshold = tar_at_far(distances, same, far)
    assert tar == pytest.approx(best, abs=1e-12)
    at = decision_metrics(distances, same, threshold)  # the threshold delivers it
    assert at["recall"] == pytest.approx(best, abs=1e-12) and at["false_accept_rate"] <= far


@given(pair_sets())
def test_equal_error_rate_is_where_false_accepts_meet_false_rejects(pairs):
    distances, same = pairs
    points = [(far, 1 - tar) for far, tar in cuts(distances, same)]  # (FAR, FRR) from accept-none to all
    for (far0, frr0), (far1, frr1) in itertools.pairwise(points):
        if far0 - frr0 < 0 <= far1 - frr1:  # the segment where the two rates cross
            weight = (frr0 - far0) / ((far1 - far0) - (frr1 - frr0))
            expected = far0 + weight * (far1 - far0)
            break
    eer, _ = equal_error_rate(distances, same)
    assert eer == pytest.approx(expected, abs=1e-12)
    assert min(max(f, r) for f, r in points) >= eer - 1e-12  # never worse than the best single cut


@st.composite
def embedding_sets(draw, max_n=16, distinct=True):
    """(embeddings, labels): 2-D points on an integer grid, 2+ classes, one class with 2+ images; with
    `distinct`, no query has two neighbours at the same distance."""
    n = draw(st.integers(3, max_n))
    grid = st.integers(-100, 100) if distinct else st.integers(-3, 3)  # a coarse grid makes ties
    points = np.array(draw(st.lists(st.tuples(grid, grid), min_size=n, max_size=n)), float)
    labels = np.array(draw(st.lists(st.integers(0, 4), min_size=n, max_size=n)))
    counts = np.bincount(labels)
    assume(len(np.unique(labels)) >= 2 and counts.max() >= 2)
    if distinct:  # retrieval orders ties arbitrarily: keep every query's distances distinct
        d = np.linalg.norm(points[:, None] - points[None], axis=2)
        for i in range(n):
            others = np.delete(d[i], i)
            assume(len(np.unique(others)) == n - 1)
    return points, labels


@given(embedding_sets(), st.integers(1, 7))
def test_retrieval_matches_leave_one_out_by_hand(data, k):
    points, labels = data
    n = len(labels)
    p_at_1, ap, votes = [], [], []
    k_used = min(k, n - 1)
    for i in range(n):
        r = int((labels == labels[i]).sum()) - 1
        if r == 0:
            continue
        order = sorted((j for j in range(n) if j != i), key=lambda j: np.linalg.norm(points[i] - points[j]))
        hits = [labels[j] == labels[i] for j in order]
        p_at_1.append(hits[0])
        ap.append(sum(sum(hits[: m + 1]) / (m + 1) for m in range(r) if hits[m]) / r)
        neighbours = [labels[j] for j in order[:k_used]]
        tally = {c: neighbours.count(c) for c in neighbours}
        top = max(tally.values())
        winner = next(c for c in neighbours if tally[c] == top)  # tie: the class of the nearest
        votes.append(winner == labels[i])
    report = retrieval_report(points, labels, k=k)
    assert report["n_queries"] == len(ap) and report["k"] == k_used
    assert report["precision_at_1"] == pytest.approx(np.mean(p_at_1), abs=1e-12)
    assert report["map_at_r"] == pytest.approx(np.mean(ap), abs=1e-12)
    assert report["knn_accuracy"] == pytest.approx(np.mean(votes), abs=1e-12)


def expected_one_shot(points, labels, n_way):
    """The exact expectation of the one-shot accuracy, by enumerating every episode with its probability."""
    classes = sorted(set(labels.tolist()))
    members = {c: np.flatnonzero(labels == c) for c in classes}
    query_classes = [c for c in classes if len(members[c]) >= 2]
    total = 0.0
    for c in query_classes:
        others = [o for o in classes if o != c]
        subsets = list(itertools.combinations(others, n_way - 1))
        for subset in subsets:
            for q in members[c]:
                for own in (m for m in members[c] if m != q):
                    for supports in itertools.product(*(members[o] for o in subset)):
                        d = [np.linalg.norm(points[q] - points[s]) for s in (own, *supports)]
                        tied = [x == min(d) for x in d]
                        weight = 1 / (len(subsets) * len(members[c]) * (len(members[c]) - 1)
                                      * math.prod(len(members[o]) for o in subset))
                        total += weight * (tied[0] / sum(tied))
    return total / len(query_classes)


@given(embedding_sets(max_n=9, distinct=False), st.integers(2, 4), st.integers(0, 2**32 - 1))
def test_one_shot_accuracy_estimates_the_exact_expectation(data, n_way, seed):
    points, labels = data
    n_way = min(n_way, len(np.unique(labels)))
    episodes = 20_000
    expected = expected_one_shot(points, labels, n_way)
    measured = n_way_one_shot_accuracy(points, labels, n_way, episodes=episodes, seed=seed)
    # each episode scores in [0, 1]: its standard deviation is at most 1/2
    assert abs(measured - expected) <= 6 * 0.5 / math.sqrt(episodes)
    assert n_way_one_shot_accuracy(points, labels, n_way, episodes=episodes, seed=seed) == measured

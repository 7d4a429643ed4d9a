"""N-way one-shot accuracy on embeddings with known answers."""

import numpy as np
import pytest

from keras_siamese.errors import SiameseError
from keras_siamese.metrics.one_shot import n_way_one_shot_accuracy, one_shot_report


def clustered(n_classes, per_class, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(n_classes), per_class)
    return 100.0 * rng.normal(size=(n_classes, 4))[labels] + rng.normal(size=(len(labels), 4)), labels


def test_clustered_embeddings_score_one():
    embeddings, labels = clustered(12, 5)
    assert n_way_one_shot_accuracy(embeddings, labels, 5, episodes=300) == 1.0
    assert n_way_one_shot_accuracy(embeddings, labels, 12, episodes=300) == 1.0


def test_random_embeddings_score_chance():
    # Embeddings independent of labels: the query-class support is nearest with chance 1/5.
    # 4000 episodes give a binomial sd of sqrt(0.2 * 0.8 / 4000) = 0.0063; 0.03 is ~5 sd.
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(5), 200)
    embeddings = rng.normal(size=(1000, 8))
    accuracy = n_way_one_shot_accuracy(embeddings, labels, 5, episodes=4000, seed=3)
    assert abs(accuracy - 0.2) < 0.03


def test_ties_score_their_expected_value():
    # every distance ties, so each episode scores 1/n_way exactly
    labels = np.repeat(np.arange(6), 3)
    accuracy = n_way_one_shot_accuracy(np.zeros((18, 2)), labels, 4, episodes=50)
    assert accuracy == pytest.approx(0.25)


def test_the_query_is_never_its_own_support():
    # Two classes of two images; classmates sit 1000 apart, the other class close by:
    #   query 0:    own support 1000 (d 1000); other 10 (d 10) misses, 1010 (d 1010) hits
    #   query 1000: own support 0 (d 1000); other 10 (d 990) or 1010 (d 10) misses
    # and symmetrically for class 1: expected accuracy (1/2 + 0) / 2 = 1/4, where using
    # the query as its own support would give 1. sd over 2000 episodes: 0.0097.
    embeddings = np.array([[0.0], [1000.0], [10.0], [1010.0]])
    labels = np.array([0, 0, 1, 1])
    accuracy = n_way_one_shot_accuracy(embeddings, labels, 2, episodes=2000, seed=4)
    assert abs(accuracy - 0.25) < 0.05


def test_seeded_runs_repeat():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 8, 200)
    embeddings = rng.normal(size=(200, 5)) + labels[:, None] % 3
    first = n_way_one_shot_accuracy(embeddings, labels, 5, seed=7)
    assert n_way_one_shot_accuracy(embeddings, labels, 5, seed=7) == first
    assert n_way_one_shot_accuracy(embeddings, labels, 5, seed=8) != first


def test_n_way_is_capped_at_the_classes():
    embeddings, labels = clustered(3, 4)
    embeddings += np.random.default_rng(6).normal(scale=150.0, size=embeddings.shape)
    assert n_way_one_shot_accuracy(embeddings, labels, 10, seed=1) \
        == n_way_one_shot_accuracy(embeddings, labels, 3, seed=1)


def test_singleton_classes_serve_only_as_supports():
    # class 0 has two images and is the only possible query class; the lone classes
    # 1..4 are far away, so every 5-way episode still hits
    embeddings = np.array([[0.0], [1.0], [50.0], [60.0], [70.0], [80.0]])
    labels = np.array([0, 0, 1, 2, 3, 4])
    assert n_way_one_shot_accuracy(embeddings, labels, 5, episodes=100) == 1.0


@pytest.mark.parametrize("labels, n_way, message", [
    ([0, 0, 0], 2, "received 1 classes"),
    ([0, 1, 2], 2, "the largest with 1 images"),
    ([0, 0, 1], 1, "at least 2"),
    ([0, 0, 1], 0, "positive integer"),
])
def test_rejects_unusable_input(labels, n_way, message):
    with pytest.raises(SiameseError, match=message):
        n_way_one_shot_accuracy(np.zeros((3, 2)), labels, n_way)


def test_report_keys_name_the_n_used():
    embeddings, labels = clustered(12, 3)
    report = one_shot_report(embeddings, labels, episodes=200)
    assert report == {"5_way": 1.0, "10_way": 1.0, "episodes": 200}
    small = one_shot_report(*clustered(3, 3), ways=(2, 5, 10), episodes=100)
    assert set(small) == {"2_way", "3_way", "episodes"}
    with pytest.raises(SiameseError, match="episodes"):
        one_shot_report(embeddings, labels, episodes=0)

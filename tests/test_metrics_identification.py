"""Open-set identification figures, checked by hand."""

import numpy as np
import pytest

from keras_siamese import SiameseError
from keras_siamese.metrics.identification import identification_report, known_unknown_split, open_set_identification


def test_rates_by_hand():
    # probes: known cat (near, right), known cat (near, wrong label), known dog (too far), unknown (near), unknown (far)
    report = open_set_identification(
        nearest_distances=[0.1, 0.2, 0.9, 0.25, 0.8],
        nearest_labels=["cat", "dog", "dog", "cat", "dog"],
        probe_labels=["cat", "cat", "dog", "fox", "owl"],
        probe_known=[True, True, True, False, False],
        threshold=0.3,
    )
    assert report["identification_rate"] == pytest.approx(1 / 3)  # only the first is accepted and right
    assert report["unknown_rejection_rate"] == pytest.approx(1 / 2)  # the owl is rejected, the fox accepted
    assert report["rank1_accuracy"] == pytest.approx(2 / 3)  # first and third have the right nearest label
    assert (report["known_probes"], report["unknown_probes"]) == (3, 2)


def test_no_unknown_probes_gives_nan_not_a_number_made_up():
    report = open_set_identification([0.1], ["a"], ["a"], [True], 0.5)
    assert report["identification_rate"] == 1.0 and np.isnan(report["unknown_rejection_rate"])
    with pytest.raises(SiameseError, match="one nearest distance"):
        open_set_identification([0.1, 0.2], ["a"], ["a"], [True], 0.5)


def test_known_unknown_split_partitions_classes_and_images():
    labels = np.repeat([0, 1, 2, 3, 4], [4, 3, 2, 1, 5])
    gallery, probes, known = known_unknown_split(labels, seed=3)
    assert sorted(np.concatenate([gallery, probes]).tolist()) == list(range(len(labels)))
    known_classes = set(labels[gallery].tolist())
    assert len(known_classes) == 3  # half of 5 classes, rounded up
    assert known.tolist() == [label in known_classes for label in labels[probes]]
    for label in known_classes:  # half of each known class's images (rounded up) are enrolled
        assert (labels[gallery] == label).sum() == (np.sum(labels == label) + 1) // 2
    again = known_unknown_split(labels, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(again, (gallery, probes, known)))
    with pytest.raises(SiameseError, match="at least 2 classes"):
        known_unknown_split([1, 1, 1])


def test_report_on_separable_embeddings():
    labels = np.repeat(np.arange(6), 4)
    embeddings = np.eye(6)[labels] * 10 + np.random.default_rng(0).normal(0, 0.01, (24, 6))
    report = identification_report(embeddings, labels, threshold=1.0, seed=0)
    assert report["identification_rate"] == 1.0 and report["unknown_rejection_rate"] == 1.0
    assert report["known_probes"] == 3 * 2 and report["unknown_probes"] == 3 * 4
    assert identification_report(embeddings, labels, threshold=None) is None

"""Pair verification metrics against sklearn, brute force and hand-worked cases."""

import json
import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score, roc_curve

from keras_siamese.errors import SiameseError
from keras_siamese.metrics.verification import (
    best_accuracy,
    calibrate_threshold,
    check_pairs,
    decision_metrics,
    equal_error_rate,
    parse_rule,
    roc,
    roc_auc,
    tar_at_far,
    verification_report,
)


def tied_pairs(seed, n=400):
    """Random pairs whose distances, rounded to 0.05, are heavily tied."""
    rng = np.random.default_rng(seed)
    same = rng.integers(0, 2, n)
    same[:2] = [0, 1]
    distances = np.round(rng.random(n) * (1.2 - 0.5 * same) / 0.05) * 0.05
    return distances, same


def every_cut(distances):
    """One threshold per achievable accept set under `distance < threshold`."""
    return np.append(np.unique(distances), distances.max() + 1.0)


def rates(distances, same, threshold):
    accepted = distances < threshold
    return accepted[same == 0].mean(), accepted[same == 1].mean()


@pytest.mark.parametrize("distances, same, message", [
    ([[0.1, 0.2]], [[0, 1]], "1-D"),
    ([0.1, 0.2, 0.3], [0, 1], "differ in length"),
    ([0.1, np.nan], [0, 1], "finite"),
    ([0.1, np.inf], [0, 1], "finite"),
    (["a", "b"], [0, 1], "numbers"),
    ([0.1, 0.2], [0, 2], "only 0 and 1"),
    ([0.1, 0.2], [1, 1], "received only same-class pairs"),
    ([0.1, 0.2], [0, 0], "received only different-class pairs"),
    ([], [], "received no pairs"),
])
def test_check_pairs_rejects_bad_input(distances, same, message):
    with pytest.raises(SiameseError, match=message):
        check_pairs(distances, same)


def test_check_pairs_accepts_booleans():
    distances, same = check_pairs([1, 2], [True, False])
    assert distances.dtype == np.float64 and same.tolist() == [1, 0]


@pytest.mark.parametrize("seed", range(3))
def test_roc_auc_matches_sklearn_and_pair_counting(seed):
    distances, same = tied_pairs(seed)
    near, far = distances[same == 1], distances[same == 0]
    # Mann-Whitney: the chance a same pair is closer than a different one, ties half
    counted = (near[:, None] < far[None, :]).mean() + 0.5 * (near[:, None] == far[None, :]).mean()
    assert roc_auc(distances, same) == pytest.approx(counted)
    assert roc_auc(distances, same) == pytest.approx(roc_auc_score(same, -distances))


def test_roc_auc_adversarial_cases():
    same = np.array([1, 1, 0, 0, 1, 0])
    assert roc_auc(np.full(6, 0.7), same) == 0.5
    assert roc_auc(1.0 - same, same) == 1.0
    assert roc_auc(same.astype(float), same) == 0.0
    with pytest.raises(SiameseError):
        roc_auc([0.1, 0.2], [1, 1])
    with pytest.raises(SiameseError):
        roc_auc([0.1, np.nan], [1, 0])


@pytest.mark.parametrize("seed", range(3))
def test_roc_points_match_sklearn_and_their_thresholds(seed):
    distances, same = tied_pairs(seed)
    far, tar, thresholds = roc(distances, same)
    expected_far, expected_tar, _ = roc_curve(same, -distances, drop_intermediate=False)
    np.testing.assert_allclose(far, expected_far)
    np.testing.assert_allclose(tar, expected_tar)
    assert np.all(np.diff(thresholds) > 0)
    for point, threshold in enumerate(thresholds):
        assert rates(distances, same, threshold) == pytest.approx((far[point], tar[point]))


def test_equal_error_rate_hand_cases():
    # same at 0.1, 0.3; different at 0.2, 0.4. Accepting {0.1, 0.2} (threshold 0.25,
    # midway to 0.3) gives FAR = 1/2 and FRR = 1/2 exactly, no interpolation needed.
    assert equal_error_rate([0.1, 0.2, 0.3, 0.4], [1, 0, 1, 0]) == pytest.approx((0.5, 0.25))
    # same at 0.1, 0.2, 0.5; different at 0.3, 0.4. FAR - FRR per cut:
    #   accept <= 0.2 (threshold 0.25): FAR 0,   FRR 1/3 -> gap -1/3
    #   accept <= 0.3 (threshold 0.35): FAR 1/2, FRR 1/3 -> gap +1/6
    # gap is 0 at weight (1/3) / (1/3 + 1/6) = 2/3 of the way:
    #   EER = 0 + 2/3 * 1/2 = 1/3, threshold = 0.25 + 2/3 * 0.1 = 0.31666...
    eer, threshold = equal_error_rate([0.1, 0.2, 0.5, 0.3, 0.4], [1, 1, 1, 0, 0])
    assert eer == pytest.approx(1 / 3)
    assert threshold == pytest.approx(0.25 + 0.2 / 3)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("target", [0.0, 0.01, 0.1, 0.37, 1.0])
def test_tar_at_far_matches_brute_force(seed, target):
    distances, same = tied_pairs(seed)
    best_tar = max(tar for far, tar in (rates(distances, same, t) for t in every_cut(distances))
                   if far <= target)
    tar, threshold = tar_at_far(distances, same, target)
    assert tar == pytest.approx(best_tar)
    far_at, tar_at = rates(distances, same, threshold)
    assert far_at <= target and tar_at == pytest.approx(tar)


@pytest.mark.parametrize("far", [-0.1, 1.5, "x", None, np.nan])
def test_tar_at_far_rejects_bad_rate(far):
    with pytest.raises(SiameseError, match="far"):
        tar_at_far([0.1, 0.2], [1, 0], far)


def test_decision_metrics_hand_case():
    distances, same = [0.1, 0.2, 0.3, 0.4], [1, 0, 1, 0]
    # threshold 0.25 accepts 0.1 (same) and 0.2 (different): one of each count
    figures = decision_metrics(distances, same, 0.25)
    assert (figures["tp"], figures["fp"], figures["tn"], figures["fn"]) == (1, 1, 1, 1)
    for key in ("accuracy", "precision", "recall", "f1", "false_accept_rate", "false_reject_rate"):
        assert figures[key] == 0.5
    # strict rule: a pair at exactly the threshold is rejected
    assert decision_metrics(distances, same, 0.2)["fp"] == 0
    nothing = decision_metrics(distances, same, 0.1)
    assert nothing["precision"] == 0.0 and nothing["recall"] == 0.0 and nothing["f1"] == 0.0
    with pytest.raises(SiameseError, match="threshold"):
        decision_metrics(distances, same, "high")


@pytest.mark.parametrize("seed", range(5))
def test_best_accuracy_matches_brute_force_with_ties(seed):
    distances, same = tied_pairs(seed)
    brute = max(np.mean((distances < t) == (same == 1)) for t in every_cut(distances))
    accuracy, threshold = best_accuracy(distances, same)
    assert accuracy == pytest.approx(brute)
    assert np.mean((distances < threshold) == (same == 1)) == pytest.approx(accuracy)


def test_best_accuracy_at_the_ends():
    # reversed labels: accepting nothing is best, at the smallest distance
    assert best_accuracy([0.1, 0.2, 0.3], [0, 0, 1]) == pytest.approx((2 / 3, 0.1))
    # accepting everything is best: the threshold lies just above the largest distance
    accuracy, threshold = best_accuracy([0.1, 0.2, 0.3, 0.4], [1, 0, 1, 1])
    assert accuracy == 0.75 and 0.4 < threshold < 0.4 + 1e-12
    # accepting {0.1} or everything both score 2/3: the smaller threshold wins
    assert best_accuracy([0.1, 0.2, 0.3], [1, 0, 1]) == pytest.approx((2 / 3, 0.15))


def test_calibrate_recovers_a_separating_threshold():
    rng = np.random.default_rng(1)
    distances = np.concatenate([rng.uniform(0, 0.4, 1000), rng.uniform(0.6, 1.0, 1000)])
    same = np.repeat([1, 0], 1000)
    for rule in ("accuracy", "f1"):
        threshold, figures = calibrate_threshold(distances, same, rule)
        assert 0.4 < threshold < 0.6
        assert figures["accuracy"] == 1.0 and figures["f1"] == 1.0
        assert figures["rule"] == rule and figures["threshold"] == threshold
        assert figures["n_pairs"] == 2000


def test_calibrate_accuracy_lands_near_the_gaussian_optimum():
    # same ~ N(2, 0.5), different ~ N(3, 0.5), equal priors: the best threshold is 2.5,
    # with accuracy Phi(1) = 0.841. Near it accuracy falls as 0.5 * phi(1) / 0.25 * d^2,
    # a loss of 0.0048 at d = 0.1, while with 40,000 pairs the noise between two cuts
    # 0.1 apart is about sqrt(0.048 / 40000) = 0.0011: a 4-sigma margin for |d| < 0.1.
    rng = np.random.default_rng(2)
    n = 20_000
    distances = np.concatenate([rng.normal(2.0, 0.5, n), rng.normal(3.0, 0.5, n)])
    same = np.repeat([1, 0], n)
    threshold, figures = calibrate_threshold(distances, same, "accuracy")
    assert abs(threshold - 2.5) < 0.1
    # binomial sd of the accuracy is 0.0018; 0.01 also covers the small optimism of tuning
    assert abs(figures["accuracy"] - 0.5 * (1 + math.erf(1 / math.sqrt(2)))) < 0.01


def test_calibrate_far_rule_keeps_false_accepts_under_target():
    distances, same = tied_pairs(3, n=2000)
    for rule in ("far=0.1", ("far", 0.1)):
        threshold, figures = calibrate_threshold(distances, same, rule)
        assert 0 < figures["false_accept_rate"] <= 0.1
        assert figures["recall"] > 0.1  # a cut that accepts pairs, not the trivial one
        assert figures["rule"] == "far=0.1"
        assert (figures["recall"], threshold) == pytest.approx(tar_at_far(distances, same, 0.1))
    # accepting the next tied group of distances as well would break the target
    next_group = distances[distances >= threshold].min()
    later = every_cut(distances)[every_cut(distances) > next_group][0]
    assert rates(distances, same, later)[0] > 0.1


@pytest.mark.parametrize("rule, expected", [
    ("accuracy", ("accuracy", None)),
    (" F1 ", ("f1", None)),
    ("far=0.01", ("far", 0.01)),
    ("far = 1e-3", ("far", 0.001)),
    ("far=0", ("far", 0.0)),
    (("far", 0.5), ("far", 0.5)),
])
def test_parse_rule_normalises(rule, expected):
    assert parse_rule(rule) == expected


@pytest.mark.parametrize("rule", ["far=2", "far=x", "far=", "far=nan", "far=-0.1", "recall",
                                  "", "accuracy=1", ("far", 2), ("f1", 0.1), 5, None])
def test_parse_rule_rejects_unknown_rules(rule):
    with pytest.raises(SiameseError, match="unknown threshold rule"):
        parse_rule(rule)


def test_calibrate_rejects_a_bad_rule_by_name():
    with pytest.raises(SiameseError, match="'recall'"):
        calibrate_threshold([0.1, 0.2], [1, 0], "recall")


def test_verification_report_is_plain_and_consistent():
    distances, same = tied_pairs(4)
    report = verification_report(distances, same, threshold=0.4)
    json.dumps(report)
    assert all(type(value) in (int, float) for key, value in report.items() if key != "at_threshold")
    assert report["roc_auc"] == pytest.approx(roc_auc(distances, same))
    assert (report["eer"], report["eer_threshold"]) == equal_error_rate(distances, same)
    assert (report["best_accuracy_optimistic"], report["best_accuracy_threshold"]) \
        == best_accuracy(distances, same)
    assert (report["tar_at_far_1e-2"], report["tar_at_far_1e-2_threshold"]) \
        == tar_at_far(distances, same, 1e-2)
    assert (report["tar_at_far_1e-3"], report["tar_at_far_1e-3_threshold"]) \
        == tar_at_far(distances, same, 1e-3)
    assert report["at_threshold"] == decision_metrics(distances, same, 0.4)
    assert report["n_same"] + report["n_different"] == report["n_pairs"] == len(same)
    assert "at_threshold" not in verification_report(distances, same)

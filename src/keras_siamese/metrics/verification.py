"""Pair verification metrics: distances of image pairs scored against same/different labels.

Conventions: label 1 means a same-class pair, 0 a different-class pair; a smaller
distance means more similar; a pair is accepted as "same" when
`distance < threshold`. Every threshold returned here reproduces its figures
under that strict rule, so it never splits pairs of equal distance, except the
equal error rate's: the rate where false accepts and false rejects cross, and
its distance, are interpolated between the two cuts either side of the
crossing, as the EER is defined; no single cut need reach it.
"""

import numpy as np

from keras_siamese.errors import SiameseError

# Target false-accept rates in `verification_report`, by the name used in its keys.
REPORT_FARS = {"1e-2": 1e-2, "1e-3": 1e-3}

_OPTIMISED_RULES = ("accuracy", "f1")


def check_pairs(distances, same):
    """Validated `(distances, same)`: a float64 array and an int64 array of 0/1, both 1-D.

    Raises SiameseError unless both are 1-D of equal length, every distance is
    finite, every label is 0 or 1, and both same- and different-class pairs occur.
    """
    try:
        distances = np.asarray(distances, dtype=np.float64)
    except (TypeError, ValueError):
        raise SiameseError(f"distances must be numbers; received {distances!r:.80}") from None
    same = np.asarray(same)
    if distances.ndim != 1 or same.ndim != 1:
        raise SiameseError(
            f"distances and same must be 1-D; received shapes {distances.shape} and {same.shape}"
        )
    if len(distances) != len(same):
        raise SiameseError(
            f"distances and same differ in length: {len(distances)} and {len(same)}"
        )
    bad = np.flatnonzero(~np.isfinite(distances))
    if len(bad):
        raise SiameseError(
            f"distances must be finite; received {distances[bad[0]]} at index {bad[0]}"
        )
    bad = np.flatnonzero(~np.isin(same, (0, 1)))
    if len(bad):
        raise SiameseError(f"same must hold only 0 and 1; received {same[bad[0]]!r} at index {bad[0]}")
    same = same.astype(np.int64)
    n_same = int(same.sum())
    if n_same == 0 or n_same == len(same):
        kind = "no" if len(same) == 0 else "only same-class" if n_same else "only different-class"
        raise SiameseError(
            f"need both same-class and different-class pairs; received {kind} pairs"
        )
    return distances, same


def roc_auc(distances, same):
    """Area under the ROC curve: the chance a same pair is closer than a different pair (ties count half)."""
    return _area(*_roc(*check_pairs(distances, same)))


def roc(distances, same):
    """ROC curve as `(false_accept_rate, true_accept_rate, thresholds)`, one point per distinct cut.

    Point 0 accepts nothing; point k accepts the k smallest distinct distances.
    `thresholds[k]` is a distance for which `distance < threshold` gives point k.
    """
    return _roc(*check_pairs(distances, same))


def equal_error_rate(distances, same):
    """`(eer, threshold)` where the false-accept rate equals the false-reject rate (1 - TAR).

    Both are interpolated linearly between the two ROC points around the crossing.
    """
    return _equal_error_rate(*_roc(*check_pairs(distances, same)))


def tar_at_far(distances, same, far):
    """`(tar, threshold)`: the largest true-accept rate whose false-accept rate is at most `far`.

    No interpolation: the threshold is the largest cut achieving it, so its
    empirical false-accept rate is `<= far` on these pairs.
    """
    rate = _as_rate(far)
    if rate is None:
        raise SiameseError(f"far must be a false-accept rate in [0, 1]; received {far!r}")
    return _tar_at_far(*_roc(*check_pairs(distances, same)), rate)


def decision_metrics(distances, same, threshold):
    """Figures for the rule `same if distance < threshold`, as a dict of plain numbers.

    Keys: accuracy, precision, recall (the true-accept rate), f1,
    false_accept_rate, false_reject_rate, and the counts tp, fp, tn, fn.
    Precision is 0.0 when no pair is accepted.
    """
    distances, same = check_pairs(distances, same)
    try:
        threshold = float(threshold)
    except (TypeError, ValueError):
        raise SiameseError(f"threshold must be a number; received {threshold!r}") from None
    if np.isnan(threshold):
        raise SiameseError("threshold must be a number; received nan")
    accepted = distances < threshold
    positive = same == 1
    tp = int(np.sum(accepted & positive))
    fp = int(np.sum(accepted & ~positive))
    fn = int(positive.sum()) - tp
    tn = int((~positive).sum()) - fp
    return {
        "accuracy": (tp + tn) / len(same),
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn),
        "f1": 2 * tp / (2 * tp + fp + fn),
        "false_accept_rate": fp / (fp + tn),
        "false_reject_rate": fn / (tp + fn),
        "tp": tp, "fp": fp, "tn": tn, "fn": fn,
    }


def best_accuracy(distances, same):
    """`(accuracy, threshold)` maximising accuracy over every cut; optimistic on the data it is tuned on.

    The threshold is the midpoint between consecutive distinct distances, the
    smallest distance when accepting nothing wins, or just above the largest
    when accepting everything wins. Among equally accurate cuts the smallest
    threshold is returned.
    """
    distances, same = check_pairs(distances, same)
    thresholds, tp, fp = _sweep(distances, same)
    correct = tp + (fp[-1] - fp)  # accepted same pairs + rejected different pairs
    best = int(np.argmax(correct))
    return float(correct[best] / len(same)), float(thresholds[best])


def parse_rule(rule):
    """Normalise a threshold rule to `("accuracy", None)`, `("f1", None)` or `("far", rate)`.

    Accepts "accuracy", "f1", "far=X" or the pair ("far", X), X a false-accept
    rate in [0, 1]; anything else raises SiameseError naming the rule.
    """
    name = value = None
    if isinstance(rule, str):
        name, has_value, value = rule.strip().lower().partition("=")
        name = name.strip()
        if name in _OPTIMISED_RULES and not has_value:
            return name, None
    elif isinstance(rule, (tuple, list)) and len(rule) == 2:
        name, value = rule
    if name == "far":
        rate = _as_rate(value)
        if rate is not None:
            return "far", rate
    raise SiameseError(
        f"unknown threshold rule {rule!r}; expected 'accuracy', 'f1' or 'far=X' with X in [0, 1]"
    )


def calibrate_threshold(distances, same, rule="accuracy"):
    """`(threshold, figures)` chosen on these pairs by `rule` (see `parse_rule`).

    "accuracy" and "f1" maximise that figure (smallest threshold on ties);
    "far=X" takes the largest threshold whose false-accept rate is at most X.
    `figures` holds the rule, the threshold, n_pairs and `decision_metrics` at it.
    """
    name, rate = parse_rule(rule)
    distances, same = check_pairs(distances, same)
    if name == "accuracy":
        _, threshold = best_accuracy(distances, same)
    elif name == "f1":
        thresholds, tp, fp = _sweep(distances, same)
        f1 = 2 * tp / (tp + fp + tp[-1])  # 2tp / (2tp + fp + fn), fn = n_same - tp
        threshold = float(thresholds[int(np.argmax(f1))])
    else:
        _, threshold = _tar_at_far(*_roc(distances, same), rate)
    figures = {
        "rule": name if rate is None else f"far={rate!r}",
        "threshold": threshold,
        "n_pairs": len(same),
        **decision_metrics(distances, same, threshold),
    }
    return threshold, figures


def verification_report(distances, same, threshold=None):
    """The headline verification figures as a JSON-serialisable dict of plain numbers.

    Keys: n_pairs, n_same, n_different, roc_auc, eer, eer_threshold,
    best_accuracy_optimistic (tuned on these pairs), best_accuracy_threshold,
    and tar_at_far_1e-2 / tar_at_far_1e-3 with their `_threshold`s; with a
    `threshold`, also `at_threshold`: its `decision_metrics`.
    """
    distances, same = check_pairs(distances, same)
    curve = _roc(distances, same)
    eer, eer_threshold = _equal_error_rate(*curve)
    accuracy, accuracy_threshold = best_accuracy(distances, same)
    n_same = int(same.sum())
    report = {
        "n_pairs": len(same),
        "n_same": n_same,
        "n_different": len(same) - n_same,
        "roc_auc": _area(*curve),
        "eer": eer,
        "eer_threshold": eer_threshold,
        "best_accuracy_optimistic": accuracy,
        "best_accuracy_threshold": accuracy_threshold,
    }
    for name, rate in REPORT_FARS.items():
        tar, tar_threshold = _tar_at_far(*curve, rate)
        report[f"tar_at_far_{name}"] = tar
        report[f"tar_at_far_{name}_threshold"] = tar_threshold
    if threshold is not None:
        report["at_threshold"] = decision_metrics(distances, same, threshold)
    return report


def _as_rate(value):
    """`value` as a float in [0, 1], or None when it is not one."""
    try:
        rate = float(value)
    except (TypeError, ValueError):
        return None
    return rate if 0.0 <= rate <= 1.0 else None


def _cut_thresholds(values):
    """Thresholds accepting none, then the k smallest of the sorted distinct `values`, k = 1..m."""
    low, high = values[:-1], values[1:]
    middle = low / 2 + high / 2
    middle = np.where(middle > low, middle, high)  # adjacent floats: the next value itself
    return np.concatenate([values[:1], middle, [np.nextafter(values[-1], np.inf)]])


def _sweep(distances, same):
    """`(thresholds, tp, fp)` for every cut: accepted same and different pairs, cut 0 accepting none."""
    values, group = np.unique(distances, return_inverse=True)
    same_per_value = np.bincount(group[same == 1], minlength=len(values))
    different_per_value = np.bincount(group[same == 0], minlength=len(values))
    tp = np.concatenate([[0], np.cumsum(same_per_value)])
    fp = np.concatenate([[0], np.cumsum(different_per_value)])
    return _cut_thresholds(values), tp, fp


def _roc(distances, same):
    """`roc` on validated arrays. (In numpy: scikit-learn's `roc_curve` gives the same points, and importing
    it costs every command 0.9 s of start-up.)"""
    order = np.argsort(distances, kind="stable")
    distances, same = distances[order], same[order]
    last = np.r_[np.flatnonzero(np.diff(distances)), len(distances) - 1]  # the last pair of each distinct distance
    accepted = np.r_[0, last + 1]
    accepted_same = np.r_[0, np.cumsum(same)[last]]
    n_same = accepted_same[-1]
    return (accepted - accepted_same) / (len(same) - n_same), accepted_same / n_same, _cut_thresholds(distances[last])


def _area(far, tar, thresholds):
    """The area under a ROC curve, by trapezoids: a step over tied distances counts half."""
    return float(np.sum(np.diff(far) * (tar[1:] + tar[:-1])) / 2)


def _equal_error_rate(far, tar, thresholds):
    """`equal_error_rate` from a ROC curve."""
    gap = far - (1.0 - tar)  # rises from -1 (accept nothing) to +1 (accept all)
    after = int(np.argmax(gap >= 0))
    before = after - 1
    weight = -gap[before] / (gap[after] - gap[before])
    eer = far[before] + weight * (far[after] - far[before])
    threshold = thresholds[before] + weight * (thresholds[after] - thresholds[before])
    return float(eer), float(threshold)


def _tar_at_far(far, tar, thresholds, rate):
    """`tar_at_far` from a ROC curve; false-accept rates never decrease along it."""
    last = int(np.flatnonzero(far <= rate)[-1])
    return float(tar[last]), float(thresholds[last])

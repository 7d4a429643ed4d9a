"""Evaluation metrics in numpy and scikit-learn: pair verification, retrieval, one-shot."""

from keras_siamese.metrics.one_shot import n_way_one_shot_accuracy, one_shot_report
from keras_siamese.metrics.retrieval import retrieval_report
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

__all__ = [
    "check_pairs", "roc_auc", "roc", "equal_error_rate", "tar_at_far", "decision_metrics",
    "best_accuracy", "parse_rule", "calibrate_threshold", "verification_report",
    "retrieval_report", "n_way_one_shot_accuracy", "one_shot_report",
]

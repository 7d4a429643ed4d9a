"""Verification plots: ROC curves and distance histograms."""

import math

import numpy as np

from keras_siamese.errors import SiameseError
from keras_siamese.plotting._figure import DIFFERENT_COLOUR, SAME_COLOUR, new_figure, save_figure


def plot_roc(false_accept_rate, true_accept_rate, path, auc=None, operating_point=None, eer=None):
    """Plot the ROC curve on a linear (left) and a log false-accept axis (right) to `path`.

    `operating_point` is an optional dict `{"far", "tar", "label"}` marked on the
    curve; `eer` (equal error rate) is marked where FAR = 1 - TAR = eer.
    """
    far = np.asarray(false_accept_rate, dtype=float).reshape(-1)
    tar = np.asarray(true_accept_rate, dtype=float).reshape(-1)
    if far.shape != tar.shape or not far.size:
        raise SiameseError(f"ROC rates differ in length or are empty: {far.size} FAR, {tar.size} TAR")
    positive = far[far > 0]
    low = min(1e-3, 10 ** math.floor(math.log10(max(positive.min(), 1e-6)))) if positive.size else 1e-3

    fig = new_figure(11, 4.6)
    linear, log = fig.subplots(1, 2)
    chance = np.logspace(math.log10(low), 0, 100)
    for ax in (linear, log):
        ax.plot(far, tar, color="tab:blue", linewidth=2,
                label="ROC" if auc is None else f"ROC (AUC {auc:.4f})")
        ax.plot(chance, chance, color="0.5", linestyle="--", linewidth=1, label="Chance")
        if eer is not None:
            ax.plot(eer, 1 - eer, "s", color="tab:orange", markersize=7, label=f"EER {eer:.3g}")
        if operating_point is not None:
            op_far, op_tar = operating_point["far"], operating_point["tar"]
            ax.plot(op_far, op_tar, "o", color="tab:red", markersize=8,
                    label=f"{operating_point.get('label', 'Operating point')}: "
                          f"FAR {op_far:.3g}, TAR {op_tar:.3g}")
        ax.set(xlabel="False accept rate", ylabel="True accept rate", ylim=(0, 1.02))
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=9)
    linear.set(xlim=(0, 1), title="ROC")
    linear.set_aspect("equal")
    log.set_xscale("log")
    log.set(xlim=(low, 1), title="ROC, low false accept rates")
    save_figure(fig, path)


def plot_distance_histograms(distances, same, path, threshold=None):
    """Plot overlaid density histograms of same- and different-class pair distances to `path`.

    Both share one set of bins; `threshold` (decision: same if distance < threshold)
    is drawn as a vertical line labelled with its value.
    """
    distances = np.asarray(distances, dtype=float).reshape(-1)
    same = np.asarray(same, dtype=bool).reshape(-1)
    if distances.shape != same.shape or not distances.size:
        raise SiameseError(f"distances and same-labels differ in length or are empty: "
                           f"{distances.size} and {same.size}")
    bins = np.histogram_bin_edges(distances, bins=int(np.clip(np.sqrt(distances.size), 10, 60)))

    fig = new_figure(7.5, 4.5)
    ax = fig.subplots()
    for mask, name, colour in ((same, "Same class", SAME_COLOUR),
                               (~same, "Different class", DIFFERENT_COLOUR)):
        if mask.any():
            ax.hist(distances[mask], bins=bins, density=True, histtype="stepfilled", alpha=0.35,
                    color=colour, edgecolor=colour, linewidth=1.5, label=f"{name} (n={mask.sum():,})")
    if threshold is not None:
        ax.axvline(threshold, color="black", linestyle="--", linewidth=1.5,
                   label=f"Threshold {threshold:.3f} (same if below)")
    ax.set(xlabel="Distance", ylabel="Density", title="Pair distances by class relation")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9)
    save_figure(fig, path)

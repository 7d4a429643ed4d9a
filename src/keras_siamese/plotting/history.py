"""Training curves from a Keras `History.history` dict."""

import math

import numpy as np
from matplotlib.ticker import MaxNLocator

from keras_siamese.errors import SiameseError
from keras_siamese.plotting._figure import new_figure, save_figure

_LOSSES = (("loss", "Training loss"), ("val_loss", "Validation loss"))
_METRICS = (("val_auc", "Validation AUC"), ("val_accuracy", "Validation accuracy"))
# Above this many epochs the curves are drawn without markers.
_MARKER_EPOCHS = 40


def _plot_series(ax, values, label):
    """Plot per-epoch `values` against 1-based epochs."""
    marker = "o" if len(values) <= _MARKER_EPOCHS else None
    ax.plot(np.arange(1, len(values) + 1), values, marker=marker, markersize=4, label=label)


def plot_history(history, path, title=None):
    """Plot loss per epoch (left) and validation AUC/accuracy (right, when recorded) to `path`.

    `history` maps names to per-epoch lists as Keras records them (`loss`,
    `val_loss`, optionally `val_auc`, `val_accuracy`). The epoch with the lowest
    `val_loss` is marked on every panel.
    """
    losses = [(key, label) for key, label in _LOSSES if len(history.get(key, ()))]
    if not losses:
        raise SiameseError(f"history has neither 'loss' nor 'val_loss'; keys: {sorted(history)}")
    metrics = [(key, label) for key, label in _METRICS if len(history.get(key, ()))]

    fig = new_figure(11 if metrics else 6.5, 4.2)
    axes = fig.subplots(1, 2 if metrics else 1, squeeze=False)[0]
    for key, label in losses:
        _plot_series(axes[0], history[key], label)
    axes[0].set(xlabel="Epoch", ylabel="Loss", title="Loss")

    if metrics:
        for key, label in metrics:
            _plot_series(axes[1], history[key], label)
        values = np.concatenate([np.asarray(history[key], float) for key, _ in metrics])
        values = values[np.isfinite(values)]
        if values.size:  # all-NaN metrics (a diverged run) keep matplotlib's limits
            axes[1].set_ylim(max(0.0, min(0.9, math.floor(values.min() * 10) / 10) - 0.05), 1.01)
        axes[1].set(xlabel="Epoch", ylabel="Validation metric", title="Validation metrics")

    if "val_loss" in dict(losses) and np.isfinite(np.asarray(history["val_loss"], float)).any():
        best = int(np.nanargmin(np.asarray(history["val_loss"], float)))
        label = f"Best epoch {best + 1} (val loss {history['val_loss'][best]:.4g})"
        for ax in axes:
            ax.axvline(best + 1, color="0.4", linestyle=":", linewidth=1.2, label=label)

    epochs = max(len(history[key]) for key, _ in losses + metrics)
    for ax in axes:
        ax.set_xlim(0.5, epochs + 0.5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=9)
    if title:
        fig.suptitle(title)
    save_figure(fig, path)

"""Image pairs side by side with their distances and decisions."""

import os
import sys

import numpy as np

from keras_siamese.errors import SiameseError
from keras_siamese.plotting._figure import DIFFERENT_COLOUR, SAME_COLOUR, literal, new_figure, save_figure

# Backends that cannot open a window (pyplot falls back to "agg" without a display).
_NON_INTERACTIVE = {"agg", "cairo", "pdf", "pgf", "ps", "svg", "template"}


def _show_image(ax, image, name):
    """Draw one uint8 image (H, W), (H, W, 1) or (H, W, 3), with an optional file name below."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        ax.imshow(image, cmap="gray", vmin=0, vmax=255)
    else:
        ax.imshow(image)
    ax.set_xticks([])
    ax.set_yticks([])
    if name:
        ax.set_xlabel(literal(name), fontsize=8)


HEADING_INCHES, ROW_INCHES = 0.6, 2.4


def _draw_pairs(fig, images_a, images_b, distances, names, decisions, threshold):
    """Draw one row per pair into `fig`, a fixed grid: constrained layout grows much faster than the rows
    (100 pairs took minutes)."""
    height = fig.get_figheight()
    fig.subplots_adjust(left=0.04, right=0.96, top=1 - HEADING_INCHES / height, bottom=0.15 / height,
                        wspace=0.08, hspace=0.55)
    axes = fig.subplots(len(distances), 2, squeeze=False)
    for i, row in enumerate(axes):
        title, colour = f"distance {distances[i]:.3f}", "black"
        if decisions is not None:
            title += " — same" if decisions[i] else " — different"
            colour = SAME_COLOUR if decisions[i] else DIFFERENT_COLOUR
        top = row[0].get_position().y1
        fig.text(0.5, top + 0.08 / height, title, color=colour, fontsize=11, ha="center", va="bottom")
        pair_names = names[i] if names is not None else (None, None)
        for ax, image, name in zip(row, (images_a[i], images_b[i]), pair_names):
            _show_image(ax, image, name)
    heading = f"{len(distances)} pair{'s' if len(distances) != 1 else ''}"
    if threshold is not None:
        heading += f" — same if distance < {threshold:.3f}"
    fig.suptitle(heading, fontsize=12, fontweight="bold", y=1 - 0.15 / height, va="top")


def _display_available():
    """Whether a window could open: a display on X11/Wayland, or macOS/Windows."""
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
                or sys.platform in ("darwin", "win32"))


def plot_pairs(images_a, images_b, distances, path, names=None, decisions=None,
               threshold=None, show=False):
    """Plot image pairs, one row each, titled with their distance (and decision) to `path`.

    `images_a` and `images_b` are sequences of uint8 images (sizes may differ),
    `names` optional `(name_a, name_b)` tuples shown under the images,
    `decisions` optional booleans (true = same). With `show=True` the figure is
    also shown in a window when a display is available; headless it is skipped.
    """
    distances = np.asarray(distances, dtype=float).reshape(-1)
    lengths = {len(images_a), len(images_b), len(distances)}
    lengths |= {len(x) for x in (names, decisions) if x is not None}
    if len(lengths) != 1 or not len(distances):
        raise SiameseError(f"plot_pairs needs the same non-zero number of images, distances, "
                           f"names and decisions; received lengths {sorted(lengths)}")
    args = (images_a, images_b, distances, names, decisions, threshold)
    fig = new_figure(*_size(distances), layout=None)
    _draw_pairs(fig, *args)
    save_figure(fig, path)
    if show:
        show_pairs(*args)


def _size(distances):
    return 5.0, HEADING_INCHES + ROW_INCHES * len(distances)


def show_pairs(images_a, images_b, distances, names=None, decisions=None, threshold=None):
    """The figure `plot_pairs` draws, in a window when a display is available (headless: nothing)."""
    if not _display_available():
        return
    import matplotlib.pyplot as plt  # only here: pyplot picks an interactive backend

    if plt.get_backend().lower() in _NON_INTERACTIVE:
        return
    distances = np.asarray(distances, dtype=float).reshape(-1)
    try:
        window = plt.figure(figsize=_size(distances))
        _draw_pairs(window, images_a, images_b, distances, names, decisions, threshold)
        plt.show()
        plt.close(window)
    except Exception:  # a broken display must not fail a run whose PNG is already written
        plt.close("all")

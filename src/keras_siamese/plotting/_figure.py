"""Figure creation and atomic saving shared by every plot."""

from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.text import Text

from keras_siamese.atomic import atomic_path

# Colours that stay distinguishable for colour-blind readers and in grayscale prints.
SAME_COLOUR = "#1b7837"
DIFFERENT_COLOUR = "#c2185b"


def new_figure(width, height, layout="constrained"):
    """A headless figure (not registered with pyplot), by default with constrained layout."""
    return Figure(figsize=(width, height), layout=layout)


def drawable(text):
    """`text` with each undecodable byte of a file name (a surrogate) shown as the replacement character."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def literal(name):
    """A file, class or image name as text matplotlib draws as it is: `$` would start a formula."""
    return str(name).replace("$", r"\$")


def save_figure(fig, path, dpi=120):
    """Write `fig` to `path` atomically; the format follows the suffix (PNG without one).

    A figure without a layout engine is cropped to what it draws; one with
    constrained layout already fits its canvas, and cropping it would draw it
    twice. The figure is cleared afterwards, success or not: figures from
    `new_figure` are not tracked by pyplot, so nothing else holds them open.
    """
    crop = "tight" if fig.get_layout_engine() is None else None
    for text in fig.findobj(Text):  # a file or folder name that is not UTF-8 holds surrogates no font can draw
        text.set_text(drawable(text.get_text()))
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi, format=Path(path).suffix[1:].lower() or "png",
                        bbox_inches=crop, facecolor="white")
    finally:
        fig.clear()

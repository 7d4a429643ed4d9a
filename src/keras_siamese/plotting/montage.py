"""Search results as a montage: each query beside its nearest gallery images."""

import numpy as np

from keras_siamese.errors import SiameseError
from keras_siamese.plotting._figure import DIFFERENT_COLOUR, SAME_COLOUR, literal, new_figure, save_figure
from keras_siamese.plotting.pairs import _show_image


def plot_search_montage(queries, results, neighbour_images, path, query_names=None):
    """One row per query: the query, then its neighbours captioned with distance and label.

    `results` are Gallery.search results; `neighbour_images[i][j]` is the uint8
    image of neighbour j of query i, or None where the gallery holds no file
    (drawn as an empty box with the id).
    """
    if not len(queries) or len(queries) != len(results) or len(results) != len(neighbour_images):
        raise SiameseError(f"plot_search_montage needs as many queries, results and neighbour images, at least "
                           f"one; received {len(queries)}, {len(results)}, {len(neighbour_images)}")
    columns = 1 + max(len(r["neighbours"]) for r in results)
    fig = new_figure(1.7 * columns, 2.1 * len(results))
    axes = np.atleast_2d(fig.subplots(len(results), columns, squeeze=False))
    for i, (query, result) in enumerate(zip(queries, results)):
        row = axes[i]
        _show_image(row[0], query, query_names[i] if query_names else None)
        decision = result["decision"]
        title = "query" if decision is None else (f"match: {literal(result['label'])}" if result["label"] else decision)
        row[0].set_title(title, fontsize=9, fontweight="bold",
                         color={"match": SAME_COLOUR, "unknown": DIFFERENT_COLOUR}.get(decision, "black"))
        for ax, neighbour, image in zip(row[1:], result["neighbours"], neighbour_images[i]):
            if image is None:
                ax.text(0.5, 0.5, literal(neighbour["id"]), ha="center", va="center", fontsize=6, wrap=True)
                ax.set_xticks([])
                ax.set_yticks([])
            else:
                _show_image(ax, image, None)
            caption = f"{neighbour['distance']:.3f}"
            if neighbour["label"]:
                caption += f"  {literal(neighbour['label'])}"
            ax.set_title(caption, fontsize=8)
        for ax in row[1 + len(result["neighbours"]):]:
            ax.axis("off")
    save_figure(fig, path)
    return path

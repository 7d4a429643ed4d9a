"""2-D maps of embeddings coloured by class (PCA, t-SNE or UMAP)."""

import numpy as np
from matplotlib import colormaps

from keras_siamese.errors import SiameseError
from keras_siamese.plotting._figure import literal, new_figure, save_figure

METHODS = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}  # name -> title
# Above this many classes a colour bar replaces the legend.
MAX_LEGEND_CLASSES = 20


def check_map_method(method):
    """Raise SiameseError unless `method` is known and its package importable."""
    if method not in METHODS:
        raise SiameseError(f"unknown map method {method!r}; choose one of {', '.join(METHODS)}")
    if method == "umap":
        try:
            import umap  # noqa: F401
        except ImportError:
            raise SiameseError("--map umap needs the package umap-learn: pip install umap-learn") from None


def _project(x, method, seed):
    """Project `x` (n, d >= 2) to 2-D; return the points and the two axis labels."""
    if method == "pca":
        from sklearn.decomposition import PCA

        pca = PCA(n_components=2, random_state=seed)
        points = pca.fit_transform(x)
        return points, [f"PC{i + 1} ({100 * r:.1f}% of variance)"
                        for i, r in enumerate(pca.explained_variance_ratio_)]
    if method == "tsne":
        from sklearn.manifold import TSNE

        tsne = TSNE(n_components=2, init="pca", perplexity=min(30.0, (len(x) - 1) / 3),
                    random_state=seed)
        return tsne.fit_transform(x), ["t-SNE 1", "t-SNE 2"]
    import umap

    reducer = umap.UMAP(n_components=2, n_neighbors=min(15, len(x) - 1), random_state=seed)
    return reducer.fit_transform(x), ["UMAP 1", "UMAP 2"]


def plot_embedding_map(embeddings, labels, class_names, path, method="pca", seed=0, max_points=5000):
    """Plot a 2-D map of `embeddings` coloured by class to `path`.

    `labels` index `class_names` (which may be None: labels are shown as they
    are). `method` is "pca", "tsne" or "umap" (needs umap-learn). At most
    `max_points` points, drawn uniformly at random with `seed`, are mapped.
    One-dimensional embeddings are padded with a zero column.
    """
    check_map_method(method)
    x = np.asarray(embeddings, dtype=np.float64)
    x = x.reshape(len(x), -1)
    labels = np.asarray(labels).reshape(-1)
    if len(labels) != len(x) or len(x) < 3:
        raise SiameseError(f"an embedding map needs at least 3 embeddings and one label each; "
                           f"received {len(x)} embeddings and {len(labels)} labels")
    total = len(x)
    if total > max_points:
        keep = np.sort(np.random.default_rng(seed).choice(total, max_points, replace=False))
        x, labels = x[keep], labels[keep]
    if x.shape[1] == 1:
        x = np.hstack([x, np.zeros_like(x)])
    points, axis_labels = _project(x, method, seed)

    classes, codes = np.unique(labels, return_inverse=True)
    size = 4 if len(x) > 2000 else 14
    fig = new_figure(8.5, 6.5)
    ax = fig.subplots()
    if len(classes) > MAX_LEGEND_CLASSES:
        scatter = ax.scatter(points[:, 0], points[:, 1], c=codes, cmap="turbo", s=size, alpha=0.7,
                             linewidths=0)
        fig.colorbar(scatter, ax=ax, label=f"Class (index among {len(classes)})")
    else:
        palette = colormaps["tab10" if len(classes) <= 10 else "tab20"]
        for code, label in enumerate(classes):
            name = class_names[label] if class_names is not None else label
            mask = codes == code
            ax.scatter(points[mask, 0], points[mask, 1], s=size, alpha=0.7, linewidths=0,
                       color=palette(code), label=f"{literal(name)} ({mask.sum()})")
        ax.legend(title="Class", loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8,
                  markerscale=2.5 if size < 10 else 1.2, frameon=False)
    ax.set(xlabel=axis_labels[0], ylabel=axis_labels[1])
    shown = f"{len(x):,} points" if len(x) == total else f"{len(x):,} of {total:,} points"
    ax.set_title(f"Embedding map ({METHODS[method]}, {shown})")
    ax.grid(alpha=0.3)
    save_figure(fig, path)

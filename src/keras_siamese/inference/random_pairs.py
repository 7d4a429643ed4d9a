"""The seed's test script: random pairs of images from a folder, with distances, as a figure and a table."""

import csv
import io
from pathlib import Path

import numpy as np

from keras_siamese.atomic import atomic_path
from keras_siamese.data.folder import list_images, read_images
from keras_siamese.errors import SiameseError
from keras_siamese.inference.compare import decide
from keras_siamese.inference.embedding import embed_images, pair_distances


def draw_pairs(n, count, seed):
    """`count` pairs of distinct indices below `n`, seeded."""
    rng = np.random.default_rng(seed)
    first = rng.integers(0, n, count)
    second = (first + rng.integers(1, n, count)) % n
    return np.stack([first, second], 1)


def random_pairs_report(model, folder, count=10, seed=42, output="pairs.png", show=False):
    """Distances of `count` random pairs of images under `folder`; writes the PNG figure and a CSV beside it."""
    from keras_siamese.plotting.pairs import plot_pairs

    paths = list_images(folder)
    if len(paths) < 2:
        raise SiameseError(f"{folder}: needs at least 2 images to form a pair; found {len(paths)}")
    pairs = draw_pairs(len(paths), count, seed)
    used, local = np.unique(pairs, return_inverse=True)
    local = local.reshape(pairs.shape)
    images = read_images([paths[i] for i in used], model.input_image_shape[:2], model.input_image_shape[2])
    distances = pair_distances(embed_images(model, images), local)
    decisions = decide(model, distances)
    rows = [
        {"image_a": str(paths[a]), "image_b": str(paths[b]), "distance": float(d),
         "decision": decisions[k] if decisions else None}
        for k, ((a, b), d) in enumerate(zip(pairs, distances))
    ]
    figure, table = Path(output), Path(output).with_suffix(".csv")
    plot_pairs(
        [images[a] for a, _ in local], [images[b] for _, b in local], distances, figure,
        names=[(Path(r["image_a"]).name, Path(r["image_b"]).name) for r in rows],
        decisions=[d == "same" for d in decisions] if decisions else None, threshold=model.threshold, show=show,
    )
    write_csv(table, rows)
    return {"rows": rows, "figure": figure, "table": table}


def write_csv(path, rows):
    """Rows (dicts with the same keys) as CSV, atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in rows)
    with atomic_path(path) as tmp:
        tmp.write_text(buffer.getvalue())

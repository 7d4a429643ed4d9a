"""The seed's test script: random pairs of images from a folder, with distances, as a figure and a table."""

import itertools
import sys
from pathlib import Path

import numpy as np

from keras_siamese.atomic import atomic_path, write_csv
from keras_siamese.data.folder import is_image_file, list_images, read_images
from keras_siamese.errors import SiameseError
from keras_siamese.inference.compare import decide
from keras_siamese.inference.embedding import embed_images, pair_distances
from keras_siamese.outputs import FIGURE_SUFFIXES, check_output_file

MAX_PAIRS = 100  # one figure row per pair; more would not fit one image


def draw_pairs(n, count, seed):
    """`count` different pairs of distinct indices below `n` (no pair twice, in either order), seeded; all
    `n * (n - 1) / 2` of them, shuffled, when there are no more than `count`."""
    rng = np.random.default_rng(seed)
    if count >= n * (n - 1) // 2:
        pairs = np.array(list(itertools.combinations(range(n), 2)))
        return pairs[rng.permutation(len(pairs))]
    drawn = {}
    while len(drawn) < count:
        first, second = (int(i) for i in rng.choice(n, 2, replace=False))
        drawn.setdefault(frozenset((first, second)), (first, second))
    return np.array(list(drawn.values()))


def random_pairs_report(model, folder, count=10, seed=42, output="pairs.png", show=False):
    """Distances of `count` random pairs of images under `folder`; writes the PNG figure and a CSV beside it."""
    from keras_siamese.plotting.pairs import plot_pairs, show_pairs

    if not 1 <= count <= MAX_PAIRS:
        raise SiameseError(f"--count must be between 1 and {MAX_PAIRS}; received {count}")
    figure = check_output_file(output, FIGURE_SUFFIXES)
    table = figure.with_suffix(".csv")
    if table.is_dir():
        raise SiameseError(f"--output {output}: the table beside it, {table}, is a folder; choose another name")
    paths = list_images(folder)
    ours = {figure.resolve(), table.resolve()}
    if figure.resolve() in {p.resolve() for p in paths} and not table.is_file():
        raise SiameseError(f"--output {output}: one of the images under {folder}, which the figure would replace; "
                           "choose another file")
    paths = [p for p in paths if p.resolve() not in ours]  # the figure and table of an earlier run here
    others = [p for p in paths if not is_image_file(p)]  # Thumbs.db, notes: the same pairs whatever the seed
    if others:
        left_out = set(others)
        shown = ", ".join(str(p) for p in others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
        print(f"note: {len(others)} file{'s' if len(others) > 1 else ''} under {folder} "
              f"{'are not images' if len(others) > 1 else 'is not an image'}, left out: {shown}", file=sys.stderr)
        paths = [p for p in paths if p not in left_out]
    if len(paths) < 2:
        raise SiameseError(f"{folder}: needs at least 2 images to form a pair; found {len(paths)}")
    pairs = draw_pairs(len(paths), count, seed)
    if len(pairs) < count:
        print(f"note: {len(paths)} images form only {len(pairs)} different pairs; all are shown", file=sys.stderr)
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
    drawn = ([images[a] for a, _ in local], [images[b] for _, b in local], distances)
    shown = dict(names=[(Path(r["image_a"]).name, Path(r["image_b"]).name) for r in rows],
                 decisions=[d == "same" for d in decisions] if decisions else None, threshold=model.threshold)
    with atomic_path(table) as table_tmp:  # the table replaces the old one only with the figure
        write_csv(table_tmp, list(rows[0]), (row.values() for row in rows))
        plot_pairs(*drawn, figure, **shown)
    if show:  # once both files are written: a window left open or closed with Ctrl-C keeps them together
        show_pairs(*drawn, **shown)
    return {"rows": rows, "figure": figure, "table": table}

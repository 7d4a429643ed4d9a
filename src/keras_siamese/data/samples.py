"""Example image files drawn from a data set's test split (input for `siamese pairs`)."""

import re
from pathlib import Path

import numpy as np
from PIL import Image

from keras_siamese.atomic import atomic_path
from keras_siamese.data.sources import load_splits
from keras_siamese.errors import SiameseError


def spread_over_classes(labels, count, seed):
    """`count` indices taking classes in turn (seeded), so small samples still hold same-class pairs."""
    rng = np.random.default_rng(seed)
    queues = [list(rng.permutation(np.flatnonzero(labels == c))) for c in rng.permutation(np.unique(labels))]
    chosen = []
    while len(chosen) < count and any(queues):
        for queue in queues:
            if queue and len(chosen) < count:
                chosen.append(queue.pop())
    return np.array(chosen, np.int64)


def safe_name(text):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text)).strip("._") or "class"


def write_samples(source, output, count=13, seed=42, data_dir=None):
    """Write `count` PNGs `image_NN_<class>.png` from the test split of `source`; returns their paths."""
    if count < 1:
        raise SiameseError(f"--count must be at least 1; received {count}")
    test = load_splits(source, data_dir, progress=False).test
    if len(test) == 0:
        raise SiameseError(f"{source}: the test split is empty")
    output = Path(output)
    paths = []
    for number, i in enumerate(spread_over_classes(test.labels, count, seed), start=1):
        image = test.images[i]
        path = output / f"image_{number:02d}_{safe_name(test.class_names[test.labels[i]])}.png"
        with atomic_path(path) as tmp:
            Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(tmp)
        paths.append(path)
    return paths

"""Example image files drawn from a data set's test split (input for `siamese pairs`)."""

import re
import unicodedata
from pathlib import Path

import numpy as np
from PIL import Image

from keras_siamese.atomic import atomic_path
from keras_siamese.data.sources import load_splits
from keras_siamese.errors import SiameseError
from keras_siamese.outputs import check_output_folder


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
    """`text` as a file-name part: letters and digits of any script kept (NFC), anything else as `_`."""
    return re.sub(r"[^\w.-]+", "_", unicodedata.normalize("NFC", str(text))).strip("._") or "class"


def class_file_names(class_names):
    """A distinct file-name part per class: safe_name, plus the class number where two would collide."""
    names = [safe_name(name) for name in class_names]
    return [f"{name}_{code}" if names.count(name) > 1 else name for code, name in enumerate(names)]


def write_samples(source, output, count=13, seed=42, data_dir=None):
    """Write `count` PNGs `image_NN_<class>.png` from the test split of `source` (all of it when
    smaller); returns their paths."""
    if count < 1:
        raise SiameseError(f"--count must be at least 1; received {count}")
    check_output_folder(output)
    test = load_splits(source, data_dir, progress=False).test
    if len(test) == 0:
        raise SiameseError(f"{source}: the test split is empty")
    output = Path(output)
    names = class_file_names(test.class_names)
    paths = []
    for number, i in enumerate(spread_over_classes(test.labels, count, seed), start=1):
        image = test.images[i]
        path = output / f"image_{number:02d}_{names[test.labels[i]]}.png"
        with atomic_path(path) as tmp:
            Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(tmp)
        paths.append(path)
    return paths

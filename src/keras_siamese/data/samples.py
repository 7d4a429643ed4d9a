"""Example image files drawn from a data set's test split (input for `siamese pairs`)."""

import re
import unicodedata
from pathlib import Path

import numpy as np
from PIL import Image

from keras_siamese.atomic import atomic_path, write_json
from keras_siamese.data.sources import load_splits
from keras_siamese.errors import SiameseError
from keras_siamese.outputs import check_output_folder

MANIFEST = ".siamese-samples.json"  # the files the last run wrote, so that the next one replaces them all
NAME_CHARACTERS = 64  # of a class name in a file name: long names stay under the system's limit


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
    """`text` as a file-name part: letters and digits of any script kept (NFC), anything else as `_`, at most
    NAME_CHARACTERS of them."""
    return re.sub(r"[^\w.-]+", "_", unicodedata.normalize("NFC", str(text)))[:NAME_CHARACTERS].strip("._") or "class"


def class_file_names(class_names):
    """A distinct file-name part per class: safe_name, plus the class number where two would collide."""
    names = [safe_name(name) for name in class_names]
    return [f"{name}_{code}" if names.count(name) > 1 else name for code, name in enumerate(names)]


def write_samples(source, output, count=13, seed=42, data_dir=None, image_size=None):
    """Write `count` PNGs `image_NN_<class>.png` from the test split of `source` (all of it when
    smaller), at `image_size` (height, width; default: as training reads the source, so a folder's
    large photos become 64 x 64); returns their paths. Images an earlier run wrote into `output` and this one does not
    are removed, so the folder holds this draw alone (other files are left as they are)."""
    if count < 1:
        raise SiameseError(f"--count must be at least 1; received {count}")
    check_output_folder(output)
    shape = None if image_size is None else (*image_size, None)
    test = load_splits(source, data_dir, shape, progress=False).test
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
    _forget_earlier(output, paths)
    return paths


def _forget_earlier(output, paths):
    """Remove the images an earlier run listed in `output`'s manifest that are not among `paths`; list these."""
    import json

    manifest = output / MANIFEST
    try:
        earlier = json.loads(manifest.read_text()).get("images", [])
    except (OSError, ValueError, AttributeError):  # none yet, or not ours
        earlier = []
    kept = {path.name for path in paths}
    for name in earlier:
        if isinstance(name, str) and name not in kept and Path(name).name == name:
            (output / name).unlink(missing_ok=True)
    write_json(manifest, {"images": sorted(kept)})

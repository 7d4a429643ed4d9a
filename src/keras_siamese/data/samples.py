"""Example image files drawn from a data set's test split (input for `siamese pairs`)."""

import json
import os
import re
import unicodedata
from pathlib import Path

import numpy as np
from PIL import Image

from keras_siamese.atomic import atomic_path, cut_name, write_json
from keras_siamese.data.folder import resize_images
from keras_siamese.data.sources import is_folder_source, load_splits
from keras_siamese.errors import SiameseError
from keras_siamese.outputs import check_output_folder, check_outside

MANIFEST = ".siamese-samples.json"  # the files the last run wrote, so that the next one replaces them all
SAMPLE_NAME = re.compile(r"image_\d{2,}_[^/\\]+\.png")  # what `write_samples` names its files
NAME_BYTES = 160  # of a class name in a file name (UTF-8): the whole name stays under the systems' 255


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
    """`text` as a file-name part: letters and digits of any script kept (NFC), anything else as `_`, cut to
    NAME_BYTES at a whole character."""
    name = re.sub(r"[^\w.-]+", "_", unicodedata.normalize("NFC", str(text)))
    return cut_name(name, NAME_BYTES).strip("._") or "class"


def class_file_names(class_names):
    """A distinct file-name part per class: safe_name, plus the class number where two would collide."""
    names = [safe_name(name) for name in class_names]
    return [f"{name}_{code}" if names.count(name) > 1 else name for code, name in enumerate(names)]


def write_samples(source, output, count=13, seed=42, data_dir=None, image_size=None):
    """Write `count` PNGs `image_NN_<class>.png` from the test split of `source` (all of it when
    smaller), at `image_size` (height, width; default: as training reads the source, so a folder's
    large photos become 64 x 64); returns their paths. A folder's images stay on disk but for
    those drawn. Images an earlier run wrote into `output` and this one does not are removed, so
    the folder holds this draw alone (other files are left as they are)."""
    if count < 1:
        raise SiameseError(f"--count must be at least 1; received {count}")
    check_output_folder(output)
    check_outside(output, source)
    folder = is_folder_source(source)
    shape = None if image_size is None else (*image_size, None)
    test = load_splits(source, data_dir, shape if folder else None, progress=False,
                       stream=True if folder else "auto").test  # a folder's: decoded at that size when drawn
    if len(test) == 0:
        raise SiameseError(f"{source}: the test split is empty")
    output = Path(output)
    names = class_file_names(test.class_names)
    chosen = spread_over_classes(test.labels, count, seed)
    paths = [output / f"image_{number:02d}_{names[test.labels[i]]}.png" for number, i in enumerate(chosen, 1)]
    images = test.images[chosen]
    if shape is not None and not folder:
        images = resize_images(images, (*image_size, images.shape[-1]))
    earlier = _listed(output)
    write_json(output / MANIFEST, {"images": sorted({*earlier, *(p.name for p in paths)})})  # if stopped midway
    for path, image in zip(paths, images):
        with atomic_path(path) as tmp:
            Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(tmp)
    for name in earlier:  # the earlier draw's images that this one did not write over
        old = output / name
        if old.is_file() and not any(old.name == p.name or os.path.samefile(old, p) for p in paths):
            old.unlink()  # (samefile: a case-insensitive file system maps another spelling to a new image)
    write_json(output / MANIFEST, {"images": sorted(p.name for p in paths)})
    return paths


def _listed(output):
    """The sample images `output`'s manifest lists (names of this command's form only), or []."""
    try:
        listed = json.loads((output / MANIFEST).read_text()).get("images", [])
    except (OSError, ValueError, AttributeError):  # none yet, or not ours
        return []
    return [name for name in listed if isinstance(name, str) and SAMPLE_NAME.fullmatch(name)] \
        if isinstance(listed, list) else []

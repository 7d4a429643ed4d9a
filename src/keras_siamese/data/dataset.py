"""In-memory labelled image sets and their seeded, stratified splits."""

from dataclasses import dataclass, field

import numpy as np

from keras_siamese.errors import SiameseError
from keras_siamese.numeric import group_by_class


@dataclass
class ImageSet:
    """Images as uint8 arrays `(N, H, W, C)` with integer class codes.

    `labels[i]` indexes `class_names`; `ids[i]` names image `i` (a file path or
    `source:index`), so every pair written to a CSV can be traced back.
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: list
    ids: np.ndarray

    def __post_init__(self):
        if not np.issubdtype(np.asarray(self.labels).dtype, np.integer):
            raise SiameseError("ImageSet labels must be integer codes; use ImageSet.from_arrays for names")
        if self.images.ndim != 4:
            raise SiameseError(f"images must have shape (N, H, W, C); received shape {self.images.shape}")
        if len(self.images) != len(self.labels) or len(self.ids) != len(self.labels):
            raise SiameseError(
                f"images, labels and ids differ in length: {len(self.images)}, {len(self.labels)}, {len(self.ids)}"
            )

    @classmethod
    def from_arrays(cls, images, labels, ids=None, source="array"):
        """Build from arrays; labels may be any hashable names or integers.

        Images may be `(N, H, W)` or `(N, H, W, C)`, uint8 in 0..255 or floats
        (floats in 0..1 are scaled to 0..255).
        """
        images = np.asarray(images)
        if images.ndim == 3:
            images = images[..., None]
        if images.ndim != 4:
            raise SiameseError(f"images must have shape (N, H, W) or (N, H, W, C); received shape {images.shape}")
        images = to_uint8(images)
        labels = np.asarray(labels)
        if labels.ndim != 1:
            raise SiameseError(f"labels must be one-dimensional; received shape {labels.shape}")
        try:
            names, codes = np.unique(labels, return_inverse=True)
        except TypeError:  # values that do not sort together (None among numbers, say)
            kinds = sorted({type(label).__name__ for label in labels.tolist()})
            raise SiameseError(f"labels must be numbers or strings that sort together; received {', '.join(kinds)}"
                               ) from None
        if ids is None:
            ids = np.array([f"{source}:{i}" for i in range(len(labels))])
        return cls(images, codes.astype(np.int64), [str(n) for n in names], np.asarray(ids))

    def __len__(self):
        return len(self.labels)

    @property
    def image_shape(self):
        return tuple(self.images.shape[1:])

    @property
    def num_classes(self):
        return len(self.class_names)

    def subset(self, index):
        """The images at `index`, keeping the full list of class names."""
        index = np.asarray(index, dtype=np.int64)
        images = self.images.subset(index) if hasattr(self.images, "subset") else self.images[index]  # ImageFiles
        return ImageSet(images, self.labels[index], self.class_names, self.ids[index])

    def class_counts(self):
        return np.bincount(self.labels, minlength=self.num_classes)

    def classes_present(self):
        """Names of the classes that have images here (`class_names` may name more)."""
        return [self.class_names[c] for c in np.unique(self.labels)]


SPLIT_NAMES = ("test", "val", "train", "all")  # "all": every image of a source


@dataclass
class Splits:
    """Train, validation and test image sets, plus a description of where they came from."""

    train: ImageSet
    val: ImageSet
    test: ImageSet
    source: dict = field(default_factory=dict)

    def split(self, name):
        if name not in ("train", "val", "test"):
            raise SiameseError(f"unknown split {name!r}; choose train, val or test")
        return getattr(self, name)


def to_uint8(images):
    """Pixels as uint8 in 0..255: floats with a maximum of at most 1 are taken as 0..1, integers
    above 255 as 16-bit (divided by 257), anything else clipped."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images
    if not np.issubdtype(images.dtype, np.number):
        raise SiameseError(f"images must be numeric; received dtype {images.dtype}")
    if images.size and not np.isfinite(images).all():
        raise SiameseError("images contain NaN or infinite values")
    if np.issubdtype(images.dtype, np.floating) and images.size and images.max() <= 1.0:
        images = images * 255.0
    elif np.issubdtype(images.dtype, np.integer) and images.size and images.max() > 255:
        images = images / 257.0
    return np.clip(np.rint(images), 0, 255).astype(np.uint8)


def stratified_split(labels, fraction, seed, keep=0, at_least=1):
    """Split indices into (kept, held_out), taking `fraction` of every class.

    Each class gives `round(fraction * n)` images to the held-out part, but never
    so many that fewer than `keep` remain; a class that gives any gives at least
    `at_least` (2: the held-out part has same-class pairs wherever it has a class),
    or none when it cannot keep `keep`. Deterministic for a given seed.
    """
    labels = np.asarray(labels)
    shuffled = np.random.default_rng(seed).permutation(len(labels))
    groups = group_by_class(labels[shuffled])  # ranks within a class follow the shuffled order
    take = np.rint(fraction * groups.counts).astype(int)
    take = np.where(take > 0, np.maximum(take, at_least), 0)
    take = np.where(take <= groups.counts - keep, take, np.where(groups.counts - keep >= at_least,
                                                                 groups.counts - keep, 0))
    held = groups.rank < take[labels[shuffled]]
    return np.sort(shuffled[~held]), np.sort(shuffled[held])


def pairable_split(labels, fraction, seed):
    """`stratified_split` for verification: both parts keep same-class pairs in every class they hold
    (each class keeps at least 2 images and gives none or at least 2)."""
    return stratified_split(labels, fraction, seed, keep=2, at_least=2)


def class_split(labels, fraction, seed, keep=2):
    """Split indices into (kept, held_out) by whole classes: `round(fraction * classes)` classes, at
    least 2 (a held-out split needs other-class pairs), are held out, and never so many that fewer than
    `keep` classes remain. Returns all indices kept when the classes are too few. Deterministic for a seed."""
    labels = np.asarray(labels)
    classes = np.unique(labels)
    held = max(2, int(round(fraction * len(classes)))) if fraction > 0 else 0
    if held > len(classes) - keep:
        return np.arange(len(labels)), np.zeros(0, np.int64)
    chosen = np.random.default_rng(seed).choice(classes, held, replace=False)
    out = np.isin(labels, chosen)
    return np.flatnonzero(~out), np.flatnonzero(out)


def unknown_data(data):
    """The error for `data` of a kind no function takes."""
    return SiameseError(f"data must be a source name, a folder, an (images, labels) tuple, an ImageSet or Splits; "
                        f"received {type(data).__name__}")


def as_image_set(data, argument="data"):
    """An ImageSet from an ImageSet or an `(images, labels)` tuple; SiameseError naming `argument` otherwise."""
    if isinstance(data, ImageSet):
        return data
    if isinstance(data, tuple) and len(data) == 2:
        return ImageSet.from_arrays(*data)
    received = f"a tuple of {len(data)}" if isinstance(data, tuple) else type(data).__name__
    raise SiameseError(f"{argument} must be an ImageSet or an (images, labels) tuple; received {received}")


def hold_out_classes(splits, fraction, seed):
    """`splits` whose validation part is whole classes (`fraction` of them, by `class_split`) taken from
    the training and validation images, so that training never sees them."""
    everything = concatenate([splits.train, splits.val])
    fit, val = class_split(everything.labels, fraction, seed)
    return Splits(everything.subset(fit), everything.subset(val), splits.test, splits.source)


def check_trainable(images, where):
    """Raise unless `images` has two classes and every class has two images."""
    present = len(np.unique(images.labels))
    if present < 2:
        raise SiameseError(f"{where} has {present} class(es); training needs at least 2 classes")
    counts = images.class_counts()
    small = [images.class_names[c] for c in np.flatnonzero(counts == 1)]
    if small:
        raise SiameseError(
            f"class {small[0]!r} in {where} has only 1 image; every class needs at least 2 to form a positive pair"
        )


def concatenate(sets):
    """One ImageSet from several that share class names (the splits of one source)."""
    from keras_siamese.data.folder import stack_images

    return ImageSet(
        stack_images([s.images for s in sets]),
        np.concatenate([s.labels for s in sets]),
        sets[0].class_names,
        np.concatenate([s.ids for s in sets]),
    )

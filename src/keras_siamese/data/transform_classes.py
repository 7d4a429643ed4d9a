"""New training classes made by transforming the images of every class (label augmentation).

With `rotate-180`, the digit 3 and the digit 3 turned upside down train as two
classes: the tower must then tell an image from its transform, which takes
features of shape and layout that carry over to classes it never saw, where
supervised training on few classes otherwise keeps only what separates those
classes (docs/design.md, "Open set"). This is the self-supervised label
augmentation of Lee, Hwang and Shin (ICML 2020), on contrastive batches. Only
training batches see the transformed classes; validation, calibration and
everything a model is used for see the images as they are.
"""

import numpy as np

from keras_siamese.registry import Registry


def _rotate_180(images):
    return images[:, ::-1, ::-1]


def _flip_up_down(images):
    return images[:, ::-1]


def _flip_left_right(images):
    return images[:, :, ::-1]


TRANSFORM_CLASSES = Registry("transform_classes")
TRANSFORM_CLASSES.add("none", (),
                      "the given classes only (the default from 10,000 training images, and for pair losses)")
TRANSFORM_CLASSES.add("rotate-180", (_rotate_180,),
                      "each class's images turned upside down form a new class (the default below 10,000)")
TRANSFORM_CLASSES.add("flip-up-down", (_flip_up_down,), "each class's images mirrored top to bottom form a new class")
TRANSFORM_CLASSES.add("flip-left-right", (_flip_left_right,),
                      "each class's images mirrored left to right form a new class")
TRANSFORM_CLASSES.add("flips", (_flip_left_right, _flip_up_down), "both mirrorings, two new classes per class")


class TransformedClasses:
    """Every image in `1 + len(transforms)` versions, version v of class c being class `c * versions + v`.

    Entry `r` stands for image `r // versions` in version `r % versions` (0: as it is).
    """

    def __init__(self, labels, transforms=()):
        self.transforms = tuple(transforms)
        self.versions = len(self.transforms) + 1
        labels = np.asarray(labels)
        self.labels = (labels[:, None].astype(np.int64) * self.versions + np.arange(self.versions)).ravel()

    def images(self, images, entries):
        """The images of `entries`, each in its version; `images` is indexed once, in entry order."""
        entries = np.asarray(entries)
        out = np.asarray(images[entries // self.versions])  # indexing by an array copies: written below
        version = entries % self.versions
        for v, transform in enumerate(self.transforms, start=1):
            chosen = version == v
            if chosen.any():
                out[chosen] = transform(out[chosen])
        return out

"""Keras `PyDataset`s that feed training from index arrays (backend-agnostic)."""

import copy
import threading

import keras
import numpy as np

from keras_siamese.data.pairs import one_positive_one_negative
from keras_siamese.data.sampler import ClassBalancedSampler
from keras_siamese.data.transform_classes import TransformedClasses
from keras_siamese.errors import SiameseError
from keras_siamese.seeds import epoch_rng


class EpochBatches(keras.utils.PyDataset):
    """A PyDataset whose draws for epoch `e` are a function of (seed, e): `set_epoch` replays any epoch.

    Subclasses give `batch(i)`, batch `i` of the current epoch. Training reads them through an EpochStream.
    """

    def __init__(self, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.part, self.full_batches = (0, 1), False
        self.set_epoch(0)

    def distribute(self, devices, process=0, processes=1):
        """Batches for data-parallel training on `devices` devices in all: full batches only (their rows
        split evenly), and with several processes each gives only its part (see `own`)."""
        self.full_batches = devices > 1
        self.part = (process, processes)

    def own(self, rows):
        """This process's part of a batch's `rows`: the `process`-th of `processes` equal, contiguous blocks."""
        process, processes = self.part
        size = len(rows) // processes
        return rows[process * size:(process + 1) * size]

    def __getitem__(self, i):
        return self.batch(i)

    def set_epoch(self, epoch):
        self.epoch = epoch
        self.draw(epoch_rng(self.seed, epoch))

    def on_epoch_end(self):
        self.set_epoch(self.epoch + 1)


class EpochStream(keras.utils.PyDataset):
    """Every epoch of `batches`, back to back from `first_epoch`, as one endless PyDataset (fit with
    `steps_per_epoch=len(batches)`): Keras then keeps one input iterator for the whole run, where a finite
    PyDataset restarts it at each epoch, and with it TensorFlow's input threads (a stall of up to 0.45 s
    an epoch, docs/benchmarks.md).

    Each epoch's draws live on a copy of `batches`, so a prefetch may cross an epoch boundary. A
    SiameseError while making a batch (an unreadable streamed file) is kept in `error`, since
    TensorFlow's input pipeline re-raises it wrapped in its own error.
    """

    def __init__(self, batches, first_epoch=0):
        super().__init__()  # no workers: Keras' queue stops at each epoch end and can reorder an endless stream
        self.batches, self.first_epoch, self.steps = batches, first_epoch, len(batches)
        self.error, self._lock, self._epochs = None, threading.Lock(), {}

    @property
    def num_batches(self):
        return None  # endless

    def __getitem__(self, i):
        epoch, step = divmod(i, self.steps)
        try:
            return self.epoch(self.first_epoch + epoch).batch(step)
        except SiameseError as error:
            self.error = error
            raise

    def epoch(self, number):
        """The batches of epoch `number` (drawn once; the two latest epochs are kept)."""
        with self._lock:
            if number not in self._epochs:
                drawn = copy.copy(self.batches)
                drawn.set_epoch(number)
                self._epochs = {e: b for e, b in self._epochs.items() if e >= number - 1}
                self._epochs[number] = drawn
            return self._epochs[number]


class PairBatches(EpochBatches):
    """Batches of image pairs `((a, b), same)`, drawn afresh each epoch with the seed's scheme.

    Pairs are kept as indices; only one batch of pair images exists at a time.
    """

    def __init__(self, images, labels, batch_size, seed=0, shuffle=True, **kwargs):
        self.images, self.labels = images, np.asarray(labels)
        self.batch_size, self.shuffle = batch_size, shuffle
        super().__init__(seed, **kwargs)

    def draw(self, rng):
        self.pairs, same = one_positive_one_negative(self.labels, rng)
        self.same = same.astype("float32")
        if self.shuffle:
            order = rng.permutation(len(self.pairs))
            self.pairs, self.same = self.pairs[order], self.same[order]

    @property
    def rows(self):
        return self.batch_size

    def __len__(self):
        if self.full_batches:
            return max(len(self.pairs) // self.batch_size, 1)
        return -(-len(self.pairs) // self.batch_size)

    def batch(self, i):
        rows = self.own(np.arange(i * self.batch_size, min((i + 1) * self.batch_size, len(self.pairs))))
        a, b = self.pairs[rows, 0], self.pairs[rows, 1]
        return (self.images[a], self.images[b]), self.same[rows]


class ClassBalancedBatches(EpochBatches):
    """Batches `(images, labels)` of P classes x K images, for in-batch losses.

    With `transforms`, each class's transformed images are further classes
    (`TransformedClasses`), dealt like the others. With `unlabeled` images, each
    batch also holds `unlabeled_per_batch` of them, drawn at random, labelled -1.
    """

    def __init__(self, images, labels, classes_per_batch, images_per_class, seed=0, unlabeled=None,
                 unlabeled_per_batch=0, transforms=(), **kwargs):
        self.images = images
        self.classes = TransformedClasses(labels, transforms)
        self.labels = self.classes.labels
        self.sampler = ClassBalancedSampler(self.labels, classes_per_batch, images_per_class, seed)
        self.unlabeled = unlabeled
        self.unlabeled_per_batch = min(unlabeled_per_batch, 0 if unlabeled is None else len(unlabeled))
        super().__init__(seed, **kwargs)

    def draw(self, rng):
        self.index = self.sampler.epoch(self.epoch)
        if self.unlabeled_per_batch:
            self.extra = np.stack([rng.choice(len(self.unlabeled), self.unlabeled_per_batch, replace=False)
                                   for _ in range(len(self.index))])

    @property
    def rows(self):
        return self.sampler.batch_size + self.unlabeled_per_batch

    def __len__(self):
        return len(self.index)

    def batch(self, i):
        rows = self.own(self.index[i])
        images, labels = self.classes.images(self.images, rows), self.labels[rows].astype("int32")
        if self.unlabeled_per_batch:
            extra = self.own(self.extra[i])
            images = np.concatenate([images, self.unlabeled[extra]])
            labels = np.concatenate([labels, np.full(len(extra), -1, "int32")])
        return images, labels

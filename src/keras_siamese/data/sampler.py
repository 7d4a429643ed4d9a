"""A seeded, class-balanced batch sampler: P classes x K images in every batch."""

import numpy as np

from keras_siamese.errors import SiameseError
from keras_siamese.seeds import epoch_rng


class ClassBalancedSampler:
    """Index batches of `classes_per_batch` classes with `images_per_class` images each.

    In-batch losses need positives in every batch; drawing P classes and K images
    of each guarantees P*K*(K-1)/2 positive pairs. Classes are drawn without
    replacement within a batch, with probability proportional to their size, and
    each class deals its images from a shuffled queue, so an epoch of
    `len(labels) // (P*K)` batches sees nearly every image once while no class
    holds more than 1/P of the images. A larger class still comes at most once a
    batch, K images: an epoch then sees only part of it, and the others more than
    once. A class with fewer than K images repeats some of them. Epoch `e`'s
    batches depend on (seed, e) alone.
    """

    def __init__(self, labels, classes_per_batch, images_per_class, seed=0, batches_per_epoch=None):
        labels = np.asarray(labels)
        self.classes, codes = np.unique(labels, return_inverse=True)
        if len(self.classes) < 2:
            raise SiameseError(f"class-balanced batches need at least 2 classes; received {len(self.classes)}")
        if classes_per_batch < 2 or images_per_class < 2:
            raise SiameseError(
                "class-balanced batches need at least 2 classes of at least 2 images; "
                f"received classes_per_batch={classes_per_batch}, images_per_class={images_per_class}"
            )
        self.classes_per_batch = min(classes_per_batch, len(self.classes))
        self.images_per_class = images_per_class
        self.members = [np.flatnonzero(codes == c) for c in range(len(self.classes))]
        sizes = np.array([len(m) for m in self.members], float)
        self.weights = sizes / sizes.sum()
        self.batch_size = self.classes_per_batch * images_per_class
        self.batches_per_epoch = batches_per_epoch or max(1, len(labels) // self.batch_size)
        self.seed = seed

    def __len__(self):
        return self.batches_per_epoch

    def _deal(self, c, rng):
        """The next K images of class c from its shuffled queue, reshuffling when it runs out."""
        out = []
        need = self.images_per_class
        while need:
            queue, head = self._queues[c], self._heads[c]
            if head >= len(queue):
                fresh = rng.permutation(self.members[c])
                if out:  # images already in this batch go last, so a class of >= K images never repeats one
                    taken = np.isin(fresh, np.concatenate(out))
                    fresh = np.concatenate([fresh[~taken], fresh[taken]])
                self._queues[c], self._heads[c] = fresh, 0
                continue
            take = queue[head : head + need]
            out.append(take)
            self._heads[c] += len(take)
            need -= len(take)
        return np.concatenate(out)

    def epoch(self, number=0):
        """An `(batches_per_epoch, batch_size)` array of indices for epoch `number`."""
        rng = epoch_rng(self.seed, number)
        self._queues = [rng.permutation(m) for m in self.members]
        self._heads = np.zeros(len(self.members), np.int64)
        batches = np.empty((self.batches_per_epoch, self.batch_size), np.int64)
        for b in range(self.batches_per_epoch):
            chosen = rng.choice(len(self.members), self.classes_per_batch, replace=False, p=self.weights)
            batches[b] = np.concatenate([self._deal(c, rng) for c in chosen])
        return batches

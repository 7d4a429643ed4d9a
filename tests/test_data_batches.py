"""Training batches: each epoch's draws are a function of (seed, epoch), so any epoch can be replayed."""

import numpy as np

from keras_siamese.data.batches import ClassBalancedBatches, PairBatches


def test_any_epoch_replays_without_the_ones_before():
    labels = np.repeat(np.arange(4), 6)
    images = np.arange(len(labels), dtype=np.uint8).reshape(-1, 1, 1, 1)
    balanced = ClassBalancedBatches(images, labels, 2, 3, seed=7)
    pairs = PairBatches(images, labels, 8, seed=7)
    seen = []
    for _ in range(3):
        seen.append((balanced.index.copy(), pairs.pairs.copy()))
        balanced.on_epoch_end()
        pairs.on_epoch_end()
    for epoch in (2, 0, 1):
        balanced.set_epoch(epoch)
        pairs.set_epoch(epoch)
        np.testing.assert_array_equal(balanced.index, seen[epoch][0])
        np.testing.assert_array_equal(pairs.pairs, seen[epoch][1])
    assert not np.array_equal(seen[0][0], seen[1][0])  # epochs differ
    other = ClassBalancedBatches(images, labels, 2, 3, seed=8)
    assert not np.array_equal(other.index, seen[0][0])  # and so do seeds


def test_batches_are_class_balanced_and_index_every_image():
    labels = np.repeat(np.arange(5), [4, 5, 6, 7, 8])
    images = np.zeros((len(labels), 2, 2, 1), np.uint8)
    batches = ClassBalancedBatches(images, labels, 3, 4, seed=0)
    for i in range(len(batches)):
        x, y = batches[i]
        assert x.shape == (12, 2, 2, 1)
        assert sorted(np.bincount(y, minlength=5)[np.bincount(y, minlength=5) > 0]) == [4, 4, 4]

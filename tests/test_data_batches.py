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


def test_the_stream_is_every_epoch_back_to_back():
    from keras_siamese.data.batches import EpochStream

    labels = np.repeat(np.arange(4), 6)
    images = np.arange(len(labels), dtype=np.uint8).reshape(-1, 1, 1, 1)
    batches = ClassBalancedBatches(images, labels, 2, 3, seed=7)
    steps = len(batches)
    stream = EpochStream(batches, first_epoch=2)  # resuming at epoch 2
    assert stream.num_batches is None  # endless: Keras keeps one iterator for the whole run
    for epoch in (2, 3, 4):
        reference = ClassBalancedBatches(images, labels, 2, 3, seed=7)
        reference.set_epoch(epoch)
        for step in range(steps):
            np.testing.assert_array_equal(stream[(epoch - 2) * steps + step][0], reference[step][0])
    assert batches.epoch == 0  # the epochs are drawn on copies
    np.testing.assert_array_equal(stream[0][0], stream.epoch(2)[0][0])  # a step back into the kept epoch


def test_transformed_images_are_further_classes():
    from keras_siamese.data.transform_classes import TRANSFORM_CLASSES, TransformedClasses

    classes = TransformedClasses([0, 0, 1], TRANSFORM_CLASSES["flips"])
    # entry r: image r // 3 in version r % 3 (as it is, left-right, up-down); class c's version v is 3c + v
    np.testing.assert_array_equal(classes.labels, [0, 1, 2, 0, 1, 2, 3, 4, 5])
    images = np.arange(3 * 2 * 3).reshape(3, 2, 3, 1).astype(np.uint8)
    out = classes.images(images, [0, 1, 2, 8])
    np.testing.assert_array_equal(out[0, ..., 0], [[0, 1, 2], [3, 4, 5]])
    np.testing.assert_array_equal(out[1, ..., 0], [[2, 1, 0], [5, 4, 3]])
    np.testing.assert_array_equal(out[2, ..., 0], [[3, 4, 5], [0, 1, 2]])
    np.testing.assert_array_equal(out[3, ..., 0], [[15, 16, 17], [12, 13, 14]])
    assert images[0, 0, 0, 0] == 0 and images[0, 0, 2, 0] == 2  # the originals are untouched
    turned = TransformedClasses([0], TRANSFORM_CLASSES["rotate-180"]).images(images[:1], [1])
    np.testing.assert_array_equal(turned[0, ..., 0], [[5, 4, 3], [2, 1, 0]])


def test_class_balanced_batches_deal_transformed_classes_like_the_others():
    from keras_siamese.data.transform_classes import TRANSFORM_CLASSES

    labels = np.repeat(np.arange(3), 6)
    images = np.random.default_rng(0).integers(0, 256, (len(labels), 4, 5, 1), dtype=np.uint8)
    batches = ClassBalancedBatches(images, labels, 6, 3, seed=0, transforms=TRANSFORM_CLASSES["rotate-180"])
    assert len(batches) == 2  # 36 entries (18 images in 2 versions) in batches of 6 classes x 3
    for i in range(len(batches)):
        x, y = batches[i]
        assert sorted(np.unique(y)) == list(range(6)) and (np.bincount(y) == 3).all()
        for image, label, entry in zip(x, y, batches.index[i]):
            original = images[entry // 2]
            assert labels[entry // 2] == label // 2
            np.testing.assert_array_equal(image, original if label % 2 == 0 else original[::-1, ::-1])

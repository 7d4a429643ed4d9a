"""Property tests of the pair and class-balanced samplers on random label sets."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from keras_siamese.data.dataset import stratified_split
from keras_siamese.data.pairs import all_pairs, one_positive_one_negative
from keras_siamese.data.sampler import ClassBalancedSampler

seeds = st.integers(0, 2**32 - 1)


@st.composite
def label_sets(draw, min_classes=2, max_classes=8, max_size=60):
    """Labels of 2+ classes (any names), in random order."""
    classes = draw(st.integers(min_classes, max_classes))
    labels = draw(st.lists(st.integers(0, classes - 1), min_size=2, max_size=max_size))
    names = draw(st.sampled_from(["int", "str", "sparse"]))
    labels = np.array(labels)
    if len(np.unique(labels)) < 2:
        labels = np.concatenate([labels, [(labels[0] + 1) % classes]])
    if names == "str":
        return np.array([f"class {v}" for v in labels])
    return labels * 1000 - 7 if names == "sparse" else labels


@given(label_sets(), seeds)
def test_one_positive_one_negative(labels, seed):
    pairs, same = one_positive_one_negative(labels, np.random.default_rng(seed))
    n = len(labels)
    assert pairs.dtype.kind == "i" and ((pairs >= 0) & (pairs < n)).all()
    a, b = pairs.T
    assert (a != b).all()
    assert np.array_equal(same, (labels[a] == labels[b]).astype(same.dtype))
    counts = {value: int((labels == value).sum()) for value in np.unique(labels)}
    # one other-class partner per image; one same-class partner per image not alone in its class
    assert np.array_equal(np.sort(a[same == 0]), np.arange(n))
    assert np.array_equal(np.sort(a[same == 1]), [i for i in range(n) if counts[labels[i]] > 1])
    assert (np.diff(a) >= 0).all()  # grouped by image, as the seed's loop
    again, _ = one_positive_one_negative(labels, np.random.default_rng(seed))
    assert np.array_equal(pairs, again)


@given(label_sets(max_size=40))
def test_all_pairs(labels):
    pairs, same = all_pairs(labels)
    n = len(labels)
    expected = [(i, j) for i in range(n) for j in range(i + 1, n)]
    assert [tuple(p) for p in pairs] == expected
    assert same.tolist() == [int(labels[i] == labels[j]) for i, j in expected]


@given(label_sets(), st.integers(2, 6), st.integers(2, 6), st.integers(1, 5), seeds)
def test_class_balanced_sampler(labels, classes_per_batch, images_per_class, batches, seed):
    sampler = ClassBalancedSampler(labels, classes_per_batch, images_per_class, seed, batches_per_epoch=batches)
    epoch = sampler.epoch()
    present = np.unique(labels)
    p = min(classes_per_batch, len(present))
    assert epoch.shape == (batches, p * images_per_class) and len(sampler) == batches
    assert ((epoch >= 0) & (epoch < len(labels))).all()
    for batch in epoch:
        blocks = batch.reshape(p, images_per_class)
        block_classes = [labels[block[0]] for block in blocks]
        assert len(set(block_classes)) == p  # P distinct classes
        for block, value in zip(blocks, block_classes):
            members = set(np.flatnonzero(labels == value))
            assert all(labels[i] == value for i in block)  # K images of that class
            if len(members) >= images_per_class:
                assert len(set(block)) == images_per_class  # no repeats while the class has enough
            else:
                assert set(block) == members  # a small class gives all its images
    twin = ClassBalancedSampler(labels, classes_per_batch, images_per_class, seed, batches_per_epoch=batches)
    assert np.array_equal(twin.epoch(), epoch)


@given(label_sets(), st.floats(0, 0.9), st.integers(0, 3), seeds)
def test_stratified_split(labels, fraction, keep, seed):
    labels = np.unique(labels, return_inverse=True)[1]  # class codes, as ImageSet holds them
    kept, held = stratified_split(labels, fraction, seed, keep=keep)
    assert np.array_equal(np.sort(np.concatenate([kept, held])), np.arange(len(labels)))
    for value in np.unique(labels):
        count = int((labels == value).sum())
        taken = int((labels[held] == value).sum())
        assert taken == min(round(fraction * count), max(count - keep, 0))
    again = stratified_split(labels, fraction, seed, keep=keep)
    assert np.array_equal(again[0], kept) and np.array_equal(again[1], held)

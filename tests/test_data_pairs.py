"""Pair sampling, the P x K class-balanced sampler and the PyDatasets that feed training (every backend)."""

import numpy as np
import pytest
from scipy.stats import chi2

from keras_siamese.data.batches import ClassBalancedBatches, PairBatches
from keras_siamese.data.pairs import MAX_ALL_PAIRS, all_pairs, one_positive_one_negative
from keras_siamese.data.sampler import ClassBalancedSampler
from keras_siamese.errors import SiameseError

pytestmark = pytest.mark.core


def check_pairs(labels, pairs, same):
    """The invariants of one_positive_one_negative; returns the positive and negative partner of each anchor."""
    labels = np.asarray(labels)
    n = len(labels)
    values, counts = np.unique(labels, return_counts=True)
    singletons = set(values[counts == 1])
    assert pairs.dtype.kind == "i" and pairs.shape == (len(same), 2)
    assert set(np.unique(same)) <= {0, 1}
    anchors, partners = pairs[:, 0], pairs[:, 1]
    # anchors in order: image i's pairs come before image i+1's, positive first
    assert list(anchors) == sorted(anchors)
    positive = {a: b for a, b, s in zip(anchors, partners, same) if s == 1}
    negative = {a: b for a, b, s in zip(anchors, partners, same) if s == 0}
    assert np.bincount(anchors[same == 0], minlength=n).tolist() == [1] * n
    expected_positive = [0 if labels[i] in singletons else 1 for i in range(n)]
    assert np.bincount(anchors[same == 1], minlength=n).tolist() == expected_positive
    for a, b in positive.items():
        assert a != b and labels[a] == labels[b]
    for a, b in negative.items():
        assert labels[a] != labels[b]
    return positive, negative


# --- one_positive_one_negative --------------------------------------------------------------------------------


def test_one_positive_one_negative_per_image():
    labels = np.array([2, 0, 1, 0, 2, 1, 1, 0, 2, 2])
    pairs, same = one_positive_one_negative(labels, np.random.default_rng(0))
    assert len(pairs) == 20 and same.sum() == 10
    check_pairs(labels, pairs, same)
    # interleaved: pair 2i is image i's positive, pair 2i+1 its negative
    np.testing.assert_array_equal(pairs[:, 0], np.repeat(np.arange(10), 2))
    np.testing.assert_array_equal(same, np.tile([1, 0], 10))


def test_one_positive_one_negative_is_seeded():
    labels = np.repeat(np.arange(5), 7)
    first = one_positive_one_negative(labels, np.random.default_rng(42))
    again = one_positive_one_negative(labels, np.random.default_rng(42))
    other = one_positive_one_negative(labels, np.random.default_rng(43))
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[0], other[0])


def test_one_positive_one_negative_with_string_labels_and_a_singleton_class():
    labels = np.array(["cat", "dog", "cat", "emu", "dog", "cat"])  # "emu" is alone
    for seed in range(20):
        pairs, same = one_positive_one_negative(labels, np.random.default_rng(seed))
        assert len(pairs) == 11 and same.sum() == 5
        positive, negative = check_pairs(labels, pairs, same)
        assert 3 not in positive and 3 in negative
        assert positive[1] == 4 and positive[4] == 1  # "dog" has only one possible partner


def test_one_positive_one_negative_two_images_two_classes():
    pairs, same = one_positive_one_negative([5, 9], np.random.default_rng(0))
    np.testing.assert_array_equal(pairs, [[0, 1], [1, 0]])
    np.testing.assert_array_equal(same, [0, 0])


def test_one_positive_one_negative_needs_two_classes():
    with pytest.raises(SiameseError, match="at least 2 classes"):
        one_positive_one_negative([1, 1, 1], np.random.default_rng(0))


def test_one_positive_one_negative_partners_are_uniform():
    # classes of 6, 4 and 10 images, interleaved so that class order differs from index order
    rng_labels = np.random.default_rng(7)
    labels = rng_labels.permutation(np.repeat([0, 1, 2], [6, 4, 10]))
    n, draws = len(labels), 3000
    rng = np.random.default_rng(1)
    counts_pos = np.zeros((n, n))
    counts_neg = np.zeros((n, n))
    for _ in range(draws):
        pairs, same = one_positive_one_negative(labels, rng)
        np.add.at(counts_pos, (pairs[same == 1, 0], pairs[same == 1, 1]), 1)
        np.add.at(counts_neg, (pairs[same == 0, 0], pairs[same == 0, 1]), 1)
    worst = 0.0
    for i in range(n):
        same_class = (labels == labels[i]) & (np.arange(n) != i)
        for counts, allowed in ((counts_pos[i], same_class), (counts_neg[i], labels != labels[i])):
            assert counts[~allowed].sum() == 0  # never self, never the wrong kind
            observed = counts[allowed]
            expected = draws / allowed.sum()
            statistic = ((observed - expected) ** 2 / expected).sum()
            # p = 1e-5 per row: 40 rows pass by chance; a biased choice (e.g. always the next image,
            # or one partner missing) gives statistics in the thousands
            assert statistic < chi2.ppf(1 - 1e-5, allowed.sum() - 1), (i, observed)
            worst = max(worst, statistic / chi2.ppf(0.5, allowed.sum() - 1))
    assert worst > 0  # the check looked at real counts


# --- all_pairs ------------------------------------------------------------------------------------------------


def test_all_pairs_hand_case():
    pairs, same = all_pairs(np.array(["a", "a", "b", "b"]))
    np.testing.assert_array_equal(pairs, [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]])
    np.testing.assert_array_equal(same, [1, 0, 0, 0, 0, 1])
    assert same.dtype == np.int64


def test_all_pairs_counts():
    labels = np.repeat([0, 1, 2], [3, 4, 5])
    pairs, same = all_pairs(labels)
    assert len(pairs) == 12 * 11 // 2 == 66
    assert same.sum() == 3 + 6 + 10
    assert (pairs[:, 0] < pairs[:, 1]).all()
    assert len({tuple(p) for p in pairs}) == 66


def test_all_pairs_cap():
    labels = np.zeros(5)
    assert len(all_pairs(labels, limit=10)[0]) == 10  # exactly at the cap is allowed
    with pytest.raises(SiameseError, match="5 images gives 10 pairs, over the cap of 9"):
        all_pairs(labels, limit=9)
    with pytest.raises(SiameseError, match="over the cap of 2,000,000"):
        all_pairs(np.zeros(2001))  # 2,001,000 pairs, refused before any allocation
    assert MAX_ALL_PAIRS == 2_000_000


# --- ClassBalancedSampler -------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sampler_batches_hold_p_distinct_classes_of_k(seed):
    labels = np.repeat(np.arange(6), 10)  # 10 is not a multiple of K: queues run out mid-batch
    sampler = ClassBalancedSampler(labels, classes_per_batch=3, images_per_class=4, seed=seed)
    assert sampler.batch_size == 12 and len(sampler) == 5
    for _ in range(6):
        epoch = sampler.epoch()
        assert epoch.shape == (5, 12) and epoch.dtype == np.int64
        for batch in epoch:
            blocks = labels[batch].reshape(3, 4)
            assert (blocks == blocks[:, :1]).all()  # each block of K is one class
            assert len(set(blocks[:, 0])) == 3  # P distinct classes
            assert len(set(batch)) == 12  # classes of >= K images never repeat an image in a batch


def test_sampler_with_string_labels_and_batches_per_epoch():
    labels = np.array(["x", "y", "z"] * 4)
    sampler = ClassBalancedSampler(labels, 2, 2, seed=1, batches_per_epoch=7)
    epoch = sampler.epoch()
    assert epoch.shape == (7, 4) and len(sampler) == 7
    for batch in epoch:
        assert labels[batch[0]] == labels[batch[1]] != labels[batch[2]] == labels[batch[3]]


def test_sampler_is_seeded_by_seed_and_epoch():
    labels = np.repeat(np.arange(8), 9)
    a = ClassBalancedSampler(labels, 4, 3, seed=5)
    b = ClassBalancedSampler(labels, 4, 3, seed=5)
    c = ClassBalancedSampler(labels, 4, 3, seed=6)
    np.testing.assert_array_equal(a.epoch(0), b.epoch(0))
    np.testing.assert_array_equal(a.epoch(1), b.epoch(1))  # the second epoch too
    np.testing.assert_array_equal(a.epoch(1), a.epoch(1))  # an epoch replays by its number
    assert not np.array_equal(a.epoch(0), c.epoch(0))
    assert not np.array_equal(a.epoch(0), a.epoch(1))  # epochs differ from each other


def test_sampler_deals_each_class_without_repeats_until_exhausted():
    labels = np.repeat(np.arange(10), 20)
    sampler = ClassBalancedSampler(labels, 5, 4, seed=3)
    epochs = [sampler.epoch(e) for e in range(3)]
    # over one epoch most images appear (drawing K at random would cover ~63%)
    assert all(len(np.unique(e)) >= 0.75 * len(labels) for e in epochs)
    # within an epoch each class deals a permutation of its images before any image comes round again
    for epoch in epochs:
        stream = epoch.ravel()
        for c in range(10):
            dealt = stream[labels[stream] == c]
            for start in range(0, len(dealt) - 20 + 1, 20):
                assert len(set(dealt[start : start + 20])) == 20


def test_sampler_caps_p_at_the_number_of_classes():
    labels = np.repeat([0, 1, 2], 5)
    sampler = ClassBalancedSampler(labels, classes_per_batch=10, images_per_class=2, seed=0)
    assert sampler.classes_per_batch == 3 and sampler.batch_size == 6
    for batch in sampler.epoch():
        assert sorted(labels[batch][::2]) == [0, 1, 2]


def test_sampler_class_smaller_than_k_repeats_images():
    labels = np.array([0, 0] + [1] * 10 + [2] * 10)
    sampler = ClassBalancedSampler(labels, 3, 4, seed=0)
    for batch in sampler.epoch():
        small = batch[labels[batch] == 0]
        assert len(small) == 4
        # two images dealt twice: each queue pass holds both before reshuffling
        assert sorted(small[:2]) == [0, 1] and sorted(small[2:]) == [0, 1]


def test_sampler_prefers_large_classes():
    labels = np.array([0] * 5 + [1] * 5 + [2] * 5 + [3] * 45)
    sampler = ClassBalancedSampler(labels, 2, 2, seed=0, batches_per_epoch=200)
    chosen = np.bincount(labels[sampler.epoch()[:, ::2]].ravel(), minlength=4)
    assert chosen[3] > 150 and chosen[:3].max() < 100


@pytest.mark.parametrize(
    "labels, p, k, message",
    [
        ([0, 0, 0, 0], 2, 2, "at least 2 classes; received 1"),
        ([0, 0, 1, 1], 1, 2, "classes_per_batch=1"),
        ([0, 0, 1, 1], 2, 1, "images_per_class=1"),
        ([0, 0, 1, 1], 0, 0, "classes_per_batch=0, images_per_class=0"),
    ],
)
def test_sampler_rejects_bad_arguments(labels, p, k, message):
    with pytest.raises(SiameseError, match=message):
        ClassBalancedSampler(labels, p, k)


# --- PyDatasets -----------------------------------------------------------------------------------------------


def array_attributes(dataset):
    return {name: value for name, value in vars(dataset).items() if isinstance(value, np.ndarray)}


def test_pair_batches_shapes_dtypes_and_contents():
    images = np.random.default_rng(0).integers(0, 256, (20, 6, 5, 1), dtype=np.uint8)
    labels = np.repeat(np.arange(4), 5)
    batches = PairBatches(images, labels, batch_size=6, seed=0)
    assert len(batches) == 7  # 40 pairs in batches of 6
    (a, b), same = batches[0]
    assert a.shape == b.shape == (6, 6, 5, 1) and a.dtype == b.dtype == np.uint8
    assert same.shape == (6,) and same.dtype == np.float32
    np.testing.assert_array_equal(a, images[batches.pairs[:6, 0]])
    np.testing.assert_array_equal(b, images[batches.pairs[:6, 1]])
    np.testing.assert_array_equal(same, labels[batches.pairs[:6, 0]] == labels[batches.pairs[:6, 1]])
    (a, b), same = batches[6]
    assert len(a) == len(b) == len(same) == 4  # the last batch holds the remainder
    everything = np.concatenate([batches[i][1] for i in range(len(batches))])
    assert everything.sum() == 20 and len(everything) == 40


def test_pair_batches_redraw_pairs_each_epoch():
    images = np.zeros((30, 4, 4, 1), np.uint8)
    labels = np.repeat(np.arange(3), 10)
    batches = PairBatches(images, labels, batch_size=8, seed=1)
    before = batches.pairs.copy()
    batches.on_epoch_end()
    assert batches.pairs.shape == before.shape == (60, 2)
    assert not np.array_equal(batches.pairs, before)
    assert batches.same.sum() == 30
    # the same seed replays the same sequence of epochs
    replay = PairBatches(images, labels, batch_size=8, seed=1)
    np.testing.assert_array_equal(replay.pairs, before)


def test_pair_batches_unshuffled_keep_the_seed_order():
    labels = np.repeat(np.arange(3), 4)
    batches = PairBatches(np.zeros((12, 2, 2, 1), np.uint8), labels, batch_size=4, shuffle=False)
    np.testing.assert_array_equal(batches.pairs[:, 0], np.repeat(np.arange(12), 2))
    np.testing.assert_array_equal(batches.same, np.tile([1.0, 0.0], 12))


def test_pair_batches_hold_indices_not_images():
    images = np.zeros((40, 8, 8, 1), np.uint8)
    batches = PairBatches(images, np.repeat(np.arange(4), 10), batch_size=4, seed=0)
    assert batches.images is images  # no copy of the image array
    arrays = array_attributes(batches)
    assert set(arrays) == {"images", "labels", "pairs", "same"}
    assert batches.pairs.dtype.kind == "i" and batches.pairs.shape == (80, 2)
    for name, value in arrays.items():
        if name != "images":
            assert value.ndim <= 2 and value.nbytes < images.nbytes, name


def test_class_balanced_batches_shapes_and_epochs():
    images = np.random.default_rng(0).integers(0, 256, (60, 5, 5, 3), dtype=np.uint8)
    labels = np.repeat(np.arange(6), 10)
    batches = ClassBalancedBatches(images, labels, classes_per_batch=3, images_per_class=4, seed=0)
    assert len(batches) == 5
    x, y = batches[2]
    assert x.shape == (12, 5, 5, 3) and x.dtype == np.uint8
    assert y.shape == (12,) and y.dtype == np.int32
    np.testing.assert_array_equal(x, images[batches.index[2]])
    blocks = y.reshape(3, 4)
    assert (blocks == blocks[:, :1]).all() and len(set(blocks[:, 0])) == 3
    before = batches.index.copy()
    batches.on_epoch_end()
    assert batches.index.shape == before.shape and not np.array_equal(batches.index, before)
    assert batches.images is images
    arrays = array_attributes(batches)
    assert set(arrays) == {"images", "labels", "index"} and batches.index.dtype.kind == "i"


@pytest.mark.parametrize("n, count", [(8, 10), (8, 28), (8, 100), (2, 5), (1000, 100)])
def test_random_pairs_never_repeat_and_are_all_pairs_when_few(n, count):
    from keras_siamese.inference.random_pairs import draw_pairs

    pairs = draw_pairs(n, count, seed=3)
    unordered = {frozenset(map(int, pair)) for pair in pairs}
    assert len(pairs) == min(count, n * (n - 1) // 2) == len(unordered)
    assert all(len(pair) == 2 for pair in unordered) and pairs.min() >= 0 and pairs.max() < n
    np.testing.assert_array_equal(pairs, draw_pairs(n, count, seed=3))

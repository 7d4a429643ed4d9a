"""ImageSet construction, pixel conversion, stratified splits and trainability checks."""

import numpy as np
import pytest

from keras_siamese.data.dataset import (
    ImageSet,
    Splits,
    check_trainable,
    concatenate,
    pairable_split,
    stratified_split,
    to_uint8,
)
from keras_siamese.errors import SiameseError


def blank(n, size=2, channels=1):
    return np.zeros((n, size, size, channels), np.uint8)


# --- ImageSet.from_arrays -------------------------------------------------------------------------------------


def test_from_arrays_maps_string_labels_to_sorted_codes():
    labels = ["dog", "cat", "dog", "emu", "cat"]
    images = ImageSet.from_arrays(blank(5), labels)
    assert images.class_names == ["cat", "dog", "emu"]
    assert images.labels.dtype == np.int64
    np.testing.assert_array_equal(images.labels, [1, 0, 1, 2, 0])
    assert [images.class_names[c] for c in images.labels] == labels
    assert images.num_classes == 3
    np.testing.assert_array_equal(images.class_counts(), [2, 2, 1])


def test_from_arrays_maps_non_contiguous_integer_labels():
    labels = np.array([100, 3, 7, 3, 100, 100])
    images = ImageSet.from_arrays(blank(6), labels)
    assert images.class_names == ["3", "7", "100"]  # numeric order, not string order
    np.testing.assert_array_equal(images.labels, [2, 0, 1, 0, 2, 2])
    np.testing.assert_array_equal(images.class_counts(), [2, 1, 3])


def test_from_arrays_adds_channel_axis_and_default_ids():
    images = ImageSet.from_arrays(np.zeros((3, 4, 5), np.uint8), [0, 1, 0], source="demo")
    assert images.images.shape == (3, 4, 5, 1)
    assert images.image_shape == (4, 5, 1)
    assert list(images.ids) == ["demo:0", "demo:1", "demo:2"]
    assert len(images) == 3


def test_from_arrays_keeps_given_ids():
    images = ImageSet.from_arrays(blank(2), ["a", "b"], ids=["x.png", "y.png"])
    assert list(images.ids) == ["x.png", "y.png"]


def test_from_arrays_scales_unit_floats_to_bytes():
    floats = np.array([0.0, 0.5, 1.0, 0.2]).reshape(1, 2, 2, 1)
    images = ImageSet.from_arrays(floats, [0])
    assert images.images.dtype == np.uint8
    np.testing.assert_array_equal(images.images.ravel(), [0, 128, 255, 51])


def test_from_arrays_keeps_float_pixels_already_in_byte_range():
    floats = np.array([0.0, 2.0, 254.6, 300.0]).reshape(1, 2, 2, 1)
    np.testing.assert_array_equal(ImageSet.from_arrays(floats, [0]).images.ravel(), [0, 2, 255, 255])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_from_arrays_rejects_non_finite_pixels(bad):
    images = np.zeros((2, 2, 2, 1))
    images[1, 0, 0, 0] = bad
    with pytest.raises(SiameseError, match="NaN or infinite"):
        ImageSet.from_arrays(images, [0, 1])


def test_from_arrays_rejects_bad_shapes():
    with pytest.raises(SiameseError, match="shape"):
        ImageSet.from_arrays(np.zeros((4, 4), np.uint8), [0, 1, 2, 3])
    with pytest.raises(SiameseError, match="one-dimensional"):
        ImageSet.from_arrays(blank(2), [[0], [1]])
    with pytest.raises(SiameseError, match="differ in length"):
        ImageSet.from_arrays(blank(3), [0, 1])


def test_to_uint8_integers_are_clipped_16_bit_scaled_and_uint8_untouched():
    np.testing.assert_array_equal(to_uint8(np.array([-5, 0, 1, 255])), [0, 0, 1, 255])
    # above 255 the values are taken as 16-bit: 65535 / 257 = 255, 257 / 257 = 1
    np.testing.assert_array_equal(to_uint8(np.array([0, 257, 32896, 65535], np.uint16)), [0, 1, 128, 255])
    raw = np.array([1, 2, 3], np.uint8)
    assert to_uint8(raw) is raw
    with pytest.raises(SiameseError, match="numeric"):
        to_uint8(np.array(["a", "b"]))


def test_subset_keeps_every_class_name_and_concatenate_round_trips():
    images = ImageSet.from_arrays(np.arange(6 * 4).reshape(6, 2, 2, 1), ["a", "a", "b", "b", "c", "c"])
    part = images.subset([0, 1, 3])
    assert part.class_names == ["a", "b", "c"]
    np.testing.assert_array_equal(part.class_counts(), [2, 1, 0])
    whole = concatenate([images.subset([0, 1, 2]), images.subset([3, 4, 5])])
    np.testing.assert_array_equal(whole.images, images.images)
    np.testing.assert_array_equal(whole.labels, images.labels)
    assert list(whole.ids) == list(images.ids)


def test_splits_lookup_by_name():
    images = ImageSet.from_arrays(blank(4), [0, 0, 1, 1])
    splits = Splits(images.subset([0, 2]), images.subset([1]), images.subset([3]))
    assert len(splits.split("train")) == 2 and len(splits.split("val")) == 1 and splits.split("test") is splits.test
    with pytest.raises(SiameseError, match="unknown split 'dev'"):
        splits.split("dev")


# --- stratified_split -----------------------------------------------------------------------------------------


def test_stratified_split_exact_counts_per_class():
    # class 0: 10 images -> 3 held; class 1: 5 -> round(1.5) = 2 held; class 2: 2 -> round(0.6) = 1 held
    labels = np.array([0] * 10 + [1] * 5 + [2] * 2)
    kept, held = stratified_split(labels, 0.3, seed=0)
    np.testing.assert_array_equal(np.bincount(labels[held], minlength=3), [3, 2, 1])
    np.testing.assert_array_equal(np.bincount(labels[kept], minlength=3), [7, 3, 1])
    # a partition of all indices, each part sorted
    np.testing.assert_array_equal(np.sort(np.concatenate([kept, held])), np.arange(len(labels)))
    assert list(kept) == sorted(kept) and list(held) == sorted(held)


def test_stratified_split_handles_interleaved_labels():
    labels = np.array([2, 0, 1, 0, 2, 1, 0, 2, 1, 0, 2, 1])  # four of each
    kept, held = stratified_split(labels, 0.5, seed=3)
    np.testing.assert_array_equal(np.bincount(labels[held]), [2, 2, 2])
    np.testing.assert_array_equal(np.bincount(labels[kept]), [2, 2, 2])


def test_stratified_split_is_deterministic_per_seed_and_varies_with_seed():
    labels = np.repeat(np.arange(4), 25)
    first = stratified_split(labels, 0.2, seed=11)
    again = stratified_split(labels, 0.2, seed=11)
    other = stratified_split(labels, 0.2, seed=12)
    np.testing.assert_array_equal(first[1], again[1])
    np.testing.assert_array_equal(first[0], again[0])
    assert not np.array_equal(first[1], other[1])
    np.testing.assert_array_equal(np.bincount(labels[other[1]]), [5, 5, 5, 5])


def test_stratified_split_respects_keep():
    labels = np.array([0] * 3 + [1] * 2 + [2] * 10)
    kept, held = stratified_split(labels, 0.9, seed=0, keep=2)
    # class 0: round(2.7)=3 capped to 3-2=1; class 1: capped to 0; class 2: round(9)=9 capped to 8
    np.testing.assert_array_equal(np.bincount(labels[held], minlength=3), [1, 0, 8])
    np.testing.assert_array_equal(np.bincount(labels[kept], minlength=3), [2, 2, 2])


def test_a_pairable_split_gives_each_class_none_or_at_least_two_and_keeps_two():
    labels = np.array([0] * 3 + [1] * 4 + [2] * 5 + [3] * 7 + [4] * 8 + [5] * 20)
    kept, held = pairable_split(labels, 0.2, seed=0)
    # round(0.2 n) = 1, 1, 1, 1, 2, 4: a single image becomes 2 where 2 remain (4, 5, 7 images), else none (3)
    np.testing.assert_array_equal(np.bincount(labels[held], minlength=6), [0, 2, 2, 2, 2, 4])
    np.testing.assert_array_equal(np.bincount(labels[kept], minlength=6), [3, 2, 3, 5, 6, 16])
    assert stratified_split(labels, 0.2, seed=0, keep=2)[1].size == 10  # one each where round(0.2 n) = 1


def test_stratified_split_edge_fractions_and_empty():
    labels = np.array([0, 0, 1, 1, 1])
    kept, held = stratified_split(labels, 0.0, seed=0)
    assert len(held) == 0 and len(kept) == 5
    kept, held = stratified_split(labels, 1.0, seed=0)
    assert len(kept) == 0 and len(held) == 5
    kept, held = stratified_split(np.array([], np.int64), 0.5, seed=0)
    assert len(kept) == 0 and len(held) == 0


# --- check_trainable ------------------------------------------------------------------------------------------


def test_check_trainable_accepts_two_classes_of_two():
    check_trainable(ImageSet.from_arrays(blank(4), ["a", "a", "b", "b"]), "train")


def test_check_trainable_rejects_a_single_class():
    with pytest.raises(SiameseError, match=r"the training split has 1 class\(es\)"):
        check_trainable(ImageSet.from_arrays(blank(3), ["a", "a", "a"]), "the training split")


def test_check_trainable_rejects_single_class_left_after_subset():
    images = ImageSet.from_arrays(blank(4), ["a", "a", "b", "b"]).subset([0, 1])
    assert images.num_classes == 2  # names kept, but only one class present
    with pytest.raises(SiameseError, match="has 1 class"):
        check_trainable(images, "val")


def test_check_trainable_names_the_class_with_one_image():
    images = ImageSet.from_arrays(blank(5), ["ant", "ant", "bee", "cow", "cow"])
    with pytest.raises(SiameseError, match=r"class 'bee' in train has only 1 image"):
        check_trainable(images, "train")


def test_check_trainable_ignores_absent_classes():
    images = ImageSet.from_arrays(blank(5), ["a", "a", "b", "b", "c"]).subset([0, 1, 2, 3])
    check_trainable(images, "train")  # "c" has 0 images here, which is fine

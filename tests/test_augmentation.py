"""RandomAffine: the training augmentation's shift, rotation and zoom in one warp (every backend)."""

import keras
import numpy as np
import pytest

from keras_siamese.models.layers import RandomAffine

pytestmark = pytest.mark.core


def bar_images(n=6):
    """n copies of a 28x28 image, black but for a white 8x4 bar centred at (13.5, 13.5)."""
    images = np.zeros((n, 28, 28, 1), "float32")
    images[:, 10:18, 12:16] = 255.0
    return images


def warp(layer, images):
    return keras.ops.convert_to_numpy(layer(images, training=True))


def centroid(image):
    return np.argwhere(image[..., 0] > 127).mean(axis=0)


def test_outside_training_and_with_zero_ranges_the_images_pass_unchanged():
    images = bar_images()
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(RandomAffine(seed=0)(images)), images)
    np.testing.assert_allclose(warp(RandomAffine(shift=0, rotation=0, zoom=0), images), images, atol=1e-3)


def test_shifts_move_the_bar_within_the_range_and_differ_between_images():
    shifted = warp(RandomAffine(shift=0.25, rotation=0, zoom=0, seed=1), bar_images())
    moves = np.array([centroid(image) for image in shifted]) - 13.5
    assert np.abs(moves).max() <= 0.25 * 28 + 0.5  # at most a quarter of the side, up to rounding
    assert len({tuple(np.round(m, 1)) for m in moves}) == len(moves)


def test_rotations_and_zooms_turn_about_the_centre():
    images = bar_images()
    for layer in (RandomAffine(shift=0, rotation=0.25, zoom=0, seed=2), RandomAffine(shift=0, rotation=0, zoom=0.3,
                                                                                      seed=2)):
        warped = warp(layer, images)
        for image in warped:
            np.testing.assert_allclose(centroid(image), [13.5, 13.5], atol=0.75)
        assert not np.allclose(warped, images)
    rotated = warp(RandomAffine(shift=0, rotation=0.25, zoom=0, seed=2), images)
    np.testing.assert_allclose(rotated.sum(axis=(1, 2, 3)), images.sum(axis=(1, 2, 3)), rtol=0.05)  # no scaling


def test_the_same_seed_draws_the_same_warps_and_the_config_round_trips():
    images = bar_images()
    layer = RandomAffine(shift=0.1, rotation=0.05, zoom=0.1, seed=3, name="augmentation")
    again = RandomAffine.from_config(layer.get_config())
    np.testing.assert_allclose(warp(layer, images), warp(again, images), atol=1e-4)
    assert again.name == "augmentation" and again.get_config()["zoom"] == 0.1

"""Embedding images in every input form, and distances from embeddings (every backend)."""

import re

import numpy as np
import pytest

from keras_siamese import SiameseError, embed
from keras_siamese.data.folder import read_images
from keras_siamese.inference.embedding import default_batch_size, pair_distances
from keras_siamese.models import SiameseModel, build_tower
from keras_siamese.numeric import EPSILON

pytestmark = pytest.mark.core


@pytest.fixture(scope="module")
def model():
    """An untrained model on 16x17 greyscale images: embedding needs no training."""
    return SiameseModel(build_tower("small", (16, 17, 1), 8, normalize=True))


def test_embed_accepts_paths_single_images_and_grey_batches(model, image_folder):
    files = sorted((image_folder / "circle").iterdir())[:2]
    from_paths = embed(model, files)
    assert from_paths.shape == (2, 8) and from_paths.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(from_paths, axis=1), 1.0, rtol=1e-5)  # the tower normalises
    pixels = read_images(files, (16, 17), 1)
    np.testing.assert_allclose(embed(model, pixels), from_paths, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(embed(model, files[0]), from_paths[:1], rtol=1e-5, atol=1e-6)  # one path
    np.testing.assert_allclose(embed(model, pixels[0]), from_paths[:1], rtol=1e-5, atol=1e-6)  # (H, W, 1)
    np.testing.assert_allclose(embed(model, pixels[..., 0]), from_paths, rtol=1e-5, atol=1e-6)  # (N, H, W)
    np.testing.assert_allclose(embed(model, pixels / 255.0), from_paths, rtol=1e-4, atol=1e-5)  # floats
    np.testing.assert_allclose(embed(model.tower, pixels), from_paths, rtol=1e-5, atol=1e-6)  # the tower alone
    assert embed(model, pixels[:0]).shape == (0, 8)
    with pytest.raises(SiameseError, match="the model takes"):
        embed(model, np.zeros((2, 8, 8, 1), np.uint8))


def test_lists_of_pil_images_arrays_and_paths_of_any_size_are_read_as_files_are(model, image_folder, tmp_path):
    from PIL import Image

    files = sorted((image_folder / "circle").iterdir())[:2]
    expected = embed(model, files)
    picture = Image.open(files[0])
    big = picture.resize((40, 30))
    big.save(tmp_path / "big.png")
    as_file = embed(model, [tmp_path / "big.png"])
    np.testing.assert_allclose(embed(model, big), as_file, rtol=1e-5, atol=1e-6)  # a PIL image of another size
    np.testing.assert_allclose(embed(model, [np.asarray(big), files[1]]), np.concatenate([as_file, expected[1:]]),
                               rtol=1e-5, atol=1e-6)  # an array of another size beside a path
    np.testing.assert_allclose(embed(model, [picture.convert("RGB")]), expected[:1], rtol=1e-5, atol=1e-6)


def test_pil_images_are_decoded_as_their_files_are(model, tmp_path):
    """16-bit grey, transparency and EXIF orientation: a PIL image opened from a file embeds as that file."""
    from PIL import Image

    digit = np.zeros((16, 17), np.uint8)
    digit[3:13, 6:9] = 200
    Image.fromarray(digit.astype(np.uint16) * 257).save(tmp_path / "wide.png")
    rgba = np.asarray(Image.fromarray(digit).convert("RGBA")).copy()
    rgba[8:, :, 3] = 0  # the bottom half transparent: white, as files are read
    Image.fromarray(rgba).save(tmp_path / "clear.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned: to be shown rotated 90 degrees
    Image.fromarray(digit).convert("RGB").resize((34, 32)).save(tmp_path / "turned.jpg", exif=exif, quality=100)
    for name in ("wide.png", "clear.png", "turned.jpg"):
        np.testing.assert_allclose(embed(model, [Image.open(tmp_path / name)]), embed(model, [tmp_path / name]),
                                   rtol=1e-5, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("images, fragment", [
    (None, "received NoneType of shape ()"), (3, "received int of shape ()"), ([np.zeros((4, 4, 2))], "(H, W, 1 or 3)"),
    (np.zeros((16, 17, 3)), "an array of shape (16, 17, 3) reads as 16 images of shape (17, 3, 1); the model takes "
                            "(16, 17, 1) (an image of another size or colour is converted when given in a list"),
])
def test_what_is_not_an_image_is_named(model, images, fragment):
    with pytest.raises(SiameseError, match=re.escape(fragment)):
        embed(model, images)


def test_compare_and_distances_take_a_model_file(model, tmp_path):
    from keras_siamese import compare, distances, save_model

    path = save_model(model, tmp_path / "model.keras")
    a, b = np.zeros((16, 17), np.uint8), np.full((16, 17), 200, np.uint8)
    expected = float(np.linalg.norm(embed(model, a) - embed(model, b)))
    assert compare(path, a, b)["distance"] == pytest.approx(expected, rel=1e-5)
    assert distances(str(path), [a], [b]) == pytest.approx([expected], rel=1e-5)


def test_a_model_file_embeds_and_other_models_or_batch_sizes_are_refused(model, tmp_path):
    from keras_siamese import save_model

    save_model(model, tmp_path / "m.keras")
    pixels = np.zeros((3, 16, 17, 1), np.uint8)
    np.testing.assert_allclose(embed(str(tmp_path / "m.keras"), pixels), embed(model, pixels), rtol=1e-5, atol=1e-6)
    with pytest.raises(SiameseError, match="model must be a SiameseModel"):
        embed(42, pixels)
    with pytest.raises(SiameseError, match="batch_size must be a positive integer; received -1"):
        embed(model, pixels, batch_size=-1)


def test_batches_do_not_change_embeddings(model, tiny_arrays):
    images = np.pad(tiny_arrays[0], ((0, 0), (0, 4), (0, 5), (0, 0)))  # 12x12 to the model's 16x17
    np.testing.assert_allclose(embed(model, images, batch_size=5), embed(model, images), rtol=1e-5, atol=1e-6)


def test_pair_distances_by_hand_with_the_model_clamp():
    embeddings = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 1.0]], np.float32)
    pairs = np.array([[0, 1], [1, 2], [2, 2]])
    np.testing.assert_allclose(pair_distances(embeddings, pairs), [5.0, np.sqrt(18.0), np.sqrt(EPSILON)], rtol=1e-6)
    assert pair_distances(embeddings, np.zeros((0, 2), int)).shape == (0,)


def test_default_batch_size_follows_the_image_area():
    assert default_batch_size((28, 28, 1)) == 1024
    assert default_batch_size((64, 64, 3)) == 256
    assert default_batch_size((224, 224, 3)) == 16


def test_one_grey_image_for_a_colour_model_is_named_not_a_numpy_error():
    colour = SiameseModel(build_tower("seed", (16, 17, 3), 8))
    with pytest.raises(SiameseError, match=r"an array of shape \(16, 17\) reads as 16 images of shape \(17,\); "
                                           r"the model takes \(16, 17, 3\)"):
        embed(colour, np.zeros((16, 17), np.uint8))
    assert embed(colour, [np.zeros((16, 17), np.uint8)]).shape == (1, 8)  # in a list it is converted


def test_a_bare_tower_embeds_but_cannot_compare_calibrate_recenter_or_evaluate():
    import keras_siamese as ks

    model = SiameseModel(build_tower("seed", (12, 12, 1), 4), threshold=1.0)
    images = np.zeros((6, 12, 12, 1), np.uint8)
    labels = np.array([0, 0, 1, 1, 2, 2])
    assert ks.embed(model.tower, images).shape == (6, 4)
    for call in (lambda: ks.compare(model.tower, images[0], images[1]),
                 lambda: ks.calibrate(model.tower, (images, labels)),
                 lambda: ks.recenter(model.tower, images),
                 lambda: ks.evaluate(model.tower, (images, labels))):
        with pytest.raises(SiameseError, match=r"received a bare tower \(Functional\), which has no threshold"):
            call()
    assert model.threshold == 1.0 and not hasattr(model.tower, "threshold")  # nothing was half-changed

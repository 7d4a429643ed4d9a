"""Recentering a model's embeddings on images of new classes (`siamese calibrate --recenter`)."""

import gc

import keras
import numpy as np
import pytest

import keras_siamese as ks
from conftest import error_line, synthetic_images
from keras_siamese.cli import console, main
from keras_siamese.data.dataset import ImageSet
from keras_siamese.errors import SiameseError
from keras_siamese.gallery.fingerprint import model_fingerprint
from keras_siamese.models.layers import Recenter
from keras_siamese.models.siamese import SiameseModel

pytestmark = pytest.mark.core
NAMES = np.array(["a", "b", "c"])


def test_recenter_layer_subtracts_its_centre_and_renormalises():
    layer = Recenter()
    layer.build((None, 2))
    x = np.array([[1.0, 0.0], [0.0, 1.0]], "float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x)), x)  # zero centre: the identity
    layer.center.assign(np.array([0.5, 0.0], "float32"))
    expected = [[1.0, 0.0], [-0.5 / np.sqrt(1.25), 1.0 / np.sqrt(1.25)]]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x)), expected, rtol=1e-6)


@pytest.fixture(scope="module")
def images():
    return synthetic_images(classes=3, per_class=6, size=12)


@pytest.fixture(scope="module")
def model(images):
    """Trained briefly: an untrained tower embeds every image almost alike."""
    x, y = images
    model = ks.train((x, NAMES[y]), output=None, progress=False, epochs=2, batch_size=12, images_per_class=4,
                     embedding_dim=8).model
    model.info["note"] = "kept"
    return model


def test_recentered_copy_measures_from_the_mean_and_leaves_the_original(model, images, tmp_path):
    x, _ = images
    before = ks.embed(model, x)
    threshold = model.threshold
    recentered = ks.recenter(model, x[:10], features="embedding")

    np.testing.assert_array_equal(ks.embed(model, x), before)  # the original is untouched
    assert model.threshold == threshold
    assert isinstance(recentered.tower.layers[-1], Recenter)
    center = keras.ops.convert_to_numpy(recentered.tower.layers[-1].center)
    np.testing.assert_allclose(center, before[:10].mean(axis=0), atol=1e-6)
    shifted = before - center
    after = ks.embed(recentered, x)
    np.testing.assert_allclose(after, shifted / np.linalg.norm(shifted, axis=1, keepdims=True), atol=1e-5)
    # the old threshold measured other distances: none until calibrated; the training record stays
    assert recentered.threshold is None and recentered.calibration == {}
    assert recentered.info["note"] == "kept"
    assert model_fingerprint(recentered) != model_fingerprint(model)  # its galleries must be rebuilt

    path = ks.save_model(recentered, tmp_path / "recentered.keras")
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(ks.embed(loaded, x), after, atol=1e-6)

    again = ks.recenter(loaded, x[:10], features="embedding")  # replaces the centre rather than stacking a second one
    assert len(again.tower.layers) == len(recentered.tower.layers)
    np.testing.assert_allclose(ks.embed(again, x), after, atol=1e-5)


def test_recenter_takes_a_model_file_a_folder_or_an_images_and_labels_pair(model, images, tmp_path):
    from PIL import Image

    x, y = images
    expected = ks.embed(ks.recenter(model, x[:6]), x)
    (tmp_path / "new").mkdir()
    for i in range(6):
        Image.fromarray(x[i, ..., 0]).save(tmp_path / "new" / f"{i}.png")
    path = ks.save_model(model, tmp_path / "model.keras")
    new = tmp_path / "new"
    for source in (new, str(new), sorted(new.glob("*.png")), (x[:6], y[:6])):
        np.testing.assert_allclose(ks.embed(ks.recenter(path, source), x), expected, atol=1e-5)
    with pytest.raises(SiameseError, match="at least 2 images; received 1"):
        ks.recenter(model, new / "0.png")
    pair_of_files = (str(new / "0.png"), str(new / "1.png"))  # two images, not (images, labels)
    np.testing.assert_allclose(ks.embed(ks.recenter(model, pair_of_files), x),
                               ks.embed(ks.recenter(model, x[:2]), x), atol=1e-5)


def test_recenter_then_calibrate_records_it(model, images):
    x, y = images
    labelled = ImageSet.from_arrays(x, NAMES[y])
    recentered = ks.recenter(model, labelled, features="embedding")  # an ImageSet, as ks.calibrate takes
    ks.calibrate(recentered, labelled)
    assert recentered.threshold is not None and recentered.calibration["recentered"] is True
    assert "recentered" not in model.calibration


def test_recentering_is_refused_where_it_would_change_nothing(model, images):
    x, _ = images
    plain = SiameseModel(ks.build_tower("seed", (12, 12, 1), embedding_dim=4, normalize=False))
    with pytest.raises(SiameseError, match="unit-length embeddings"):
        ks.recenter(plain, x, features="embedding")
    with pytest.raises(SiameseError, match="at least 2 images; received 1"):
        ks.recenter(model, x[:1])
    with pytest.raises(SiameseError, match="at least 2 images; received 1"):
        ks.recenter(model, x[0, ..., 0])  # one (H, W) image: not H of them
    with pytest.raises(SiameseError, match="the 4 images' pooled features are almost alike .* or if they are, "
                                           "recentre the embeddings"):
        ks.recenter(model, np.repeat(x[:1], 4, axis=0))
    with pytest.raises(SiameseError, match="the 4 images' embedding features are almost alike .* new classes$"):
        ks.recenter(model, np.repeat(x[:1], 4, axis=0), features="embedding")


def test_pooled_features_are_the_projections_input_at_unit_length_measured_from_their_mean(model, images, tmp_path):
    x, _ = images
    pooled = ks.recenter(model, x, features="pooled")
    features = ks.embed(keras.Model(model.tower.input, model.tower.get_layer("embedding").input), x)
    features /= np.linalg.norm(features, axis=1, keepdims=True)
    shifted = features - features.mean(axis=0)
    expected = shifted / np.linalg.norm(shifted, axis=1, keepdims=True)
    np.testing.assert_allclose(ks.embed(pooled, x), expected, rtol=1e-4, atol=1e-5)
    saved = ks.load_model(ks.save_model(pooled, tmp_path / "pooled.keras"))
    np.testing.assert_allclose(ks.embed(saved, x), expected, rtol=1e-4, atol=1e-5)
    again = ks.recenter(pooled, x[::2], features="pooled")  # measured again on other images: still pooled
    assert again.tower.output_shape == pooled.tower.output_shape != model.tower.output_shape
    plain = SiameseModel(ks.build_tower("seed", (12, 12, 1), embedding_dim=4, normalize=False))
    assert ks.embed(ks.recenter(plain, x, features="pooled"), x).shape == (len(x), 64)  # no unit length needed
    with pytest.raises(SiameseError, match="features must be one of embedding, pooled; received 'gap'"):
        ks.recenter(model, x, features="gap")


def test_calibrate_recenter_on_the_command_line(trained, tmp_path, capsys):
    folder, path = trained
    copy = tmp_path / "model.keras"
    assert main(["calibrate", "--model", str(path), "--data", str(folder), "--recenter", "embedding", "--output",
                 str(copy), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "recentered on the mean embedding of 24 images" in captured.out
    assert "note: 3 of the 3 classes recentered on were trained on" in captured.err  # the training folder
    calibrated = ks.load_model(copy)
    assert isinstance(calibrated.tower.layers[-1], Recenter)
    assert calibrated.calibration["recentered"] is True and calibrated.threshold is not None
    assert "recentered" not in ks.load_model(path).calibration
    a, b = sorted((folder / "circle").iterdir())[:2]
    assert main(["compare", "--model", str(copy), str(a), str(b)]) == 0


def test_calibrate_recenter_takes_pooled_features_by_default_on_the_command_line(trained, tmp_path, capsys):
    folder, path = trained
    copy = tmp_path / "model.keras"
    assert main(["calibrate", "--model", str(path), "--data", str(folder), "--recenter", "--output", str(copy),
                 "--quiet"]) == 0  # pooled, the default
    assert "recentered on the mean pooled features of 24 images" in capsys.readouterr().out
    calibrated = ks.load_model(copy)
    assert isinstance(calibrated.tower.layers[-1], Recenter) and calibrated.threshold is not None
    assert calibrated.tower.output_shape[-1] != ks.load_model(path).tower.output_shape[-1]


def test_calibrate_recenter_refuses_a_model_without_unit_length_before_reading_images(tmp_path, capsys):
    path = ks.save_model(SiameseModel(ks.build_tower("seed", (12, 12, 1), embedding_dim=4)), tmp_path / "m.keras")
    missing = tmp_path / "no-such-folder"
    assert main(["calibrate", "--model", str(path), "--data", str(missing), "--recenter", "embedding",
                 "--output", str(tmp_path / "new.keras")]) == 2
    assert "unit-length embeddings" in error_line(capsys)
    assert main(["calibrate", "--model", str(path), "--data", str(missing), "--recenter"]) == 2
    assert "--recenter makes a model for new classes: give it an --output" in error_line(capsys)
    before = path.read_bytes()
    for same in (path, tmp_path / ".." / tmp_path.name / "m.keras"):  # the trained model, however spelled
        assert main(["calibrate", "--model", str(path), "--data", str(missing), "--recenter", "--output",
                     str(same)]) == 2
        assert "an --output other than --model" in error_line(capsys) and path.read_bytes() == before
    assert main(["calibrate", "--model", str(path), "--output", str(tmp_path / "NEW.KERAS")]) == 2
    assert "--output" in error_line(capsys) and not (tmp_path / "NEW.KERAS").exists()


def test_a_recentred_copy_keeps_its_own_weights():
    model = SiameseModel(ks.build_tower("small", (12, 12, 1), embedding_dim=4))
    images = np.random.default_rng(0).integers(0, 255, (8, 12, 12, 1), dtype=np.uint8)
    copy = ks.recenter(model, images)
    before = ks.embed(copy, images)
    for weight in model.tower.weights:  # the original trains on, or is changed
        weight.assign(np.zeros(weight.shape, weight.dtype))
    np.testing.assert_allclose(ks.embed(copy, images), before, rtol=1e-6, atol=1e-6)
    again = ks.recenter(copy, images)  # a pooled copy recentred again keeps its kind
    with pytest.raises(ks.SiameseError, match="recentred on its pooled features"):
        ks.recenter(again, images, features="embedding")


def test_console_script_returns_the_command_status(tmp_path, capsys):
    try:
        assert console(["calibrate", "--model", str(tmp_path / "missing.keras")]) == 2
    finally:
        gc.unfreeze()
    assert "missing.keras" in error_line(capsys)

"""Recentering a model's embeddings on images of new classes (`siamese calibrate --recenter`)."""

import keras
import numpy as np
import pytest

import keras_siamese as ks
from conftest import synthetic_images
from keras_siamese.cli import main
from keras_siamese.errors import SiameseError
from keras_siamese.gallery.fingerprint import model_fingerprint
from keras_siamese.models.layers import Recenter
from keras_siamese.models.siamese import SiameseModel

pytestmark = pytest.mark.core


def test_recenter_layer_subtracts_its_centre_and_renormalises():
    layer = Recenter()
    layer.build((None, 2))
    x = np.array([[1.0, 0.0], [0.0, 1.0]], "float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x)), x)  # zero centre: the identity
    layer.center.assign(np.array([0.5, 0.0], "float32"))
    expected = [[1.0, 0.0], [-0.5 / np.sqrt(1.25), 1.0 / np.sqrt(1.25)]]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x)), expected, rtol=1e-6)


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    tower = ks.build_tower("small", (12, 12, 1), embedding_dim=8, normalize=True)
    return SiameseModel(tower, threshold=0.7, calibration={"rule": "accuracy"}, info={"note": "kept"})


def test_recentered_copy_measures_from_the_mean_and_leaves_the_original(model, tmp_path):
    x, _ = synthetic_images(classes=3, per_class=6, size=12)
    before = ks.embed(model, x)
    recentered = ks.recenter(model, x[:10])

    np.testing.assert_array_equal(ks.embed(model, x), before)  # the original is untouched
    assert isinstance(recentered.tower.layers[-1], Recenter)
    center = keras.ops.convert_to_numpy(recentered.tower.layers[-1].center)
    np.testing.assert_allclose(center, before[:10].mean(axis=0), atol=1e-6)
    shifted = before - center
    expected = shifted / np.linalg.norm(shifted, axis=1, keepdims=True)
    after = ks.embed(recentered, x)
    np.testing.assert_allclose(after, expected, atol=1e-5)
    assert model_fingerprint(recentered) != model_fingerprint(model)  # its galleries must be rebuilt
    assert (recentered.threshold, recentered.calibration, recentered.info) == (0.7, {"rule": "accuracy"},
                                                                               {"note": "kept"})

    path = ks.save_model(recentered, tmp_path / "recentered.keras")
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(ks.embed(loaded, x), after, atol=1e-6)

    again = ks.recenter(loaded, x[:10])  # replaces the centre rather than stacking a second one
    assert len(again.tower.layers) == len(recentered.tower.layers)
    np.testing.assert_allclose(ks.embed(again, x), after, atol=1e-5)


def test_recentering_is_refused_where_it_would_change_nothing(model):
    x, _ = synthetic_images(classes=2, per_class=2, size=12)
    plain = SiameseModel(ks.build_tower("seed", (12, 12, 1), embedding_dim=4, normalize=False))
    with pytest.raises(SiameseError, match="unit-length embeddings"):
        ks.recenter(plain, x)
    with pytest.raises(SiameseError, match="at least 2 images; received 1"):
        ks.recenter(model, x[:1])


def test_calibrate_recenter_on_the_command_line(trained, tmp_path, capsys):
    folder, path = trained
    copy = tmp_path / "model.keras"
    assert main(["calibrate", "--model", str(path), "--data", str(folder), "--recenter", "--output", str(copy),
                 "--quiet"]) == 0
    assert "recentered on the mean embedding of 24 images" in capsys.readouterr().out
    calibrated = ks.load_model(copy)
    assert isinstance(calibrated.tower.layers[-1], Recenter)
    assert calibrated.calibration["recentered"] is True
    assert "recentered" not in ks.load_model(path).calibration
    a, b = sorted((folder / "circle").iterdir())[:2]
    assert main(["compare", "--model", str(copy), str(a), str(b)]) == 0

"""Layers, towers and the Siamese model: shapes, gradients, serialisation (every backend)."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_siamese.errors import SiameseError
from keras_siamese.inference.model_io import load_model, save_model
from keras_siamese.models import EuclideanDistance, L2Normalize, SiameseModel, build_tower

pytestmark = pytest.mark.core


def test_euclidean_distance_values_and_shape():
    a = np.array([[0.0, 0.0], [1.0, 1.0]], "float32")
    b = np.array([[3.0, 4.0], [1.0, 1.0]], "float32")
    d = ops.convert_to_numpy(EuclideanDistance()([a, b]))
    assert d.shape == (2, 1)
    assert d[0, 0] == pytest.approx(5.0)
    assert d[1, 0] == pytest.approx(np.sqrt(1e-7))  # clamped, not zero


def test_identical_inputs_give_finite_gradients():
    tower = build_tower("seed", (8, 8, 1), 4)
    model = SiameseModel(tower)
    model.compile(optimizer="adam", loss="mse")
    x = np.random.default_rng(0).integers(0, 255, (4, 8, 8, 1)).astype("uint8")
    model.fit([x, x], np.zeros(4, "float32"), epochs=1, verbose=0)
    weights = np.concatenate([np.ravel(w) for w in model.get_weights()])
    assert np.isfinite(weights).all()


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_l2_normalize_in_half_precision_keeps_zero_and_tiny_vectors_finite(dtype):
    x = np.array([[0.0, 0.0], [1e-4, 1e-4], [3.0, 4.0]], np.float32)
    out = ops.convert_to_numpy(ops.cast(L2Normalize(dtype=dtype)(x), "float32"))
    assert np.isfinite(out).all()  # float16: 1e-12 rounds to 0, and (1e-4)^2 too: 0/0 and x/0 before
    np.testing.assert_allclose(out, [[0, 0], [2 ** -0.5, 2 ** -0.5], [0.6, 0.8]], atol=1e-2)


def test_l2_normalize_gives_unit_rows():
    x = np.array([[3.0, 4.0], [0.0, 2.0]], "float32")
    np.testing.assert_allclose(ops.convert_to_numpy(L2Normalize()(x)), [[0.6, 0.8], [0.0, 1.0]], rtol=1e-6)


def test_seed_tower_matches_the_tutorial():
    tower = build_tower("seed", (28, 28, 1), 48)
    kinds = [type(layer).__name__ for layer in tower.layers]
    assert kinds == [
        "InputLayer", "Rescaling", "Conv2D", "MaxPooling2D", "Dropout", "Conv2D", "MaxPooling2D", "Dropout",
        "GlobalAveragePooling2D", "Dense",
    ]
    convs = [layer for layer in tower.layers if isinstance(layer, keras.layers.Conv2D)]
    assert all(c.filters == 64 and c.kernel_size == (2, 2) and c.padding == "same" for c in convs)
    assert all(layer.rate == 0.3 for layer in tower.layers if isinstance(layer, keras.layers.Dropout))
    assert tower.output_shape == (None, 48)


@pytest.mark.parametrize("preset", ["seed", "small", "small-grid"])
def test_towers_embed_to_the_requested_size(preset):
    tower = build_tower(preset, (20, 24, 3), 16, normalize=True)
    out = ops.convert_to_numpy(tower(np.zeros((2, 20, 24, 3), "float32")))
    assert out.shape == (2, 16)


@pytest.mark.parametrize("shape, grid", [((28, 28, 1), (3, 3)), ((64, 48, 3), (3, 3)), ((12, 8, 1), (3, 1)),
                                         ((8, 8, 1), (1, 1))])
def test_grid_tower_pools_the_last_features_over_a_3x3_grid(shape, grid):
    """3 x 3 cells for any image size; a side of the feature map shorter than 3 is averaged whole."""
    tower = build_tower("small-grid", shape, 8)
    pooled = [layer for layer in tower.layers if isinstance(layer, keras.layers.AveragePooling2D)][-1]
    assert tuple(pooled.output.shape[1:3]) == grid


def test_grid_cells_of_a_7x7_map_are_the_hand_counted_windows():
    """From 28x28 images the last map is 7x7; its cells average rows and columns 0-2, 2-4 and 4-6."""
    tower = build_tower("small-grid", (28, 28, 1), 8)
    pooled = [layer for layer in tower.layers if isinstance(layer, keras.layers.AveragePooling2D)][-1]
    features = np.random.default_rng(0).normal(size=(2, 7, 7, 128)).astype("float32")
    cells = ops.convert_to_numpy(pooled(features))
    for i, rows in enumerate([(0, 3), (2, 5), (4, 7)]):
        for j, cols in enumerate([(0, 3), (2, 5), (4, 7)]):
            expected = features[:, rows[0]:rows[1], cols[0]:cols[1]].mean(axis=(1, 2))
            np.testing.assert_allclose(cells[:, i, j], expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kwargs, message", [
    (dict(tower="vgg"), "tower='vgg'"),
    (dict(embedding_dim=0), "embedding_dim=0"),
    (dict(input_shape=(28, 28, 2)), "1 or 3 channels"),
    (dict(tower="mobilenet-v3-small", input_shape=(28, 28, 1)), "at least 32x32"),
    (dict(weights="imagenet"), "application towers"),
])
def test_bad_tower_arguments_name_the_value(kwargs, message):
    settings = dict(tower="small", input_shape=(28, 28, 1), embedding_dim=8) | kwargs
    with pytest.raises(ValueError, match=message):
        build_tower(**settings)


@pytest.mark.parametrize("spelling", ["mobilenet-v3-small", "mobilenet_v3_small"])
def test_application_tower_builds_with_random_weights(spelling):
    tower = build_tower(spelling, (32, 32, 1), 8)
    assert ops.convert_to_numpy(tower(np.zeros((1, 32, 32, 1), "float32"))).shape == (1, 8)


def test_imagenet_weights_that_cannot_be_downloaded_are_one_clear_error(monkeypatch):
    from keras.src.utils import file_utils

    def offline(*args, **kwargs):  # what Keras raises for a failed download
        raise Exception("URL fetch failure on https://storage.googleapis.com/x.h5: None -- [Errno -2] Name or "
                        "service not known")

    monkeypatch.setattr(file_utils, "get_file", offline)
    with pytest.raises(SiameseError, match=r"could not load the imagenet weights of mobilenet-v3-small \(URL "
                                           r"fetch failure .*\); Keras downloads them once"):
        build_tower("mobilenet-v3-small", (32, 32, 3), 8, weights="imagenet")


def test_model_file_round_trip_keeps_threshold_and_outputs(tmp_path):
    tower = build_tower("small", (12, 12, 1), 8, normalize=True)
    model = SiameseModel(tower, threshold=0.42, calibration={"rule": "accuracy", "accuracy": 0.9})
    x = np.random.default_rng(1).integers(0, 255, (3, 12, 12, 1)).astype("uint8")
    before = ops.convert_to_numpy(model([x, x[::-1]]))
    path = save_model(model, tmp_path / "model.keras")
    loaded = keras.saving.load_model(path, safe_mode=True)  # plain Keras, safe mode
    assert isinstance(loaded, SiameseModel)
    assert loaded.threshold == pytest.approx(0.42)
    assert loaded.calibration == {"rule": "accuracy", "accuracy": 0.9}
    np.testing.assert_allclose(ops.convert_to_numpy(loaded([x, x[::-1]])), before, rtol=1e-5, atol=1e-6)
    assert load_model(path).input_image_shape == (12, 12, 1)


def test_a_tower_of_variable_size_or_feature_maps_is_refused():
    import keras

    from keras_siamese import SiameseError, SiameseModel

    image = keras.Input((12, 12, 1))
    with pytest.raises(SiameseError, match=r"tower must output one embedding vector per image, \(N, D\); its "
                                           r"output is \(None, 10, 10, 4\)"):
        SiameseModel(keras.Model(image, keras.layers.Conv2D(4, 3)(image)))
    free = keras.Input((None, None, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(free))
    with pytest.raises(SiameseError, match=r"tower must take images of a fixed size .*its input is "
                                           r"\(None, None, None, 3\)"):
        SiameseModel(keras.Model(free, pooled))

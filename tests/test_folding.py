"""Batch norm folded into the layer before it for inference: same embeddings, fewer layers."""

import keras
import numpy as np
import pytest
from keras import layers

import keras_siamese as ks
from keras_siamese.inference.folding import fold_batch_norm, inference_tower
from keras_siamese.models.siamese import SiameseModel

pytestmark = pytest.mark.core


def with_random_statistics(tower, seed=0):
    """Give every batch-norm layer non-trivial scale, shift and moving statistics."""
    rng = np.random.default_rng(seed)
    for layer in tower.layers:
        if isinstance(layer, layers.BatchNormalization):
            channels = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 2, channels), rng.normal(size=channels),
                               rng.normal(size=channels), rng.uniform(0.2, 3, channels)])
    return tower


def images(count=6, shape=(12, 12, 1)):
    return np.random.default_rng(1).integers(0, 256, (count, *shape)).astype("uint8")


def batch_norms(model):
    return [layer for layer in model.layers if isinstance(layer, layers.BatchNormalization)]


@pytest.mark.parametrize("tower", ["small", "small-grid"])
def test_folded_tower_embeds_as_the_tower_does_without_batch_norm_layers(tower):
    model = SiameseModel(with_random_statistics(ks.build_tower(tower, (12, 12, 1), 8, normalize=True)))
    x = images()
    folded = inference_tower(model)
    assert folded is not model.tower and not batch_norms(folded) and len(batch_norms(model.tower)) == 3
    np.testing.assert_allclose(ks.embed(model, x), model.tower.predict(x, verbose=0), atol=2e-6)


def test_dense_then_batch_norm_folds_by_hand():
    """y = gamma (x w + b - mean) / sqrt(var + eps) + beta, with w = 2, b = 1, gamma = 3, beta = -1,
    mean = 0.5, var = 3.99, eps = 0.01: y = 1.5 (2x + 0.5) - 1 = 3x - 0.25."""
    inputs = keras.Input((1,))
    dense = layers.Dense(1)
    norm = layers.BatchNormalization(epsilon=0.01)
    tower = keras.Model(inputs, norm(dense(inputs)))
    dense.set_weights([np.array([[2.0]]), np.array([1.0])])
    norm.set_weights([np.array([3.0]), np.array([-1.0]), np.array([0.5]), np.array([3.99])])
    folded = fold_batch_norm(tower)
    assert [type(layer) for layer in folded.layers[1:]] == [layers.Dense]
    kernel, bias = folded.layers[1].get_weights()
    np.testing.assert_allclose([kernel[0, 0], bias[0]], [3.0, -0.25], rtol=1e-6)


def test_folded_copy_follows_changed_weights_and_leaves_the_tower_alone(tmp_path):
    model = SiameseModel(with_random_statistics(ks.build_tower("small", (12, 12, 1), 8, normalize=True)))
    x = images()
    ks.embed(model, x)
    first = inference_tower(model)
    assert inference_tower(model) is first  # cached while the weights stay
    norm = batch_norms(model.tower)[0]
    norm.moving_mean.assign(norm.moving_mean + 1.0)
    assert inference_tower(model) is not first
    np.testing.assert_allclose(ks.embed(model, x), model.tower.predict(x, verbose=0), atol=2e-6)
    # the tower's own graph is untouched (one call per layer, as `recenter` reads it) and saves as before
    assert all(len(layer._inbound_nodes) == 1 for layer in model.tower.layers)
    assert model.tower.layers[-1].input is model.tower.layers[-2].output
    loaded = keras.saving.load_model(ks.save_model(model, tmp_path / "m.keras"))
    assert len(loaded.tower.layers) == len(model.tower.layers)


def test_towers_with_nothing_to_fold_are_used_as_they_are():
    seed = SiameseModel(ks.build_tower("seed", (12, 12, 1), 4))  # no batch norm
    assert inference_tower(seed) is seed.tower

    inputs = keras.Input((12, 12, 1))
    conv = layers.Conv2D(4, 3, activation="relu")(inputs)  # batch norm after a non-linearity cannot fold
    after_activation = keras.Model(inputs, layers.GlobalAveragePooling2D()(layers.BatchNormalization()(conv)))
    assert inference_tower(SiameseModel(after_activation)) is after_activation

    features = layers.Conv2D(4, 3)(inputs)  # a branch: not a chain of layers
    branched = keras.Model(inputs, layers.Concatenate()([
        layers.GlobalAveragePooling2D()(layers.BatchNormalization()(features)),
        layers.GlobalMaxPooling2D()(features)]))
    assert inference_tower(SiameseModel(branched)) is branched

    bare = ks.build_tower("small", (12, 12, 1), 4)
    assert inference_tower(bare) is bare  # training embeds its bare tower with new weights every epoch


def test_batch_norm_folds_across_max_pooling_only_where_every_scale_is_positive():
    model = SiameseModel(with_random_statistics(ks.build_tower("small", (12, 12, 1), 8, normalize=True)))
    chain = model.tower.layers
    pooled = [layer for before, layer in zip(chain, chain[1:])
              if isinstance(before, layers.MaxPooling2D) and isinstance(layer, layers.BatchNormalization)]
    assert len(pooled) == 2  # the small tower pools before its first two batch norms
    x = images()
    assert not batch_norms(inference_tower(model))
    gamma = np.array(keras.ops.convert_to_numpy(pooled[0].gamma))
    gamma[0] = -gamma[0]  # max(-a, -b) != -max(a, b): this layer must stay
    pooled[0].gamma.assign(gamma)
    folded = inference_tower(model)
    assert len(batch_norms(folded)) == 1
    np.testing.assert_allclose(ks.embed(model, x), model.tower.predict(x, verbose=0), atol=2e-6)

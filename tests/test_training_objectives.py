"""What each `loss` trains: the objective's model, its loss and its head (every backend)."""

import keras
import numpy as np
import pytest

from keras_siamese.models import SiameseModel, build_tower
from keras_siamese.training.config import make_config
from keras_siamese.training.objectives import build_objective

pytestmark = pytest.mark.core


def test_pair_losses_augment_both_images_when_asked():
    siamese = SiameseModel(build_tower("seed", (12, 12, 1), 4))
    for augment, expected in ((True, True), (False, False)):
        objective = build_objective(siamese, make_config("seed", augment=augment))
        names = [layer.name for layer in objective.model.layers]
        assert ("augmentation" in names) is expected and objective.takes_pairs


def test_bce_is_cross_entropy_of_a_sigmoid_of_the_model_distance():
    siamese = SiameseModel(build_tower("seed", (12, 12, 1), 4))
    objective = build_objective(siamese, make_config(loss="bce", augment=False))
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 255, (2, 6, 12, 12, 1)).astype("uint8")
    b[0] = a[0]  # one identical pair: the smallest distance
    d = keras.ops.convert_to_numpy(siamese([a, b]))
    p = keras.ops.convert_to_numpy(objective.model([a, b]))
    # the head starts at p(same) = sigmoid(1 - d): closer pairs more likely the same, whatever the seed
    np.testing.assert_allclose(p, 1.0 / (1.0 + np.exp(d - 1.0)), rtol=1e-5)
    assert p[0, 0] == p.max() > 0.5
    same = np.array([[1.0], [0.0], [1.0], [0.0], [0.0], [1.0]], "float32")
    expected = -np.mean(same * np.log(p) + (1.0 - same) * np.log(1.0 - p))
    assert float(keras.ops.convert_to_numpy(objective.loss(same, p))) == pytest.approx(expected, rel=1e-4)

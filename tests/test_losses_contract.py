"""What every loss in `keras_siamese.losses` promises, checked the same way for each (every backend).

One value per sample (so `reduction` and `sample_weight` work), a config round trip,
a batch without a positive pair, and float16 / bfloat16 inputs.
"""

import importlib
import inspect
import pkgutil

import keras
import numpy as np
import pytest
from keras import ops

from keras_siamese import losses
from keras_siamese.losses.two_view import TwoViewContrastiveLoss, two_view_contrastive

pytestmark = pytest.mark.core

# Six unit vectors at angles 0, 20, 90, 110, 200, 220 degrees in three classes; no
# two are equal, so no distance sits at the clamp.
ANGLES = np.radians([0.0, 20.0, 90.0, 110.0, 200.0, 220.0])
EMBEDDINGS = np.stack([np.cos(ANGLES), np.sin(ANGLES)], 1).astype("float32")
LABELS = np.array([0, 0, 1, 1, 2, 2], "int32")
DISTINCT = np.arange(6, dtype="int32")  # every image its own class: no positive pair
# Two views of each image: the second turned by 10 degrees.
TURNED = ANGLES + np.radians(10.0)
VIEWS = np.stack([EMBEDDINGS, np.stack([np.cos(TURNED), np.sin(TURNED)], 1)], 1).astype("float32")
# The pair loss takes (same, distance) per pair instead.
SAME = np.array([1, 0, 1, 0, 0, 1], "float32")
DISTANCES = np.array([[0.2], [0.5], [1.4], [0.9], [1.7], [0.1]], "float32")

# loss, (y_true, y_pred), the batch without positives, and its per-sample values (by hand below)
CASES = {
    "contrastive": (losses.ContrastiveLoss(margin=1.2), (SAME, DISTANCES), (np.zeros(6, "float32"), DISTANCES),
                    # all pairs different: max(1.2 - d, 0)^2
                    [1.0, 0.49, 0.0, 0.09, 0.0, 1.21]),
    "in_batch": (losses.InBatchContrastiveLoss(margin=0.8), (LABELS, EMBEDDINGS), (DISTINCT, EMBEDDINGS),
                 None),  # negatives only: checked against the function below
    "supervised_contrastive": (losses.SupervisedContrastiveLoss(0.5), (LABELS, EMBEDDINGS), (DISTINCT, EMBEDDINGS),
                               [0.0] * 6),
    "triplet_batch_hard": (losses.TripletLoss(1.0, "batch_hard"), (LABELS, EMBEDDINGS), (DISTINCT, EMBEDDINGS),
                           [0.0] * 6),
    "triplet_semi_hard": (losses.TripletLoss(1.0, "semi_hard"), (LABELS, EMBEDDINGS), (DISTINCT, EMBEDDINGS),
                          [0.0] * 6),
    # each image's other view is always a positive; with no shared class the supervised term is the
    # self-supervised one, so the loss is (1 + ssl_weight) x the self-supervised term alone
    "two_view": (TwoViewContrastiveLoss(0.5, ssl_weight=0.5), (LABELS, VIEWS), (DISTINCT, VIEWS),
                 1.5 * ops.convert_to_numpy(two_view_contrastive(DISTINCT, VIEWS, 0.5, ssl_weight=0.0))),
}


def numpy(x):
    return ops.convert_to_numpy(ops.cast(x, "float32"))


def test_every_loss_class_has_a_case():
    modules = [importlib.import_module(f"{losses.__name__}.{m.name}") for m in pkgutil.iter_modules(losses.__path__)]
    classes = {obj for module in modules for _, obj in inspect.getmembers(module, inspect.isclass)
               if issubclass(obj, keras.losses.Loss) and obj.__module__ == module.__name__}
    assert {type(case[0]) for case in CASES.values()} == classes


@pytest.mark.parametrize("name", CASES)
def test_config_round_trip(name):
    loss, inputs, _, _ = CASES[name]
    clone = keras.losses.deserialize(keras.losses.serialize(loss))
    assert type(clone) is type(loss) and clone.get_config() == loss.get_config()
    assert numpy(clone(*inputs)) == pytest.approx(float(numpy(loss(*inputs))), rel=1e-6)


@pytest.mark.parametrize("name", CASES)
def test_one_value_per_sample_so_reduction_and_sample_weight_apply(name):
    loss, inputs, _, _ = CASES[name]
    config = loss.get_config()
    values = numpy(type(loss).from_config({**config, "reduction": None})(*inputs))
    assert values.shape == (6,) and np.isfinite(values).all() and (values >= 0).all() and values.max() > 0
    assert float(numpy(loss(*inputs))) == pytest.approx(values.mean(), rel=1e-5)
    summed = type(loss).from_config({**config, "reduction": "sum"})(*inputs)
    assert float(numpy(summed)) == pytest.approx(values.sum(), rel=1e-5)
    weights = np.array([1.0, 0.0, 2.0, 0.5, 0.0, 1.0], "float32")
    weighted = loss(*inputs, sample_weight=weights)
    assert float(numpy(weighted)) == pytest.approx((weights * values).mean(), rel=1e-5)


@pytest.mark.parametrize("name", CASES)
def test_a_batch_without_positive_pairs(name):
    loss, _, inputs, expected = CASES[name]
    values = numpy(type(loss).from_config({**loss.get_config(), "reduction": None})(*inputs))
    if expected is None:  # in-batch contrastive: its negatives only, max(0.8 - d, 0)^2 averaged over all pairs
        d = np.linalg.norm(EMBEDDINGS[:, None] - EMBEDDINGS[None], axis=2)
        costs = np.where(np.eye(6, dtype=bool), 0.0, np.maximum(0.8 - d, 0.0) ** 2)
        expected = 6 * costs.sum(axis=1) / 30
    np.testing.assert_allclose(values, expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("name", CASES)
def test_half_precision_inputs(name, dtype):
    loss, (y_true, y_pred), _, _ = CASES[name]
    full = numpy(loss.call(y_true, y_pred))
    half = ops.cast(y_pred, dtype)
    # through the plain function (no conversion), and through the Keras loss (which converts to its dtype)
    np.testing.assert_allclose(numpy(loss.call(y_true, half)), full, rtol=2e-2, atol=2e-2)
    assert float(numpy(loss(y_true, half))) == pytest.approx(full.mean(), rel=2e-2, abs=2e-3)

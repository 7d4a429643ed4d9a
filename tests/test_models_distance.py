"""The two Euclidean distances: `keras.ops` (layers, losses) and numpy (host arrays) agree, clamp included."""

import numpy as np
import pytest
from keras import ops

from keras_siamese.metrics import neighbours
from keras_siamese.models import distance
from keras_siamese.numeric import EPSILON

pytestmark = pytest.mark.core


def test_row_distances_by_hand_with_the_clamp():
    a = np.array([[0.0, 0.0], [1.0, 1.0]], "float32")
    b = np.array([[3.0, 4.0], [1.0, 1.0]], "float32")
    np.testing.assert_allclose(ops.convert_to_numpy(distance.euclidean(a, b)), [5.0, np.sqrt(EPSILON)], rtol=1e-6)
    np.testing.assert_allclose(neighbours.euclidean(a, b), [5.0, np.sqrt(EPSILON)], rtol=1e-6)


def test_pairwise_distances_by_hand():
    e = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 1.0]], "float32")
    d = ops.convert_to_numpy(distance.pairwise_euclidean(e))
    expected = [[0, 5, 1], [5, 0, np.sqrt(18)], [1, np.sqrt(18), 0]]
    np.testing.assert_allclose(d, np.maximum(expected, np.sqrt(EPSILON)), rtol=1e-6)


def test_keras_and_numpy_distances_agree():
    rng = np.random.default_rng(0)
    e = rng.normal(size=(12, 5)).astype("float32")
    e[3] = e[7]  # an identical pair: both give sqrt(EPSILON)
    host = neighbours.euclidean(e[:, None, :], e[None, :, :])
    # the |a|^2 + |b|^2 - 2ab form rounds in float32: about 1e-6 on squared distances, 1e-3 near 0
    np.testing.assert_allclose(ops.convert_to_numpy(distance.pairwise_euclidean(e)), host, rtol=1e-5, atol=1e-3)
    rows = ops.convert_to_numpy(distance.euclidean(e[:6], e[6:]))
    np.testing.assert_allclose(rows, host[np.arange(6), np.arange(6, 12)], rtol=1e-6)
    assert host[3, 7] == pytest.approx(np.sqrt(EPSILON))
    ranking = neighbours.squared_distances(e, e)  # |a|^2 + |b|^2 - 2ab, unclamped
    np.testing.assert_allclose(np.sqrt(np.maximum(ranking, EPSILON)), host, rtol=1e-5, atol=1e-3)

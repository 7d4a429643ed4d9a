"""Two-view contrastive loss: supcon over both views plus the self-supervised term, checked by brute force."""

import numpy as np
import pytest
from keras import ops

from keras_siamese.losses.two_view import TwoViewContrastiveLoss, two_view_contrastive

pytestmark = pytest.mark.core


def brute_force(labels, views, temperature, ssl_weight):
    n = len(labels)
    z = np.concatenate([views[:, 0], views[:, 1]]).astype(np.float64)
    logits = z @ z.T / temperature
    np.fill_diagonal(logits, -np.inf)
    log_p = logits - np.log(np.exp(logits).sum(1, keepdims=True))

    def supcon(keys):
        return np.array([-np.mean([log_p[i, j] for j in range(2 * n) if j != i and keys[j] == keys[i]])
                         for i in range(2 * n)])

    classes = [f"c{c}" if c >= 0 else f"u{i}" for i, c in enumerate(labels)] * 2
    per_view = supcon(classes) + ssl_weight * supcon(list(range(n)) * 2)
    return (per_view[:n] + per_view[n:]) / 2


@pytest.mark.parametrize("ssl_weight", [0.0, 1.0, 0.5])
def test_matches_brute_force_with_unlabelled_images(ssl_weight):
    rng = np.random.default_rng(3)
    views = rng.normal(size=(5, 2, 4)).astype("float32")
    views /= np.linalg.norm(views, axis=2, keepdims=True)
    labels = np.array([0, 0, 1, -1, -1])
    got = ops.convert_to_numpy(two_view_contrastive(labels, views, 0.5, ssl_weight))
    np.testing.assert_allclose(got, brute_force(labels, views, 0.5, ssl_weight), rtol=1e-5)


def test_identical_views_of_unlabelled_images_cost_only_their_negatives():
    # two images, each view identical to its twin and orthogonal to the other image:
    # the positive logit is 1/t, the other candidates 0 and 0, so -log(e^(1/t) / (e^(1/t) + 2))
    views = np.array([[[1, 0], [1, 0]], [[0, 1], [0, 1]]], "float32")
    t = 0.5
    expected = -np.log(np.exp(1 / t) / (np.exp(1 / t) + 2))
    got = ops.convert_to_numpy(two_view_contrastive(np.array([-1, -1]), views, t, 0.0))
    np.testing.assert_allclose(got, [expected, expected], rtol=1e-6)


def test_loss_reduces_weights_and_round_trips():
    loss = TwoViewContrastiveLoss(temperature=0.2, ssl_weight=0.3)
    assert TwoViewContrastiveLoss.from_config(loss.get_config()).get_config() == loss.get_config()
    views = np.tile(np.eye(3, dtype="float32")[:, None], (1, 2, 1))
    labels = np.array([0, 1, -1], "float32")
    per_image = ops.convert_to_numpy(TwoViewContrastiveLoss(0.2, 0.3, reduction=None)(labels, views))
    assert per_image.shape == (3,)
    weighted = float(ops.convert_to_numpy(loss(labels, views, sample_weight=np.array([1.0, 0.0, 0.0]))))
    np.testing.assert_allclose(weighted, per_image[0] / 3, rtol=1e-6)
    with pytest.raises(ValueError, match="ssl_weight=-1"):
        TwoViewContrastiveLoss(ssl_weight=-1)

"""Losses checked against numbers worked out by hand (every backend)."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_siamese.losses import (
    ContrastiveLoss,
    InBatchContrastiveLoss,
    TripletLoss,
    anchor_shares,
    batch_hard_triplet,
    contrastive,
    in_batch_contrastive,
    semi_hard_triplet,
)

pytestmark = pytest.mark.core


def value(x):
    return float(ops.convert_to_numpy(x))


def per_anchor(x):
    return ops.convert_to_numpy(x)


def test_contrastive_per_pair_values():
    # same pair at d=0.5: 0.25; different at d=0.25: (1-0.25)^2 = 0.5625; different at d=2: 0
    y = np.array([1.0, 0.0, 0.0])
    d = np.array([[0.5], [0.25], [2.0]], "float32")
    np.testing.assert_allclose(ops.convert_to_numpy(contrastive(y, d)), [0.25, 0.5625, 0.0], rtol=1e-6)
    assert value(ContrastiveLoss()(y, d)) == pytest.approx((0.25 + 0.5625) / 3, rel=1e-6)
    # margin 2: the third pair costs (2-2)^2 = 0, the second (2-0.25)^2 = 3.0625
    assert value(ContrastiveLoss(margin=2.0)(y, d)) == pytest.approx((0.25 + 3.0625) / 3, rel=1e-6)


def test_contrastive_without_reduction_and_config_round_trip():
    loss = ContrastiveLoss(margin=0.7, reduction=None)
    out = ops.convert_to_numpy(loss(np.array([1.0, 0.0]), np.array([[0.2], [0.3]], "float32")))
    np.testing.assert_allclose(out, [0.04, 0.16], rtol=1e-5)
    clone = ContrastiveLoss.from_config(loss.get_config())
    assert clone.margin == 0.7
    assert isinstance(keras.losses.deserialize(keras.losses.serialize(loss)), ContrastiveLoss)


def test_anchor_shares_average_to_the_mean_over_pairs():
    values = np.array([[0.0, 1.0, 2.0], [3.0, 0.0, 5.0], [6.0, 7.0, 0.0]], "float32")
    # anchor 0 has pairs 1 and 2, anchor 1 pair 2, anchor 2 none: 3 pairs, mean (1 + 2 + 5) / 3
    mask = np.array([[0.0, 1.0, 1.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]], "float32")
    shares = per_anchor(anchor_shares(values, mask))
    np.testing.assert_allclose(shares, [3 * (1 + 2) / 3, 3 * 5 / 3, 0.0], rtol=1e-6)
    assert shares.mean() == pytest.approx(8 / 3)
    # equal pair counts: each anchor's own mean
    np.testing.assert_allclose(per_anchor(anchor_shares(values, 1.0 - np.eye(3, dtype="float32"))), [1.5, 4, 6.5])
    np.testing.assert_array_equal(per_anchor(anchor_shares(values, np.zeros((3, 3), "float32"))), [0, 0, 0])


# Four 1-D embeddings: a0=0, a1=0.5 (class 0), b0=0.8, b1=3 (class 1).
# Distances: a0-a1 0.5, a0-b0 0.8, a0-b1 3, a1-b0 0.3, a1-b1 2.5, b0-b1 2.2.
EMB = np.array([[0.0], [0.5], [0.8], [3.0]], "float32")
LAB = np.array([0, 0, 1, 1])


def test_in_batch_contrastive_by_hand():
    # positives (ordered pairs, both directions): d=0.5 twice, d=2.2 twice -> mean d^2 = (0.25+4.84)/2 = 2.545
    # negatives with margin 1: d=0.8 -> 0.04, d=0.3 -> 0.49, d=3, 2.5 -> 0 -> mean over 8 = 0.1325
    # every anchor has 1 positive and 2 negatives, so each gets its own means:
    # a0 0.25 + (0.04+0)/2, a1 0.25 + (0.49+0)/2, b0 4.84 + (0.04+0.49)/2, b1 4.84 + 0
    expected = [0.27, 0.495, 5.105, 4.84]
    np.testing.assert_allclose(per_anchor(in_batch_contrastive(LAB, EMB)), expected, rtol=1e-4)
    assert value(InBatchContrastiveLoss()(LAB, EMB)) == pytest.approx(2.545 + 0.1325, rel=1e-4)
    # pos_margin 1: positives cost max(d-1,0)^2: 0 and 1.44 -> mean 0.72
    assert per_anchor(in_batch_contrastive(LAB, EMB, pos_margin=1.0)).mean() == pytest.approx(0.72 + 0.1325, rel=1e-4)


def test_in_batch_hard_mining_keeps_only_hard_pairs():
    # positives farther than 1: only d=2.2 -> 4.84; negatives closer than 0.5: only d=0.3 -> 0.49
    shares = per_anchor(in_batch_contrastive(LAB, EMB, pos_bound=1.0, neg_bound=0.5))
    assert shares.mean() == pytest.approx(4.84 + 0.49, rel=1e-4)
    # two positive pairs (b0-b1 both ways) and two negative ones (a1-b0 both ways) over 4 anchors
    np.testing.assert_allclose(shares, [0, 4 * 0.49 / 2, 4 * (4.84 / 2 + 0.49 / 2), 4 * 4.84 / 2], rtol=1e-4)


def test_in_batch_losses_with_no_positive_pair_use_negatives_only():
    emb = np.array([[0.0], [0.4], [5.0]], "float32")
    labels = np.array([0, 1, 2])
    # negatives: 0.4 -> 0.36 (both ways), 5 and 4.6 -> 0: mean over 6 = 0.12; no positives -> 0
    np.testing.assert_allclose(per_anchor(in_batch_contrastive(labels, emb)), [0.18, 0.18, 0.0], rtol=1e-4)
    np.testing.assert_array_equal(per_anchor(batch_hard_triplet(labels, emb)), [0, 0, 0])
    np.testing.assert_array_equal(per_anchor(semi_hard_triplet(labels, emb)), [0, 0, 0])


def test_batch_hard_triplet_by_hand():
    # anchor a0: hardest pos 0.5, hardest neg 0.8 -> max(0.5-0.8+1,0)=0.7
    # a1: pos 0.5, neg 0.3 -> 1.2;  b0: pos 2.2, neg 0.3 -> 2.9;  b1: pos 2.2, neg 2.5 -> 0.7
    np.testing.assert_allclose(per_anchor(batch_hard_triplet(LAB, EMB)), [0.7, 1.2, 2.9, 0.7], rtol=1e-4)
    assert value(TripletLoss(mining="batch_hard")(LAB, EMB)) == pytest.approx((0.7 + 1.2 + 2.9 + 0.7) / 4, rel=1e-4)


def test_semi_hard_triplet_by_hand():
    # (a0,a1) d=0.5: negatives of a0 beyond 0.5: 0.8, 3 -> closest 0.8 -> max(0.5-0.8+1,0)=0.7
    # (a1,a0) d=0.5: negatives of a1: 0.3, 2.5; beyond 0.5: 2.5 -> 0.5-2.5+1 -> 0
    # (b0,b1) d=2.2: negatives of b0: 0.8, 0.3; none beyond -> farthest 0.8 -> 2.2-0.8+1 = 2.4
    # (b1,b0) d=2.2: negatives of b1: 3, 2.5; beyond: both -> closest 2.5 -> 2.2-2.5+1 = 0.7
    np.testing.assert_allclose(per_anchor(semi_hard_triplet(LAB, EMB)), [0.7, 0, 2.4, 0.7], rtol=1e-4, atol=1e-6)
    assert value(TripletLoss(mining="semi_hard")(LAB, EMB)) == pytest.approx((0.7 + 0 + 2.4 + 0.7) / 4, rel=1e-4)


@pytest.mark.parametrize("loss", [InBatchContrastiveLoss(margin=0.5, pos_bound=0.1), TripletLoss(0.3, "semi_hard")])
def test_in_batch_loss_config_round_trip(loss):
    clone = keras.losses.deserialize(keras.losses.serialize(loss))
    assert type(clone) is type(loss) and clone.get_config() == loss.get_config()
    assert value(clone(LAB, EMB)) == pytest.approx(value(loss(LAB, EMB)), rel=1e-6)


@pytest.mark.parametrize("make", [lambda: TripletLoss(mining="random"), lambda: ContrastiveLoss(margin=0)])
def test_bad_loss_arguments(make):
    with pytest.raises(ValueError, match="Received"):
        make()


def test_supervised_contrastive_by_hand():
    from keras_siamese.losses.supervised_contrastive import SupervisedContrastiveLoss, supervised_contrastive

    # unit vectors: a0=(1,0), a1=(0.6,0.8) in class 0; b0=(0,1) in class 1. Temperature 1.
    e = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]], "float32")
    labels = np.array([0, 0, 1])
    # anchor a0: sims to a1 0.6, b0 0 -> -log(e^.6 / (e^.6 + e^0)); a1: to a0 0.6, b0 0.8 -> -log(e^.6/(e^.6+e^.8))
    # b0 has no positive and gets 0.
    a0 = -np.log(np.exp(0.6) / (np.exp(0.6) + 1.0))
    a1 = -np.log(np.exp(0.6) / (np.exp(0.6) + np.exp(0.8)))
    np.testing.assert_allclose(per_anchor(supervised_contrastive(labels, e, temperature=1.0)), [a0, a1, 0], rtol=1e-5)
    assert value(SupervisedContrastiveLoss(1.0)(labels, e)) == pytest.approx((a0 + a1) / 3, rel=1e-5)
    np.testing.assert_array_equal(per_anchor(supervised_contrastive(np.array([0, 1, 2]), e)), [0, 0, 0])
    loss = SupervisedContrastiveLoss(0.5)
    assert keras.losses.deserialize(keras.losses.serialize(loss)).temperature == 0.5

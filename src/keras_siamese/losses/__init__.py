"""Losses: pairwise contrastive (the seed's), in-batch contrastive, supervised contrastive, triplet, and the
two-view contrastive loss of the self-supervised term."""

from keras_siamese.losses.contrastive import ContrastiveLoss, contrastive
from keras_siamese.losses.in_batch import InBatchContrastiveLoss, in_batch_contrastive
from keras_siamese.losses.pairwise import anchor_shares, pair_masks
from keras_siamese.losses.supervised_contrastive import SupervisedContrastiveLoss, supervised_contrastive
from keras_siamese.losses.triplet import TripletLoss, batch_hard_triplet, semi_hard_triplet
from keras_siamese.losses.two_view import TwoViewContrastiveLoss, two_view_contrastive

__all__ = [
    "ContrastiveLoss", "contrastive", "InBatchContrastiveLoss", "in_batch_contrastive",
    "anchor_shares", "pair_masks", "SupervisedContrastiveLoss", "supervised_contrastive",
    "TripletLoss", "batch_hard_triplet", "semi_hard_triplet", "TwoViewContrastiveLoss", "two_view_contrastive",
]

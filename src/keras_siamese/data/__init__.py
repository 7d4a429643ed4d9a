"""Data: image sets, named sources, pair sampling and batch feeding."""

from keras_siamese.data.dataset import ImageSet, Splits, stratified_split
from keras_siamese.data.pairs import all_pairs, one_positive_one_negative
from keras_siamese.data.sampler import ClassBalancedSampler
from keras_siamese.data.sources import NAMED_SOURCES, load_splits

__all__ = [
    "ImageSet", "Splits", "stratified_split", "all_pairs", "one_positive_one_negative",
    "ClassBalancedSampler", "NAMED_SOURCES", "load_splits",
]

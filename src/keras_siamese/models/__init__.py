"""Models: embedding towers, distance layers and the Siamese pair model."""

from keras_siamese.models.layers import EuclideanDistance, L2Normalize, Recenter
from keras_siamese.models.siamese import SiameseModel
from keras_siamese.models.towers import TOWERS, build_tower

__all__ = ["EuclideanDistance", "L2Normalize", "Recenter", "SiameseModel", "TOWERS", "build_tower"]

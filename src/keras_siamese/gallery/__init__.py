"""Galleries of known images: enrol, search exactly or approximately, match or `unknown`, save and load."""

from keras_siamese.gallery.fingerprint import model_fingerprint
from keras_siamese.gallery.gallery import APPROXIMATE_FROM, Gallery

__all__ = ["APPROXIMATE_FROM", "Gallery", "model_fingerprint"]

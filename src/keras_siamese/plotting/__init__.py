"""Headless plots (matplotlib, Agg): training history, image pairs, verification, embedding maps.

Every function writes one image atomically and keeps no figure open.
"""

from keras_siamese.plotting.embeddings import plot_embedding_map
from keras_siamese.plotting.history import plot_history
from keras_siamese.plotting.pairs import plot_pairs
from keras_siamese.plotting.verification import plot_distance_histograms, plot_roc

__all__ = ["plot_history", "plot_pairs", "plot_roc", "plot_distance_histograms", "plot_embedding_map"]

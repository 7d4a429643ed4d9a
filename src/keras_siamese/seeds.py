"""Every fixed seed of the library, in one place, and the per-epoch random draws derived from a seed."""

import numpy as np

from keras_siamese.errors import check

MAX_SEED = 2**32 - 1  # the largest seed every backend and numpy accept
DEFAULT_SEED = 42  # `seed` of a training run: its pairs, validation split, batches and initialisation
TEST_SPLIT_SEED = 0  # the test split of a source never depends on `seed`, so train and evaluate agree
EVALUATION_SEED = 0  # evaluation pairs and one-shot episodes
VALIDATION_SEED = 1234  # fixed validation pairs and batches, so epochs compare like with like
CALIBRATION_SEED = 4321  # pairs the threshold is calibrated on


def check_seed(seed, argument="seed"):
    """`seed` as a plain int; InvalidValue unless it is an integer (not a bool) from 0 to MAX_SEED."""
    check(isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and 0 <= seed <= MAX_SEED, argument,
          seed, f"must be an integer from 0 to {MAX_SEED}")
    return int(seed)


def epoch_rng(seed, epoch):
    """The random generator of one epoch's draws: a function of (seed, epoch) alone, so any epoch
    can be replayed (on resume) without replaying the ones before it."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, int(epoch)])

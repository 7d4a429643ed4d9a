"""`train`: data to a calibrated model file, a training plot and a history."""

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from keras_siamese import __version__
from keras_siamese.atomic import atomic_path, write_json
from keras_siamese.data.batches import ClassBalancedBatches, PairBatches
from keras_siamese.data.dataset import ImageSet, Splits, check_trainable, stratified_split
from keras_siamese.data.pairs import one_positive_one_negative
from keras_siamese.data.sources import load_splits
from keras_siamese.errors import SiameseError
from keras_siamese.inference.calibration import calibrate_model
from keras_siamese.losses.contrastive import ContrastiveLoss
from keras_siamese.losses.in_batch import InBatchContrastiveLoss
from keras_siamese.losses.triplet import TripletLoss
from keras_siamese.models.siamese import SiameseModel
from keras_siamese.models.towers import build_tower
from keras_siamese.training.callbacks import ValidationMetrics, refresh_batch_norm
from keras_siamese.training.config import PAIR_LOSSES, TrainConfig, make_config

VALIDATION_PAIR_SEED = 1234  # fixed validation pairs, so epochs compare like with like


@dataclass
class TrainResult:
    """What `train` returns: the model, its per-epoch history and the files written."""

    model: SiameseModel
    history: dict
    config: dict
    paths: dict = field(default_factory=dict)
    seconds: float = 0.0


def resolve_data(data, config, progress):
    """Splits from a source name or folder, a Splits object, or an (images, labels) pair."""
    if isinstance(data, Splits):
        return data
    if isinstance(data, ImageSet) or isinstance(data, tuple):
        images = data if isinstance(data, ImageSet) else ImageSet.from_arrays(*data)
        fit, val = stratified_split(images.labels, config.val_fraction, config.seed, keep=2)
        empty = images.subset(np.zeros(0, np.int64))
        return Splits(images.subset(fit), images.subset(val), empty, {"name": "array", "sizes": {}})
    shape = None
    if config.image_size is not None or config.channels is not None:
        size = config.image_size or (28, 28)
        shape = (*size, config.channels or 1)
    return load_splits(data, config.data_dir, shape, config.seed, config.val_fraction, progress)


def build_training_model(siamese, config):
    """The model `fit` trains, its loss, and whether it takes pairs (True) or labelled images."""
    if config.loss == "contrastive":
        return siamese, ContrastiveLoss(config.margin), True
    if config.loss == "bce":
        a = keras.Input(siamese.input_image_shape)
        b = keras.Input(siamese.input_image_shape)
        probability = keras.layers.Dense(1, activation="sigmoid", name="distance_sigmoid")(siamese([a, b]))
        return keras.Model([a, b], probability), keras.losses.BinaryCrossentropy(), True
    if config.loss == "in-batch":
        loss = InBatchContrastiveLoss(config.margin, config.pos_margin, config.pos_bound, config.neg_bound)
    else:
        loss = TripletLoss(config.margin, config.mining)
    return siamese.tower, loss, False


def make_batches(images, config, pairs, seed, fixed=False):
    if pairs:
        return PairBatches(images.images, images.labels, config.batch_size, seed=seed, shuffle=not fixed)
    per_class = config.images_per_class
    return ClassBalancedBatches(images.images, images.labels, config.batch_size // per_class, per_class, seed=seed)


class _FixedEpochs(keras.utils.PyDataset):
    """A PyDataset frozen to its first epoch (validation must not change between epochs)."""

    def __init__(self, inner):
        super().__init__()
        self.batches = [inner[i] for i in range(len(inner))]

    def __len__(self):
        return len(self.batches)

    def __getitem__(self, i):
        return self.batches[i]


def train(data=None, output="output", recipe="default", progress=True, **settings):
    """Train a Siamese model and write `model.keras`, `training_plot.png`, `history.json`, `config.json`.

    `data` is a source name (`mnist-sample`, `mnist`, `fashion-mnist`), a
    folder of class subfolders, an `(images, labels)` tuple, an ImageSet or a
    Splits; `settings` are TrainConfig fields (see `siamese train --help`).
    `output=None` writes nothing. Returns a TrainResult.
    """
    from keras_siamese.plotting.history import plot_history

    started = time.perf_counter()
    config = make_config(recipe, data=str(data) if isinstance(data, (str, Path)) else None, **settings)
    keras.utils.set_random_seed(config.seed)
    splits = resolve_data(data if data is not None else config.data, config, progress)
    check_trainable(splits.train, "the training split")
    if len(splits.val) and len(np.unique(splits.val.labels)) < 2:
        raise SiameseError("the validation split has fewer than 2 classes; lower --val-fraction to 0 or add images")

    previous_policy = keras.config.dtype_policy()
    if config.mixed_precision:
        keras.config.set_dtype_policy("mixed_bfloat16" if keras.config.backend() != "torch" else "mixed_float16")
    try:
        tower = build_tower(config.tower, splits.train.image_shape, config.embedding_dim, config.normalize, config.weights)
    finally:
        keras.config.set_dtype_policy(previous_policy)
    siamese = SiameseModel(tower, info={"training": config.to_dict(), "version": __version__})
    model, loss, takes_pairs = build_training_model(siamese, config)
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss=loss)

    callbacks, validation = [], None
    if len(splits.val):
        val_pairs, val_same = one_positive_one_negative(splits.val.labels, np.random.default_rng(VALIDATION_PAIR_SEED))
        callbacks.append(ValidationMetrics(tower, splits.val.images, val_pairs, val_same))
        validation = _FixedEpochs(make_batches(splits.val, config, takes_pairs, VALIDATION_PAIR_SEED, fixed=True))
        if config.patience:
            callbacks.append(keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=config.patience, restore_best_weights=True))
    fit = model.fit(
        make_batches(splits.train, config, takes_pairs, config.seed),
        validation_data=validation,
        epochs=config.epochs,
        callbacks=callbacks,
        verbose=(1 if sys.stdout.isatty() else 2) if progress else 0,
    )
    history = {key: [float(v) for v in values] for key, values in fit.history.items()}
    refresh_batch_norm(tower, splits.train.images, seed=config.seed)

    calibration_set = splits.val if len(splits.val) else splits.train
    calibrate_model(siamese, calibration_set, config.calibrate, split="val" if len(splits.val) else "train")
    seconds = time.perf_counter() - started
    record = {
        "settings": config.to_dict(),
        "data": splits.source,
        "backend": keras.config.backend(),
        "keras_siamese_version": __version__,
        "keras_version": keras.__version__,
        "epochs_run": len(history.get("loss", [])),
        "train_seconds": round(seconds, 2),
        "threshold": siamese.threshold,
        "calibration": siamese.calibration,
    }
    siamese.info = {"training": record["settings"], "data": splits.source, "version": __version__}
    result = TrainResult(siamese, history, record, seconds=seconds)
    if output is not None:
        result.paths = write_outputs(Path(output), siamese, history, record, plot_history)
    return result


def write_outputs(folder, model, history, record, plot_history):
    """Write the four training outputs, each atomically; returns their paths."""
    paths = {
        "model": folder / "model.keras",
        "plot": folder / "training_plot.png",
        "history": folder / "history.json",
        "config": folder / "config.json",
    }
    with atomic_path(paths["model"]) as tmp:
        model.save(tmp)
    plot_history(history, paths["plot"])
    write_json(paths["history"], history)
    write_json(paths["config"], record)
    return paths

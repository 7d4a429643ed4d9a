"""`train`: data to a calibrated model file, a training plot and a history."""

import contextlib
import dataclasses
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from keras_siamese import __version__
from keras_siamese.atomic import atomic_path, write_json
from keras_siamese.data.batches import ClassBalancedBatches, PairBatches
from keras_siamese.data.dataset import ImageSet, Splits, check_trainable, concatenate, stratified_split
from keras_siamese.data.sources import load_splits
from keras_siamese.errors import SiameseError
from keras_siamese.inference.calibration import calibrate_model
from keras_siamese.losses.contrastive import ContrastiveLoss
from keras_siamese.losses.in_batch import InBatchContrastiveLoss
from keras_siamese.losses.supervised_contrastive import SupervisedContrastiveLoss
from keras_siamese.losses.triplet import TripletLoss
from keras_siamese.models.siamese import SiameseModel
from keras_siamese.models.towers import build_tower
from keras_siamese.training.callbacks import TRAINING_EMBED_BATCH, ValidationMetrics, refresh_batch_norm
from keras_siamese.training.config import PAIR_LOSSES, make_config

VALIDATION_SEED = 1234  # fixed validation pairs and batches, so epochs compare like with like


@dataclass
class TrainResult:
    """What `train` returns: the model, its per-epoch history, the run record (config.json) and the files."""

    model: SiameseModel
    history: dict
    record: dict
    paths: dict = field(default_factory=dict)
    seconds: float = 0.0


def source_name(data):
    """What config.json records as the data: the source name or folder, or "array" for in-memory data."""
    if data is None or isinstance(data, (str, Path)):
        return None if data is None else str(data)
    return "array"


def can_form_both_pair_kinds(labels):
    """True when `labels` hold two classes and a class with two images."""
    counts = np.unique(labels, return_counts=True)[1]
    return len(counts) >= 2 and counts.max() >= 2


def resolve_data(data, config, progress):
    """Splits from a source name or folder, a Splits object, or an (images, labels) pair."""
    if isinstance(data, Splits):
        return data
    if isinstance(data, ImageSet) or isinstance(data, tuple):
        images = data if isinstance(data, ImageSet) else ImageSet.from_arrays(*data)
        fit, val = stratified_split(images.labels, config.val_fraction, config.seed, keep=2)
        empty = images.subset([])
        return Splits(images.subset(fit), images.subset(val), empty, {"name": "array", "sizes": {}})
    shape = (*(config.image_size or (None, None)), config.channels)
    return load_splits(data, config.data_dir, shape, config.seed, config.val_fraction, progress)


@dataclass
class Objective:
    """What `fit` trains (`model`, `loss`), whether it takes image pairs or labelled images, the
    head (bce's learned sigmoid) that turns distances into the loss's input, and the tower."""

    model: keras.Model
    loss: keras.losses.Loss
    takes_pairs: bool
    tower: keras.Model
    head: keras.layers.Layer | None = None


def build_objective(siamese, config):
    """The training model and loss for `config.loss`; towers train directly for in-batch losses."""
    shape = siamese.input_image_shape
    if config.loss in PAIR_LOSSES:
        a, b = keras.Input(shape), keras.Input(shape)
        if config.augment:
            augment = augmentation()
            distance = siamese([augment(a), augment(b)])
        else:
            distance = siamese([a, b])
        if config.loss == "contrastive":
            return Objective(keras.Model([a, b], distance), ContrastiveLoss(config.margin), True, siamese.tower)
        # p(same) = sigmoid(1 - d) at the start: closer pairs more likely the same, whatever the seed
        # (a random initial slope can be positive, and training then stalls at chance)
        head = keras.layers.Dense(1, activation="sigmoid", name="distance_sigmoid",
                                  kernel_initializer=keras.initializers.Constant(-1.0),
                                  bias_initializer=keras.initializers.Constant(1.0))
        model = keras.Model([a, b], head(distance))
        return Objective(model, keras.losses.BinaryCrossentropy(), True, siamese.tower, head)
    if config.loss == "in-batch":
        loss = InBatchContrastiveLoss(config.margin, config.pos_margin, config.pos_bound, config.neg_bound)
    elif config.loss == "supcon":
        loss = SupervisedContrastiveLoss(config.temperature)
    else:
        loss = TripletLoss(config.margin, config.mining)
    model = siamese.tower
    if config.augment:
        images = keras.Input(shape)
        model = keras.Model(images, model(augmentation()(images)))
    return Objective(model, loss, False, siamese.tower)


def augmentation():
    """Small random shifts, rotations and zooms, applied in training only."""
    return keras.Sequential([
        keras.layers.RandomTranslation(0.08, 0.08, fill_mode="nearest"),
        keras.layers.RandomRotation(0.03, fill_mode="nearest"),
        keras.layers.RandomZoom(0.08, fill_mode="nearest"),
    ], name="augmentation")


def optimizer(config, steps_per_epoch):
    """Adam, with cosine decay of the learning rate over the planned epochs unless `schedule` is constant."""
    rate = config.learning_rate
    if config.schedule == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(rate, decay_steps=config.epochs * steps_per_epoch, alpha=0.05)
    return keras.optimizers.Adam(rate)


def make_batches(images, config, pairs, seed):
    if pairs:
        return PairBatches(images.images, images.labels, config.batch_size, seed=seed)
    classes, per_class = classes_and_images_per_batch(config, len(np.unique(images.labels)))
    return ClassBalancedBatches(images.images, images.labels, classes, per_class, seed=seed)


def classes_and_images_per_batch(config, num_classes):
    """P classes x K images filling `batch_size`: K = images_per_class, unless there are too few
    classes to fill the batch, in which case every class comes and K grows."""
    classes = max(2, min(num_classes, config.batch_size // config.images_per_class))
    return classes, max(config.images_per_class, config.batch_size // classes)


def train(data=None, output="output", recipe="default", progress=True, callbacks=(), **settings):
    """Train a Siamese model and write `model.keras`, `training_plot.png`, `history.json`, `config.json`.

    `data` is a source name (`mnist-sample`, `mnist`, `fashion-mnist`), a
    folder of class subfolders, an `(images, labels)` tuple, an ImageSet or a
    Splits; `settings` are TrainConfig fields (see `siamese train --help`).
    `callbacks` are extra Keras callbacks, run after the validation metrics
    are in the logs. `output=None` writes nothing. Returns a TrainResult.
    """
    if output is not None:  # an output that cannot be written is refused before training, not after
        from keras_siamese.outputs import check_output_folder

        check_output_folder(output)
    started = time.perf_counter()
    config = make_config(recipe, data=source_name(data), **settings)
    keras.utils.set_random_seed(config.seed)
    splits = resolve_data(data if data is not None else config.data, config, progress)
    check_trainable(splits.train, "the training split")
    validate = can_form_both_pair_kinds(splits.val.labels)
    if not validate and len(splits.val):  # too small to validate on: train on it instead
        splits = Splits(concatenate([splits.train, splits.val]), splits.val.subset([]), splits.test, splits.source)

    size = len(splits.train)
    config = dataclasses.replace(config, epochs=config.epochs_for(size), augment=config.augment_for(size))

    previous_policy = keras.config.dtype_policy()
    if config.mixed_precision:
        keras.config.set_dtype_policy("mixed_bfloat16" if keras.config.backend() != "torch" else "mixed_float16")
    try:
        tower = build_tower(
            config.tower, splits.train.image_shape, config.embedding_dim, config.normalize, config.weights)
    except ValueError as error:  # a preset that does not fit the images, named with the value
        raise SiameseError(str(error)) from None
    finally:
        keras.config.set_dtype_policy(previous_policy)
    siamese = SiameseModel(tower)
    objective = build_objective(siamese, config)
    train_batches = make_batches(splits.train, config, objective.takes_pairs, config.seed)
    objective.model.compile(optimizer=optimizer(config, len(train_batches)), loss=objective.loss)
    validation = validation_callbacks(objective, splits.val, config) if validate else []
    fit = objective.model.fit(
        train_batches,
        epochs=config.epochs,
        callbacks=validation + list(callbacks),
        verbose=(1 if sys.stdout.isatty() else 2) if progress else 0,
    )
    history = {key: [float(v) for v in values] for key, values in fit.history.items()}
    refresh_batch_norm(tower, splits.train.images, seed=config.seed)

    calibrate_model(siamese, splits.val if validate else splits.train, config.calibrate,
                    split="val" if validate else "train", batch_size=TRAINING_EMBED_BATCH)
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
    trained_classes = [splits.train.class_names[c] for c in np.unique(splits.train.labels)]
    siamese.info = {"training": record["settings"], "data": splits.source, "version": __version__,
                    "classes": trained_classes}
    result = TrainResult(siamese, history, record, seconds=seconds)
    if output is not None:
        result.paths = write_outputs(Path(output), siamese, history, record)
    return result


def validation_callbacks(objective, val, config):
    """Per-epoch validation loss and metrics, then early stopping on the validation loss."""
    val_batches = None if objective.takes_pairs else make_batches(val, config, False, VALIDATION_SEED).index
    callbacks = [ValidationMetrics(objective.tower, val, objective.loss, VALIDATION_SEED, val_batches, objective.head)]
    if config.patience:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=config.patience, restore_best_weights=True))
    return callbacks


def write_outputs(folder, model, history, record):
    """Write the four training outputs; they replace older ones together, only once all are written."""
    from keras_siamese.plotting.history import plot_history

    paths = {
        "model": folder / "model.keras",
        "plot": folder / "training_plot.png",
        "history": folder / "history.json",
        "config": folder / "config.json",
    }
    with contextlib.ExitStack() as stack:
        tmp = {name: stack.enter_context(atomic_path(path)) for name, path in paths.items()}
        model.save(tmp["model"])
        plot_history(history, tmp["plot"])
        write_json(tmp["history"], history)
        write_json(tmp["config"], record)
    return paths

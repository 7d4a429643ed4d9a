"""`train`: data to a calibrated model file, a training plot and a history, in stages a caller can reach.

    trainer = Trainer("mnist-sample", epochs=5)
    trainer.prepare()   # config and data
    trainer.build()     # model, objective, optimizer (inside a distribution scope, or before a restore)
    trainer.fit()       # callbacks, initial_epoch
    trainer.finish()    # batch-norm refresh, calibration, the run record
    trainer.write("output")

`train(...)` runs all five.
"""

import contextlib
import dataclasses
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from keras_siamese import __version__, budget
from keras_siamese.atomic import atomic_path, write_json
from keras_siamese.data.batches import ClassBalancedBatches, EpochStream, PairBatches
from keras_siamese.data.dataset import (
    ImageSet,
    Splits,
    as_image_set,
    check_trainable,
    concatenate,
    hold_out_classes,
    pairable_split,
    to_uint8,
    unknown_data,
)
from keras_siamese.data.folder import (
    ImageFiles,
    check_folder,
    list_images,
    read_images,
    resize_image_set,
    resize_images,
    stack_images,
)
from keras_siamese.data.sources import load_splits
from keras_siamese.errors import SiameseError
from keras_siamese.inference.calibration import calibrate_model
from keras_siamese.models.siamese import SiameseModel
from keras_siamese.models.towers import build_tower
from keras_siamese.seeds import VALIDATION_SEED
from keras_siamese.training.callbacks import (
    TRAINING_EMBED_BATCH,
    StopWhenDiverged,
    ValidationMetrics,
    refresh_batch_norm,
)
from keras_siamese.training.checkpoint import Checkpoint, read_state
from keras_siamese.training.checkpoint import remove as remove_checkpoint
from keras_siamese.training.checkpoint import restore as restore_checkpoint
from keras_siamese.training.config import SCHEDULES, TrainConfig, make_config
from keras_siamese.training.feeding import fit_input
from keras_siamese.training.objectives import LOSSES, build_objective
from keras_siamese.training.replicas import Replicas, process_count, process_index

TrainingData = str | Path | tuple | ImageSet | Splits | None
"""What `train` takes as data: a source name (`mnist-sample`, `mnist`, `fashion-mnist`), a folder of
class subfolders, an `(images, labels)` tuple of arrays, an ImageSet or a Splits."""


@dataclass
class TrainResult:
    """What `train` returns: the model, its per-epoch history, the run record (config.json) and the files."""

    model: SiameseModel
    history: dict
    record: dict
    paths: dict = field(default_factory=dict)
    seconds: float = 0.0


def source_name(data):
    """What config.json records as the data: the source name, the folder (absolute, so that the run resumes
    from any working directory), or "array" for in-memory data."""
    if data is None or isinstance(data, (str, Path)):
        return None if data is None else recorded_path(data)
    return "array"


def recorded_path(data):
    """A source name as given; a folder as its absolute path."""
    from keras_siamese.data.sources import SOURCES

    return str(Path(data).resolve()) if str(data) not in SOURCES and Path(data).is_dir() else str(data)


def can_form_both_pair_kinds(labels):
    """True when `labels` hold two classes and a class with two images."""
    counts = np.unique(labels, return_counts=True)[1]
    return len(counts) >= 2 and counts.max() >= 2


def resolve_data(data: TrainingData, config: TrainConfig, progress=True) -> Splits:
    """Splits from a source name or folder, a Splits object, or an (images, labels) pair."""
    if isinstance(data, Splits):
        return data
    if isinstance(data, (ImageSet, tuple)):
        images = as_image_set(data)
        if config.image_size or config.channels:  # arrays take the size and channels asked for, as folders do
            height, width, channels = images.image_shape
            shape = (*(config.image_size or (height, width)), config.channels or channels)
            images = resize_image_set(images, shape)
        fit, val = pairable_split(images.labels, config.val_fraction, config.seed)
        empty = images.subset([])
        return Splits(images.subset(fit), images.subset(val), empty, {"name": "array", "sizes": {}})
    if not isinstance(data, (str, Path)):
        raise unknown_data(data)
    shape = (*(config.image_size or (None, None)), config.channels)
    return load_splits(data, config.data_dir, shape, config.seed, config.val_fraction, progress, config.stream)


def make_batches(images, config, pairs, seed, unlabeled=None, transforms=()):
    """The training batches of `images`: image pairs for pair losses, P classes x K images otherwise
    (`transforms` make further classes of them), with half as many `unlabeled` images again when there
    are some. Images streamed from disk are kept decoded in a PixelCache on disk for the next epochs.
    They are decoded in the input pipeline, on TensorFlow by its own prefetching thread, ahead of the
    training step. (PyDataset workers are not used: their queue turns that prefetching off, measured
    slower, and loses the order of an endless stream at epoch ends; docs/benchmarks.md.)"""
    pixels = images.images
    if isinstance(pixels, ImageFiles):
        pixels, unlabeled = pixels.cached(), unlabeled.cached() if isinstance(unlabeled, ImageFiles) else unlabeled
    if pairs:
        return PairBatches(pixels, images.labels, config.batch_size, seed=seed)
    num_classes = len(np.unique(images.labels)) * (len(transforms) + 1)
    classes, per_class = classes_and_images_per_batch(config, num_classes)
    return ClassBalancedBatches(pixels, images.labels, classes, per_class, seed=seed, unlabeled=unlabeled,
                                unlabeled_per_batch=classes * per_class // 2, transforms=transforms)


def images_per_step(batches, config):
    """Images one training step passes through the tower: both images of every pair, every image of a
    class-balanced batch (and its unlabelled ones), twice with two views."""
    if isinstance(batches, PairBatches):
        return 2 * batches.rows
    return batches.rows * (2 if config.two_views else 1)


def unlabeled_images(source, shape, progress=True, stream=False):
    """Unlabelled images as uint8 `(N, *shape)`: every image under a folder (class subfolders or not), or an
    array of images, resized to the training images' shape. With `stream` a folder's stay on disk."""
    if isinstance(source, (str, Path)):
        paths = list_images(source)
        return ImageFiles(paths, shape) if stream else read_images(paths, shape[:2], shape[2], progress)
    if stream:
        raise SiameseError("unlabeled: images in memory cannot train beside images streamed from disk; give a "
                           "folder of them, or stream=False")
    images = to_uint8(source)
    return resize_images(images[..., None] if images.ndim == 3 else images, shape)


def classes_and_images_per_batch(config, num_classes):
    """P classes x K images filling `batch_size`: K = images_per_class, unless there are too few
    classes to fill the batch, in which case every class comes and K grows."""
    classes = max(2, min(num_classes, config.batch_size // config.images_per_class))
    return classes, max(config.images_per_class, config.batch_size // classes)


class Trainer:
    """One training run, stage by stage: `prepare`, `build`, `fit`, `finish`, `write`.

    `data` is TrainingData; `settings` are TrainConfig fields over the recipe's.
    Each stage leaves its products on the trainer (`config`, `splits`,
    `model`, `objective`, `batches`, `history`, `record`) for the next stage
    or for a caller that wraps one (a distribution scope around `build`, a
    checkpoint restored before `fit`).
    """

    def __init__(self, data: TrainingData = None, recipe="default", progress=True, *, recorded=False, **settings):
        self.started = time.perf_counter()
        unlabeled = settings.get("unlabeled")
        self.unlabeled_source = unlabeled
        if unlabeled is not None and not isinstance(unlabeled, (str, Path)):
            settings["unlabeled"] = "array"
        elif unlabeled is not None:
            try:  # refused before any data is read
                check_folder(unlabeled)
            except SiameseError as error:
                raise SiameseError(f"--unlabeled {error}") from None
            settings["unlabeled"] = recorded_path(unlabeled)
        self.config = make_config(recipe, recorded, data=source_name(data), **settings)
        self.replicas = Replicas(self.config.devices)  # first: devices can be split only before the backend starts
        self.data = data if data is not None else self.config.data
        self.data_record = None if self.config.data == "array" else self.config.data  # as recorded, folders absolute
        self.progress = progress
        self.history = {}
        self.earlier_seconds = 0.0  # what the run took before it was interrupted, when resumed
        self.batch_size_asked = None if recorded else settings.get("batch_size")  # the recipe's needs no note

    def prepare(self):
        """Seed everything, load and split the data, and settle the settings that depend on its size."""
        config = self.config
        keras.utils.set_random_seed(config.seed)
        splits = resolve_data(self.data, config, self.progress)
        given = "val" in splits.source.get("split_folders", {})  # a validation folder is used as it is
        val_split = "images" if given and config.val_split == "auto" else config.val_split_for(
            len(np.unique(splits.train.labels)))
        if val_split == "classes":
            splits = hold_out_classes(splits, config.val_fraction, config.seed)
        check_trainable(splits.train, "the training split")
        self.validate = can_form_both_pair_kinds(splits.val.labels)
        # across hosts the weights are arrays no one process can read: validation waits for the end
        self.validate_each_epoch = self.validate and process_count() == 1
        if not self.validate and len(splits.val):  # too small to validate on: train on it instead
            print(f"note: the validation split (size {len(splits.val)}) cannot form both same- and "
                  "different-class pairs; it trains too, there is no early stopping, and the threshold is "
                  "calibrated on training pairs", file=sys.stderr)
            splits = Splits(concatenate([splits.train, splits.val]), splits.val.subset([]), splits.test,
                            splits.source)
        elif not self.validate:
            print("note: no validation split (--val-fraction 0, or too few classes to hold any out): no early "
                  "stopping, and the threshold is calibrated on training pairs", file=sys.stderr)
        splits.source["sizes"] = {name: len(splits.split(name)) for name in ("train", "val", "test")}  # as trained
        self.splits = splits
        self.unlabeled = None if self.unlabeled_source is None else unlabeled_images(
            self.unlabeled_source, splits.train.image_shape, self.progress, isinstance(splits.train.images, ImageFiles))
        size = len(splits.train)
        batch_size, note = budget.fit_batch_size(config.batch_size, size, pairs=LOSSES[config.loss].takes_pairs,
                                                 images_per_class=config.images_per_class)
        if note:
            print(f"note: {note}", file=sys.stderr)
        config = dataclasses.replace(config, augment=config.augment_for(size), val_split=val_split,
                                     batch_size=batch_size, transform_classes=config.transform_classes_for(size))
        versions = len(config.transforms) + 1  # transformed images count as training images for the epochs
        self.config = dataclasses.replace(config, epochs=config.epochs_for(size * versions))
        return self

    def build(self):
        """The tower, the Siamese model, the training objective, its batches and a compiled optimizer, all
        inside the replicas' scope when training on several devices."""
        config, train = self.config, self.splits.train
        with self.replicas.scope():
            tower = self.make_tower()
            self.replicas.prepare(tower)
            self.model = SiameseModel(tower)
            self.objective = build_objective(self.model, config)
            self.batches = make_batches(train, config, self.objective.takes_pairs, config.seed, self.unlabeled,
                                        config.transforms)
            sampler = getattr(self.batches, "sampler", None)  # class-balanced batches: P classes x K images
            if self.batch_size_asked is not None and sampler is not None and sampler.batch_size != config.batch_size:
                print(f"note: batches hold {sampler.classes_per_batch} classes x {sampler.images_per_class} images "
                      f"= {sampler.batch_size}, the nearest to a batch of {config.batch_size} in whole classes",
                      file=sys.stderr)
            self.distribute_batches()
            # the images are loaded by now (or stay on disk): available memory already leaves them out
            budget.check_training_memory(tower, images_per_step(self.batches, config) // self.replicas.count,
                                         in_batch=not self.objective.takes_pairs)
            rate = SCHEDULES[config.schedule](config.learning_rate, config.epochs * len(self.batches))
            loss = self.objective.loss if self.objective.takes_pairs else self.replicas.loss(self.objective.loss)
            optimizer = keras.optimizers.Adam(rate)
            if config.mixed_precision and keras.config.backend() == "torch":  # float16 gradients can underflow;
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer)  # the policy is no longer set here
            self.objective.model.compile(optimizer=optimizer, loss=loss)
        self.local = self.replicas.local_tower(tower, self.make_tower)
        return self

    def distribute_batches(self):
        """Split each batch over the replicas: evenly, and over processes by rows."""
        devices = self.replicas.global_count
        self.batches.distribute(devices, process_index(), process_count())
        extra = getattr(self.batches, "unlabeled_per_batch", 0)  # split on its own, beside the labelled images
        if self.batches.rows % devices:
            parts = f" ({self.batches.rows - extra} labelled, {extra} unlabelled)" if extra else ""
            raise SiameseError(f"--devices: batches of {self.batches.rows} images{parts} do not split evenly over "
                               f"{devices} devices; choose a --batch-size (and --images-per-class) that does")
        if extra % devices:
            raise SiameseError(f"--devices: the {extra} unlabelled images of each batch do not split evenly over "
                               f"{devices} devices; choose a --batch-size (half of it is unlabelled, up to the "
                               "unlabelled images there are) that does")

    def make_tower(self):
        """A freshly initialised tower of this run's architecture (bfloat16 compute with mixed precision)."""
        config = self.config
        previous_policy = keras.config.dtype_policy()
        if config.mixed_precision:
            keras.config.set_dtype_policy("mixed_bfloat16" if keras.config.backend() != "torch" else "mixed_float16")
        try:
            return build_tower(config.tower, self.splits.train.image_shape, config.embedding_dim, config.normalize,
                               config.weights)
        finally:
            keras.config.set_dtype_policy(previous_policy)

    def fit(self, callbacks=(), initial_epoch=0, checkpoint=None):
        """Train from `initial_epoch` to `config.epochs`; `callbacks` run after the validation metrics.
        With `checkpoint` (a folder), the state is saved there at every epoch end (see `restore`)."""
        callbacks = check_callbacks(callbacks)
        stream = EpochStream(self.batches, initial_epoch)
        self.callbacks = [StopWhenDiverged()]
        self.callbacks += self.validation_callbacks() if self.validate_each_epoch else []
        if checkpoint is not None and process_count() == 1:
            self.callbacks.append(Checkpoint(self, checkpoint))
        try:
            with self.replicas.scope():
                fit = self.objective.model.fit(
                    fit_input(stream),
                    steps_per_epoch=len(self.batches),
                    epochs=self.config.epochs,
                    initial_epoch=initial_epoch,
                    shuffle=False,  # the batches are drawn from (seed, epoch); Keras would reorder them by its RNG
                    callbacks=self.callbacks + callbacks,
                    verbose=(1 if sys.stdout.isatty() else 2) if self.progress else 0,
                )
        except Exception:
            if stream.error is not None:  # a file that failed to decode, wrapped by the input pipeline
                raise stream.error from None
            raise
        for key, values in fit.history.items():
            self.history.setdefault(key, []).extend(float(v) for v in values)
        losses = self.history.get("loss", [])
        if losses and not np.isfinite(losses[-1]):
            raise SiameseError(f"training diverged: the loss was {losses[-1]} in epoch {len(losses)}; try a lower "
                               f"--learning-rate (it was {self.config.learning_rate:g})")
        return self

    def validation_callbacks(self):
        """Per-epoch validation loss and metrics, then early stopping on the validation loss."""
        objective, val, config = self.objective, self.splits.val, self.config
        val_batches = None if objective.takes_pairs else make_batches(val, config, False, VALIDATION_SEED).index
        callbacks = [ValidationMetrics(objective.tower, val, objective.validation_loss or objective.loss,
                                       VALIDATION_SEED, val_batches, objective.head, self.local)]
        if config.patience:
            callbacks.append(keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=config.patience, restore_best_weights=True))
        return callbacks

    def restore(self, folder):
        """Load the checkpoint in `folder` into this built trainer; returns the epoch to continue from."""
        with self.replicas.scope():
            return restore_checkpoint(folder, self)

    @classmethod
    def resume(cls, folder, data: TrainingData = None, progress=True):
        """A prepared, built trainer for the interrupted run checkpointed in `folder`, and the epoch to
        continue from. `data` is needed only when the run trained on arrays."""
        state = read_state(folder)
        settings = dict(state["settings"])
        recipe = settings.pop("recipe")
        settings.pop("data")
        data = data if data is not None else state["data"]
        if data is None:
            raise SiameseError(f"{folder}: the run trained on arrays; pass them again to resume it")
        if settings.get("unlabeled") == "array":
            raise SiameseError(f"{folder}: the run's unlabelled images were arrays; resume it from Python")
        if isinstance(data, str) and Path(data).is_absolute() and not Path(data).is_dir():  # a recorded folder
            raise SiameseError(f"{folder}: the run's data folder {data} is gone (moved or renamed?); put it back "
                               "there to resume")
        trainer = cls(data, recipe, progress, recorded=True, **settings)
        trainer.prepare().build()
        return trainer, trainer.restore(folder)

    def finish(self):
        """Refresh batch-norm statistics, calibrate the threshold, and write the run record into the model."""
        if self.local is not None:  # from here on, a plain model on this process
            self.model = SiameseModel(self.local.synced())
        config, splits, siamese = self.config, self.splits, self.model
        seen = splits.train.images if self.unlabeled is None else stack_images(
            [splits.train.images, self.unlabeled], "the training and unlabelled images")
        refresh_batch_norm(siamese.tower, seen, seed=config.seed)  # the statistics of every image trained on
        calibrate_model(siamese, splits.val if self.validate else splits.train, config.calibrate,
                        split="val" if self.validate else "train",
                        source={key: splits.source[key] for key in ("name", "path") if key in splits.source},
                        batch_size=TRAINING_EMBED_BATCH)
        self.seconds = self.earlier_seconds + time.perf_counter() - self.started
        self.record = {
            "settings": config.to_dict(),
            "data": splits.source,
            "backend": keras.config.backend(),
            "keras_siamese_version": __version__,
            "keras_version": keras.__version__,
            "epochs_run": len(self.history.get("loss", [])),
            "train_seconds": round(self.seconds, 2),
            "threshold": siamese.threshold,
            "calibration": siamese.calibration,
            "status": "complete",
        }
        trained_classes = [splits.train.class_names[c] for c in np.unique(splits.train.labels)]
        siamese.info = {"training": self.record["settings"], "data": splits.source, "version": __version__,
                        "classes": trained_classes}
        return self

    def write(self, output):
        """Write the four training outputs into folder `output`; returns their paths."""
        return write_outputs(Path(output), self.model, self.history, self.record)

    def result(self, paths=None):
        return TrainResult(self.model, self.history, self.record, dict(paths or {}), self.seconds)


def train(data: TrainingData = None, output="output", recipe="default", progress=True, callbacks=(),
          **settings) -> TrainResult:
    """Train a Siamese model and write `model.keras`, `training_plot.png`, `history.json`, `config.json`.

    `data` is TrainingData; `settings` are TrainConfig fields (see `siamese
    train --help`). `callbacks` are extra Keras callbacks, run after the
    validation metrics are in the logs. `output=None` writes nothing.
    Returns a TrainResult.
    """
    callbacks = check_callbacks(callbacks)
    if output is not None:  # an output that cannot be written is refused before training, not after
        from keras_siamese.outputs import check_output_folder, check_outside

        check_output_folder(output)
        check_outside(output, data)
        check_outside(output, settings.get("unlabeled"))
    trainer = Trainer(data, recipe, progress, **settings)  # first: it splits the devices before JAX starts
    with _folder_held(output):
        if output is not None and (Path(output) / "checkpoint.json").is_file():
            print(f"note: {output} holds an interrupted run; this run replaces it (to continue that one instead: "
                  f"siamese train --resume {output})", file=sys.stderr)
        trainer.prepare().build().fit(callbacks, checkpoint=output)
        return _finish(trainer, output)


def check_callbacks(callbacks):
    """`callbacks` (None, or any iterable of Keras callbacks) as a list; SiameseError for one given alone, or
    anything else."""
    if callbacks is None:
        return []
    if isinstance(callbacks, (keras.callbacks.Callback, str, bytes)) or not hasattr(callbacks, "__iter__"):
        raise SiameseError(f"callbacks must be a list of Keras callbacks; received {type(callbacks).__name__}")
    callbacks = list(callbacks)
    for callback in callbacks:
        if not isinstance(callback, keras.callbacks.Callback):
            raise SiameseError(f"callbacks must be Keras callbacks; received {callback!r}")
    return callbacks


def resume(folder, data: TrainingData = None, progress=True, callbacks=()) -> TrainResult:
    """Continue the interrupted `train` run whose output folder is `folder`, from its last finished epoch.

    The final weights are those the uninterrupted run would have reached (bit-identical in the tests, on
    every backend). `data` is needed only for runs on arrays.
    """
    from keras_siamese.outputs import check_output_folder

    check_output_folder(folder, "--resume")
    callbacks = check_callbacks(callbacks)
    trainer, epoch = Trainer.resume(folder, data, progress)  # reads the checkpoint: it is written atomically
    with _folder_held(folder):
        if epoch < trainer.config.epochs and not _stopped_early(trainer):
            trainer.fit(callbacks, initial_epoch=epoch, checkpoint=folder)
        else:  # its epochs had ended: early stopping's end of training, which put back the best epoch, had not
            state, best_weights = trainer.restored_early_stopping
            if state is not None and best_weights is not None:
                with trainer.replicas.scope():
                    trainer.objective.model.set_weights(best_weights)
        return _finish(trainer, folder)


@contextlib.contextmanager
def _folder_held(output):
    """The output folder's model file locked for the whole run (by the process that writes the outputs), so
    that a second run into the folder, or a resume of this one, is refused while it trains. A folder the
    lock made is removed again if the run left nothing in it."""
    from keras_siamese.atomic import exclusive

    if output is None or process_index() != 0:
        yield
        return
    made = not Path(output).exists()
    try:
        with exclusive(Path(output) / "model.keras", wait=0):
            yield
    finally:
        if made:
            with contextlib.suppress(OSError):  # not empty: the run wrote into it
                Path(output).rmdir()


def _stopped_early(trainer):
    state = trainer.restored_early_stopping[0]
    return bool(state and state.get("stopped_epoch"))


def _finish(trainer, output):
    trainer.finish()
    output = output if process_index() == 0 else None  # across hosts, process 0 alone writes
    paths = trainer.write(output) if output is not None else {}
    if output is not None:
        remove_checkpoint(output)
    return trainer.result(paths)


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

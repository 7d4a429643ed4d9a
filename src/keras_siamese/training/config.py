"""Training settings, and the named recipes and schedules that fill them in."""

import dataclasses
import typing
from dataclasses import dataclass

import keras
import numpy as np

from keras_siamese.data.transform_classes import TRANSFORM_CLASSES
from keras_siamese.errors import InvalidValue, check
from keras_siamese.losses.triplet import MINING
from keras_siamese.metrics.verification import parse_rule
from keras_siamese.models.towers import TOWERS
from keras_siamese.registry import Registry
from keras_siamese.seeds import DEFAULT_SEED, check_seed
from keras_siamese.training.objectives import LOSSES

AUTO_EPOCH_SCALE = 3.2e6
AUGMENT_BELOW = 10_000

AUTO_TRANSFORM_CLASSES = "rotate-180"  # below AUGMENT_BELOW images, in-batch losses; docs/design.md, "Open set"
CLASS_SPLIT_FROM = 20  # val_split "auto" holds out whole classes from this many training classes on

VAL_SPLITS = Registry("val_split")
VAL_SPLITS.add("auto", None, f"whole classes from {CLASS_SPLIT_FROM} training classes on, else images (default)")
VAL_SPLITS.add("classes", None, "whole classes that training never sees: early stopping, the validation metrics "
                                "and the threshold then measure new classes")
VAL_SPLITS.add("images", None, "a stratified share of every class's images")

SCHEDULES = Registry("schedule")
SCHEDULES.add("cosine", lambda rate, steps: keras.optimizers.schedules.CosineDecay(rate, steps, alpha=0.05),
              "cosine decay over the planned epochs, to 0.05 x the rate (default)")
SCHEDULES.add("constant", lambda rate, steps: rate, "the same rate throughout")


@dataclass
class TrainConfig:
    """Every setting of a training run; `config.json` records all of them.

    `batch_size` counts pairs for the pair losses (contrastive, bce) and images
    for the in-batch losses, whose batches hold `batch_size // images_per_class`
    classes of `images_per_class` images each. `stream` leaves a folder's images
    on disk (None: when they would not fit, see `folder.should_stream`);
    `devices` trains data-parallel on that many local devices (see `replicas`).
    """

    recipe: str = "default"
    data: str = "mnist-sample"
    data_dir: str | None = None
    image_size: tuple | None = None
    channels: int | None = None
    val_fraction: float = 0.1
    val_split: str = "auto"
    tower: str = "small"
    weights: str | None = None
    embedding_dim: int = 64
    normalize: bool = True
    loss: str = "supcon"
    margin: float = 1.0
    pos_margin: float = 0.0
    pos_bound: float | None = None
    neg_bound: float | None = None
    mining: str = "semi-hard"
    temperature: float = 0.1
    ssl_weight: float | None = None
    unlabeled: str | None = None
    learning_rate: float = 4e-3
    schedule: str = "cosine"
    augment: bool | None = None
    transform_classes: str | None = None
    batch_size: int = 128
    images_per_class: int = 8
    epochs: int | None = None
    patience: int | None = 8
    seed: int = DEFAULT_SEED
    calibrate: str = "accuracy"
    mixed_precision: bool = False
    stream: bool | None = None
    devices: int = 1

    def validate(self):
        """Check every value once, naming the argument (InvalidValue); returns the config with names in
        their registered spelling."""
        self._check_kinds()
        self.tower, self.loss = TOWERS.name(self.tower), LOSSES.name(self.loss)
        self.schedule, self.mining = SCHEDULES.name(self.schedule), MINING.name(self.mining)
        self.val_split = VAL_SPLITS.name(self.val_split)
        if self.transform_classes is not None:
            self.transform_classes = TRANSFORM_CLASSES.name(self.transform_classes)
            check(self.transform_classes == "none" or not LOSSES[self.loss].takes_pairs, "transform_classes",
                  self.transform_classes, f"applies to the in-batch losses only, not to loss '{self.loss}'")
        if self.image_size is not None:
            size = tuple(self.image_size) if isinstance(self.image_size, (tuple, list)) else (self.image_size,) * 2
            check(len(size) == 2 and all(isinstance(s, (int, np.integer)) and s >= 1 for s in size),
                  "image_size", self.image_size, "must be one positive size or (height, width)")
            self.image_size = tuple(int(s) for s in size)
        check_seed(self.seed)
        check(self.epochs is None or self.epochs >= 1, "epochs", self.epochs, "must be at least 1")
        check(self.batch_size >= 2, "batch_size", self.batch_size, "must be at least 2")
        check(self.embedding_dim >= 1, "embedding_dim", self.embedding_dim, "must be at least 1")
        check(0 <= self.val_fraction < 1, "val_fraction", self.val_fraction, "must be in [0, 1)")
        check(self.patience is None or self.patience >= 0, "patience", self.patience, "must be 0 (off) or more")
        check(self.images_per_class >= 2, "images_per_class", self.images_per_class, "must be at least 2")
        check(self.channels in (None, 1, 3), "channels", self.channels, "must be 1 or 3")
        check(self.stream in (None, True, False), "stream", self.stream, "must be True, False or None (auto)")
        check(isinstance(self.devices, (int, np.integer)) and self.devices >= 1, "devices", self.devices,
              "must be at least 1")
        check(self.weights in (None, "imagenet"), "weights", self.weights, "must be 'imagenet' or None")
        check(self.weights is None or TOWERS[self.tower].application, "weights", self.weights,
              f"apply to the application towers ({', '.join(n for n in TOWERS if TOWERS[n].application)}) only")
        check(self.learning_rate > 0, "learning_rate", self.learning_rate, "must be positive")
        if not LOSSES[self.loss].takes_pairs:
            check(self.batch_size >= 2 * self.images_per_class, "batch_size", self.batch_size,
                  f"must hold at least 2 classes of images_per_class={self.images_per_class}")
        check(self.loss != "supcon" or self.normalize, "normalize", self.normalize,
              "must be on for loss 'supcon', which compares unit-length embeddings")
        check(self.ssl_weight is None or self.ssl_weight >= 0, "ssl_weight", self.ssl_weight, "must be 0 or more")
        check(self.loss == "supcon" or not self.two_views, "loss", self.loss,
              "must be 'supcon' for the self-supervised term (ssl_weight, unlabeled)")
        check(self.unlabeled is None or self.two_views, "ssl_weight", self.ssl_weight,
              "must be above 0 with unlabelled images: they train on the two augmented views of each image "
              "that the self-supervised term brings")
        LOSSES[self.loss].make(self)  # the loss checks its own values (margin, temperature, ...)
        parse_rule(self.calibrate)
        return self

    def _check_kinds(self):
        """Each number and switch of the kind its field declares: an integer where an int is declared, any
        real number where a float is, True or False where a bool is (never a string, nor a bool for a number)."""
        for field in dataclasses.fields(self):
            kinds = set(typing.get_args(field.type) or (field.type,))
            value = getattr(self, field.name)
            numeric = kinds & {int, float, bool}
            if not numeric or (value is None and type(None) in kinds):
                continue
            if bool in numeric:
                ok, wanted = isinstance(value, (bool, np.bool_)), "True or False"
            elif float in numeric:
                ok, wanted = _is_number(value) and np.isfinite(value), "a finite number"
            else:
                ok, wanted = _is_number(value) and float(value).is_integer(), "an integer"
            check(ok, field.name, value, f"must be {wanted}{' or None' if type(None) in kinds else ''}")
            kind = bool if bool in numeric else float if float in numeric else int
            setattr(self, field.name, kind(value))  # plain Python values: numpy ones would not go into JSON

    def epochs_for(self, training_images):
        """`epochs`, or when unset round(sqrt(3.2e6 / images)) clipped to 3..100: about 30 epochs for
        3,600 images and 8 for 54,000, so small sets get many passes and large ones few."""
        if self.epochs is not None:
            return self.epochs
        return int(np.clip(round(np.sqrt(AUTO_EPOCH_SCALE / max(training_images, 1))), 3, 100))

    @property
    def self_supervised_weight(self):
        """`ssl_weight`, or when unset 1 with unlabelled images and 0 without."""
        return self.ssl_weight if self.ssl_weight is not None else float(self.unlabeled is not None)

    @property
    def two_views(self):
        """Whether training sees two augmented views of each image (the self-supervised term needs them)."""
        return self.self_supervised_weight > 0

    def transform_classes_for(self, training_images):
        """`transform_classes`, or when unset rotate-180 for the in-batch losses below AUGMENT_BELOW images
        (it carries small sets further to new classes; on 54,000 Fashion-MNIST images it cost the trained
        classes), else none."""
        if self.transform_classes is not None:
            return self.transform_classes
        small = training_images < AUGMENT_BELOW
        return AUTO_TRANSFORM_CLASSES if small and not LOSSES[self.loss].takes_pairs else "none"

    @property
    def transforms(self):
        """The image transforms whose results train as further classes (once `transform_classes` is settled)."""
        check(self.transform_classes is not None, "transform_classes", None, "must be settled by the data size first")
        return TRANSFORM_CLASSES[self.transform_classes]

    def val_split_for(self, num_classes):
        """`val_split`, with "auto" settled by the number of training classes."""
        if self.val_split != "auto":
            return self.val_split
        return "classes" if num_classes >= CLASS_SPLIT_FROM else "images"

    def augment_for(self, training_images):
        """`augment`, or when unset: on below AUGMENT_BELOW images (small sets overfit; large sets train few
        epochs and measured better without)."""
        return self.augment if self.augment is not None else training_images < AUGMENT_BELOW

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, settings):
        """The config a `config.json` recorded (its `settings`), validated; unknown keys are an error."""
        settings = dict(settings)
        settings.setdefault("transform_classes", "none")  # runs recorded before the setting trained without
        if settings.get("image_size") is not None:
            settings["image_size"] = tuple(settings["image_size"])
        _check_known(settings)
        return cls(**settings).validate()


RECIPES = Registry("recipe")
RECIPES.add("default", {}, "supervised contrastive over class-balanced batches, small BN tower")
RECIPES.add("seed", dict(
    tower="seed", embedding_dim=48, normalize=False, loss="contrastive", margin=1.0,
    learning_rate=1e-3, schedule="constant", augment=False, batch_size=64, epochs=100, patience=None,
    mixed_precision=False,
), "the tutorial's settings (README: what differs)")


def _check_known(settings):
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    for name in settings:
        if name not in fields:
            raise InvalidValue("settings", name, f"must be training settings ({', '.join(sorted(fields))})")


def _is_number(value):
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def make_config(recipe="default", recorded=False, **overrides):
    """A validated TrainConfig: the recipe's settings, then every override that is not None. A setting
    changed from the recipe's value that the run's loss would not read is refused, unless the settings are
    `recorded` ones (a run being resumed: it may predate that check)."""
    recipe = RECIPES.name(recipe)
    _check_known(overrides)
    given = {k: v for k, v in overrides.items() if v is not None}
    config = TrainConfig(recipe=recipe, **{**RECIPES[recipe], **given}).validate()
    if not recorded:
        _check_used(config, [k for k in given if getattr(config, k) != default_value(k, recipe)])
    return config


def _check_used(config, changed):
    """InvalidValue for a `changed` setting that the run's loss would not read (a margin with supcon...)."""
    spec = LOSSES[config.loss]
    for name in changed:
        value = getattr(config, name)
        users = [loss for loss in LOSSES if name in LOSSES[loss].settings]
        if users and name not in spec.settings:
            raise InvalidValue(name, value, f"is not used by loss '{config.loss}' (it applies to "
                                            f"{', '.join(users)})")
        if name == "images_per_class" and spec.takes_pairs:
            raise InvalidValue(name, value, f"is not used by loss '{config.loss}', which trains on pairs")


def default_value(name, recipe="default"):
    """A setting's value before any override: the recipe's, else TrainConfig's default."""
    return RECIPES[recipe].get(name, next(f.default for f in dataclasses.fields(TrainConfig) if f.name == name))

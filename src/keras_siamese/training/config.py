"""Training settings, and the named recipes that fill them in."""

import dataclasses
from dataclasses import dataclass

import numpy as np

from keras_siamese.errors import SiameseError
from keras_siamese.losses.triplet import MINING
from keras_siamese.metrics.verification import parse_rule
from keras_siamese.models.towers import APPLICATION_PRESETS, PRESETS

PAIR_LOSSES = ("contrastive", "bce")
IN_BATCH_LOSSES = ("in-batch", "triplet", "supcon")
LOSSES = PAIR_LOSSES + IN_BATCH_LOSSES
SCHEDULES = ("cosine", "constant")


@dataclass
class TrainConfig:
    """Every setting of a training run; `config.json` records all of them.

    `batch_size` counts pairs for the pair losses (contrastive, bce) and images
    for the in-batch losses, whose batches hold `batch_size // images_per_class`
    classes of `images_per_class` images each.
    """

    recipe: str = "default"
    data: str = "mnist-sample"
    data_dir: str | None = None
    image_size: tuple | None = None
    channels: int | None = None
    val_fraction: float = 0.1
    tower: str = "small"
    weights: str | None = None
    embedding_dim: int = 64
    normalize: bool = True
    loss: str = "supcon"
    margin: float = 1.0
    pos_margin: float = 0.0
    pos_bound: float | None = None
    neg_bound: float | None = None
    mining: str = "semi_hard"
    temperature: float = 0.1
    learning_rate: float = 4e-3
    schedule: str = "cosine"
    augment: bool | None = None
    batch_size: int = 128
    images_per_class: int = 8
    epochs: int | None = None
    patience: int | None = 8
    seed: int = 42
    calibrate: str = "accuracy"
    mixed_precision: bool = False

    def validate(self):
        """Raise SiameseError naming the first bad value."""
        checks = [
            (self.loss in LOSSES, f"--loss {self.loss!r}: choose one of {', '.join(LOSSES)}"),
            (self.tower in PRESETS, f"--tower {self.tower!r}: choose one of {', '.join(PRESETS)}"),
            (self.schedule in SCHEDULES, f"--schedule {self.schedule!r}: choose one of {', '.join(SCHEDULES)}"),
            (self.mining in MINING, f"--mining {self.mining!r}: choose one of {', '.join(MINING)}"),
            (self.epochs is None or self.epochs >= 1, f"--epochs must be at least 1; received {self.epochs}"),
            (self.batch_size >= 2, f"--batch-size must be at least 2; received {self.batch_size}"),
            (self.embedding_dim >= 1, f"--embedding-dim must be at least 1; received {self.embedding_dim}"),
            (self.margin > 0, f"--margin must be positive; received {self.margin}"),
            (0 <= self.pos_margin < self.margin, f"--pos-margin must be in [0, margin); received {self.pos_margin}"),
            (self.temperature > 0, f"--temperature must be positive; received {self.temperature}"),
            (self.learning_rate > 0, f"--learning-rate must be positive; received {self.learning_rate}"),
            (0 <= self.val_fraction < 1, f"--val-fraction must be in [0, 1); received {self.val_fraction}"),
            (self.patience is None or self.patience >= 0,
             f"--patience must be 0 (off) or more; received {self.patience}"),
            (self.images_per_class >= 2, f"--images-per-class must be at least 2; received {self.images_per_class}"),
            (self.channels in (None, 1, 3), f"--channels must be 1 or 3; received {self.channels}"),
            (self.weights in (None, "imagenet"), f"--weights must be imagenet; received {self.weights!r}"),
            (self.weights is None or self.tower in APPLICATION_PRESETS,
             f"--weights applies to the application towers ({', '.join(APPLICATION_PRESETS)}); "
             f"received --tower {self.tower}"),
        ]
        for ok, message in checks:
            if not ok:
                raise SiameseError(message)
        if self.loss in IN_BATCH_LOSSES and self.batch_size < 2 * self.images_per_class:
            raise SiameseError(
                f"--batch-size {self.batch_size} holds fewer than 2 classes of --images-per-class "
                f"{self.images_per_class}; raise the batch size or lower images per class"
            )
        parse_rule(self.calibrate)
        if self.loss == "supcon" and not self.normalize:
            raise SiameseError("--loss supcon compares unit-length embeddings; drop --no-normalize")
        if self.image_size is not None and (len(self.image_size) != 2 or min(self.image_size) < 1):
            raise SiameseError(f"--image-size must be HEIGHTxWIDTH or one positive size; received {self.image_size}")
        return self

    def epochs_for(self, training_images):
        """`epochs`, or when unset round(sqrt(3.2e6 / images)) clipped to 3..100: about 30 epochs for
        3,600 images and 8 for 54,000, so small sets get many passes and large ones few."""
        if self.epochs is not None:
            return self.epochs
        return int(np.clip(round(np.sqrt(AUTO_EPOCH_SCALE / max(training_images, 1))), 3, 100))

    def augment_for(self, training_images):
        """`augment`, or when unset: on below AUGMENT_BELOW images (small sets overfit; large sets train few
        epochs and measured better without)."""
        return self.augment if self.augment is not None else training_images < AUGMENT_BELOW

    def to_dict(self):
        return dataclasses.asdict(self)


# Settings each recipe fixes; flags given explicitly override them.
AUTO_EPOCH_SCALE = 3.2e6
AUGMENT_BELOW = 10_000

RECIPES = {
    "default": {},
    "seed": dict(
        tower="seed", embedding_dim=48, normalize=False, loss="contrastive", margin=1.0,
        learning_rate=1e-3, schedule="constant", augment=False, batch_size=64, epochs=100, patience=None,
        mixed_precision=False,
    ),
}


def make_config(recipe="default", **overrides):
    """A validated TrainConfig: the recipe's settings, then every override that is not None."""
    if recipe not in RECIPES:
        raise SiameseError(f"--recipe {recipe!r}: choose one of {', '.join(RECIPES)}")
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = set(overrides) - fields
    if unknown:
        raise TypeError(f"unknown training settings: {', '.join(sorted(unknown))}")
    settings = {**RECIPES[recipe], **{k: v for k, v in overrides.items() if v is not None}}
    return TrainConfig(recipe=recipe, **settings).validate()

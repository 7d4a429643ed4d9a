"""Training through the Python API on tiny data: outputs, recipes, losses, reproducibility, bad input."""

import json
import re

import keras
import numpy as np
import pytest

from conftest import synthetic_images
from keras_siamese import SiameseError, load_model, train
from keras_siamese.training.callbacks import ValidationMetrics, batch_norm_layers, refresh_batch_norm
from keras_siamese.training.config import make_config

TINY = dict(epochs=1, batch_size=16, images_per_class=4, embedding_dim=8, val_fraction=0.25, progress=False)


def test_train_writes_a_loadable_calibrated_model_and_records(tmp_path, tiny_arrays):
    result = train(tiny_arrays, output=tmp_path, **{**TINY, "epochs": 2})
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "config.json", "history.json", "model.keras", "training_plot.png"]
    history = json.loads((tmp_path / "history.json").read_text())
    assert len(history["loss"]) == 2
    assert {"val_loss", "val_auc", "val_accuracy"} <= set(history)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["settings"]["seed"] == 42 and config["settings"]["epochs"] == 2
    assert config["backend"] == keras.config.backend()
    assert config["keras_siamese_version"]
    model = load_model(tmp_path / "model.keras")
    assert model.threshold == pytest.approx(result.model.threshold)
    assert model.calibration["rule"] == "accuracy" and model.calibration["split"] == "val"
    assert model.info["training"]["loss"] == "supcon"


def test_a_validation_split_too_small_for_pairs_goes_back_to_training(tiny_arrays):
    images, labels = tiny_arrays
    keep = np.flatnonzero((labels == 0) | (np.arange(len(labels)) % 12 < 4))  # 12, 4 and 4 images
    # val_fraction 0.1 holds out round(1.2) = 1 image of class 0, made 2 for a pair, and none of the others:
    # one class only, so no different-class pairs
    result = train((images[keep], labels[keep]), output=None, **{**TINY, "val_fraction": 0.1})
    assert "val_loss" not in result.history
    assert result.model.calibration["split"] == "train" and result.model.calibration["images"] == 20


def test_seed_recipe_is_the_tutorial():
    config = make_config("seed")
    assert (config.tower, config.embedding_dim, config.loss, config.margin) == ("seed", 48, "contrastive", 1.0)
    assert (config.batch_size, config.epochs, config.learning_rate, config.patience) == (64, 100, 1e-3, None)
    assert (config.schedule, config.augment, config.normalize) == ("constant", False, False)
    assert make_config("seed", epochs=3).epochs == 3  # flags override the recipe


@pytest.mark.parametrize("loss", ["contrastive", "bce", "in-batch", "triplet", "supcon"])
def test_every_loss_trains_to_a_finite_model(tmp_path, tiny_arrays, loss):
    pairs = loss in ("contrastive", "bce")  # batches of pairs: no images per class to choose
    result = train(tiny_arrays, output=None, loss=loss, **{**TINY, "images_per_class": None if pairs else 4})
    assert np.isfinite(result.history["loss"]).all()
    assert result.model.threshold is not None and np.isfinite(result.model.threshold)


def test_same_seed_same_run(tiny_arrays):
    first = train(tiny_arrays, output=None, **TINY)
    second = train(tiny_arrays, output=None, **TINY)
    np.testing.assert_allclose(first.history["loss"], second.history["loss"], rtol=1e-4)
    assert first.model.threshold == pytest.approx(second.model.threshold, rel=1e-4)


def test_batch_norm_statistics_are_refreshed_after_training(tiny_arrays):
    tower = train(tiny_arrays, output=None, **TINY).model.tower
    layer = batch_norm_layers(tower)[0]
    for variable in (layer.moving_mean, layer.moving_variance):
        variable.assign(keras.ops.zeros_like(variable))
    images = tiny_arrays[0]
    refresh_batch_norm(tower, images, batch_size=12, seed=0)  # three equal batches
    features = keras.ops.convert_to_numpy(keras.Model(tower.input, layer.input)(images))
    expected = features.reshape(-1, features.shape[-1]).mean(axis=0)  # mean of equal batch means
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.moving_mean), expected, rtol=1e-3, atol=1e-4)
    assert np.all(keras.ops.convert_to_numpy(layer.moving_variance) > 0)


@pytest.mark.parametrize("settings, message", [
    (dict(epochs=0), "epochs must be at least 1. Received: epochs=0"),
    (dict(loss="hinge"), "loss must be one of supcon, .*Received: loss='hinge'"),
    (dict(calibrate="recall"), "recall"),
    (dict(batch_size=4, images_per_class=4), "Received: batch_size=4"),
    (dict(temperature=-1.0), "Received: temperature=-1.0"),
    (dict(val_split="tiles"), "Received: val_split='tiles'"),
    (dict(no_such_setting=1), "Received: settings='no_such_setting'"),
    (dict(seed=-1), "seed must be an integer from 0 to 4294967295. Received: seed=-1"),
    (dict(seed=1.5), "Received: seed=1.5"),
])
def test_bad_settings_name_the_value_and_write_nothing(tmp_path, tiny_arrays, settings, message):
    with pytest.raises(SiameseError, match=message):
        train(tiny_arrays, output=tmp_path / "out", **{**TINY, **settings})
    assert not (tmp_path / "out").exists()


def test_one_class_or_single_image_classes_are_refused(tmp_path):
    images, labels = synthetic_images(classes=2, per_class=6)
    with pytest.raises(SiameseError, match="at least 2 classes"):
        train((images, np.zeros_like(labels)), output=tmp_path / "a", **TINY)
    with pytest.raises(SiameseError, match="only 1 image"):
        train((images[:7], labels[:7]), output=tmp_path / "b", **{**TINY, "val_fraction": 0.0})
    assert not any(tmp_path.iterdir())


def test_a_failed_write_keeps_the_previous_outputs(tmp_path, tiny_arrays, monkeypatch):
    train(tiny_arrays, output=tmp_path, **TINY)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("keras_siamese.plotting.history.plot_history", broken)
    with pytest.raises(OSError, match="disk full"):
        train(tiny_arrays, output=tmp_path, **{**TINY, "seed": 7})
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    for name in ("model.keras", "training_plot.png", "history.json", "config.json"):  # the finished run, whole
        assert after[name] == before[name]
    # the unfinished run can be resumed from its checkpoint
    assert "checkpoint.json" in after and any(name.startswith("checkpoint-") for name in after)


def test_a_bad_calibration_rule_is_refused_before_training(tiny_arrays, monkeypatch):
    def no_fit(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(keras.Model, "fit", no_fit)
    with pytest.raises(SiameseError, match="far=2"):
        train(tiny_arrays, output=None, **{**TINY, "calibrate": "far=2"})


@pytest.mark.core  # the half type differs by backend
def test_mixed_precision_trains_the_tower_in_half_precision(tiny_arrays):
    result = train(tiny_arrays, output=None, mixed_precision=True, **TINY)
    half = "float16" if keras.config.backend() == "torch" else "bfloat16"
    conv = next(layer for layer in result.model.tower.layers if isinstance(layer, keras.layers.Conv2D))
    assert (conv.compute_dtype, conv.variable_dtype) == (half, "float32")
    assert np.isfinite(result.history["loss"]).all() and np.isfinite(result.model.threshold)
    assert keras.config.dtype_policy().name == "float32"  # the global policy is restored after building
    from keras_siamese.training.trainer import Trainer

    optimizer = Trainer(tiny_arrays, mixed_precision=True, **TINY).prepare().build().objective.model.optimizer
    scaled = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    assert scaled == (half == "float16")  # float16 (PyTorch) scales its loss; bfloat16 has float32's range


def test_class_level_validation_holds_out_whole_classes_training_never_sees():
    from keras_siamese.training.trainer import Trainer

    images, labels = synthetic_images(classes=6, per_class=6)
    trainer = Trainer((images, labels), **{**TINY, "val_split": "classes", "val_fraction": 0.3})
    trainer.prepare()
    train_classes = set(trainer.splits.train.labels)
    val_classes = set(trainer.splits.val.labels)
    assert len(val_classes) == 2 and not train_classes & val_classes
    assert len(trainer.splits.train) + len(trainer.splits.val) == len(labels)
    assert trainer.config.val_split == "classes"


def test_auto_validation_split_is_by_image_below_the_class_count():
    from keras_siamese.training.config import CLASS_SPLIT_FROM, make_config

    config = make_config()
    assert config.val_split == "auto"
    assert config.val_split_for(CLASS_SPLIT_FROM - 1) == "images"
    assert config.val_split_for(CLASS_SPLIT_FROM) == "classes"


def test_config_round_trips_through_its_record():
    from keras_siamese.training.config import TrainConfig, make_config

    config = make_config("seed", image_size=(20, 24), loss="triplet", mining="batch_hard")
    assert config.mining == "batch-hard"  # one spelling
    assert TrainConfig.from_dict(config.to_dict()) == config
    with pytest.raises(SiameseError, match="Received: settings='colour'"):
        TrainConfig.from_dict({**config.to_dict(), "colour": "red"})



def test_unlabelled_images_train_through_the_self_supervised_term(tiny_arrays, tmp_path):
    from keras_siamese.training.trainer import Trainer

    images, labels = tiny_arrays
    unlabeled = synthetic_images(classes=2, per_class=5)[0]
    trainer = Trainer((images, labels), **{**TINY, "unlabeled": unlabeled}).prepare().build()
    x, y = trainer.batches[0]
    assert (y == -1).sum() == len(y) // 3 and len(x) == len(y)  # half as many unlabelled as labelled
    assert trainer.objective.model.output_shape == (None, 2, 8)  # two views
    trainer.fit().finish()
    assert np.isfinite(trainer.history["loss"]).all()
    assert trainer.config.unlabeled == "array" and trainer.config.self_supervised_weight == 1.0
    with pytest.raises(SiameseError, match="loss must be 'supcon'"):
        Trainer((images, labels), **{**TINY, "unlabeled": unlabeled, "loss": "triplet"})


def test_a_batch_larger_than_the_data_is_clamped_with_a_note(tiny_arrays, capsys):
    result = train(tiny_arrays, output=None, **{**TINY, "batch_size": 100_000})
    # 27 training images (36, a quarter held out) in whole classes of 4 images: 24
    assert result.record["settings"]["batch_size"] == 24
    assert "--batch-size 100,000 is more than the" in capsys.readouterr().err


def test_a_batch_size_that_is_not_whole_classes_is_rounded_with_a_note(tiny_arrays, capsys):
    from keras_siamese.training.trainer import Trainer

    trainer = Trainer(tiny_arrays, **{**TINY, "batch_size": 18}).prepare().build()
    assert trainer.batches.rows == 16
    assert "note: batches hold 4 classes x 4 images = 16, the nearest to a batch of 18 in whole classes" in \
        capsys.readouterr().err


def test_transform_classes_default_to_rotate_180_for_small_sets_and_in_batch_losses():
    from keras_siamese.training.config import AUGMENT_BELOW, TrainConfig, make_config

    assert make_config().transform_classes is None  # settled by the data size
    assert make_config().transform_classes_for(AUGMENT_BELOW - 1) == "rotate-180"
    assert make_config(loss="triplet").transform_classes_for(100) == "rotate-180"
    assert make_config().transform_classes_for(AUGMENT_BELOW) == "none"
    assert make_config("seed").transform_classes_for(100) == "none"
    assert make_config(transform_classes="flip_up_down").transform_classes_for(10**6) == "flip-up-down"
    with pytest.raises(SiameseError, match="Received: transform_classes='flips'"):
        make_config("seed", transform_classes="flips")
    with pytest.raises(SiameseError, match="Received: transform_classes='mirror'"):
        make_config(transform_classes="mirror")
    recorded = make_config().to_dict()
    del recorded["transform_classes"]  # a run recorded before the setting existed trained without
    assert TrainConfig.from_dict(recorded).transform_classes == "none"


@pytest.mark.core  # the turned images go through each backend's input path
def test_transform_classes_train_but_never_validate(tiny_arrays):
    from keras_siamese.training.trainer import Trainer

    images, labels = tiny_arrays
    trainer = Trainer((images, labels), **{**TINY, "transform_classes": "flips"}).prepare().build()
    assert trainer.config.transform_classes == "flips"
    drawn = np.concatenate([trainer.batches[i][1] for i in range(len(trainer.batches))])
    assert set(drawn % 3) == {0, 1, 2} and drawn.max() < 3 * len(np.unique(labels))  # 3 versions per class
    default = Trainer((images, labels), **TINY).prepare()
    assert default.config.transform_classes == "rotate-180"
    assert trainer.config.epochs == default.config.epochs == 1
    auto = Trainer((images, labels), **{**TINY, "epochs": None}).prepare()  # the turned images count as images
    assert auto.config.epochs == make_config().epochs_for(2 * len(auto.splits.train))
    trainer.fit().finish()
    assert np.isfinite(trainer.history["val_loss"]).all()
    (validation,) = [c for c in trainer.callbacks if isinstance(c, ValidationMetrics)]
    assert validation.batches.max() < len(trainer.splits.val)  # validation batches index real images only
    assert trainer.record["settings"]["transform_classes"] == "flips"


@pytest.mark.parametrize("settings, message", [
    (dict(epochs="2"), "epochs must be an integer or None. Received: epochs='2'"),
    (dict(epochs=1.5), "Received: epochs=1.5"),
    (dict(epochs=True), "Received: epochs=True"),
    (dict(batch_size=16.5), "batch_size must be an integer. Received: batch_size=16.5"),
    (dict(normalize="no"), "normalize must be True or False. Received: normalize='no'"),
    (dict(margin="1"), "margin must be a finite number. Received: margin='1'"),
    (dict(learning_rate=float("nan")), "Received: learning_rate=nan"),
])
def test_settings_of_the_wrong_kind_are_named_not_coerced(tiny_arrays, settings, message):
    with pytest.raises(SiameseError, match=re.escape(message)):
        train(tiny_arrays, output=None, **{**TINY, **settings})


def test_numpy_settings_become_plain_values_the_record_can_hold():
    from keras_siamese.training.config import make_config

    config = make_config(normalize=np.True_, learning_rate=np.float32(0.5), epochs=np.int64(3), val_fraction=0)
    assert json.loads(json.dumps(config.to_dict()))["epochs"] == 3
    assert (type(config.normalize), type(config.learning_rate), type(config.val_fraction)) == (bool, float, float)


def test_data_of_an_unknown_kind_or_unsortable_labels_are_named(tiny_arrays):
    images, labels = tiny_arrays
    with pytest.raises(SiameseError, match="data must be a source name, a folder, .*; received list"):
        train([images, labels], output=None, **TINY)
    with pytest.raises(SiameseError, match=r"an \(images, labels\) tuple; received a tuple of 1"):
        train((images,), output=None, **TINY)
    with pytest.raises(SiameseError, match="labels must be numbers or strings that sort together"):
        train((images, [None] * 6 + list(labels[6:])), output=None, **TINY)


def test_arrays_take_the_image_size_and_channels_asked_for(tiny_arrays):
    result = train(tiny_arrays, output=None, **{**TINY, "image_size": (16, 20), "channels": 3})
    assert result.model.input_image_shape == (16, 20, 3)


def test_a_diverged_run_stops_and_writes_no_model(tmp_path, tiny_arrays):
    from keras_siamese.training import checkpoint

    settings = {**TINY, "images_per_class": None, "epochs": 3}  # pairs: the seed recipe's loss
    with pytest.raises(SiameseError, match=r"training diverged: the loss was (nan|inf) in epoch 1; try a lower "
                                           r"--learning-rate \(it was 1e\+30\)"):
        train(tiny_arrays, output=tmp_path / "out", recipe="seed", learning_rate=1e30, **settings)
    assert not (tmp_path / "out" / "model.keras").exists()
    assert not (tmp_path / "out" / checkpoint.STATE).exists()  # no diverged epoch was saved to resume from


def test_without_a_validation_split_a_note_says_what_that_means(tiny_arrays, capsys):
    train(tiny_arrays, output=None, **{**TINY, "val_fraction": 0.0})
    assert "note: no validation split (--val-fraction 0, or too few classes to hold any out): no early stopping, " \
           "and the threshold is calibrated on training pairs" in capsys.readouterr().err


def test_unlabelled_arrays_beside_streamed_images_are_refused_before_training(tmp_path):
    from conftest import write_folder

    folder = write_folder(tmp_path / "images", per_class=6)
    with pytest.raises(SiameseError, match="unlabeled: images in memory cannot train beside images streamed"):
        train(folder, output=None, stream=True, unlabeled=np.zeros((4, 16, 16, 1), np.uint8), **TINY)

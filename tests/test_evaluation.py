"""`evaluate` on classes the model trained on or never saw, and on a threshold chosen on other classes."""

import re

import numpy as np
import pytest

import keras_siamese as ks
from keras_siamese.cli import main
from keras_siamese.cli.evaluate import format_table
from keras_siamese.data.dataset import ImageSet

NAMES = np.array(["a", "b", "c", "d", "e"])
QUICK = dict(epochs=1, batch_size=12, images_per_class=4, embedding_dim=8)


@pytest.fixture(scope="module")
def images():
    from conftest import synthetic_images

    x, y = synthetic_images(classes=5, per_class=10)
    return x, NAMES[y]


def of_classes(images, classes):
    x, names = images
    keep = np.isin(names, classes)
    return ImageSet.from_arrays(x[keep], names[keep])


@pytest.fixture(scope="module")
def model(images):
    """Trained on classes a, b, c and calibrated on them."""
    model = ks.train(of_classes(images, ["a", "b", "c"]), output=None, progress=False, **QUICK).model
    ks.calibrate(model, of_classes(images, ["a", "b", "c"]))
    return model


def evaluate_on(model, images, classes):
    return ks.evaluate(model, of_classes(images, classes), episodes=20, progress=False)


def test_a_seed_outside_the_range_every_backend_takes_is_named(model, images):
    from keras_siamese.errors import SiameseError

    for seed in (-1, 2**32, True, 1.5):
        with pytest.raises(SiameseError, match="seed must be an integer from 0 to 4294967295"):
            ks.evaluate(model, of_classes(images, ["a", "b"]), seed=seed, progress=False)
    metrics = ks.evaluate(model, of_classes(images, ["a", "b"]), seed=np.int64(3), progress=False, episodes=5)
    assert type(metrics["pairs"]["seed"]) is int  # JSON can hold it


def test_model_records_its_training_and_calibration_classes(model):
    assert set(model.info["classes"]) <= {"a", "b", "c"} and len(model.info["classes"]) >= 2
    assert model.calibration["classes"] == ["a", "b", "c"]


def test_unseen_classes_are_an_open_set_with_the_threshold_gap(model, images):
    metrics = evaluate_on(model, images, ["d", "e"])
    assert metrics["classes"] == 2 and metrics["seen_classes"] == 0 and metrics["open_set"] is True
    gap, v = metrics["threshold_gap"], metrics["verification"]
    assert gap["accuracy_at_threshold"] == v["at_threshold"]["accuracy"]
    assert gap["best_accuracy_optimistic"] == v["best_accuracy_optimistic"]
    # the best threshold of these pairs is at least as accurate as any other threshold
    assert gap["best_accuracy_optimistic"] >= max(gap["accuracy_at_threshold"], gap["accuracy_at_eer_threshold"])
    table = format_table(metrics)
    assert re.search(r"^classes seen in training +0 of 2 \(open set\)$", table, re.M)
    assert re.search(rf"^threshold from other classes +accuracy {gap['accuracy_at_threshold']:.4f} at it, "
                     rf"{gap['accuracy_at_eer_threshold']:.4f} at the equal-error distance$", table, re.M)


def test_training_classes_are_a_closed_set(model, images):
    trained_on = model.info["classes"]
    metrics = evaluate_on(model, images, trained_on)
    assert metrics["seen_classes"] == len(trained_on) and metrics["open_set"] is False
    assert "threshold_gap" not in metrics  # calibrated on these classes
    assert f"{len(trained_on)} of {len(trained_on)} (closed set)" in format_table(metrics)


def test_some_seen_classes_are_partly_seen(model, images):
    metrics = evaluate_on(model, images, [model.info["classes"][0], "d"])
    assert (metrics["seen_classes"], metrics["open_set"]) == (1, False)
    assert "threshold_gap" not in metrics  # one of them was among the calibration classes
    assert "1 of 2 (partly seen)" in format_table(metrics)


def test_models_that_record_no_classes_say_nothing(model, images, monkeypatch):
    monkeypatch.setattr(model, "info", {k: v for k, v in model.info.items() if k != "classes"})
    monkeypatch.setattr(model, "calibration", {k: v for k, v in model.calibration.items() if k != "classes"})
    metrics = evaluate_on(model, images, ["d", "e"])
    assert not {"seen_classes", "open_set", "threshold_gap"} & set(metrics)
    table = format_table(metrics)
    assert "seen in training" not in table and "other classes" not in table


def test_cli_hints_calibrate_and_calibrating_on_the_new_classes_closes_the_gap(model, tmp_path, capsys):
    from conftest import write_folder

    path = tmp_path / "model.keras"
    ks.save_model(model, path)
    new = write_folder(tmp_path / "new", classes=("dot", "ring"), per_class=6)
    evaluate = ["evaluate", "--model", str(path), "--data", str(new), "--split", "all", "--quiet",
                "--episodes", "20", "--output", str(tmp_path / "eval")]
    assert main(evaluate) == 0
    printed = capsys.readouterr().out
    assert "0 of 2 (open set)" in printed and "threshold from other classes" in printed
    hint = f"siamese calibrate --model {path} --data FOLDER_OF_NEW_CLASSES --recenter --output NEW_MODEL.keras"
    assert hint in printed

    assert main(["calibrate", "--model", str(path), "--data", str(new), "--quiet"]) == 0
    assert ks.load_model(path).calibration["classes"] == ["dot", "ring"]
    capsys.readouterr()
    assert main(evaluate) == 0
    printed = capsys.readouterr().out
    assert "0 of 2 (open set)" in printed
    assert "threshold from other classes" not in printed and "siamese calibrate" not in printed


def test_evaluation_rebuilds_the_training_validation_split(tmp_path):
    from conftest import write_folder
    from keras_siamese.evaluation import evaluation_images

    folder = write_folder(tmp_path / "images", per_class=20)
    model = ks.train(str(folder), output=None, progress=False, **{**QUICK, "val_fraction": 0.3, "seed": 5}).model
    expected = ks.load_splits(folder, seed=5, val_fraction=0.3, progress=False)
    found, _ = evaluation_images(model, split="val", progress=False)
    assert sorted(found.ids) == sorted(expected.val.ids) and len(found) == 15  # 5 of each class's 16
    assert not set(found.ids) & set(expected.train.ids)  # none of the images the model trained on


def test_evaluate_and_calibrate_take_the_tuple_train_takes(tiny_arrays):
    images, labels = tiny_arrays
    model = ks.SiameseModel(ks.build_tower("small", images.shape[1:], 8, normalize=True))
    as_set = ks.evaluate(model, ImageSet.from_arrays(images, labels), progress=False)["verification"]["roc_auc"]
    assert ks.evaluate(model, (images, labels), progress=False)["verification"]["roc_auc"] == as_set
    assert ks.calibrate(model, (images, labels))["accuracy"] > 0
    with pytest.raises(ks.SiameseError, match="ks.load_model the file"):
        ks.calibrate("model.keras", (images, labels))


def test_a_recorded_data_folder_missing_here_is_found_as_on_any_machine(tmp_path):
    """A model trained on downloaded MNIST records its cache folder; elsewhere that folder is not there."""
    from types import SimpleNamespace

    from keras_siamese.evaluation import default_source

    here = SimpleNamespace(info={"data": {"name": "mnist", "path": str(tmp_path)}})
    elsewhere = SimpleNamespace(info={"data": {"name": "mnist", "path": str(tmp_path / "gone")}})
    sample = SimpleNamespace(info={"data": {"name": "mnist-sample", "path": str(tmp_path)}})
    assert default_source(here) == ("mnist", str(tmp_path))
    assert default_source(elsewhere) == ("mnist", None)  # then Debian's copy, the cache, or a download
    assert default_source(sample) == ("mnist-sample", None)  # it reads no folder


def test_only_the_training_data_is_split_as_training_split_it():
    from types import SimpleNamespace

    from keras_siamese.evaluation import _trained_on

    model = SimpleNamespace(info={"data": {"name": "folder", "path": "/data/faces"}})
    assert _trained_on(model, SimpleNamespace(source={"name": "folder", "path": "/data/faces"}))
    assert not _trained_on(model, SimpleNamespace(source={"name": "folder", "path": "/data/new-faces"}))
    assert not _trained_on(model, SimpleNamespace(source={"name": "mnist-sample"}))
    digits = SimpleNamespace(info={"data": {"name": "mnist", "path": "/cache/mnist"}})
    assert _trained_on(digits, SimpleNamespace(source={"name": "mnist", "path": "/elsewhere/mnist"}))


def test_evaluating_the_images_a_threshold_was_calibrated_on_is_noted(trained, tmp_path, capsys):
    folder, model = trained
    calibrated = tmp_path / "calibrated.keras"
    assert main(["calibrate", "--model", str(model), "--data", str(folder), "--output", str(calibrated),
                 "--quiet"]) == 0  # a plain folder: every image, split "all"
    capsys.readouterr()
    assert main(["evaluate", "--model", str(calibrated), "--data", str(folder), "--quiet", "--episodes", "5"]) == 0
    assert "note: the threshold was calibrated on these images (the all split of this data)" in \
        capsys.readouterr().err
    assert main(["evaluate", "--model", str(model), "--data", str(folder), "--quiet", "--episodes", "5"]) == 0
    assert "calibrated on" not in capsys.readouterr().err  # the trained model's test split: never calibrated on
    # training calibrated the threshold on its validation images (or its training images, without them)
    split = ks.load_model(model).calibration["split"]
    assert main(["evaluate", "--model", str(model), "--data", str(folder), "--split", split, "--quiet",
                 "--episodes", "5"]) == 0
    assert f"note: the threshold was calibrated on these images (the {split} split of this data)" in \
        capsys.readouterr().err
    assert main(["evaluate", "--model", str(model), "--split", "all", "--quiet", "--episodes", "5"]) == 0
    assert f"calibrated on some of these images (the {split} split" in capsys.readouterr().err

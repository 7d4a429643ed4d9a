"""The `siamese` command in-process: every subcommand, and bad input as one line with status 2."""

import csv
import json
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from conftest import QUICK, error_line
from keras_siamese.cli import main


def test_train_on_a_folder_writes_outputs(trained):
    folder, model = trained
    config = json.loads((model.parent / "config.json").read_text())
    assert config["data"]["name"] == "folder"
    assert config["data"]["classes"] == ["circle", "cross", "square"]
    assert config["data"]["image_shape"] == [16, 17, 1]  # the median of 16x16, 16x17 and 16x18


def test_evaluate_writes_metrics_table_and_plots(trained, tmp_path, capsys):
    folder, model = trained
    out = tmp_path / "eval"
    assert main(["evaluate", "--model", str(model), "--split", "all", "--output", str(out), "--quiet",
                 "--episodes", "50"]) == 0
    printed = capsys.readouterr().out
    assert "ROC AUC" in printed and "precision@1" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["images"] == 24 and metrics["pairs"]["count"] == 48
    with open(out / "distances.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 48 and {"image_a", "image_b", "same_class", "distance"} <= set(rows[0])
    for name in ("roc.png", "distance_histogram.png", "embedding_map.png"):
        assert Image.open(out / name).size[0] > 300


def test_calibrate_rewrites_the_threshold(trained, tmp_path, capsys):
    folder, model = trained
    copy = tmp_path / "model.keras"
    assert main(["calibrate", "--model", str(model), "--data", str(folder), "--rule", "far=0",
                 "--output", str(copy), "--quiet"]) == 0
    assert "threshold" in capsys.readouterr().out
    from keras_siamese import load_model

    calibrated = load_model(copy)
    assert calibrated.calibration["rule"] == "far=0.0" and calibrated.calibration["split"] == "all"
    assert calibrated.calibration["false_accept_rate"] == 0.0


def test_compare_prints_distance_and_decision(trained, capsys):
    folder, model = trained
    a, b = sorted((folder / "circle").iterdir())[:2]
    assert main(["compare", "--model", str(model), str(a), str(b)]) == 0
    out = capsys.readouterr().out.split()
    assert out[0] == "distance" and float(out[1]) >= 0 and out[2] in ("same", "different")


def test_pairs_writes_figure_and_table(trained, tmp_path, capsys):
    folder, model = trained
    figure = tmp_path / "pairs.png"
    assert main(["pairs", "--model", str(model), "--input", str(folder), "--count", "4",
                 "--output", str(figure)]) == 0
    assert Image.open(figure).size[1] > 100
    with open(tmp_path / "pairs.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 and all(float(r["distance"]) >= 0 for r in rows)
    assert len(capsys.readouterr().out.splitlines()) == 6  # 4 rows, figure, table


def test_pairs_inside_its_input_folder_skip_their_own_outputs_and_never_replace_an_image(trained, tmp_path, capsys):
    import shutil

    folder, model = trained
    copy = shutil.copytree(folder, tmp_path / "images")
    image = next((copy / "circle").iterdir())
    before = image.read_bytes()
    assert main(["pairs", "--model", str(model), "--input", str(copy), "--output", str(image)]) == 2
    assert "one of the images under" in error_line(capsys) and image.read_bytes() == before
    figure = copy / "pairs.png"
    for _ in range(2):  # the second run finds the first one's figure and table in the folder
        assert main(["pairs", "--model", str(model), "--input", str(copy), "--count", "100", "--output",
                     str(figure)]) == 0
        with open(copy / "pairs.csv") as f:
            names = {Path(row[side]).name for row in csv.DictReader(f) for side in ("image_a", "image_b")}
        assert len(names) > 10 and not names & {"pairs.png", "pairs.csv"}


def test_pairs_leave_out_files_that_are_not_images_and_name_them(trained, tmp_path, capsys):
    import shutil

    folder, model = trained
    copy = shutil.copytree(folder, tmp_path / "images")
    (copy / "Thumbs.db").write_bytes(b"\0" * 64)
    (copy / "circle" / "notes.txt").write_text("drawn by hand")
    (copy / "table.csv").mkdir()  # a folder where pairs' table would go
    for seed in range(3):  # whichever pairs are drawn
        assert main(["pairs", "--model", str(model), "--input", str(copy), "--count", "30", "--seed", str(seed),
                     "--output", str(tmp_path / "out.png")]) == 0
        err = capsys.readouterr().err
        assert "2 files under" in err and "Thumbs.db" in err and "notes.txt" in err
    assert main(["pairs", "--model", str(model), "--input", str(copy), "--output", str(copy / "table.png")]) == 2
    assert "the table beside it" in error_line(capsys) and not (copy / "table.png").exists()


def test_samples_writes_named_pngs(trained, tmp_path):
    folder, _ = trained
    assert main(["samples", "--data", str(folder), "--output", str(tmp_path / "s"), "--count", "5"]) == 0
    names = sorted(p.name for p in (tmp_path / "s").iterdir() if not p.name.startswith("."))
    assert len(names) == 5 and all(n.startswith("image_") and n.endswith(".png") for n in names)
    (tmp_path / "s" / "mine.png").write_bytes(b"not a sample")
    (tmp_path / "s" / "image_99_mine.png").write_bytes(b"named like one, not written by samples")
    # a smaller draw replaces the earlier one whole: `pairs` on the folder sees this draw only
    assert main(["samples", "--data", str(folder), "--output", str(tmp_path / "s"), "--count", "2"]) == 0
    names = sorted(p.name for p in (tmp_path / "s").iterdir() if not p.name.startswith("."))
    assert len(names) == 4 and {"mine.png", "image_99_mine.png"} < set(names)  # files it did not write stay
    assert main(["samples", "--data", str(folder), "--output", str(tmp_path / "t"), "--count", "1",
                 "--image-size", "40x30"]) == 0
    assert Image.open(next((tmp_path / "t").glob("image_*.png"))).size == (30, 40)


def test_bad_input_gives_one_line_and_status_2(trained, tmp_path, capsys):
    folder, model = trained
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    fake = tmp_path / "fake.keras"
    fake.write_text("not a zip")
    plain = tmp_path / "plain.keras"
    keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]).save(plain)
    truncated = tmp_path / "truncated.png"
    data = (next((folder / "circle").iterdir())).read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    one_class = tmp_path / "one"
    (one_class / "a").mkdir(parents=True)
    for i in range(3):
        Image.fromarray(np.full((8, 8), i * 50, np.uint8)).save(one_class / "a" / f"{i}.png")
    lonely = tmp_path / "lonely"
    for name, count in (("a", 3), ("b", 1)):
        (lonely / name).mkdir(parents=True)
        for i in range(count):
            Image.fromarray(np.full((8, 8), i * 50, np.uint8)).save(lonely / name / f"{i}.png")
    (tmp_path / "empty").mkdir()
    import shutil

    copy = shutil.copytree(folder, tmp_path / "data")
    (tmp_path / "out-of-data").mkdir()
    linked = copy / "linked"  # a link inside the data folder, to a folder outside it
    linked.symlink_to(tmp_path / "out-of-data")
    cases = [
        (["train", "--data", str(tmp_path / "missing"), *QUICK], "missing"),
        (["train", "--data", str(tmp_path / "empty"), *QUICK], "empty"),
        (["train", "--data", str(one_class), "--output", str(tmp_path / "o1"), *QUICK], "class"),
        (["train", "--data", str(lonely), "--output", str(tmp_path / "o2"), *QUICK], "'b'"),
        (["train", "--data", "cifar-10", *QUICK], "unknown --data 'cifar-10'"),
        (["train", "--resume", str(text)], "--resume " + str(text) + ": is a file, not a folder"),
        (["compare", "--model", "/dev/null", str(text), str(text)], "/dev/null: not a regular file"),
        (["train", "--data", str(folder), "--output", str(folder / "circle" / "run"), *QUICK],
         "run: inside the data folder"),
        (["index", "--model", str(model), "--data", str(folder), "--output", str(folder / "g.npz")],
         "g.npz: inside the data folder"),
        (["samples", "--data", str(folder), "--output", str(folder / "square")], "square: inside the data folder"),
        (["evaluate", "--model", str(model), "--data", str(folder), "--output", str(folder / "eval")],
         "eval: inside the data folder"),
        (["evaluate", "--model", str(model), "--output", str(folder / "eval")], "eval: inside the data folder"),
        (["calibrate", "--model", str(model), "--data", str(folder), "--output", str(folder / "new" / "c.keras")],
         "c.keras: inside the data folder"),
        (["calibrate", "--model", str(model), "--output", str(folder / "c.keras")], "c.keras: inside the data folder"),
        (["samples", "--data", str(copy), "--output", str(linked)], "linked: inside the data folder"),
        (["train", "--data", str(text), *QUICK], "notes.txt: is a file, not a folder"),
        (["train", "--data", str(folder), "--unlabeled", str(tmp_path / "nothere"), *QUICK],
         "--unlabeled " + str(tmp_path / "nothere") + ": folder not found"),
        (["pairs", "--model", str(model), "--input", str(text)], "notes.txt: is a file, not a folder"),
        (["compare", "--model", str(fake), str(text), str(text)], "fake.keras"),
        (["compare", "--model", str(plain), str(text), str(text)], "not a keras-siamese model"),
        (["compare", "--model", str(tmp_path / "none.keras"), str(text), str(text)], "none.keras"),
        (["compare", "--model", str(model), str(text), str(text)], "notes.txt"),
        (["compare", "--model", str(model), str(truncated), str(truncated)], "truncated.png"),
        (["pairs", "--model", str(model), "--input", str(tmp_path / "empty")], "empty"),
        (["calibrate", "--model", str(model), "--rule", "recall"], "recall"),
        (["train", "--epochs", "-1", *QUICK[2:]], "--epochs must be at least 1; received -1"),
        (["train", "--temperature", "0", *QUICK], "--temperature must be positive; received 0.0"),
        (["train", "--val-split", "classes", "--val-fraction", "1.5", *QUICK], "--val-fraction must be in"),
    ]
    for argv, fragment in cases:
        assert main(argv) == 2, argv
        assert fragment in error_line(capsys), argv
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()
    assert sorted(p.name for p in folder.iterdir()) == ["circle", "cross", "square"]  # nothing made in the data


@pytest.mark.parametrize("argv, fragment", [
    (["train", "--epochs", "ten"], "--epochs"),
    (["samples", "--output", "x", "--count", "0"], "--count"),
    (["pairs", "--model", "m.keras", "--input", "x", "--count", "0"], "--count"),
    (["pairs", "--model", "m.keras", "--input", "x", "--count", "101"], "between 1 and 100"),
    (["train", "--seed", "-1"], "between 0 and 4294967295; received -1"),
    (["evaluate", "--model", "m.keras", "--seed", "4294967296"], "between 0 and 4294967295"),
    (["samples", "--output", "x", "--seed", "1.5"], "not an integer: 1.5"),
    (["train", "--image-size", "3x"], "expected positive SIZE or HEIGHTxWIDTH; received 3x"),
])
def test_bad_numbers_are_refused_by_the_parser(argv, fragment, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert fragment in err.splitlines()[-1] and "Traceback" not in err


def test_tower_and_size_mismatches_are_one_line_errors(trained, tmp_path, capsys):
    folder, _ = trained
    cases = [
        (["train", "--data", str(folder), "--tower", "mobilenet-v3-small", *QUICK], "at least 32x32"),
        (["train", "--data", str(folder), "--weights", "imagenet", *QUICK], "--weights apply to the application"),
        (["train", "--data", str(folder), "--image-size", "2", *QUICK], "at least 4x4"),
        (["train", "--data", str(folder), "--calibrate", "recall", *QUICK], "recall"),
    ]
    for argv, fragment in cases:
        assert main([*argv, "--output", str(tmp_path / "o")] if argv[0] == "train" else argv) == 2, argv
        assert fragment in error_line(capsys), argv
    assert not (tmp_path / "o").exists()


def test_pairs_refuses_a_figure_name_it_cannot_write(trained, tmp_path, capsys):
    folder, model = trained
    assert main(["pairs", "--model", str(model), "--input", str(folder), "--output", str(tmp_path / "p.csv")]) == 2
    assert "must end in .png" in error_line(capsys)
    assert not any(tmp_path.iterdir())


def test_a_failed_evaluation_leaves_no_files(trained, tmp_path, capsys, monkeypatch):
    folder, model = trained
    out = tmp_path / "eval"

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("keras_siamese.plotting.embeddings.plot_embedding_map", broken)
    assert main(["evaluate", "--model", str(model), "--split", "all", "--output", str(out), "--quiet"]) == 1
    assert "disk full" in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())


def test_train_with_unlabelled_images_transform_classes_and_an_image_split(trained, tmp_path):
    folder, _ = trained
    out = tmp_path / "o"
    argv = ["train", "--data", str(folder), "--unlabeled", str(folder / "circle"), "--val-split", "images",
            "--transform-classes", "flip-left-right", "--output", str(out), *QUICK]
    assert main(argv) == 0
    settings = json.loads((out / "config.json").read_text())["settings"]
    assert settings["unlabeled"] == str(folder / "circle") and settings["val_split"] == "images"
    assert settings["transform_classes"] == "flip-left-right"


def test_an_interrupted_run_resumes_from_the_command_line(trained, tmp_path, capsys, monkeypatch):
    from keras_siamese.training import checkpoint

    folder, _ = trained
    out = tmp_path / "run"
    real_save = checkpoint.save

    def save_then_interrupt(folder_, trainer, epoch, history):
        real_save(folder_, trainer, epoch, history)
        raise KeyboardInterrupt  # Ctrl-C right after the first epoch's checkpoint

    monkeypatch.setattr(checkpoint, "save", save_then_interrupt)
    monkeypatch.chdir(folder.parent)  # the data named relative to where the run started
    argv = ["train", "--data", folder.name, "--output", str(out), *QUICK[:-1], "--epochs", "2", "--quiet"]
    assert main(argv) == 130
    assert f"siamese train --resume {out}" in capsys.readouterr().err
    assert json.loads((out / "config.json").read_text())["status"] == "incomplete"
    monkeypatch.setattr(checkpoint, "save", real_save)
    monkeypatch.chdir(tmp_path)  # resumed from elsewhere
    assert main(["train", "--resume", str(out), "--epochs", "60", "--output", "elsewhere"]) == 2
    assert error_line(capsys).endswith("--resume continues the run with the settings it began with; drop --output, "
                                       "--epochs")
    assert main(["train", "--resume", str(out), "--quiet"]) == 0
    record = json.loads((out / "config.json").read_text())
    assert record["status"] == "complete" and record["epochs_run"] == 2
    assert main(["train", "--resume", str(tmp_path / "nothing")]) == 2
    assert "no checkpoint to resume" in error_line(capsys)
    monkeypatch.setattr(checkpoint, "save", save_then_interrupt)
    assert main(["train", "--data", str(folder), "--output", str(out), *QUICK[:-1], "--epochs", "2", "--quiet"]) == 130
    capsys.readouterr()
    monkeypatch.setattr(checkpoint, "save", real_save)

    def interrupt_before_an_epoch_ends(self, *args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:  # a new run stopped before its first checkpoint: the hint is the old run's
        patch.setattr("keras_siamese.training.trainer.Trainer.fit", interrupt_before_an_epoch_ends)
        assert main(["train", "--data", str(folder), "--output", str(out), *QUICK]) == 130
    assert (f"no epoch of this run finished; {out} still holds the earlier interrupted run (siamese train --resume "
            f"{out} continues that one)") in capsys.readouterr().err
    assert main(["train", "--resume", str(out), "--max-pixels", "100000000", "--quiet"]) == 0  # a reading limit
    capsys.readouterr()
    monkeypatch.setattr(checkpoint, "save", save_then_interrupt)
    assert main(["train", "--data", str(folder), "--output", str(out), *QUICK[:-1], "--epochs", "2", "--quiet"]) == 130
    capsys.readouterr()
    monkeypatch.setattr(checkpoint, "save", real_save)
    assert main(["train", "--data", str(folder), "--output", str(out), *QUICK]) == 0  # a new run, not a resume
    assert f"note: {out} holds an interrupted run; this run replaces it" in capsys.readouterr().err


def test_settings_the_loss_would_not_read_are_refused(tmp_path, capsys):
    for argv, message in (
        (["--margin", "0.5"], "--margin is not used by loss 'supcon' (it applies to in-batch, triplet, contrastive)"),
        (["--mining", "batch-hard"], "--mining is not used by loss 'supcon' (it applies to triplet)"),
        (["--recipe", "seed", "--temperature", "0.5"], "--temperature is not used by loss 'contrastive'"),
        (["--recipe", "seed", "--images-per-class", "4"], "--images-per-class is not used by loss 'contrastive', "
                                                          "which trains on pairs"),
        (["--unlabeled", ".", "--ssl-weight", "0"], "--ssl-weight must be above 0 with unlabelled images"),
    ):
        assert main(["train", *argv, "--output", str(tmp_path / "never")]) == 2
        assert message in error_line(capsys) and not (tmp_path / "never").exists()


def test_colour_folder_keeps_colour_when_only_the_size_is_given(tmp_path):
    from conftest import write_folder

    folder = write_folder(tmp_path / "colour", per_class=8, mode="RGB")
    assert main(["train", "--data", str(folder), "--image-size", "20", "--output", str(tmp_path / "o"), *QUICK]) == 0
    config = json.loads((tmp_path / "o" / "config.json").read_text())
    assert config["data"]["image_shape"] == [20, 20, 3]


def test_train_flags_cover_every_config_field_and_take_choices_from_the_registries():
    import dataclasses

    from keras_siamese.cli import build_parser
    from keras_siamese.models.towers import TOWERS
    from keras_siamese.training.config import TrainConfig
    from keras_siamese.training.objectives import LOSSES

    train_parser = build_parser("train")._subparsers._group_actions[0].choices["train"]
    actions = {action.dest: action for action in train_parser._actions}
    assert {f.name for f in dataclasses.fields(TrainConfig)} - {"recipe", "data"} <= set(actions)
    assert actions["loss"].choices == list(LOSSES) and actions["tower"].choices == list(TOWERS)
    args = build_parser("train").parse_args(["train", "--tower", "Small_Grid", "--transform-classes", "rotate_180",
                                             "--mining", "batch_hard", "--val-split", "images"])
    assert (args.tower, args.transform_classes, args.mining) == ("small-grid", "rotate-180", "batch-hard")


@pytest.mark.slow
def test_an_application_tower_trains_on_colour_images(tmp_path):
    from conftest import write_folder

    folder = write_folder(tmp_path / "colour", per_class=8, size=32, mode="RGB")
    argv = ["train", "--data", str(folder), "--tower", "mobilenet-v3-small", "--image-size", "32",
            "--output", str(tmp_path / "o"), *QUICK]
    assert main(argv) == 0
    from keras_siamese import load_model

    model = load_model(tmp_path / "o" / "model.keras")
    assert model.input_image_shape == (32, 32, 3) and model.threshold is not None


def test_the_command_line_imports_no_backend_until_a_command_runs():
    """`siamese --help` stays instant: importing the CLI loads neither Keras, a backend nor matplotlib (which
    only the commands that plot need)."""
    import subprocess
    import sys

    code = ("import sys, keras_siamese.cli\n"
            "print(sorted({'keras', 'tensorflow', 'jax', 'torch', 'matplotlib'} & set(sys.modules)))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "[]"


def test_the_backend_loads_without_keras_optional_imports_which_then_still_import():
    """Keras would import scikit-learn, pandas and matplotlib's pyplot (1.1 s) for features no command uses;
    the CLI skips them while Keras loads, and each imports normally afterwards."""
    import subprocess
    import sys

    code = ("import importlib, sys\n"
            "from keras_siamese.cli import import_backend_quietly, KERAS_OPTIONAL_IMPORTS as names\n"
            "import_backend_quietly()\n"
            "print(sorted(set(names) & set(sys.modules)))\n"
            "[importlib.import_module(name) for name in names]\n"
            "import matplotlib.pyplot\n"
            "print(sorted(set(names) & set(sys.modules)))")
    lines = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert lines[:2] == ["[]", str(sorted(("sklearn", "pandas", "matplotlib")))]


def test_evaluate_on_val_is_the_classes_training_held_out_and_the_record_has_the_trained_sizes(tmp_path):
    from conftest import write_folder

    folder = write_folder(tmp_path / "six", classes=tuple("abcdef"), per_class=6)
    out = tmp_path / "out"
    assert main(["train", "--data", str(folder), "--output", str(out), *QUICK, "--val-split", "classes",
                 "--val-fraction", "0.34"]) == 0
    record = json.loads((out / "config.json").read_text())
    # test: 2 of each class's 6 images (round(1.2) = 1, made 2 for a pair); val: 2 of the 6 classes, 4 images each
    assert record["data"]["sizes"] == {"train": 16, "val": 8, "test": 12}
    evaluation = tmp_path / "evaluation"
    assert main(["evaluate", "--model", str(out / "model.keras"), "--split", "val", "--output", str(evaluation)]) == 0
    metrics = json.loads((evaluation / "metrics.json").read_text())
    assert (metrics["images"], metrics["classes"], metrics["seen_classes"]) == (8, 2, 0)


def test_a_validation_folder_is_kept_whatever_the_number_of_classes(tmp_path):
    from conftest import write_folder
    from keras_siamese.training.config import CLASS_SPLIT_FROM
    from keras_siamese.training.trainer import Trainer

    names = tuple(f"c{i:02d}" for i in range(CLASS_SPLIT_FROM))  # enough classes for class-level validation
    write_folder(tmp_path / "split" / "train", classes=names, per_class=4, size=8)
    write_folder(tmp_path / "split" / "val", classes=names[:3], per_class=2, size=8)
    trainer = Trainer(str(tmp_path / "split"), progress=False, epochs=1).prepare()
    assert len(trainer.splits.val) == 6 and trainer.splits.source["sizes"]["val"] == 6
    assert all("/val/" in str(path) for path in trainer.splits.val.ids)


def test_file_names_that_are_not_utf8_are_written_and_printed_as_their_own_bytes(trained, tmp_path, capsysbinary):
    import os

    folder, model = trained
    copy = tmp_path / "copy"
    for source in sorted(folder.rglob("*.png")):
        target = copy / source.relative_to(folder)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source.read_bytes())
    latin = os.fsdecode(bytes(copy / "circle") + b"/caf\xe9.png")  # a Latin-1 name: not valid UTF-8
    os.replace(next((copy / "circle").iterdir()), latin)
    out = tmp_path / "eval"
    assert main(["evaluate", "--model", str(model), "--data", str(copy), "--split", "all", "--output", str(out),
                 "--quiet", "--episodes", "5"]) == 0
    assert b"circle/caf\xe9.png" in (out / "distances.csv").read_bytes()
    figure = tmp_path / "pairs.png"
    assert main(["pairs", "--model", str(model), "--input", str(copy / "circle"), "--count", "8",
                 "--output", str(figure)]) == 0
    assert b"caf\xe9.png" in (tmp_path / "pairs.csv").read_bytes()
    assert b"circle/caf\xe9.png" in capsysbinary.readouterr().out  # the figure drew it too, as caf\ufffd.png


def test_calibrate_of_a_missing_model_makes_no_folder_and_an_unreadable_one_is_an_io_error(trained, tmp_path,
                                                                                           capsys, monkeypatch):
    from keras_siamese.inference import model_io

    assert main(["calibrate", "--model", str(tmp_path / "nosuch" / "model.keras")]) == 2
    assert error_line(capsys).endswith("nosuch/model.keras: model file not found")
    assert not (tmp_path / "nosuch").exists()

    _, model = trained

    def denied(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(model_io, "open", denied, raising=False)  # as a file this user may not read
    assert main(["compare", "--model", str(model), "a.png", "b.png"]) == 1
    assert error_line(capsys) == f"siamese compare: error: {model}: Permission denied"


def test_the_data_help_names_each_commands_default(capsys):
    for command, default in (("train", "default: mnist-sample"), ("evaluate", "default: the model's training source")):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert f"or a folder of class subfolders ({default})" in text and "embedded, default" not in text


def test_pairs_show_opens_its_window_once_the_figure_and_table_are_written(trained, tmp_path, monkeypatch, capsys):
    folder, model = trained
    figure = tmp_path / "pairs.png"
    seen = {}

    def window_closed_with_ctrl_c(*args, **kwargs):
        seen.update(figure=figure.is_file(), table=(tmp_path / "pairs.csv").is_file())
        raise KeyboardInterrupt

    monkeypatch.setattr("keras_siamese.plotting.pairs.show_pairs", window_closed_with_ctrl_c)
    assert main(["pairs", "--model", str(model), "--input", str(folder), "--count", "3", "--output", str(figure),
                 "--show"]) == 130
    assert seen == {"figure": True, "table": True}
    with open(tmp_path / "pairs.csv") as f:
        assert len(list(csv.DictReader(f))) == 3
    capsys.readouterr()

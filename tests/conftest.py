"""Shared fixtures: tiny synthetic image sets and folders, quiet backends."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest
from hypothesis import settings
from PIL import Image

# Property tests: a small budget by default; HYPOTHESIS_PROFILE=long for a thorough run.
settings.register_profile("ci", max_examples=50, deadline=None)
settings.register_profile("long", max_examples=5000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_report_header(config):
    import keras

    return f"keras {keras.__version__}, backend {keras.config.backend()}"


def synthetic_images(classes=3, per_class=12, size=12, channels=1, seed=0):
    """Classes that differ by where a bright square sits, plus noise: learnable in a few steps."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for c in range(classes):
        for _ in range(per_class):
            image = rng.integers(0, 60, (size, size, channels))
            row, col = divmod(c, 2)
            image[row * size // 2 : (row + 1) * size // 2, col * size // 2 : (col + 1) * size // 2] += 180
            images.append(np.clip(image, 0, 255).astype(np.uint8))
            labels.append(c)
    return np.stack(images), np.array(labels)


@pytest.fixture
def tiny_arrays():
    return synthetic_images()


def write_folder(root, classes=("circle", "square", "cross"), per_class=6, size=16, mode="L"):
    """A class-subfolder image folder with PNGs of varied sizes."""
    images, labels = synthetic_images(len(classes), per_class, size, 1 if mode == "L" else 3)
    for i, (image, label) in enumerate(zip(images, labels)):
        folder = root / classes[label]
        folder.mkdir(parents=True, exist_ok=True)
        picture = Image.fromarray(image[..., 0] if mode == "L" else image)
        picture.resize((size + i % 3, size)).save(folder / f"img_{i:03d}.png")
    return root


@pytest.fixture
def image_folder(tmp_path):
    return write_folder(tmp_path / "images")


# CLI training flags small enough for a one-second run
QUICK = ["--epochs", "1", "--batch-size", "12", "--images-per-class", "4", "--embedding-dim", "8", "--quiet"]


def error_line(capsys):
    """The one line a failing command wrote to stderr (asserting it is one line, with no traceback)."""
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    return err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(folder, model path): a model trained by the CLI for one epoch on a tiny folder of three classes."""
    from keras_siamese.cli import main

    root = tmp_path_factory.mktemp("trained")
    folder = write_folder(root / "images", per_class=8)
    assert main(["train", "--data", str(folder), "--output", str(root / "out"), *QUICK]) == 0
    return folder, root / "out" / "model.keras"

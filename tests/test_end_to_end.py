"""The installed `siamese` console script, end to end: train, samples, pairs, compare."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

SIAMESE = shutil.which("siamese", path=str(Path(sys.executable).parent)) or shutil.which("siamese")


def run(*args, cwd):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([SIAMESE, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_console_script_train_samples_pairs_compare(tmp_path):
    assert SIAMESE, "the `siamese` console script is not installed: pip install -e ."
    trained = run("train", "--data", "mnist-sample", "--epochs", "1", "--output", "out", "--quiet", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    assert "threshold" in trained.stdout
    for name in ("model.keras", "training_plot.png", "history.json", "config.json"):
        assert (tmp_path / "out" / name).is_file()

    samples = run("samples", "--data", "mnist-sample", "--output", "examples", cwd=tmp_path)
    assert samples.returncode == 0, samples.stderr
    images = sorted((tmp_path / "examples").glob("image_*.png"))
    assert len(images) == 13

    pairs = run("pairs", "--model", "out/model.keras", "--input", "examples", "--output", "out/pairs.png",
                cwd=tmp_path)
    assert pairs.returncode == 0, pairs.stderr
    assert (tmp_path / "out" / "pairs.png").is_file() and (tmp_path / "out" / "pairs.csv").is_file()

    compared = run("compare", "--model", "out/model.keras", str(images[0]), str(images[1]), cwd=tmp_path)
    assert compared.returncode == 0, compared.stderr
    words = compared.stdout.split()
    assert words[0] == "distance" and float(words[1]) > 0 and words[2] in ("same", "different")

    broken = run("compare", "--model", "out/history.json", str(images[0]), str(images[1]), cwd=tmp_path)
    assert broken.returncode == 2 and broken.stderr.count("\n") == 1 and "history.json" in broken.stderr


def test_an_unknown_keras_backend_is_one_line(tmp_path):
    env = {**os.environ, "KERAS_BACKEND": "no-such-backend", "TF_CPP_MIN_LOG_LEVEL": "3"}
    answer = subprocess.run([SIAMESE, "compare", "--model", "m.keras", "a.png", "b.png"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert answer.returncode == 2 and "Traceback" not in answer.stderr
    assert answer.stderr.strip().startswith("siamese compare: error: the Keras backend no-such-backend cannot be "
                                            "imported")

"""Data-parallel training: 2 virtual CPU devices (TensorFlow MirroredStrategy, JAX DataParallel) and 2 JAX
processes on 127.0.0.1 train what one device trains on the same global batches.

Each run is a fresh process (tests/replicas_run.py): devices can be split only before a backend starts.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from keras_siamese.data.batches import ClassBalancedBatches, PairBatches

HERE = Path(__file__).resolve().parent
RUN = HERE / "replicas_run.py"


def run(backend, out, devices, *hosts, check=True):
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, str(RUN), str(out), str(devices), *map(str, hosts)]
    return subprocess.Popen(command, cwd=HERE, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finished(process):
    output = process.communicate(timeout=300)[0]
    assert process.returncode == 0, output[-3000:]


def weights(npz):
    with np.load(npz) as arrays:
        return {k: arrays[k] for k in arrays.files}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_two_devices_train_what_one_device_trains(backend, tmp_path):
    for devices in (1, 2):
        finished(run(backend, tmp_path / f"{devices}.npz", devices))
    finished(run(backend, tmp_path / "resumed.npz", 2, "resume"))
    one, two = weights(tmp_path / "1.npz"), weights(tmp_path / "2.npz")
    resumed = weights(tmp_path / "resumed.npz")
    for key in two:  # interrupted after epoch 2 and resumed from the checkpoint: the same run
        np.testing.assert_array_equal(resumed[key], two[key], err_msg=key)
    assert one["devices"] == 1 and two["devices"] == 2
    # the in-batch loss of the gathered global batch, per epoch (first epoch: identical weights but the first)
    np.testing.assert_allclose(two["loss"], one["loss"], rtol=1e-5)
    # validation and calibration run on a plain copy of the tower, on the same images
    assert len(one["val_loss"]) == 3
    np.testing.assert_allclose(two["val_loss"], one["val_loss"], rtol=1e-4)
    np.testing.assert_allclose(two["threshold"], one["threshold"], rtol=1e-4)
    for key in one:
        if key.startswith("arr_"):  # batch-norm statistics included: global-batch statistics, then the refresh
            np.testing.assert_allclose(two[key], one[key], atol=2e-4, err_msg=key)


def test_two_jax_processes_train_as_one_on_the_same_global_batches(tmp_path):
    address = f"127.0.0.1:{free_port()}"
    processes = [run("jax", tmp_path / f"host{i}.npz", 1, address, 2, i) for i in range(2)]
    for process in processes:
        finished(process)
    finished(run("jax", tmp_path / "single.npz", 2))
    host0, host1, single = (weights(tmp_path / f"{name}.npz") for name in ("host0", "host1", "single"))
    assert host0["devices"] == host1["devices"] == 2
    for key in host0:
        np.testing.assert_array_equal(host0[key], host1[key], err_msg=key)  # the same model in both processes
    np.testing.assert_allclose(host0["loss"], single["loss"], rtol=1e-5)
    for key in host0:
        if key.startswith("arr_"):
            np.testing.assert_allclose(host0[key], single[key], atol=1e-5, err_msg=key)


@pytest.mark.slow
def test_the_documented_launch_on_two_hosts_runs_on_loopback(tmp_path, image_folder):
    """docs/scale.md's command line, on 127.0.0.1: process 0 alone writes the outputs."""
    address = f"127.0.0.1:{free_port()}"
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3"}
    siamese = Path(sys.executable).with_name("siamese")
    processes = [subprocess.Popen(
        [str(siamese), "train", "--data", str(image_folder), "--output", str(tmp_path / f"out{i}"), "--epochs", "1",
         "--batch-size", "12", "--images-per-class", "4", "--quiet",
         "--coordinator", address, "--num-processes", "2", "--process-id", str(i)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in range(2)]
    outputs = [p.communicate(timeout=300)[0] for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    assert (tmp_path / "out0" / "model.keras").is_file() and not (tmp_path / "out1").exists()
    assert "model.keras" in outputs[0] and "model.keras" not in outputs[1]


def test_tensorflow_validates_streamed_files_on_a_plain_copy_of_the_tower(tmp_path, image_folder):
    """Inside a distributed fit Keras would run even a plain model's predict on every replica (twice the
    rows): validation embeds on a thread of its own, outside the strategy's scope."""
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    siamese = Path(sys.executable).with_name("siamese")
    result = subprocess.run([str(siamese), "train", "--data", str(image_folder), "--output", str(tmp_path / "out"),
                             "--devices", "2", "--stream", "--epochs", "1", "--batch-size", "12",
                             "--images-per-class", "4", "--val-fraction", "0.3", "--quiet"],
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    history = json.loads((tmp_path / "out" / "history.json").read_text())
    assert np.isfinite(history["val_loss"]).all() and len(history["val_loss"]) == 1


def test_bad_host_settings_are_named_before_jax_is_asked(tmp_path):
    code = """
import os
from keras_siamese.errors import InvalidValue
from keras_siamese.training.replicas import join_hosts
for args in [("127.0.0.1:1234", 2, 5), ("127.0.0.1:1234", 2, None), (None, 2, 0), ("nohost", 2, 0),
             ("127.0.0.1:99999", 2, 0), (None, 0, None)]:
    try:
        join_hosts(*args)
    except InvalidValue as error:
        print(error.argument, error.value)
os.environ["KERAS_DISTRIBUTION_NUM_PROCESSES"] = "two"
try:
    join_hosts(None, None, None)
except InvalidValue as error:
    print(error.argument, error.value)
"""
    env = {name: value for name, value in os.environ.items() if not name.startswith("KERAS_DISTRIBUTION_")}
    env["KERAS_BACKEND"] = "jax"
    lines = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                           check=True).stdout.splitlines()
    assert lines == ["process_id 5", "process_id None", "coordinator None", "coordinator nohost",
                     "coordinator 127.0.0.1:99999", "num_processes 0",
                     "num_processes 'two' (from KERAS_DISTRIBUTION_NUM_PROCESSES)"]


def test_torch_is_refused_with_one_line(tmp_path):
    env = {**os.environ, "KERAS_BACKEND": "torch"}
    siamese = Path(sys.executable).with_name("siamese")
    result = subprocess.run([str(siamese), "train", "--devices", "2", "--output",
                             str(tmp_path / "out"), "--epochs", "1"], env=env, capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].endswith("needs the TensorFlow or JAX backend (KERAS_BACKEND); "
                                                           "this is torch")


@pytest.mark.core
@pytest.mark.parametrize("kind", ["pairs", "classes"])
def test_each_process_takes_its_contiguous_part_of_every_batch(kind):
    labels = np.repeat(np.arange(4), 6)
    images = np.arange(len(labels), dtype=np.uint8)[:, None, None, None] * np.ones((1, 2, 2, 1), np.uint8)

    def make():
        if kind == "pairs":
            return PairBatches(images, labels, batch_size=8, seed=1)
        return ClassBalancedBatches(images, labels, classes_per_batch=2, images_per_class=4, seed=1)

    whole = make()
    whole.distribute(devices=2)
    parts = [make() for _ in range(2)]
    for i, part in enumerate(parts):
        part.distribute(devices=2, process=i, processes=2)
    assert len(whole) == len(parts[0]) == len(parts[1])
    for step in range(len(whole)):
        arrays = [flat(batch) for batch in (whole[step], parts[0][step], parts[1][step])]
        for a, b, c in zip(*arrays):
            assert len(b) == len(c) == len(a) // 2
            np.testing.assert_array_equal(np.concatenate([b, c]), a)


def flat(batch):
    """The arrays of a batch `(inputs, targets)`, pair inputs unpacked."""
    inputs, targets = batch
    return [*(inputs if isinstance(inputs, tuple) else (inputs,)), targets]


def test_unlabelled_rows_that_do_not_split_over_the_devices_are_refused():
    """Each process takes its part of the labelled and of the unlabelled rows on their own, so each block must
    split, not only their sum (25 + 7 = 32 does over 2 devices; 25 and 7 do not)."""
    from types import SimpleNamespace

    from keras_siamese import SiameseError
    from keras_siamese.training.trainer import Trainer

    labels = np.repeat(np.arange(5), 6)
    batches = ClassBalancedBatches(np.zeros((30, 4, 4, 1), np.uint8), labels, 5, 5,
                                   unlabeled=np.zeros((7, 4, 4, 1), np.uint8), unlabeled_per_batch=12)
    assert batches.rows == 32
    trainer = SimpleNamespace(replicas=SimpleNamespace(global_count=2), batches=batches)
    with pytest.raises(SiameseError, match="the 7 unlabelled images of each batch do not split evenly over 2"):
        Trainer.distribute_batches(trainer)

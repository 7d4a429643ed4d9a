"""Kill -9 during training at random moments, resume, and compare with an uninterrupted run.

Each trial starts `siamese train`, sends SIGKILL after a random delay, then runs
`siamese train --resume` (killing again at random while time remains in the trial's
budget of kills) until the run completes. It reports, per trial, the kills, whether
the final weights equal the reference run's (max absolute difference), whether the
folder holds any temporary file, and the cost of a checkpoint against an epoch.

    python benchmarks/resume.py --trials 20 --epochs 6
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from machine import cpu_model


def siamese(*args):
    return [str(Path(sys.executable).parent / "siamese"), *args]


def run_killed(argv, delay):
    """Start argv; SIGKILL it after `delay` seconds. Returns True if it finished on its own first, False if it
    was killed; a command that fails on its own ends the benchmark with its error (a crash is no kill)."""
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _, errors = process.communicate(timeout=delay)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.communicate()
        return False
    if process.returncode != 0:
        last = errors.strip().splitlines()[-1] if errors.strip() else "no message"
        raise SystemExit(f"{' '.join(argv)} failed on its own (exit {process.returncode}): {last}")
    return True


def finished_run(folder):
    config = folder / "config.json"
    return config.is_file() and json.loads(config.read_text()).get("status") == "complete"


def tower_weights(path):
    import keras_siamese as ks

    model = ks.load_model(path)
    return [np.asarray(w) for w in model.tower.get_weights()]


def checkpoint_cost(folder, epochs):
    """(seconds spent writing checkpoints, seconds of training) for an in-process run on mnist-sample."""
    import keras_siamese as ks
    from keras_siamese.training import checkpoint

    spent, real_save = [], checkpoint.save

    def timed_save(*args):
        start = time.perf_counter()
        real_save(*args)
        spent.append(time.perf_counter() - start)

    checkpoint.save = timed_save
    try:
        result = ks.train("mnist-sample", output=folder, epochs=epochs, progress=False)
    finally:
        checkpoint.save = real_save
    return sum(spent), result.seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    rng = np.random.default_rng(args.seed)
    work = Path(tempfile.mkdtemp(prefix="resume-bench-"))
    common = ["--data", "mnist-sample", "--epochs", str(args.epochs), "--quiet"]
    started = time.perf_counter()
    subprocess.run(siamese("train", *common, "--output", str(work / "reference")), check=True,
                   stdout=subprocess.DEVNULL)
    full = time.perf_counter() - started
    reference = tower_weights(work / "reference" / "model.keras")
    history = json.loads((work / "reference" / "history.json").read_text())
    results = []
    for trial in range(args.trials):
        out = work / f"trial{trial}"
        kills, done = 0, False
        argv = siamese("train", *common, "--output", str(out))
        while not done:
            finished = run_killed(argv, rng.uniform(3.0, full)) if kills < 3 else run_killed(argv, 10 * full)
            done = finished or finished_run(out)  # a kill after the final write still leaves a finished run
            kills += not finished
            if not done and (out / "checkpoint.json").is_file():
                argv = siamese("train", "--resume", str(out), "--quiet")
        weights = tower_weights(out / "model.keras")
        diff = max(float(np.abs(a - b).max()) for a, b in zip(reference, weights))
        leftovers = [p.name for p in out.iterdir() if p.name.startswith(".")]
        results.append({"trial": trial, "kills": kills, "max_abs_weight_diff": diff, "hidden_files_left": leftovers})
        print(json.dumps(results[-1]), flush=True)
    same = sum(r["max_abs_weight_diff"] == 0.0 for r in results)
    saving, training = checkpoint_cost(work / "cost", args.epochs)
    print(json.dumps({"cpu": cpu_model(), "trials": args.trials,
                      "identical_to_uninterrupted": same, "reference_seconds": round(full, 1),
                      "epochs": args.epochs, "reference_final_val_auc": history.get("val_auc", [None])[-1],
                      "checkpoint_seconds_per_epoch": round(saving / args.epochs, 4),
                      "checkpoint_share_of_training": round(saving / training, 4)}))


if __name__ == "__main__":
    main()

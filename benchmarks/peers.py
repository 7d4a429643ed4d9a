"""Side-by-side benchmark: keras-siamese's default recipe against the peer recipes.

One run, one machine, one data set: every recipe trains for the same wall-time
budget and is evaluated after each epoch on the same test pairs (one same-class
and one other-class partner per test image, seed 0), exactly as the peers'
`recipes.py` (in ../shared/anchors) does. Prints quality against training time,
the time each recipe needs to reach the best peer's quality within the budget (its
last epoch ending inside it; the peers stop at the first epoch end past it) and the ratio,
training and embedding throughput, and the peak memory of `siamese train`
against the seed recipe's.

    python benchmarks/peers.py --data mnist5k --budget 120
    python benchmarks/peers.py --data fashion --budget 600

Run nothing else meanwhile: the timings are wall-clock.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from machine import commit, cpu_model

HERE = Path(__file__).resolve().parent
DEFAULT_ANCHORS = HERE.parent.parent / "shared" / "anchors" / "recipes.py"
SOURCES = {"mnist5k": "mnist-sample", "fashion": "fashion-mnist"}
CHECKPOINTS = (10, 20, 30, 60, 120, 180, 300, 600)


def run_measured(command, env=None):
    """Run `command`; return (stdout lines, peak resident MiB of that process: ru_maxrss is in KiB)."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    out = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"{' '.join(map(str, command))} failed with status {process.returncode}")
    return out.splitlines(), usage.ru_maxrss / 1024


def epochs_of(lines):
    return [json.loads(line) for line in lines if line.startswith("{")]


def ours(anchors, data, budget):
    """Our default recipe on the peers' data, one JSON line per epoch, in the peers' format."""
    import keras

    sys.path.insert(0, str(anchors.parent))
    import recipes

    import keras_siamese as ks
    from keras_siamese.inference.embedding import embed_images, pair_distances

    train, test = recipes.load(data)
    test_pairs, test_same = recipes.one_pos_one_neg(test[1], np.random.default_rng(0))
    test_images = test[0][..., None]

    class Report(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.start, self.spent_evaluating = time.perf_counter(), 0.0

        def on_epoch_end(self, epoch, logs=None):
            began = time.perf_counter()
            tower = next((layer for layer in self.model.layers if layer.name.startswith("tower_")), self.model)
            embeddings = embed_images(tower, test_images)
            distances = pair_distances(embeddings, test_pairs)
            seconds = began - self.start - self.spent_evaluating
            recipes.report(epoch + 1, seconds, distances, test_same)
            self.spent_evaluating += time.perf_counter() - began
            if seconds > budget:
                self.model.stop_training = True

    images, labels = train[0][..., None], train[1]
    ks.train((images, labels), output=None, progress=False, callbacks=[Report()], patience=0)


def first_time_reaching(epochs, quality):
    return next((e["train_seconds"] for e in epochs if e["test_auc"] >= quality), None)


def within_budget(epochs, budget):
    """The last epoch that ended inside `budget` seconds of training (the first epoch, if none did)."""
    return ([e for e in epochs if e["train_seconds"] <= budget] or epochs[:1])[-1]


def best_by(epochs, seconds):
    within = [e["test_auc"] for e in epochs if e["train_seconds"] <= seconds]
    return max(within) if within else None


def timed_fit(model, batches, images_per_batch, steps=200):
    """Training images/s of `model.fit` over `steps` steps rounded to whole epochs (at least one) after one
    traced epoch, fed as `siamese train` feeds it: one endless EpochStream of `batches`, through `fit_input`."""
    import keras

    from keras_siamese.data.batches import EpochStream
    from keras_siamese.training.feeding import fit_input

    class Clock(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:  # the first epoch traces; the clock starts after it
                self.began = time.perf_counter()

        def on_train_end(self, logs=None):
            self.ended = time.perf_counter()

    clock, epochs = Clock(), max(1, round(steps / len(batches)))
    model.fit(fit_input(EpochStream(batches)), steps_per_epoch=len(batches), epochs=1 + epochs, verbose=0,
              shuffle=False, callbacks=[clock])
    return epochs * len(batches) * images_per_batch / (clock.ended - clock.began)


def recipe_trainer(recipe, images, labels):
    """A prepared, built Trainer of `recipe` on these arrays: the model and batches `siamese train` fits."""
    from keras_siamese.training.trainer import Trainer

    return Trainer((images, labels), recipe, progress=False).prepare().build()


def embedding_speed(tower, images):
    """Images/s of `keras_siamese`'s embedding of `images` with `tower` in a model, as `ks.embed` runs a
    loaded model (batch norm folded), after one pass that traces every batch shape."""
    from keras_siamese.inference.embedding import embed_images
    from keras_siamese.models.siamese import SiameseModel

    model = SiameseModel(tower)
    embed_images(model, images)
    began = time.perf_counter()
    embed_images(model, images)
    return len(images) / (time.perf_counter() - began)


def throughput(data, anchors, steps=200):
    """Training images/s of the seed and default recipes (as `siamese train` builds them, over about `steps`
    steps each) and embedding images/s of their towers."""
    sys.path.insert(0, str(anchors.parent))
    import recipes

    from keras_siamese.training.trainer import images_per_step

    (x, y), (test_x, _) = recipes.load(data)
    x, test_x = x[..., None], test_x[..., None]
    figures, trainers = {}, {}
    for name, recipe, label in (("seed", "seed", "seed recipe train images/s (2 per pair)"),
                                ("ours", "default", "ours train images/s")):
        trainer = trainers[name] = recipe_trainer(recipe, x, y)
        figures[label] = timed_fit(trainer.objective.model, trainer.batches,
                                   images_per_step(trainer.batches, trainer.config), steps)
    images = np.concatenate([test_x] * max(1, 10_000 // len(test_x)))  # at least 10,000 images
    for name, label in (("seed", "seed tower"), ("ours", "our tower")):
        figures[f"{label} embedding images/s"] = embedding_speed(trainers[name].objective.tower, images)
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", choices=sorted(SOURCES), default="mnist5k")
    parser.add_argument("--budget", type=float, default=120, help="training seconds per peer recipe")
    parser.add_argument("--peers", default="seed,kerasio,pml")
    parser.add_argument("--anchors", type=Path, default=Path(os.environ.get("ANCHORS", DEFAULT_ANCHORS)))
    parser.add_argument("--json", type=Path, help="also write all figures here")
    parser.add_argument("--worker", choices=["ours", "throughput"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "ours":
        return ours(args.anchors, args.data, args.budget)
    if args.worker == "throughput":
        return print(json.dumps(throughput(args.data, args.anchors)))

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"}
    me = [sys.executable, str(Path(__file__).resolve()), "--data", args.data, "--anchors", str(args.anchors)]
    runs, peaks = {}, {}
    for peer in [p for p in args.peers.split(",") if p]:
        print(f"running peer {peer} for {args.budget:.0f} s ...", file=sys.stderr, flush=True)
        lines, peaks[peer] = run_measured([sys.executable, str(args.anchors), peer, args.data, str(args.budget)], env)
        runs[peer] = epochs_of(lines)
    print("running keras-siamese default recipe ...", file=sys.stderr, flush=True)
    lines, peaks["keras-siamese"] = run_measured(me + ["--worker", "ours", "--budget", str(args.budget)], env)
    runs["keras-siamese"] = epochs_of(lines)

    print("running `siamese train` for wall time and peak memory ...", file=sys.stderr, flush=True)
    began = time.perf_counter()
    siamese = Path(sys.executable).parent / "siamese"
    out = Path("bench-out") / args.data
    _, cli_peak = run_measured([str(siamese), "train", "--data", SOURCES[args.data], "--output", str(out),
                                "--quiet"], env)
    cli_wall = time.perf_counter() - began
    lines, _ = run_measured(me + ["--worker", "throughput"], env)
    speeds = json.loads(lines[-1])
    report(args, runs, peaks, cli_peak, cli_wall, speeds, out)


def report(args, runs, peaks, cli_peak, cli_wall, speeds, out):
    checkpoints = [c for c in CHECKPOINTS if c <= args.budget] + [args.budget]
    checkpoints = sorted(set(checkpoints))
    print(f"\n## {args.data}: best test ROC AUC by training time (budget {args.budget:.0f} s)\n")
    print("| recipe | epochs | " + " | ".join(f"by {c:.0f} s" for c in checkpoints) + " | final AUC | final best acc |")
    print("|---|---|" + "---|" * len(checkpoints) + "---|---|")
    for name, epochs in runs.items():
        cells = [best_by(epochs, c) for c in checkpoints]
        last = epochs[-1]
        print(f"| {name} | {len(epochs)} | " + " | ".join("-" if c is None else f"{c:.4f}" for c in cells)
              + f" | {last['test_auc']:.4f} | {last['test_best_acc']:.4f} |")
    peers = {k: v for k, v in runs.items() if k != "keras-siamese"}
    figures = {"data": args.data, "budget_s": args.budget, "cpu": cpu_model(), "commit": commit(),
               "runs": runs, "peak_mib": peaks, "siamese_train": {"peak_mib": cli_peak, "wall_s": cli_wall},
               "throughput": speeds}
    if peers:
        best = max(peers, key=lambda k: within_budget(peers[k], args.budget)["test_auc"])
        target = within_budget(peers[best], args.budget)["test_auc"]
        theirs = first_time_reaching(peers[best], target)
        mine = first_time_reaching(runs["keras-siamese"], target)
        print(f"\nbest peer: {best}, AUC {target:.4f} at its last epoch inside the budget, first reached at "
              f"{theirs:.1f} s of training")
        if mine is None:
            print(f"keras-siamese did not reach {target:.4f} within the budget")
        else:
            print(f"keras-siamese reached it at {mine:.1f} s: {theirs / mine:.1f}x less time")
        figures["time_ratio"] = None if mine is None else theirs / mine
    metrics = json.loads((out / "config.json").read_text())
    print(f"\n`siamese train --data {SOURCES[args.data]}`: {cli_wall:.1f} s wall, {metrics['epochs_run']} epochs, "
          f"peak {cli_peak:.0f} MiB")
    if "seed" in peaks:
        print(f"seed recipe process peak {peaks['seed']:.0f} MiB: ratio {peaks['seed'] / cli_peak:.2f}x")
    print()
    for name, value in speeds.items():
        print(f"{name}: {value:,.0f}")
    if "ours train images/s" in speeds:
        ratio = speeds["ours train images/s"] / speeds["seed recipe train images/s (2 per pair)"]
        print(f"training images/s, ours / seed recipe: {ratio:.2f}x")
    if args.json:
        from keras_siamese.atomic import write_json

        write_json(args.json, figures)



if __name__ == "__main__":
    main()

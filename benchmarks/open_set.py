"""Open-set benchmark: train on some classes, measure "same or different?" on classes never seen.

Every method learns from the training classes only and is scored on test images of
the other classes: ROC AUC and equal error rate on one same-class and one
other-class partner per test image (`one_positive_one_negative`, seed 0), and 5-way
one-shot accuracy (1,000 episodes, seed 0), with keras_siamese's metric functions. For
ours also the threshold gap: accuracy on those pairs at the threshold `train` stored
(calibrated on the training classes) and after `ks.calibrate` on 20 labelled training
images of each unseen class; and every figure again after `ks.recenter` on those
images (what `siamese calibrate --recenter` does).

Methods: `ours` (`keras_siamese.train` on the arrays, default settings plus
`--ours-args`), `pixels` (Euclidean distance of raw and of L2-normalised pixels),
`pca` (PCA-16 fitted on the training classes), and the peer recipes `seed`,
`kerasio`, `pml` of ../shared/anchors/recipes.py, each in its own process, trained
for the same wall time: the seconds `ours` took (its whole `train` call), or
`--budget`. With `--budget`, `ours` also stops at the first epoch end past it. The
peers count training seconds only and stop at the first epoch end past the budget,
as recipes.py does. They are scored on the distances of every pair of test images
they report after their last epoch (one-shot: on coordinates recovered from those
distances by classical multidimensional scaling, exact for Euclidean distances).

Data: `mnist-sample` (its train split's digits 0-4; test split's digits 5-9),
`fashion-mnist` (600 training images per class of classes 0-4, 200 test images per
class of classes 5-9, sampled with `--seed`, as in the anchors' "Open set"), or a
folder of class subfolders (`--train-classes a,b,c`, default the first half of its
sorted classes; test split of the others). At most `--max-test-images` unseen-class test
images are scored (2,000, drawn evenly across classes with `--seed`): the peers report
a distance for every pair of them. `--with-unlabeled` adds `ours+unlabeled`: ours given
the unseen classes' training images without labels (training setting `unlabeled`), held
to the same budget.

    python benchmarks/open_set.py --data mnist-sample
    python benchmarks/open_set.py --data fashion-mnist --with-unlabeled
    python benchmarks/open_set.py --data ~/parts --train-classes bolt,nut,washer --methods ours,pixels,pca
    python benchmarks/open_set.py --methods ours --ours-args temperature=0.2 --output /tmp/t.json

Run nothing else meanwhile: the budget is wall-clock time.
"""

import argparse
import ast
import dataclasses
import importlib.util
import inspect
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from machine import cpu_model

HERE = Path(__file__).resolve().parent
DEFAULT_ANCHORS = HERE.parent.parent / "shared" / "anchors" / "recipes.py"
RESULTS = HERE.parent / "docs" / "results"
METHODS = ("ours", "pixels", "pca", "seed", "kerasio", "pml")
PEERS = ("seed", "kerasio", "pml")
PEER_SHAPE = (28, 28, 1)  # the peers' towers take MNIST-sized grey images only
SAMPLE = {"fashion-mnist": (600, 200)}  # images per class drawn for training / testing
MAX_TEST_IMAGES = 2000  # the peers' every-pair distances: N^2/2 pairs of embeddings in memory
PCA_COMPONENTS = 16
EVAL_SEED = 0  # evaluation pairs and one-shot episodes
ONE_SHOT_WAYS = 5  # fewer when there are fewer unseen classes
CALIBRATION_PER_CLASS = 20  # labelled images of each unseen class for the re-calibrated threshold
# Up to 209 dimensions, n_way_one_shot_accuracy draws its 1,000 episodes in one block, so every
# method below that size is scored on the same episodes (raw pixels, 784 dimensions, on others).
MDS_DIMENSIONS = 128


@dataclasses.dataclass
class OpenSet:
    """Training images of the seen classes, test images of the unseen ones, and the unseen
    classes' training images (for `--with-unlabeled`)."""

    train_x: np.ndarray
    train_y: np.ndarray  # class codes
    test_x: np.ndarray
    test_y: np.ndarray
    unlabeled_x: np.ndarray
    unlabeled_y: np.ndarray  # for calibrating on a few of them, never for training
    class_names: list
    seen: list  # codes

    def describe(self):
        names = self.class_names
        return {"train_classes": [names[c] for c in self.seen],
                "test_classes": [names[c] for c in np.unique(self.test_y)],
                "train_images": len(self.train_y), "test_images": len(self.test_y),
                "unlabeled_images": len(self.unlabeled_x), "image_shape": list(self.train_x.shape[1:])}


def class_codes(spec, names):
    """Codes of the comma-separated classes in `spec`: class names, or indices in the class list."""
    codes = []
    for token in (t.strip() for t in spec.split(",") if t.strip()):
        if token in names:
            codes.append(names.index(token))
        elif token.isdigit() and int(token) < len(names):
            codes.append(int(token))
        else:
            raise SystemExit(f"--train-classes: no class {token!r}; classes: {', '.join(names)}")
    return sorted(set(codes))


def sample_per_class(labels, codes, per_class, rng):
    """Indices of the images of classes `codes`, at most `per_class` of each (all when None), shuffled."""
    chosen = []
    for code in codes:
        index = np.flatnonzero(labels == code)
        if per_class is not None and len(index) > per_class:
            index = rng.choice(index, per_class, replace=False)
        chosen.append(index)
    return rng.permutation(np.concatenate(chosen))


def source_name(data):
    """The registered spelling of a built-in data set (`Fashion_MNIST` -> `fashion-mnist`), or `data` (a folder)."""
    from keras_siamese.data.sources import SOURCES, is_folder_source
    from keras_siamese.errors import SiameseError

    if is_folder_source(data):
        return data
    try:
        return SOURCES.name(data)
    except SiameseError:
        return data  # load_splits names what is wrong with it


def load_open_set(data, train_classes, seed, max_test=MAX_TEST_IMAGES):
    from keras_siamese.data.sources import load_splits

    splits = load_splits(data, val_fraction=0.0, progress=False)
    names = list(splits.train.class_names)
    seen = class_codes(train_classes, names) if train_classes else list(range(len(names) // 2))
    unseen = [c for c in range(len(names)) if c not in seen]
    if len(seen) < 2 or len(unseen) < 2:
        raise SystemExit(f"need 2 or more training and 2 or more unseen classes; training classes: "
                         f"{', '.join(names[c] for c in seen)} of {len(names)}")
    per_train, per_test = SAMPLE.get(data, (None, None))
    rng = np.random.default_rng(seed)
    train = sample_per_class(splits.train.labels, seen, per_train, rng)
    test = sample_per_class(splits.test.labels, unseen, per_test, rng)
    if len(test) > max_test:  # evenly across the unseen classes, as far as each has images
        counts = np.bincount(splits.test.labels[test], minlength=len(names))[unseen]
        share = np.minimum(counts, max_test // len(unseen))
        while share.sum() < max_test and (share < counts).any():
            share[np.argmax(np.where(share < counts, counts - share, -1))] += 1
        test = rng.permutation(np.concatenate([
            rng.choice(test[splits.test.labels[test] == code], n, replace=False) for code, n in zip(unseen, share)]))
    unlabeled = sample_per_class(splits.train.labels, unseen, per_train, rng)
    return OpenSet(splits.train.images[train], splits.train.labels[train], splits.test.images[test],
                   splits.test.labels[test], splits.train.images[unlabeled], splits.train.labels[unlabeled],
                   names, seen)


def evaluation_pairs(embeddings, labels):
    """Distances and same-class labels of the evaluation pairs."""
    from keras_siamese.data.pairs import one_positive_one_negative
    from keras_siamese.inference.embedding import pair_distances

    pairs, same = one_positive_one_negative(labels, np.random.default_rng(EVAL_SEED))
    return pair_distances(embeddings, pairs), same


def scores(embeddings, labels):
    """Unseen-class ROC AUC, equal error rate, best accuracy (optimistic) and 5-way one-shot accuracy."""
    from keras_siamese.metrics import best_accuracy, equal_error_rate, n_way_one_shot_accuracy, roc_auc

    distances, same = evaluation_pairs(embeddings, labels)
    return {"auc": roc_auc(distances, same), "eer": equal_error_rate(distances, same)[0],
            "best_accuracy": best_accuracy(distances, same)[0],
            "one_shot_5": n_way_one_shot_accuracy(embeddings, labels, ONE_SHOT_WAYS, episodes=1000, seed=EVAL_SEED)}


def calibration_images(open_set):
    """CALIBRATION_PER_CLASS labelled training images of each unseen class."""
    from keras_siamese.data.dataset import ImageSet

    few = sample_per_class(open_set.unlabeled_y, np.unique(open_set.unlabeled_y), CALIBRATION_PER_CLASS,
                           np.random.default_rng(EVAL_SEED))
    return ImageSet.from_arrays(open_set.unlabeled_x[few], open_set.unlabeled_y[few])


def threshold_gap(model, embeddings, open_set):
    """Accuracy on the unseen pairs at the threshold `train` stored, and at the one `ks.calibrate` sets
    from `calibration_images` (on a copy of the model)."""
    import keras_siamese as ks
    from keras_siamese.metrics import decision_metrics

    distances, same = evaluation_pairs(embeddings, open_set.test_y)
    stored = model.threshold
    few = calibration_images(open_set)
    model = ks.SiameseModel(model.tower, stored)
    ks.calibrate(model, few)
    return {"threshold": stored, "accuracy_at_threshold": decision_metrics(distances, same, stored)["accuracy"],
            "calibrated_threshold": model.threshold, "calibration_images": len(few),
            "accuracy_after_calibrate": decision_metrics(distances, same, model.threshold)["accuracy"]}


def recentered_scores(model, open_set, features="embedding"):
    """`scores` after `ks.recenter` (of `features`) and `ks.calibrate` on `calibration_images`, with the
    accuracy at the threshold calibrated there (what `siamese calibrate --recenter` gives)."""
    import keras_siamese as ks
    from keras_siamese.metrics import decision_metrics

    few = calibration_images(open_set)
    model = ks.recenter(model, few.images, features=features)
    ks.calibrate(model, few)
    embeddings = ks.embed(model, open_set.test_x)
    distances, same = evaluation_pairs(embeddings, open_set.test_y)
    return scores(embeddings, open_set.test_y) | {
        "calibration_images": len(few), "accuracy_after_calibrate": decision_metrics(distances, same,
                                                                                     model.threshold)["accuracy"]}


def parse_settings(items):
    """`key=value` strings as training settings; values read as Python literals where they are one."""
    settings = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--ours-args {item!r}: expected key=value")
        try:
            settings[key.strip()] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            settings[key.strip()] = value
    return settings


def run_ours(images, labels, settings, budget):
    """Train with keras_siamese on `images` (class names as labels); returns the model and its figures."""
    import keras

    import keras_siamese as ks

    class StopAfter(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            if time.perf_counter() - self.start > budget:
                self.model.stop_training = True

    began = time.perf_counter()
    result = ks.train((images, labels), output=None, progress=False,
                      callbacks=[StopAfter()] if budget else [], **settings)
    seconds = time.perf_counter() - began
    return result.model, {"train_seconds": seconds, "epochs": result.record["epochs_run"],
                          "val_auc": result.history.get("val_auc", [None])[-1], "settings": settings}


def pixel_embeddings(images):
    return images.reshape(len(images), -1).astype(np.float32) / 255.0


def unit_length(vectors):
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def load_recipes(path):
    """The anchors' recipes module, imported from its file."""
    spec = importlib.util.spec_from_file_location("anchor_recipes", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def peer_worker(peer, arrays, budget, anchors, out):
    """Run one peer recipe on the arrays in `arrays`; save its per-epoch AUCs and last distances to `out`."""
    from scipy.spatial.distance import squareform

    from keras_siamese.data.pairs import one_positive_one_negative
    from keras_siamese.metrics import roc_auc

    recipes = load_recipes(anchors)
    data = np.load(arrays)
    test_y = data["test_y"]
    every = np.stack(np.triu_indices(len(test_y), k=1), 1)  # every test pair, in squareform's order
    pairs, same = one_positive_one_negative(test_y, np.random.default_rng(EVAL_SEED))
    epochs, last = [], {}

    def record(epoch, seconds, distances, _same):  # replaces recipes.report
        square = squareform(np.asarray(distances, np.float64))
        auc = roc_auc(square[pairs[:, 0], pairs[:, 1]], same)
        epochs.append({"epoch": epoch, "train_seconds": round(seconds, 2), "auc": auc})
        last["distances"] = square
        print(f"  {peer} epoch {epoch}: {seconds:.1f} s, unseen AUC {auc:.4f}", file=sys.stderr, flush=True)

    recipes.report = record
    train = (data["train_x"][..., 0], data["train_y"])
    test = (data["test_x"][..., 0], test_y)
    rng = np.random.default_rng(1)  # as recipes.main
    if peer == "pml":
        recipes.pml_recipe(train, test, budget, rng, every, None)
    else:
        recipes.keras_recipe(peer, train, test, budget, rng, every, None)
    np.savez(out, distances=last["distances"], epochs=json.dumps(epochs))


def coordinates_from_distances(square):
    """Points whose Euclidean distances are `square` (classical multidimensional scaling), in at most
    MDS_DIMENSIONS dimensions: exact for the peers' embeddings (10 or 48 dimensions) up to rounding."""
    squared = square**2
    centred = -0.5 * (squared - squared.mean(0) - squared.mean(1)[:, None] + squared.mean())
    values, vectors = np.linalg.eigh(centred)  # ascending
    values, vectors = values[-MDS_DIMENSIONS:], vectors[:, -MDS_DIMENSIONS:]
    keep = values > 0
    return vectors[:, keep] * np.sqrt(values[keep])


def run_peer(peer, open_set, budget, anchors, folder):
    """One peer recipe in its own process; returns its unseen-class scores and figures."""
    from scipy.spatial.distance import pdist, squareform

    arrays, out = folder / "arrays.npz", folder / f"{peer}.npz"
    if not arrays.exists():
        np.savez(arrays, train_x=open_set.train_x, train_y=open_set.train_y, test_x=open_set.test_x,
                 test_y=open_set.test_y)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"}
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", peer, "--arrays", str(arrays),
               "--budget", str(budget), "--anchors", str(anchors), "--output", str(out)]
    began = time.perf_counter()
    subprocess.run(command, env=env, check=True)
    wall = time.perf_counter() - began
    saved = np.load(out)
    square, epochs = saved["distances"], json.loads(str(saved["epochs"]))
    points = coordinates_from_distances(square)
    error = float(np.abs(squareform(pdist(points)) - square).max())
    figures = scores(points, open_set.test_y)
    best = max(epochs, key=lambda e: e["auc"])
    return figures | {"train_seconds": epochs[-1]["train_seconds"], "process_seconds": wall,
                      "epochs": len(epochs), "best_epoch": best["epoch"], "best_epoch_auc": best["auc"],
                      "per_epoch": epochs, "mds_max_error": error}


def format_table(results, ways):
    lines = [f"| method | train s | epochs | unseen AUC | EER | best accuracy (optimistic) | {ways}-way one-shot | "
             "best epoch AUC (hindsight) |", "|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        seconds = f"{r['train_seconds']:.1f}" if "train_seconds" in r else "-"
        best = f"{r['best_epoch_auc']:.4f} (epoch {r['best_epoch']})" if "best_epoch" in r else "-"
        lines.append(f"| {name} | {seconds} | {r.get('epochs', '-')} | {r['auc']:.4f} | {r['eer']:.4f} | "
                     f"{r['best_accuracy']:.4f} | {r['one_shot_5']:.4f} | {best} |")
    return "\n".join(lines)


def benchmark(args):
    methods = [m for m in args.methods.split(",") if m]
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise SystemExit(f"--methods: unknown {', '.join(sorted(unknown))}; choose from {', '.join(METHODS)}")
    if args.budget is None and "ours" not in methods and set(methods) & set(PEERS):
        raise SystemExit("without ours, give the peers' time with --budget SECONDS")
    if set(methods) & set(PEERS) and not Path(args.anchors).is_file():
        raise SystemExit(f"the peer recipes ({', '.join(sorted(set(methods) & set(PEERS)))}) need the anchors' "
                         f"recipes.py, not found at {args.anchors} (--anchors); or --methods ours,pixels")
    if args.max_test_images < 4:
        raise SystemExit(f"--max-test-images {args.max_test_images}: needs 4 or more (2 classes of 2 images)")
    settings = parse_settings(args.ours_args)
    if args.with_unlabeled:
        from keras_siamese.training.config import TrainConfig

        if "unlabeled" not in {f.name for f in dataclasses.fields(TrainConfig)}:
            raise SystemExit("--with-unlabeled: this keras_siamese has no `unlabeled` training setting")
    args.data = source_name(args.data)
    open_set = load_open_set(args.data, args.train_classes, args.seed, args.max_test_images)
    print(f"{args.data}: {json.dumps(open_set.describe())}", file=sys.stderr)
    names = np.array(open_set.class_names)
    results, budget, recentered = {}, args.budget, None
    if "ours" in methods:
        print("training ours ...", file=sys.stderr, flush=True)
        model, figures = run_ours(open_set.train_x, names[open_set.train_y], settings, args.budget)
        import keras_siamese as ks
        from keras_siamese.inference.calibration import has_unit_length

        embeddings = ks.embed(model, open_set.test_x)
        results["ours"] = scores(embeddings, open_set.test_y) | figures
        gap = results["ours"]["threshold_gap"] = threshold_gap(model, embeddings, open_set)
        recentered = recentered_scores(model, open_set) if has_unit_length(model) else None
        if recentered:
            results[f"ours, recentered on {recentered['calibration_images']} unseen-class images"] = recentered
        if "features" in inspect.signature(ks.recenter).parameters:  # older trees: the embedding only
            pooled = recentered_scores(model, open_set, "pooled")
            results[f"ours, pooled features recentered on {pooled['calibration_images']} unseen-class images"] = pooled
        budget = budget or figures["train_seconds"]
        if args.with_unlabeled:
            print("training ours with the unseen classes' images, unlabelled ...", file=sys.stderr, flush=True)
            model, figures = run_ours(open_set.train_x, names[open_set.train_y],
                                      {**settings, "unlabeled": open_set.unlabeled_x}, budget)
            figures["settings"] = {**settings, "unlabeled": f"{len(open_set.unlabeled_x)} images"}
            results["ours+unlabeled"] = scores(ks.embed(model, open_set.test_x), open_set.test_y) | figures
    if "pixels" in methods:
        pixels = pixel_embeddings(open_set.test_x)
        results["raw pixels"] = scores(pixels, open_set.test_y)
        results["raw pixels, L2-normalised"] = scores(unit_length(pixels), open_set.test_y)
    if "pca" in methods:
        from sklearn.decomposition import PCA

        pca = PCA(PCA_COMPONENTS, random_state=args.seed).fit(pixel_embeddings(open_set.train_x))
        results[f"PCA-{PCA_COMPONENTS} (training classes)"] = scores(
            pca.transform(pixel_embeddings(open_set.test_x)), open_set.test_y)
    peers = [m for m in methods if m in PEERS]
    if peers and open_set.train_x.shape[1:] != PEER_SHAPE:
        print(f"skipping {', '.join(peers)}: the peer recipes take {PEER_SHAPE} images; these are "
              f"{open_set.train_x.shape[1:]}", file=sys.stderr)
        peers = []
    with tempfile.TemporaryDirectory() as folder:
        for peer in peers:
            print(f"running peer {peer} for {budget:.0f} s ...", file=sys.stderr, flush=True)
            results[peer] = run_peer(peer, open_set, budget, args.anchors, Path(folder))

    print(f"\n## Open set: {args.data}, {', '.join(open_set.describe()['train_classes'])} -> "
          f"{', '.join(open_set.describe()['test_classes'])}" + (f", budget {budget:.0f} s" if budget else "") + "\n")
    ways = min(ONE_SHOT_WAYS, len(np.unique(open_set.test_y)))  # the key one_shot_5 holds this N
    print(format_table(results, ways))
    if "ours" in results:
        print(f"\nours' stored threshold {gap['threshold']:.4f}: accuracy {gap['accuracy_at_threshold']:.4f} on the "
              f"unseen pairs; re-calibrated on {gap['calibration_images']} labelled images of the unseen classes "
              f"({gap['calibrated_threshold']:.4f}): {gap['accuracy_after_calibrate']:.4f}; best threshold "
              f"(optimistic) {results['ours']['best_accuracy']:.4f}")
    if recentered:
        print(f"recentered and re-calibrated on those images: accuracy {recentered['accuracy_after_calibrate']:.4f}; "
              f"best threshold (optimistic) {recentered['best_accuracy']:.4f}")
    import keras

    from keras_siamese.atomic import write_json
    from keras_siamese.data.sources import NAMED_SOURCES

    name = args.data if args.data in NAMED_SOURCES else Path(args.data).name
    variant = args.train_classes or args.ours_args or args.budget or args.seed or args.data not in NAMED_SOURCES or \
        args.methods != ",".join(METHODS) or args.max_test_images != MAX_TEST_IMAGES  # not a documented run
    output = args.output or (HERE.parent / "bench-out" / f"open_set_{name}_{time.strftime('%Y%m%d-%H%M%S')}.json"
                             if variant else RESULTS / f"open_set_{name}.json")
    write_json(output, {
        "command": " ".join(["python", "benchmarks/open_set.py", *sys.argv[1:]]), "cpu": cpu_model(),
        "backend": keras.config.backend(), "keras": keras.__version__, "data": args.data,
        "seed": args.seed, "one_shot_ways": ways, "budget_s": budget,
        "budget_from": "--budget" if args.budget else "ours",
        **open_set.describe(), "results": results,
    })
    print(f"\nwrote {output}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="mnist-sample", help="mnist-sample, fashion-mnist or a class folder")
    parser.add_argument("--train-classes", help="comma-separated class names or indices (default: first half)")
    parser.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated, of {', '.join(METHODS)}")
    parser.add_argument("--budget", type=float, help="training seconds per method (default: the time ours takes)")
    parser.add_argument("--seed", type=int, default=0, help="sampling of the images (default 0)")
    parser.add_argument("--ours-args", nargs="*", default=[], metavar="KEY=VALUE", help="training settings for ours")
    parser.add_argument("--with-unlabeled", action="store_true",
                        help="also ours with the unseen classes' training images, unlabelled")
    parser.add_argument("--anchors", type=Path, default=Path(os.environ.get("ANCHORS", DEFAULT_ANCHORS)))
    parser.add_argument("--max-test-images", type=int, default=MAX_TEST_IMAGES,
                        help=f"unseen-class test images scored, at most (default {MAX_TEST_IMAGES})")
    parser.add_argument("--output", type=Path,
                        help="JSON results (default docs/results/open_set_<data>.json for the default run, "
                             "bench-out/open_set_<data>_<time>.json for any other)")
    parser.add_argument("--worker", choices=PEERS, help=argparse.SUPPRESS)
    parser.add_argument("--arrays", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return peer_worker(args.worker, args.arrays, args.budget, args.anchors, args.output)
    benchmark(args)


if __name__ == "__main__":
    main()

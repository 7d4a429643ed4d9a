"""`siamese evaluate`: verification, retrieval and one-shot metrics on a data split, with plots."""

import sys

from keras_siamese.cli._options import add_data_options, add_model_option, positive_int, random_seed

DESCRIPTION = __doc__.split(": ", 1)[1]


def add_parser(commands):
    from keras_siamese.data.dataset import SPLIT_NAMES
    from keras_siamese.plotting.embeddings import METHODS as MAP_METHODS

    p = commands.add_parser("evaluate", help="metrics and plots on a data split", description=DESCRIPTION)
    add_model_option(p)
    add_data_options(p, default=None, help_default="default: the model's training source", stream=True)
    p.add_argument("--split", default="test", choices=SPLIT_NAMES,
                   help="which images (default test; all = every image, e.g. for classes never seen)")
    p.add_argument("--output", default="evaluation", help="folder for metrics.json, distances.csv and plots")
    p.add_argument("--all-pairs", action="store_true",
                   help="every pair (up to 2,000,000) instead of one positive and one negative per image")
    p.add_argument("--map", dest="map_method", default="pca", choices=list(MAP_METHODS),
                   help="2-D embedding map method (umap needs umap-learn)")
    p.add_argument("--episodes", type=positive_int, default=1000, help="one-shot episodes (default 1000)")
    p.add_argument("--seed", type=random_seed, default=0, help="seed of the evaluation pairs and episodes (default 0)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=run)
    return p


def format_table(metrics):
    """The headline metrics as aligned lines."""
    v, r, o = metrics["verification"], metrics["retrieval"], metrics["one_shot"]
    rows = [
        ("images / classes / pairs", f"{metrics['images']} / {metrics['classes']} / {metrics['pairs']['count']}"),
    ]
    if "seen_classes" in metrics:
        seen, total = metrics["seen_classes"], metrics["classes"]
        kind = "open set" if metrics["open_set"] else "closed set" if seen == total else "partly seen"
        rows.append(("classes seen in training", f"{seen} of {total} ({kind})"))
    rows += [
        ("ROC AUC", f"{v['roc_auc']:.4f}"),
        ("equal error rate", f"{v['eer']:.4f} at distance {v['eer_threshold']:.4f}"),
    ]
    if "at_threshold" in v:
        at = v["at_threshold"]
        rows += [
            (f"at threshold {metrics['threshold']:.4f}",
             f"accuracy {at['accuracy']:.4f}  precision {at['precision']:.4f}  recall {at['recall']:.4f}  "
             f"F1 {at['f1']:.4f}"),
        ]
    if "threshold_gap" in metrics:
        gap = metrics["threshold_gap"]
        rows.append(("threshold from other classes", f"accuracy {gap['accuracy_at_threshold']:.4f} at it, "
                     f"{gap['accuracy_at_eer_threshold']:.4f} at the equal-error distance"))
    rows += [
        ("best accuracy (optimistic)",
         f"{v['best_accuracy_optimistic']:.4f} at distance {v['best_accuracy_threshold']:.4f}"),
        ("TAR at FAR 1e-2 / 1e-3", f"{v['tar_at_far_1e-2']:.4f} / {v['tar_at_far_1e-3']:.4f}"),
        ("precision@1 / MAP@R", f"{r['precision_at_1']:.4f} / {r['map_at_r']:.4f}"),
        (f"{r['k']}-NN accuracy", f"{r['knn_accuracy']:.4f}" + (
            f" (a median image has only {r['median_same_class']:g} other of its class to find among its {r['k']} "
            "voters: low by construction)"
            if r.get("median_same_class", r["k"]) < r["k"] / 2 else "")),
    ]
    rows += [(f"{key.replace('_', '-')} one-shot accuracy", f"{value:.4f}")
             for key, value in o.items() if key.endswith("_way")]
    if metrics.get("identification"):
        i = metrics["identification"]
        rows.append(("open-set identification", f"{i['identification_rate']:.4f} identified at the threshold, "
                     f"{i['unknown_rejection_rate']:.4f} of unknowns rejected"))
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def run(args):
    from keras_siamese.evaluation import evaluate
    from keras_siamese.inference.model_io import load_model

    model = load_model(args.model)
    metrics = evaluate(model, args.data, args.split, args.output, args.all_pairs, args.data_dir, args.seed,
                       args.episodes, args.map_method, progress=not args.quiet, stream=args.stream)
    print(format_table(metrics))
    if metrics.get("calibrated_on_these_images"):
        whole = model.calibration["split"] in (args.split, "all")
        print(f"siamese evaluate: note: the threshold was calibrated on {'these' if whole else 'some of these'} "
              f"images (the {model.calibration['split']} split of this data): the figures at the threshold are "
              "in-sample; evaluate other images of these classes for an honest estimate", file=sys.stderr)
    if "threshold_gap" in metrics:
        print(f"the threshold was chosen on other classes; to set it for these, on a few labelled images of them: "
              f"siamese calibrate --model {args.model} --data FOLDER_OF_NEW_CLASSES --recenter "
              "--output NEW_MODEL.keras")
    print(f"wrote {', '.join(metrics['files'])} to {args.output}")

"""`evaluate`: verification, retrieval and one-shot metrics of a model on labelled images, with plots."""

import contextlib
from pathlib import Path

import numpy as np

from keras_siamese.atomic import atomic_path, write_csv, write_json
from keras_siamese.data.dataset import (
    SPLIT_NAMES,
    ImageSet,
    Splits,
    as_image_set,
    concatenate,
    hold_out_classes,
    unknown_data,
)
from keras_siamese.data.folder import resize_image_set
from keras_siamese.data.pairs import all_pairs, one_positive_one_negative
from keras_siamese.data.sources import SOURCES, load_splits
from keras_siamese.errors import SiameseError
from keras_siamese.inference.embedding import as_model, embed_images, pair_distances
from keras_siamese.metrics.identification import identification_report
from keras_siamese.metrics.one_shot import one_shot_report
from keras_siamese.metrics.retrieval import retrieval_report
from keras_siamese.metrics.verification import decision_metrics, roc, verification_report
from keras_siamese.outputs import check_output_folder, check_outside
from keras_siamese.plotting.embeddings import check_map_method
from keras_siamese.seeds import check_seed


def default_source(model):
    """(source, data_dir) recorded in the model file at training time, or (None, None)."""
    data = model.info.get("data", {})
    if data.get("name") == "folder":
        return data.get("path"), None
    if data.get("name") in (None, "array"):
        return None, None
    reads_dir = data["name"] in SOURCES and SOURCES[data["name"]].reads_dir
    path = data.get("path") if reads_dir else None
    return data["name"], path if path and Path(path).is_dir() else None  # else found as on any machine


def _trained_on(model, splits):
    """Whether `splits` are of the data `model` trained on (the same built-in set, or the same folder)."""
    return same_data(model.info.get("data", {}), splits.source)


def same_data(recorded, loaded):
    """Whether two descriptions of data (`Splits.source`) name the same built-in set or the same folder; arrays
    are never known to be the same."""
    same_name = recorded.get("name") == loaded.get("name") != "array"
    return same_name and (loaded.get("name") != "folder" or recorded.get("path") == loaded.get("path"))


def evaluation_images(model, data=None, split="test", data_dir=None, seed=0, progress=True, stream="auto"):
    """The labelled images to evaluate on, resized to the model's input, and a description of them;
    a folder's stay on disk with `stream` (see `load_splits`)."""
    if isinstance(data, (ImageSet, tuple)):
        data = as_image_set(data)
        return check_pairable(resize_image_set(data, model.input_image_shape), "the images"), {"name": "array"}
    if data is not None and not isinstance(data, (str, Path, Splits)):
        raise unknown_data(data)
    if split not in SPLIT_NAMES:
        raise SiameseError(f"--split {split!r}: choose one of {', '.join(SPLIT_NAMES)}")
    if data is None:
        data, recorded_dir = default_source(model)
        data_dir = data_dir or recorded_dir
        if data is None:
            raise SiameseError("this model does not record a reloadable training source; pass --data")
    training = model.info.get("training", {})
    splits = data if isinstance(data, Splits) else load_splits(
        data, data_dir, model.input_image_shape, seed=training.get("seed", seed),
        val_fraction=training.get("val_fraction", 0.1), progress=progress, stream=stream,
    )
    if training.get("val_split") == "classes" and not isinstance(data, Splits) and _trained_on(model, splits):
        # the training data, split as training split it: its val split is the classes training held out
        splits = hold_out_classes(splits, training.get("val_fraction", 0.1), training.get("seed", seed))
    images = concatenate([splits.train, splits.val, splits.test]) if split == "all" else splits.split(split)
    where = splits.source.get("path") or splits.source.get("name", "the data")
    if len(images) < 2:
        hint = "" if split == "all" else " (--split all evaluates on every image)"
        raise SiameseError(f"the {split} split of {where} holds {len(images)} image{'' if len(images) == 1 else 's'}"
                           f"{hint}")
    return check_pairable(images, f"the {split} split of {where}"), splits.source


def check_pairable(images, where):
    """`images`, unless they cannot form both same-class and different-class pairs (SiameseError naming `where`)."""
    counts = images.class_counts()
    counts = counts[counts > 0]
    if not len(images):
        raise SiameseError(f"{where} holds no images")
    if len(counts) < 2 or counts.max() < 2:
        raise SiameseError(
            f"{where} ({len(images)} images of {len(counts)} class{'es' if len(counts) != 1 else ''}) has "
            f"{'one class' if len(counts) < 2 else 'no class with 2 images'}, so no "
            f"{'different' if len(counts) < 2 else 'same'}-class pairs; use more images: "
            f"{'' if where.startswith('the all split') else '--split all, or '}"
            "--data with a folder of class subfolders")
    return images


def evaluate(model, data=None, split="test", output=None, all_pairs_mode=False, data_dir=None, seed=0,
             episodes=1000, map_method="pca", progress=True, stream="auto"):
    """Metrics of `model` (a SiameseModel or its file) on a split of `data` (source name, folder, Splits,
    ImageSet or an `(images, labels)` tuple).

    Pairs: one same-class and one other-class partner per image (seeded), or
    every pair with `all_pairs_mode`. Every image is embedded once. With
    `output`, writes metrics.json, distances.csv, roc.png,
    distance_histogram.png and embedding_map.png there. Returns the metrics dict.
    """
    seed = check_seed(seed)
    model = as_model(model, siamese=True)
    if output is not None:  # before the slow part, not after it
        check_map_method(map_method)
        check_output_folder(output)
        check_outside(output, data if data is not None else default_source(model)[0])
    images, source = evaluation_images(model, data, split, data_dir, seed, progress, stream)
    if all_pairs_mode:
        pairs, same = all_pairs(images.labels)
    else:
        pairs, same = one_positive_one_negative(images.labels, np.random.default_rng(seed))
    embeddings = embed_images(model, images.images, progress=progress)
    distances = pair_distances(embeddings, pairs)
    evaluated = images.classes_present()
    metrics = {
        "data": source,
        "split": split,
        "images": len(images),
        "classes": int(len(np.unique(images.labels))),
        "pairs": {"scheme": "all" if all_pairs_mode else "one-positive-one-negative", "seed": seed,
                  "count": int(len(pairs)), "same": int(same.sum())},
        "threshold": model.threshold,
        "verification": verification_report(distances, same, model.threshold),
        "retrieval": retrieval_report(embeddings, images.labels),
        "one_shot": one_shot_report(embeddings, images.labels, episodes=episodes, seed=seed),
        "identification": identification_report(embeddings, images.labels, model.threshold, seed=seed),
        **seen_in_training(model, evaluated),
    }
    gap = threshold_gap(model, evaluated, distances, same, metrics["verification"])
    if gap is not None:
        metrics["threshold_gap"] = gap
    calibrated = model.calibration
    overlap = calibrated.get("split") == split or "all" in (split, calibrated.get("split"))
    if overlap and same_data(calibrated.get("data", {}), source):
        metrics["calibrated_on_these_images"] = True  # by training or `siamese calibrate`: in-sample figures
    if output is not None:
        metrics["files"] = write_evaluation(Path(output), metrics, images, pairs, same, distances, embeddings,
                                            map_method, seed)
    return metrics


def seen_in_training(model, classes):
    """`{"seen_classes": k, "open_set": k == 0}`, k the number of `classes` (names) the model trained on;
    {} for a model that does not record its training classes."""
    if "classes" not in model.info:
        return {}
    seen = len(set(classes) & set(model.info["classes"]))
    return {"seen_classes": seen, "open_set": seen == 0}


def threshold_gap(model, classes, distances, same, verification):
    """When the stored threshold was chosen on none of `classes`: the accuracy it gives on these pairs,
    and the accuracy at the equal-error and best thresholds of these pairs. None otherwise, or when
    the model does not record the classes it was calibrated on."""
    calibrated_on = model.calibration.get("classes")
    if model.threshold is None or calibrated_on is None or set(classes) & set(calibrated_on):
        return None
    return {
        "accuracy_at_threshold": verification["at_threshold"]["accuracy"],
        "accuracy_at_eer_threshold": decision_metrics(distances, same, verification["eer_threshold"])["accuracy"],
        "best_accuracy_optimistic": verification["best_accuracy_optimistic"],
    }


def write_evaluation(folder, metrics, images, pairs, same, distances, embeddings, map_method, seed):
    """Write the metrics, the pair table and the three plots into `folder`; returns their paths."""
    from keras_siamese.plotting.embeddings import plot_embedding_map

    names = ("metrics.json", "distances.csv", "roc.png", "distance_histogram.png", "embedding_map.png")
    paths = {name: str(folder / name) for name in names}
    with contextlib.ExitStack() as stack:  # all five are written before any replaces an older file
        files = {name: stack.enter_context(atomic_path(folder / name)) for name in names}
        write_csv(files["distances.csv"], ("image_a", "image_b", "same_class", "distance"), (
            (images.ids[a], images.ids[b], int(s), float(d)) for (a, b), s, d in zip(pairs, same, distances)
        ))
        plot_verification(metrics, distances, same, files)
        plot_embedding_map(embeddings, images.labels, images.class_names, files["embedding_map.png"],
                           method=map_method, seed=seed)
        write_json(files["metrics.json"], {**metrics, "files": paths})
    return paths


def plot_verification(metrics, distances, same, files):
    """The ROC curve with the operating point, and the distance histograms with the threshold."""
    from keras_siamese.plotting.verification import plot_distance_histograms, plot_roc

    threshold = metrics["threshold"]
    far, tar, _ = roc(distances, same)
    verification = metrics["verification"]
    point = None
    if threshold is not None:
        at = verification["at_threshold"]
        point = {"far": at["false_accept_rate"], "tar": at["recall"], "label": f"threshold {threshold:.3f}"}
    plot_roc(far, tar, files["roc.png"], auc=verification["roc_auc"], operating_point=point,
             eer=verification["eer"])
    plot_distance_histograms(distances, same, files["distance_histogram.png"], threshold=threshold)

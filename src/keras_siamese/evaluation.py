"""`evaluate`: verification, retrieval and one-shot metrics of a model on labelled images, with plots."""

from pathlib import Path

import numpy as np

from keras_siamese.atomic import write_json
from keras_siamese.data.dataset import ImageSet, Splits, concatenate
from keras_siamese.data.pairs import all_pairs, one_positive_one_negative
from keras_siamese.data.sources import load_splits
from keras_siamese.errors import SiameseError
from keras_siamese.inference.embedding import embed_images, pair_distances
from keras_siamese.inference.random_pairs import write_csv
from keras_siamese.metrics.one_shot import one_shot_report
from keras_siamese.metrics.retrieval import retrieval_report
from keras_siamese.metrics.verification import roc, verification_report

SPLITS = ("test", "val", "train", "all")


def default_source(model):
    """The data source recorded in the model file at training time, if it can be reloaded."""
    data = model.info.get("data", {})
    if data.get("name") == "folder":
        return data.get("path")
    return data.get("name") if data.get("name") not in (None, "array") else None


def evaluation_images(model, data=None, split="test", data_dir=None, seed=0, progress=True):
    """The labelled images to evaluate on, resized to the model's input, and a description of them."""
    if isinstance(data, ImageSet):
        return data, {"name": "array"}
    if split not in SPLITS:
        raise SiameseError(f"--split {split!r}: choose one of {', '.join(SPLITS)}")
    if data is None:
        data = default_source(model)
        if data is None:
            raise SiameseError("this model does not record a reloadable training source; pass --data")
    splits = data if isinstance(data, Splits) else load_splits(
        data, data_dir, model.input_image_shape, seed=model.info.get("training", {}).get("seed", seed),
        progress=progress,
    )
    images = concatenate([splits.train, splits.val, splits.test]) if split == "all" else splits.split(split)
    if len(images) < 2:
        raise SiameseError(f"the {split} split of {splits.source.get('name', data)} holds {len(images)} image(s)")
    return images, splits.source


def evaluate(model, data=None, split="test", output=None, all_pairs_mode=False, data_dir=None, seed=0,
             episodes=1000, map_method="pca", progress=True):
    """Metrics of `model` on a split of `data` (source name, folder, Splits or ImageSet).

    Pairs: one same-class and one other-class partner per image (seeded), or
    every pair with `all_pairs_mode`. Every image is embedded once. With
    `output`, writes metrics.json, distances.csv, roc.png,
    distance_histogram.png and embedding_map.png there. Returns the metrics dict.
    """
    images, source = evaluation_images(model, data, split, data_dir, seed, progress)
    if all_pairs_mode:
        pairs, same = all_pairs(images.labels)
    else:
        pairs, same = one_positive_one_negative(images.labels, np.random.default_rng(seed))
    embeddings = embed_images(model, images.images, progress=progress)
    distances = pair_distances(embeddings, pairs)
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
    }
    if output is not None:
        metrics["files"] = write_evaluation(Path(output), metrics, images, pairs, same, distances, embeddings,
                                            map_method, seed)
    return metrics


def write_evaluation(folder, metrics, images, pairs, same, distances, embeddings, map_method, seed):
    """Write the metrics, the pair table and the three plots into `folder`; returns their paths."""
    from keras_siamese.plotting.embeddings import plot_embedding_map
    from keras_siamese.plotting.verification import plot_distance_histograms, plot_roc

    files = {name: folder / name for name in
             ("metrics.json", "distances.csv", "roc.png", "distance_histogram.png", "embedding_map.png")}
    threshold = metrics["threshold"]
    write_csv(files["distances.csv"], [
        {"image_a": images.ids[a], "image_b": images.ids[b], "same_class": int(s), "distance": float(d)}
        for (a, b), s, d in zip(pairs, same, distances)
    ])
    far, tar, _ = roc(distances, same)
    verification = metrics["verification"]
    point = None
    if threshold is not None:
        at = verification["at_threshold"]
        point = {"far": at["false_accept_rate"], "tar": at["recall"], "label": f"threshold {threshold:.3f}"}
    plot_roc(far, tar, files["roc.png"], auc=verification["roc_auc"], operating_point=point,
             eer=verification["eer"])
    plot_distance_histograms(distances, same, files["distance_histogram.png"], threshold=threshold)
    plot_embedding_map(embeddings, images.labels, images.class_names, files["embedding_map.png"],
                       method=map_method, seed=seed)
    paths = {name: str(path) for name, path in files.items()}
    write_json(files["metrics.json"], {**metrics, "files": paths})
    return paths

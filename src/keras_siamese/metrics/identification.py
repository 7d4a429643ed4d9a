"""Open-set identification: is a probe one of the gallery's identities (which one), or none of them?

A probe is accepted when its nearest gallery image lies closer than the
threshold, and then takes that image's label; otherwise it is `unknown`.
"""

import numpy as np

from keras_siamese.errors import SiameseError
from keras_siamese.metrics.neighbours import exact_search


def open_set_identification(nearest_distances, nearest_labels, probe_labels, probe_known, threshold):
    """Identification and rejection rates at `threshold`, as a dict of plain numbers.

    `nearest_distances[i]` and `nearest_labels[i]` describe probe i's nearest
    gallery image; `probe_known[i]` says whether probe i's class is in the
    gallery. identification_rate: known probes accepted with the right label,
    over known probes. unknown_rejection_rate: unknown probes rejected, over
    unknown probes. rank1_accuracy: known probes whose nearest label is right,
    whatever the distance (closed-set). A rate with no probes to count is NaN.
    """
    distance = np.asarray(nearest_distances, np.float64)
    nearest, truth = np.asarray(nearest_labels), np.asarray(probe_labels)
    known = np.asarray(probe_known, bool)
    if not distance.shape == nearest.shape == truth.shape == known.shape or distance.ndim != 1:
        raise SiameseError(
            f"one nearest distance, nearest label, label and known flag per probe; received shapes "
            f"{distance.shape}, {nearest.shape}, {truth.shape}, {known.shape}"
        )
    accepted = distance < threshold
    right = nearest == truth
    return {
        "threshold": float(threshold),
        "identification_rate": _rate(accepted & right, known),
        "unknown_rejection_rate": _rate(~accepted, ~known),
        "rank1_accuracy": _rate(right, known),
        "known_probes": int(known.sum()),
        "unknown_probes": int((~known).sum()),
    }


def _rate(hits, among):
    return float(hits[among].mean()) if among.any() else float("nan")


def known_unknown_split(labels, seed=0):
    """A seeded open-set protocol: `(gallery_index, probe_index, probe_known)`.

    Half the classes (rounded up) are known: half of each one's images (rounded
    up) are enrolled, the rest are probes. Every image of the other classes is
    an unknown probe. Needs at least 2 classes.
    """
    labels = np.asarray(labels)
    classes = np.unique(labels)
    if len(classes) < 2:
        raise SiameseError(f"open-set identification needs at least 2 classes; received {len(classes)}")
    rng = np.random.default_rng(seed)
    known_classes = set(rng.permutation(classes)[: (len(classes) + 1) // 2].tolist())
    gallery, probes = [], []
    for label in classes:
        members = rng.permutation(np.flatnonzero(labels == label))
        if label in known_classes:
            enrolled = (len(members) + 1) // 2
            gallery.append(members[:enrolled])
            probes.append(members[enrolled:])
        else:
            probes.append(members)
    gallery, probes = np.sort(np.concatenate(gallery)), np.sort(np.concatenate(probes))
    return gallery, probes, np.isin(labels[probes], list(known_classes))


def identification_report(embeddings, labels, threshold, seed=0):
    """Open-set identification of labelled embeddings under `known_unknown_split`; None without a threshold."""
    if threshold is None:
        return None
    embeddings = np.asarray(embeddings, np.float32)
    labels = np.asarray(labels)
    gallery, probes, known = known_unknown_split(labels, seed)
    nearest, distances = exact_search(embeddings[gallery], embeddings[probes], 1)
    report = open_set_identification(distances[:, 0], labels[gallery][nearest[:, 0]], labels[probes], known,
                                     threshold)
    return {**report, "protocol": "half the classes known, half of their images enrolled", "seed": seed,
            "gallery_images": int(len(gallery))}

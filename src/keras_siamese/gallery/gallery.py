"""A gallery of known images: embeddings with ids, paths and labels, searched under the model's distance."""

import json
import zipfile
from pathlib import Path

import numpy as np

from keras_siamese.atomic import atomic_path
from keras_siamese.errors import SiameseError
from keras_siamese.gallery.approximate import ApproximateIndex
from keras_siamese.gallery.enrol import folder_entries
from keras_siamese.gallery.fingerprint import model_fingerprint
from keras_siamese.inference.embedding import as_model, embed_files, embed_images, tower_of
from keras_siamese.metrics.neighbours import EPSILON, exact_search, rank_candidates, squared_norms

FORMAT = "keras-siamese-gallery"
VERSION = 1
# From this many images on, search uses the approximate index unless told otherwise. Measured with
# benchmarks/search.py (docs/benchmarks.md): at 10k vectors exact search answers a query as fast as the
# HNSW graph; at 100k it is 4-15 times slower, at 1M 35-500 times.
APPROXIMATE_FROM = 100_000


class Gallery:
    """Known images of one model: add, search, save, load.

        gallery = Gallery(model)
        gallery.add("photos/")                  # class subfolders give labels
        gallery.search("query.png", k=5)[0]     # {'neighbours': [...], 'decision': 'match', 'label': 'cat'}
        gallery.save("photos.gallery")
        gallery = Gallery.load("photos.gallery", model)

    Distances are the model's own Euclidean distances (not squared), so the
    model's calibrated threshold applies unchanged: a query matches when its
    nearest image lies closer than `model.threshold`, otherwise it is unknown.
    Search is exact, or approximate (usearch HNSW proposes, exact distances
    rank) with `approximate=True`, or automatically from APPROXIMATE_FROM images
    on when `approximate` is None.
    """

    def __init__(self, model, approximate=None, model_path=None):
        if isinstance(model, (str, Path)) and model_path is None:
            model_path = Path(model).resolve()
        model = as_model(model)
        self.model = model
        self.fingerprint = model_fingerprint(model)
        self.dim = int(tower_of(model).output_shape[-1])
        self.approximate = approximate
        self.model_path = model_path  # recorded, so `siamese search` can find the model
        self.embeddings = np.zeros((0, self.dim), np.float32)
        self.ids, self.paths, self.labels = [], [], []
        self._norms = np.zeros(0, np.float32)
        self._known_ids = set()
        self._index = None

    def __len__(self):
        return len(self.ids)

    @property
    def threshold(self):
        return getattr(self.model, "threshold", None)

    @property
    def epsilon(self):
        return getattr(getattr(self.model, "distance", None), "epsilon", EPSILON)

    @property
    def labelled(self):
        return any(self.labels)

    @property
    def uses_approximate(self):
        return bool(self.approximate) or (self.approximate is None and len(self) >= APPROXIMATE_FROM)

    def add(self, images, labels=None, ids=None, paths=None, progress=False):
        """Embed and enrol images; returns how many were added.

        `images`: a folder (every image under it, streamed; class subfolders
        give labels), a list of image files (streamed), or a uint8 array
        `(N, H, W, C)`. `labels`, `ids`, `paths`: one string each, optional
        (ids default to the file path or `image:<row>`).
        """
        if isinstance(images, (str, Path)) and Path(images).is_dir():
            files, ids, folder_labels = folder_entries(images)
            self._with_new_ids(ids)  # before the slow part, not after it
            return self.add_embeddings(embed_files(self.model, files, progress=progress), ids,
                                       folder_labels if labels is None else labels, [str(p.resolve()) for p in files])
        if isinstance(images, (str, Path)):
            images = [images]
        if isinstance(images, (list, tuple)) and images and all(isinstance(p, (str, Path)) for p in images):
            files = [Path(p) for p in images]
            ids = [str(p) for p in files] if ids is None else ids
            self._with_new_ids(ids)
            return self.add_embeddings(embed_files(self.model, files, progress=progress), ids, labels,
                                       [str(p.resolve()) for p in files] if paths is None else paths)
        embeddings = embed_images(self.model, images, progress=progress)
        ids = [f"image:{len(self) + i}" for i in range(len(embeddings))] if ids is None else ids
        return self.add_embeddings(embeddings, ids, labels, paths)

    def add_embeddings(self, embeddings, ids, labels=None, paths=None):
        """Enrol precomputed embeddings `(N, D)` of this model with their ids (unique), labels and paths."""
        embeddings = np.asarray(embeddings, np.float32)
        if embeddings.size == 0:
            embeddings = embeddings.reshape(0, self.dim)
        if embeddings.ndim != 2 or embeddings.shape[1] != self.dim:
            raise SiameseError(f"embeddings must have shape (N, {self.dim}); received {embeddings.shape}")
        n = len(embeddings)
        for name, given in (("ids", ids), ("labels", labels), ("paths", paths)):
            if isinstance(given, (str, bytes)):
                raise SiameseError(f"{name} must be a list with one entry per image; received the string {given!r}")
        if ids is None:
            raise SiameseError("ids: one per embedding is needed; received None")
        ids = [str(i) for i in ids]
        labels = [""] * n if labels is None else ["" if v is None else str(v) for v in labels]
        paths = [""] * n if paths is None else ["" if v is None else str(v) for v in paths]
        if not len(ids) == len(labels) == len(paths) == n:
            raise SiameseError(f"{n} embeddings need as many ids, labels and paths; received "
                               f"{len(ids)}, {len(labels)}, {len(paths)}")
        if not np.isfinite(embeddings).all():
            raise SiameseError("embeddings must be finite")
        for name, values in (("ids", ids), ("labels", labels), ("paths", paths)):
            bad = next((v for v in values if "\0" in v), None)  # the gallery file would drop it: ids would collide
            if bad is not None:
                raise SiameseError(f"{name} must not hold the NUL character; received {bad!r}")
        seen = self._with_new_ids(ids)
        self.embeddings = np.concatenate([self.embeddings, embeddings])
        self._norms = np.concatenate([self._norms, squared_norms(embeddings)])
        self.ids += ids
        self.labels += labels
        self.paths += paths
        self._known_ids = seen
        return n

    def _with_new_ids(self, ids):
        """The known ids plus `ids`; SiameseError naming the first id already known or repeated."""
        seen = set(self._known_ids)
        for image_id in ids:
            if image_id in seen:
                raise SiameseError(f"{image_id}: already in the gallery (ids must be unique; a folder's ids are "
                                   "paths from its parent folder)")
            seen.add(image_id)
        return seen

    def search(self, images, k=5):
        """The `k` nearest gallery images of each query (arrays or image files), with decisions."""
        return self.search_embeddings(embed_images(self.model, images), k)

    def search_embeddings(self, queries, k=5):
        """One result per query embedding: `{"neighbours": [{"index", "id", "path", "label",
        "distance"}...], "decision": "match" | "unknown" | None, "label": str | None}`.

        decision is None when the model has no threshold; label is the nearest
        image's label on a match (None when unlabelled).
        """
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise SiameseError(f"k must be a positive integer; received {k!r}")
        queries = np.asarray(queries, np.float32)
        if queries.ndim not in (1, 2) or queries.shape[-1] != self.dim:
            raise SiameseError(f"queries must be embeddings of shape (N, {self.dim}) or ({self.dim},); received "
                               f"{queries.shape}")
        if not np.isfinite(queries).all():
            raise SiameseError("queries must be finite embeddings")
        queries = queries.reshape(-1, self.dim)
        rows, distances = self.nearest(queries, int(k))
        return [self._result(r, d) for r, d in zip(rows, distances)]

    def nearest(self, queries, k):
        """Rows and model distances `(Q, min(k, N))` of each query's nearest images, nearest first."""
        if not self.uses_approximate or len(self) <= k:
            return exact_search(self.embeddings, queries, k, self.epsilon, self._norms)
        index = self._approximate_index()
        candidates, complete = index.candidates(queries, k)
        if not complete.all():  # the graph could not fill some rows: search those exactly
            exact_rows, _ = exact_search(self.embeddings, queries[~complete], k, self.epsilon, self._norms)
            candidates[~complete] = exact_rows
        return rank_candidates(self.embeddings, queries, candidates, self.epsilon)

    def _approximate_index(self):
        if self._index is None:
            self._index = ApproximateIndex(self.dim)
        self._index.add(self.embeddings[len(self._index):])
        return self._index

    def _result(self, rows, distances):
        neighbours = [{"index": int(r), "id": self.ids[r], "path": self.paths[r] or None,
                       "label": self.labels[r] or None, "distance": float(d)} for r, d in zip(rows, distances)]
        threshold, decision, label = self.threshold, None, None
        if threshold is not None:
            matched = bool(neighbours) and neighbours[0]["distance"] < threshold
            decision = "match" if matched else "unknown"
            label = neighbours[0]["label"] if matched else None
        return {"neighbours": neighbours, "decision": decision, "label": label}

    def save(self, path):
        """Write the gallery to one file atomically (with the approximate index when it is in use)."""
        meta = {"format": FORMAT, "version": VERSION, "fingerprint": self.fingerprint, "dim": self.dim,
                "threshold": self.threshold, "approximate": self.approximate, "size": len(self),
                "model": None if self.model_path is None else str(self.model_path)}
        arrays = {"embeddings": self.embeddings, "ids": np.array(self.ids, str), "labels": np.array(self.labels, str),
                  "paths": np.array(self.paths, str), "meta": np.array(json.dumps(meta))}
        if self.uses_approximate and len(self):
            arrays["hnsw"] = self._approximate_index().to_bytes()
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)
        return Path(path)

    @classmethod
    def load(cls, path, model, approximate=None):
        """Read a gallery written by `save`; SiameseError unless it was built with `model` (same weights).

        `approximate` overrides the recorded choice when not None.
        """
        arrays = _read(path)
        meta = json.loads(str(arrays["meta"]))
        gallery = cls(model, meta.get("approximate") if approximate is None else approximate, meta.get("model"))
        if meta["fingerprint"] != gallery.fingerprint:
            raise SiameseError(f"{path}: built with another model (fingerprint {meta['fingerprint'][:19]}..., this "
                               f"model {gallery.fingerprint[:19]}...); rebuild it with siamese index")
        try:
            gallery.add_embeddings(arrays["embeddings"], arrays["ids"].tolist(), arrays["labels"].tolist(),
                                   arrays["paths"].tolist())
        except SiameseError as error:
            raise SiameseError(f"{path}: a damaged gallery file ({error})") from None
        if "hnsw" in arrays and gallery.uses_approximate:
            index = ApproximateIndex.from_bytes(arrays["hnsw"], gallery.dim)
            gallery._index = index if len(index) == len(gallery) else None
        return gallery


MEMBERS = ("embeddings", "ids", "labels", "paths", "meta")


def recorded_model(path):
    """The model file a gallery was built with, as recorded in it (None if unrecorded)."""
    return json.loads(str(_read(path, ("meta",))["meta"])).get("model")


def _read(path, names=None):
    """The arrays of a gallery file (or only `names`), with one-line errors for anything else."""
    path = Path(path)
    if not path.is_file():
        problem = "is a folder, not a gallery file" if path.is_dir() else "gallery file not found"
        raise SiameseError(f"{path}: {problem}")
    if not zipfile.is_zipfile(path):
        raise SiameseError(f"{path}: not a gallery file (written by siamese index)")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in (names or data.files)}
        meta = json.loads(str(arrays["meta"]))
    except (KeyError, ValueError, OSError, zipfile.BadZipFile) as error:
        raise SiameseError(f"{path}: not a readable gallery file ({error})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise SiameseError(f"{path}: not a gallery file (written by siamese index)")
    if not isinstance(meta.get("version"), int) or meta["version"] > VERSION:
        raise SiameseError(f"{path}: a gallery file of format version {meta.get('version')!r}; this keras-siamese "
                           f"reads version {VERSION} and older (upgrade it, or rebuild the gallery)")
    damage = [f"no {name}" for name in MEMBERS if names is None and name not in arrays]
    if not isinstance(meta.get("fingerprint"), str) or not isinstance(meta.get("model"), (str, type(None))):
        damage.append("its record lacks the model's fingerprint or file")
    if "embeddings" in arrays and arrays["embeddings"].dtype.kind not in "fiu":
        damage.append(f"embeddings of type {arrays['embeddings'].dtype}")
    if damage:
        raise SiameseError(f"{path}: a damaged gallery file ({'; '.join(damage)}); rebuild it with siamese index")
    return arrays

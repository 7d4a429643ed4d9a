"""The gallery: exact distances (not squared), match/unknown, approximate search, files, fingerprints, streaming."""

import numpy as np
import pytest
from PIL import Image

from keras_siamese import Gallery, SiameseError, SiameseModel, build_tower, embed
from keras_siamese.data.folder import read_images
from keras_siamese.data.stream import stream_images
from keras_siamese.gallery.enrol import folder_entries
from keras_siamese.inference.embedding import embed_files
from keras_siamese.metrics import neighbours
from keras_siamese.metrics.neighbours import euclidean, exact_search

pytestmark = pytest.mark.core  # backend-agnostic: runs under TensorFlow, JAX and PyTorch


def tiny_model(threshold=4.5, seed=0):
    import keras

    keras.utils.set_random_seed(seed)
    return SiameseModel(build_tower("seed", (12, 12, 1), 4), threshold=threshold)


@pytest.fixture(scope="module")
def model():
    return tiny_model()


def hand_gallery(model, approximate=None):
    gallery = Gallery(model, approximate)
    gallery.add_embeddings([[0, 0, 0, 0], [3, 4, 0, 0], [6, 8, 0, 0]], ["zero", "five", "ten"], ["a", "b", ""],
                           ["/x/0.png", None, None])
    return gallery


def test_distances_are_the_models_euclidean_not_squared(model):
    (result,) = hand_gallery(model).search_embeddings([[0, 0, 0, 0]], k=3)
    assert [n["id"] for n in result["neighbours"]] == ["zero", "five", "ten"]
    # 0 is clamped as the model's distance layer does: sqrt(1e-7)
    np.testing.assert_allclose([n["distance"] for n in result["neighbours"]], [1e-7 ** 0.5, 5.0, 10.0])
    assert result["neighbours"][0]["path"] == "/x/0.png" and result["neighbours"][1]["path"] is None


def test_match_below_the_threshold_and_unknown_beyond(model):
    gallery = hand_gallery(model)  # threshold 4.5
    near_five, far, near_ten = gallery.search_embeddings([[3, 4, 1, 0], [100, 0, 0, 0], [6, 8, 0, 2]], k=2)
    assert near_five["decision"] == "match" and near_five["label"] == "b"
    assert near_five["neighbours"][0]["distance"] == pytest.approx(1.0)
    assert far["decision"] == "unknown" and far["label"] is None
    assert near_ten["decision"] == "match" and near_ten["label"] is None  # unlabelled image: a match, no label
    model.threshold = None
    try:
        assert gallery.search_embeddings([[3, 4, 1, 0]], k=1)[0]["decision"] is None
    finally:
        model.threshold = 4.5


def test_exact_search_matches_brute_force_across_blocks(monkeypatch):
    rng = np.random.default_rng(0)
    base, queries = rng.standard_normal((50, 6)), rng.standard_normal((11, 6))
    monkeypatch.setattr(neighbours, "BASE_BLOCK", 7)
    monkeypatch.setattr(neighbours, "QUERY_BLOCK", 3)
    rows, distances = exact_search(base, queries, 5)
    full = euclidean(base[None], queries[:, None])
    np.testing.assert_array_equal(rows, np.argsort(full, axis=1)[:, :5])
    np.testing.assert_allclose(distances, np.sort(full, axis=1)[:, :5], rtol=1e-6)
    assert exact_search(base[:3], queries, 5)[0].shape == (11, 3)  # k is capped at the gallery size
    # k beyond two blocks' rows: every merge keeps all it has until k rows are seen
    rows, _ = exact_search(base, queries, 20)
    np.testing.assert_array_equal(rows, np.argsort(full, axis=1)[:, :20])


def test_exact_search_ranks_float32_ties_by_exact_distance():
    # |b|^2 - 2 q.b rounds to -10000 in float32 for the three decoys (0.012 away) and lands just above it for the
    # nearest row (0.01 away); candidates are re-ranked by float64 distances
    base = np.array([[100, 0.012], [100, -0.012], [100, 0.0121], [100.01, 0]], np.float32)
    rows, distances = exact_search(base, np.array([[100, 0]], np.float32), 1)
    assert rows.tolist() == [[3]]
    assert distances[0, 0] == pytest.approx(0.01, rel=1e-3)


def clustered(n, seed, centres):
    rng = np.random.default_rng(seed)
    points = centres[rng.integers(0, len(centres), n)] + 0.1 * rng.standard_normal((n, 4))
    return points.astype(np.float32)


def test_approximate_search_recalls_exact_neighbours_with_exact_distances(model):
    centres = np.random.default_rng(1).standard_normal((20, 4)) * 3
    vectors, queries = clustered(3000, 2, centres), clustered(50, 3, centres)
    exact, approximate = Gallery(model, approximate=False), Gallery(model, approximate=True)
    for gallery in (exact, approximate):
        gallery.add_embeddings(vectors, [str(i) for i in range(len(vectors))])
    truth_rows, _ = exact.nearest(queries, 10)
    rows, distances = approximate.nearest(queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(rows, truth_rows)])
    assert recall >= 0.9
    np.testing.assert_allclose(distances, euclidean(vectors[rows], queries[:, None]))  # recomputed, not HNSW's
    assert approximate.uses_approximate and not exact.uses_approximate


def test_save_and_load_round_trip(model, tmp_path):
    for approximate in (None, True):
        gallery = hand_gallery(model, approximate)
        gallery.save(tmp_path / "g.npz")
        loaded = Gallery.load(tmp_path / "g.npz", model)
        assert (loaded.ids, loaded.labels, loaded.paths) == (gallery.ids, gallery.labels, gallery.paths)
        np.testing.assert_array_equal(loaded.embeddings, gallery.embeddings)
        assert loaded.uses_approximate == bool(approximate)
        assert (loaded._index is not None) == bool(approximate)  # the HNSW graph travels in the file
        query = [[3, 4, 1, 0]]
        assert loaded.search_embeddings(query, 3) == gallery.search_embeddings(query, 3)


def test_another_model_is_refused_and_recalibrating_is_not(model, tmp_path):
    hand_gallery(model).save(tmp_path / "g.npz")
    with pytest.raises(SiameseError, match="built with another model"):
        Gallery.load(tmp_path / "g.npz", tiny_model(seed=1))
    recalibrated = SiameseModel(model.tower, threshold=1.0)
    assert Gallery.load(tmp_path / "g.npz", recalibrated).threshold == 1.0


def test_bad_input_is_a_clear_error(model, tmp_path):
    gallery = hand_gallery(model)
    with pytest.raises(SiameseError, match="five: already in the gallery"):
        gallery.add_embeddings([[1, 1, 1, 1]], ["five"])
    with pytest.raises(SiameseError, match=r"shape \(N, 4\)"):
        gallery.add_embeddings([[1, 1, 1]], ["new"])
    with pytest.raises(SiameseError, match="k must be a positive integer"):
        gallery.search_embeddings([[0, 0, 0, 0]], k=0)
    (tmp_path / "not.npz").write_text("hello")
    with pytest.raises(SiameseError, match="not a gallery file"):
        Gallery.load(tmp_path / "not.npz", model)
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(SiameseError, match="not a readable gallery file"):
        Gallery.load(tmp_path / "other.npz", model)
    with pytest.raises(SiameseError, match="gallery file not found"):
        Gallery.load(tmp_path / "missing.npz", model)


def write_pngs(root, count=7, size=12):
    """Images in class folders `a/`, `b/` and two unlabelled ones directly in `root`."""
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        folder = root / ("a" if i % 2 else "b") if i < count - 2 else root
        folder.mkdir(parents=True, exist_ok=True)
        paths.append(folder / f"{i}.png")
        Image.fromarray(rng.integers(0, 255, (size + i, size), dtype=np.uint8)).save(paths[-1])
    return paths


def test_folder_entries_label_by_class_folder(tmp_path):
    write_pngs(tmp_path / "photos")
    paths, ids, labels = folder_entries(tmp_path / "photos")
    assert ids == ["photos/5.png", "photos/6.png", "photos/a/1.png", "photos/a/3.png", "photos/b/0.png",
                   "photos/b/2.png", "photos/b/4.png"]
    assert labels == ["", "", "a", "a", "b", "b", "b"]


def test_folder_entries_of_a_split_layout_are_labelled_by_the_class_folders_inside_the_splits(tmp_path):
    for split in ("train", "test"):
        write_pngs(tmp_path / "photos" / split)
    paths, ids, labels = folder_entries(tmp_path / "photos")
    assert ids[:3] == ["photos/test/5.png", "photos/test/6.png", "photos/test/a/1.png"]
    assert labels == ["", "", "a", "a", "b", "b", "b"] * 2


def test_linked_class_folders_are_followed_and_a_link_back_up_is_not(tmp_path):
    import os

    write_pngs(tmp_path / "elsewhere")
    (tmp_path / "photos").mkdir()
    os.symlink(tmp_path / "elsewhere" / "b", tmp_path / "photos" / "linked")
    os.symlink(tmp_path / "photos", tmp_path / "photos" / "linked_back")  # a loop
    paths, ids, labels = folder_entries(tmp_path / "photos")
    assert ids == ["photos/linked/0.png", "photos/linked/2.png", "photos/linked/4.png"]
    assert labels == ["linked"] * 3


def test_a_link_from_one_class_to_another_is_not_enrolled_twice(tmp_path, capsys):
    write_pngs(tmp_path / "photos")
    (tmp_path / "photos" / "a" / "bs").symlink_to("../b")  # b's images would be labelled a
    paths, ids, labels = folder_entries(tmp_path / "photos")
    assert not any("bs" in i for i in ids) and len(ids) == len(set(p.resolve() for p in paths))
    assert "a/bs: links to" in capsys.readouterr().err
    write_pngs(tmp_path / "layout" / "train")
    write_pngs(tmp_path / "layout" / "test")
    (tmp_path / "layout" / "train" / "a" / "bs").symlink_to("../b")  # in a split layout too
    paths, ids, labels = folder_entries(tmp_path / "layout")
    assert not any("bs" in i for i in ids) and "train/a/bs: links to" in capsys.readouterr().err


def test_numpy_ids_and_labels_mixed_lists_and_bad_queries(model, tmp_path):
    from keras_siamese import load_model, save_model

    gallery = Gallery(model)
    images = np.random.default_rng(0).integers(0, 255, (3, 12, 12, 1), dtype=np.uint8)
    assert gallery.add(images, labels=np.array(["a", "b", "a"]), ids=np.array(["x", "y", "z"])) == 3
    write_pngs(tmp_path / "photos")
    assert gallery.add(tmp_path / "photos", labels=np.array(["l"] * 7)) == 7 and gallery.labels[-1] == "l"
    with pytest.raises(SiameseError, match="ids: one per embedding is needed"):
        gallery.add_embeddings(np.zeros((1, gallery.dim)), None)
    with pytest.raises(SiameseError, match="ids must not hold the NUL character"):
        gallery.add(images[:1], ids=["a\0"])  # the file would store "a"
    assert gallery.add([str(tmp_path / "photos" / "a" / "1.png"), images[0]], ids=["f", "g"]) == 2
    files = [str(tmp_path / "photos" / "a" / "3.png"), str(tmp_path / "photos" / "b" / "0.png")]
    assert gallery.add(files, paths=np.array(["p", "q"])) == 2 and gallery.paths[-2:] == ["p", "q"]
    with pytest.raises(SiameseError, match=rf"queries must be embeddings of shape \(N, {gallery.dim}\)"):
        gallery.search_embeddings(np.zeros((2, 2 * gallery.dim)), k=1)  # not 2 x 2 queries
    with pytest.raises(SiameseError, match="queries must be finite"):
        gallery.search_embeddings(np.full((1, gallery.dim), np.nan), k=1)
    with pytest.raises(SiameseError, match="save_model writes a SiameseModel; received Functional; wrap a tower"):
        save_model(model.tower, tmp_path / "tower.keras")
    with pytest.raises(SiameseError, match="received NoneType"):
        save_model(None, tmp_path / "none.keras")
    path = save_model(model, tmp_path / "m.keras")
    assert isinstance(load_model(bytes(path)), type(model))


def test_a_model_file_makes_a_gallery_and_a_string_of_labels_is_refused(model, tmp_path):
    from keras_siamese import save_model

    path = save_model(model, tmp_path / "model.keras")
    gallery = Gallery(path)
    assert gallery.model_path == path.resolve() and gallery.fingerprint == Gallery(model).fingerprint
    images = np.zeros((2, 12, 12, 1), np.uint8)
    with pytest.raises(SiameseError, match="labels must be a list with one entry per image; received the string"):
        gallery.add(images, labels="zz")
    gallery.add(images, labels=["z", "z"])
    gallery.save(tmp_path / "g.npz")
    assert len(Gallery.load(tmp_path / "g.npz", path)) == 2


def test_streamed_embeddings_equal_in_memory_ones(model, tmp_path):
    paths = sorted(write_pngs(tmp_path / "photos"))
    batches = list(stream_images(paths, (12, 12), 1, batch_size=3, prefetch=1))
    assert [len(b) for b in batches] == [3, 3, 1]
    np.testing.assert_array_equal(np.concatenate(batches), read_images(paths, (12, 12), 1))
    np.testing.assert_allclose(embed_files(model, paths, batch_size=3), embed(model, paths), rtol=1e-5, atol=1e-6)


def test_add_a_folder_then_search_an_enrolled_image(model, tmp_path, monkeypatch):
    paths = write_pngs(tmp_path / "photos")
    gallery = Gallery(model)
    assert gallery.add(tmp_path / "photos") == 7
    assert gallery.labelled and sorted(set(gallery.labels)) == ["", "a", "b"]
    (result,) = gallery.search([paths[1]], k=2)
    assert result["neighbours"][0]["id"] == "photos/a/1.png"
    assert result["neighbours"][0]["distance"] == pytest.approx(1e-7 ** 0.5, rel=1e-3)
    assert result["decision"] == "match" and result["label"] == "a"
    assert gallery.add(np.zeros((2, 12, 12, 1), np.uint8), labels=["c", "c"]) == 2
    assert gallery.ids[-2:] == ["image:7", "image:8"]
    monkeypatch.setattr("keras_siamese.gallery.gallery.embed_files", None)  # calling it would be a TypeError
    with pytest.raises(SiameseError, match="photos/5.png: already in the gallery"):
        gallery.add(tmp_path / "photos")  # refused before embedding anything
    assert len(gallery) == 9


def test_index_holds_the_gallery_files_lock_from_reading_to_writing(model, tmp_path, monkeypatch):
    """So a server enrolling into the same file waits, and neither loses the other's images."""
    from keras_siamese import save_model
    from keras_siamese.atomic import LOCK_SUFFIX
    from keras_siamese.gallery.build import index_images

    write_pngs(tmp_path / "photos")
    path = save_model(model, tmp_path / "model.keras")
    lock, held = tmp_path / f".g.npz{LOCK_SUFFIX}", []
    load, save = Gallery.load.__func__, Gallery.save

    def locked_load(cls, *args, **kwargs):
        held.append(("load", lock.exists()))
        return load(cls, *args, **kwargs)

    def locked_save(self, *args):
        held.append(("save", lock.exists()))
        return save(self, *args)

    monkeypatch.setattr(Gallery, "load", classmethod(locked_load))
    monkeypatch.setattr(Gallery, "save", locked_save)
    index_images(path, tmp_path / "photos" / "a", tmp_path / "g.npz", progress=False)
    index_images(path, tmp_path / "photos" / "b", tmp_path / "g.npz", add=True, progress=False)
    assert held == [("save", True), ("load", True), ("save", True)] and not lock.exists()


def test_streaming_holds_at_most_prefetch_plus_one_batches(monkeypatch):
    import time

    from keras_siamese.data import stream

    started = []
    monkeypatch.setattr(stream, "_read_batch", lambda paths, size, channels: started.append(paths) or
                        np.zeros((len(paths), *size, channels), np.uint8))
    batches = stream.stream_images([f"{i}.png" for i in range(30)], (2, 2), 1, batch_size=3, prefetch=2)
    next(batches)  # the caller holds one batch...
    deadline = time.monotonic() + 10
    while len(started) < 3 and time.monotonic() < deadline:  # the batches submitted start in a moment
        time.sleep(0.01)
    time.sleep(0.2)  # a fourth, had one been submitted, would have started by now too
    assert len(started) == 3  # ...while 2 more are decoded or decoding
    assert sum(len(b) for b in batches) == 27


def test_one_query_the_graph_cannot_fill_is_searched_exactly(model, monkeypatch):
    """usearch cuts one query's keys to those it found; the exact fallback must still fill all k."""
    from usearch.index import Matches

    vectors = np.random.default_rng(2).standard_normal((50, 4)).astype(np.float32)
    gallery = Gallery(model, approximate=True)
    gallery.add_embeddings(vectors, [str(i) for i in range(50)])
    gallery.nearest(vectors[:1], 5)  # builds the graph
    monkeypatch.setattr(gallery._index.index, "search", lambda *args, **kwargs: Matches(
        keys=np.array([0, 1], np.uint64), distances=np.zeros(2, np.float32)))
    (result,) = gallery.search_embeddings(vectors[7:8], 5)
    exact, _ = exact_search(vectors, vectors[7:8], 5, gallery.epsilon)
    assert [n["index"] for n in result["neighbours"]] == exact[0].tolist()


def test_a_gallery_of_a_newer_format_is_refused(model, tmp_path):
    import json

    hand_gallery(model).save(tmp_path / "g.npz")
    with np.load(tmp_path / "g.npz") as data:
        arrays = {name: data[name] for name in data.files}
    meta = json.loads(str(arrays["meta"]))
    arrays["meta"] = np.array(json.dumps({**meta, "version": meta["version"] + 1}))
    np.savez(tmp_path / "newer.npz", **arrays)
    with pytest.raises(SiameseError, match=r"newer.npz: a gallery file of format version 2; this keras-siamese reads "
                                           r"version 1 and older"):
        Gallery.load(tmp_path / "newer.npz", model)


def test_adding_to_a_gallery_without_a_recorded_model_records_the_one_given(model, tmp_path):
    from keras_siamese import save_model
    from keras_siamese.gallery.build import index_images
    from keras_siamese.gallery.gallery import recorded_model

    write_pngs(tmp_path / "photos")
    hand_gallery(model).save(tmp_path / "g.npz")  # built in Python from a model in memory: no file recorded
    assert recorded_model(tmp_path / "g.npz") is None
    path = save_model(model, tmp_path / "model.keras")
    index_images(path, tmp_path / "photos" / "a", tmp_path / "g.npz", add=True, progress=False)
    assert recorded_model(tmp_path / "g.npz") == str(path.resolve())


def test_a_folder_named_like_a_built_in_source_does_not_change_what_index_reads(tmp_path, monkeypatch):
    from keras_siamese.data.sources import is_folder_source

    (tmp_path / "mnist").mkdir()  # e.g. where --data-dir's IDX files sit
    monkeypatch.chdir(tmp_path)
    assert not is_folder_source("mnist") and is_folder_source("./mnist") and is_folder_source(tmp_path / "mnist")
    assert not is_folder_source("no-such-folder")

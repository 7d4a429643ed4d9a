"""Training, embedding and evaluating from disk: ImageFiles decode on demand and match the in-memory path."""

import numpy as np
import pytest

from conftest import QUICK, error_line, write_folder
from keras_siamese import budget
from keras_siamese.data.dataset import concatenate
from keras_siamese.data.folder import ImageFiles, list_images, read_images, stack_images
from keras_siamese.data.sources import load_splits
from keras_siamese.errors import SiameseError


@pytest.fixture
def folder(tmp_path):
    return write_folder(tmp_path / "images", per_class=8)


@pytest.mark.core
def test_image_files_decode_like_read_images(folder):
    paths = list_images(folder)
    files = ImageFiles(paths, (10, 12, 1))
    expected = read_images(paths, (10, 12), 1, progress=False)
    assert files.shape == (len(paths), 10, 12, 1) and len(files) == len(paths)
    np.testing.assert_array_equal(files[3], expected[3])
    np.testing.assert_array_equal(files[[5, 0, 5]], expected[[5, 0, 5]])
    np.testing.assert_array_equal(files[2:6], expected[2:6])
    np.testing.assert_array_equal(np.asarray(files), expected)
    np.testing.assert_array_equal(files.subset([4, 1])[1], expected[1])  # subsets stay on disk
    np.testing.assert_array_equal(files.resized((8, 8, 3))[0], read_images(paths[:1], (8, 8), 3, progress=False)[0])
    both = stack_images([files.subset([0]), files.subset([1, 2])])
    assert isinstance(both, ImageFiles) and list(both.paths) == [str(p) for p in paths[:3]]
    assert files.nbytes < 100 * len(paths)  # paths only, no pixels
    with pytest.raises(SiameseError, match="cannot mix"):
        stack_images([files, expected])


@pytest.mark.core
def test_cached_files_decode_once(folder):
    from pathlib import Path

    paths = list_images(folder)
    files = ImageFiles(paths, (16, 16, 1)).cached()
    first = files[[0, 1, 2]]
    assert list(np.flatnonzero(files.cache.filled)) == [0, 1, 2]
    for path in paths[:3]:
        Path(path).unlink()  # from now on only the cache has them
    np.testing.assert_array_equal(files[[2, 0, 1]], first[[2, 0, 1]])
    np.testing.assert_array_equal(files[1], first[1])
    with pytest.raises(SiameseError, match="file not found"):
        ImageFiles(paths, (16, 16, 1))[0]


def test_a_full_disk_stops_the_cache_not_the_run(folder, monkeypatch):
    import os

    paths = list_images(folder)
    files = ImageFiles(paths, (16, 16, 1)).cached()
    first = files[[0, 1]]

    def no_space(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "pwrite", no_space)
    later = files[[2, 3]]  # decoded, not stored: the cache stopped
    assert files.cache.full and list(np.flatnonzero(files.cache.filled)) == [0, 1]
    monkeypatch.undo()
    np.testing.assert_array_equal(files[[0, 1, 2, 3]], np.concatenate([first, later]))
    np.testing.assert_array_equal(later, ImageFiles(paths, (16, 16, 1))[[2, 3]])


def test_a_short_write_as_the_disk_fills_stores_no_row(folder, monkeypatch):
    import os

    paths = list_images(folder)
    files = ImageFiles(paths, (16, 16, 1)).cached()
    real_pwrite = os.pwrite
    monkeypatch.setattr(os, "pwrite", lambda fd, data, offset: real_pwrite(fd, data[:100], offset))  # 100 of 256
    decoded = files[[0, 1]]
    assert files.cache.full and not files.cache.filled.any()  # never read back with a zero tail
    monkeypatch.undo()
    np.testing.assert_array_equal(files[[0, 1]], decoded)
    np.testing.assert_array_equal(decoded, ImageFiles(paths, (16, 16, 1))[[0, 1]])


def test_a_cache_that_cannot_be_made_leaves_streaming_uncached(folder, monkeypatch):
    import os

    def too_large(*args):
        raise OSError(27, "File too large")  # past a file-size limit (ulimit -f)

    monkeypatch.setattr(os, "ftruncate", too_large)
    files = ImageFiles(list_images(folder), (16, 16, 1)).cached()
    assert files.cache is None and files[[0, 1]].shape == (2, 16, 16, 1)


def test_streamed_splits_match_in_memory_ones(folder):
    streamed = load_splits(folder, shape=(16, 16, 1), stream=True)
    held = load_splits(folder, shape=(16, 16, 1), stream=False)
    assert streamed.source["streamed"] and "streamed" not in held.source
    for name in ("train", "val", "test"):
        a, b = streamed.split(name), held.split(name)
        assert isinstance(a.images, ImageFiles) and isinstance(b.images, np.ndarray)
        np.testing.assert_array_equal(a.labels, b.labels)
        np.testing.assert_array_equal(np.asarray(a.images), b.images)
    assert isinstance(concatenate([streamed.train, streamed.val]).images, ImageFiles)


def test_auto_streams_above_the_size_limit(folder, monkeypatch):
    assert "streamed" not in load_splits(folder, shape=(16, 16, 1)).source
    monkeypatch.setattr(budget, "STREAM_ABOVE", 16 * 16 * 10)  # fewer bytes than the folder's 24 images hold
    assert load_splits(folder, shape=(16, 16, 1)).source["streamed"]


def test_embedding_streamed_images_matches_arrays(folder):
    import keras_siamese as ks
    from keras_siamese.inference.embedding import embed_images

    result = ks.train(str(folder), output=None, progress=False, epochs=1, batch_size=12, images_per_class=4,
                      embedding_dim=8, image_size=(16, 16), stream=True)
    files = ImageFiles(list_images(folder), (16, 16, 1))
    np.testing.assert_allclose(embed_images(result.model, files, batch_size=5),
                               embed_images(result.model, np.asarray(files)), rtol=1e-5, atol=1e-6)


@pytest.mark.core  # streamed by tf.data's prefetch thread on TensorFlow, by PyDataset workers elsewhere
@pytest.mark.parametrize("loss", ["supcon", "contrastive"])
def test_training_from_disk_equals_training_in_memory(folder, loss):
    import keras_siamese as ks

    settings = dict(output=None, progress=False, epochs=2, batch_size=12, embedding_dim=8, image_size=(16, 16),
                    loss=loss, normalize=True, seed=3, images_per_class=4 if loss == "supcon" else None)
    streamed = ks.train(str(folder), stream=True, **settings)
    held = ks.train(str(folder), stream=False, **settings)
    assert streamed.record["data"]["streamed"] and streamed.record["settings"]["stream"] is True
    for a, b in zip(streamed.model.get_weights(), held.model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert streamed.model.threshold == pytest.approx(held.model.threshold, rel=1e-5)


def test_cli_trains_and_evaluates_a_streamed_folder(folder, tmp_path, capsys):
    from keras_siamese.cli import main

    out = tmp_path / "out"
    assert main(["train", "--data", str(folder), "--stream", "--output", str(out), *QUICK]) == 0
    assert (out / "model.keras").is_file()
    assert main(["evaluate", "--model", str(out / "model.keras"), "--stream", "--output", str(tmp_path / "eval")]) == 0
    assert main(["calibrate", "--model", str(out / "model.keras"), "--data", str(folder), "--stream",
                 "--output", str(tmp_path / "calibrated.keras")]) == 0


def test_an_unreadable_file_met_while_streaming_is_one_line(tmp_path, capsys):
    from keras_siamese.cli import main

    folder = write_folder(tmp_path / "many", per_class=60)  # 15 batches: past those Keras reads up front
    bad = sorted((folder / "circle").iterdir())[-1]
    bad.write_bytes(b"not an image")
    # with the size and channels given, no header is read before training: the error comes mid-epoch
    code = main(["train", "--data", str(folder), "--stream", "--image-size", "16", "--channels", "1",
                 "--output", str(tmp_path / "out"), *QUICK])
    assert code != 0
    assert str(bad) in error_line(capsys)
    assert not (tmp_path / "out" / "model.keras").exists()

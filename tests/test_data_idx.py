"""IDX files: reading, checked downloads from a local HTTP server into the cache, MNIST-style sources."""

import gzip
import hashlib
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from keras_siamese.data import idx
from keras_siamese.data.sources import load_splits
from keras_siamese.errors import SiameseError


def idx_bytes(array):
    array = np.asarray(array, np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.tobytes()


def gz(raw):
    return gzip.compress(raw, mtime=0)


def write_idx(path, array):
    path.write_bytes(gz(idx_bytes(array)))
    return path


def tiny_arrays(seed=0):
    """Train: class 0 x20, 1 x10, 2 x30 (shuffled); test: 6 images. 4x5 pixels."""
    rng = np.random.default_rng(seed)
    train_y = rng.permutation(np.repeat([0, 1, 2], [20, 10, 30])).astype(np.uint8)
    test_y = np.array([0, 1, 2, 0, 1, 2], np.uint8)
    train_x = rng.integers(0, 256, (60, 4, 5), dtype=np.uint8)
    test_x = rng.integers(0, 256, (6, 4, 5), dtype=np.uint8)
    return train_x, train_y, test_x, test_y


def tiny_files(seed=0):
    """The four gzipped IDX files as {filename: bytes}."""
    train_x, train_y, test_x, test_y = tiny_arrays(seed)
    arrays = {"train_images": train_x, "train_labels": train_y, "test_images": test_x, "test_labels": test_y}
    return {idx.FILES[key]: gz(idx_bytes(value)) for key, value in arrays.items()}


def write_tiny_folder(folder, seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in tiny_files(seed).items():
        (folder / name).write_bytes(data)
    return folder


# --- read_idx -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(7,), (3, 4, 5), (2, 3)])
def test_read_idx_round_trip(tmp_path, shape):
    array = np.arange(int(np.prod(shape)), dtype=np.uint8).reshape(shape)
    out = idx.read_idx(write_idx(tmp_path / "a.gz", array))
    assert out.dtype == np.uint8 and out.shape == shape
    np.testing.assert_array_equal(out, array)


def test_read_idx_empty_array(tmp_path):
    out = idx.read_idx(write_idx(tmp_path / "e.gz", np.zeros((0, 2, 2), np.uint8)))
    assert out.shape == (0, 2, 2)


@pytest.mark.parametrize(
    "raw",
    [
        b"\x00\x00\x0d\x01\x00\x00\x00\x02ab",  # dtype 0x0d (float) is not unsigned bytes
        b"\x01\x00\x08\x01\x00\x00\x00\x02ab",  # first magic byte not 0
        b"\x00\x00\x08\x00",  # zero dimensions
        b"\x00\x00\x08\x04" + b"\x00\x00\x00\x01" * 4 + b"a",  # four dimensions
        b"\x00\x00",  # too short for a header
        b"PK\x03\x04 hello",
    ],
)
def test_read_idx_bad_magic(tmp_path, raw):
    path = tmp_path / "bad-magic.gz"
    path.write_bytes(gz(raw))
    with pytest.raises(SiameseError, match=r"bad-magic\.gz: not an IDX file .*bad header"):
        idx.read_idx(path)


def test_read_idx_truncated_payload(tmp_path):
    raw = idx_bytes(np.zeros((3, 4, 5), np.uint8))
    path = tmp_path / "short.gz"
    path.write_bytes(gz(raw[:-7]))
    with pytest.raises(SiameseError, match=r"short\.gz: IDX header says shape \(3, 4, 5\) but the file holds 53 bytes"):
        idx.read_idx(path)
    path.write_bytes(gz(raw + b"extra"))
    with pytest.raises(SiameseError, match=r"short\.gz: .*holds 65 bytes"):
        idx.read_idx(path)


def test_read_idx_not_gzip(tmp_path):
    path = tmp_path / "plain.gz"
    path.write_bytes(idx_bytes(np.zeros((2, 2), np.uint8)))  # right content, not compressed
    with pytest.raises(SiameseError, match=r"plain\.gz: not a readable gzip file"):
        idx.read_idx(path)


def test_read_idx_truncated_gzip(tmp_path):
    data = gz(idx_bytes(np.arange(200, dtype=np.uint8).reshape(10, 20)))
    path = tmp_path / "cut.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(SiameseError, match=r"cut\.gz: not a readable gzip file"):
        idx.read_idx(path)


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(SiameseError, match=r"nothing\.gz: file not found"):
        idx.read_idx(tmp_path / "nothing.gz")


# --- read_idx_folder ------------------------------------------------------------------------------------------


def test_read_idx_folder_round_trip(tmp_path):
    folder = write_tiny_folder(tmp_path / "mnist")
    for got, expected in zip(idx.read_idx_folder(folder), tiny_arrays()):
        np.testing.assert_array_equal(got, expected)


def test_read_idx_folder_missing_folder_and_file(tmp_path):
    with pytest.raises(SiameseError, match="nowhere: data folder not found"):
        idx.read_idx_folder(tmp_path / "nowhere")
    folder = write_tiny_folder(tmp_path / "mnist")
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(SiameseError, match=r"t10k-labels-idx1-ubyte\.gz: file not found"):
        idx.read_idx_folder(folder)


def test_read_idx_folder_count_mismatch(tmp_path):
    folder = write_tiny_folder(tmp_path / "mnist")
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.zeros(59, np.uint8))
    with pytest.raises(SiameseError, match=r"train images \(60, 4, 5\) and labels \(59,\) do not match"):
        idx.read_idx_folder(folder)


def test_read_idx_folder_rank_mismatch(tmp_path):
    folder = write_tiny_folder(tmp_path / "mnist")
    write_idx(folder / "t10k-images-idx3-ubyte.gz", np.zeros((6, 20), np.uint8))  # flat images
    with pytest.raises(SiameseError, match=r"test images \(6, 20\) and labels \(6,\) do not match"):
        idx.read_idx_folder(folder)


# --- cache_root and mirrors -----------------------------------------------------------------------------------


def test_cache_root_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_SIAMESE_CACHE", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert idx.cache_root() == tmp_path / "mine"
    monkeypatch.delenv("KERAS_SIAMESE_CACHE")
    assert idx.cache_root() == tmp_path / "xdg" / "keras-siamese"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert idx.cache_root() == tmp_path / "home" / ".cache" / "keras-siamese"


def test_mirrors_for_puts_the_environment_mirror_first(monkeypatch):
    monkeypatch.setitem(idx.MIRRORS, "mnist", ["http://a/"])
    monkeypatch.delenv("KERAS_SIAMESE_MIRROR", raising=False)
    assert idx.mirrors_for("mnist") == ["http://a/"]
    monkeypatch.setenv("KERAS_SIAMESE_MIRROR", "http://b/data")
    assert idx.mirrors_for("mnist") == ["http://b/data/", "http://a/"]


def test_real_tables_are_complete():
    for name in ("mnist", "fashion-mnist"):
        assert set(idx.SHA256[name]) == set(idx.FILES.values())
        assert all(len(h) == 64 and set(h) <= set("0123456789abcdef") for h in idx.SHA256[name].values())
        assert idx.MIRRORS[name] and all(m.endswith("/") for m in idx.MIRRORS[name])
        assert len(idx.CLASS_NAMES[name]) == 10


# --- downloads from a local server ----------------------------------------------------------------------------


class Server:
    """A local HTTP server of {filename: bytes}; records the files asked for."""

    def __init__(self, files):
        self.files = dict(files)
        self.requests = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                name = self.path.lstrip("/")
                server.requests.append(name)
                if name not in server.files:
                    self.send_error(404)
                    return
                body = server.files[name]
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.running = True

    def stop(self):
        if self.running:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join(5)
            self.running = False


def dead_url():
    """A local address nothing listens on (connections are refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@pytest.fixture
def files():
    return tiny_files()


@pytest.fixture
def servers(files):
    started = []

    def start(served=None):
        server = Server(files if served is None else served)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def offline(monkeypatch, tmp_path, files):
    """Cache in tmp_path, checksums of the tiny files, no real mirror, no proxy; returns the cache folder."""
    monkeypatch.setenv("KERAS_SIAMESE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("KERAS_SIAMESE_MIRROR", raising=False)
    for variable in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("NO_PROXY", "*")
    monkeypatch.setitem(idx.SHA256, "mnist", {name: hashlib.sha256(data).hexdigest() for name, data in files.items()})
    monkeypatch.setitem(idx.MIRRORS, "mnist", [dead_url()])  # overridden per test; never the internet
    monkeypatch.setattr(idx, "DEBIAN_FOLDERS", {})
    return tmp_path / "cache" / "mnist"


def cache_listing(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_fetch_downloads_the_four_files(offline, servers, files, monkeypatch):
    server = servers()
    monkeypatch.setitem(idx.MIRRORS, "mnist", [server.url])
    folder = idx.fetch("mnist", timeout=5)
    assert folder == offline
    assert cache_listing(folder) == sorted(files)  # the four files and nothing else (no temp files)
    for name, data in files.items():
        assert (folder / name).read_bytes() == data
    assert sorted(server.requests) == sorted(files)
    for got, expected in zip(idx.read_idx_folder(folder), tiny_arrays()):
        np.testing.assert_array_equal(got, expected)


def test_fetch_reuses_the_cache_offline(offline, servers, files, monkeypatch):
    server = servers()
    monkeypatch.setitem(idx.MIRRORS, "mnist", [server.url])
    idx.fetch("mnist", timeout=5)
    server.stop()
    assert idx.fetch("mnist", timeout=5) == offline  # nothing to download: no error
    assert len(server.requests) == 4


def test_fetch_into_an_explicit_cache_dir(offline, servers, files, monkeypatch, tmp_path):
    monkeypatch.setitem(idx.MIRRORS, "mnist", [servers().url])
    folder = idx.fetch("mnist", cache_dir=tmp_path / "elsewhere", timeout=5)
    assert folder == tmp_path / "elsewhere" and cache_listing(folder) == sorted(files)
    assert not offline.exists()


def test_fetch_rejects_a_corrupted_download(offline, servers, files, monkeypatch):
    corrupted = dict(files)
    name = "train-labels-idx1-ubyte.gz"
    corrupted[name] = files[name][:-1] + bytes([files[name][-1] ^ 0xFF])
    server = servers(corrupted)
    monkeypatch.setitem(idx.MIRRORS, "mnist", [server.url])
    with pytest.raises(SiameseError, match=rf"could not download {name} for mnist.*SHA-256 mismatch.*--data-dir"):
        idx.fetch("mnist", timeout=5)
    listing = cache_listing(offline)
    assert name not in listing
    assert not [n for n in listing if n.startswith(".") or "tmp" in n]  # no temporary file left behind
    assert set(listing) <= set(files) - {name}


def test_fetch_replaces_a_corrupted_cached_file(offline, servers, files, monkeypatch):
    server = servers()
    monkeypatch.setitem(idx.MIRRORS, "mnist", [server.url])
    idx.fetch("mnist", timeout=5)
    name = "t10k-images-idx3-ubyte.gz"
    (offline / name).write_bytes(b"garbage")
    idx.fetch("mnist", timeout=5)
    assert (offline / name).read_bytes() == files[name]
    assert server.requests[4:] == [name]  # only the bad file came again
    assert cache_listing(offline) == sorted(files)


def test_fetch_falls_through_an_unreachable_and_a_bad_mirror(offline, servers, files, monkeypatch):
    broken = servers({})  # answers 404 to everything
    corrupt = servers({name: b"not the file" for name in files})
    good = servers()
    monkeypatch.setitem(idx.MIRRORS, "mnist", [dead_url(), broken.url, corrupt.url, good.url])
    idx.fetch("mnist", timeout=5)
    assert cache_listing(offline) == sorted(files)
    assert sorted(broken.requests) == sorted(corrupt.requests) == sorted(good.requests) == sorted(files)


def test_fetch_all_mirrors_failing_lists_each(offline, monkeypatch, servers):
    first, second = dead_url(), servers({}).url
    monkeypatch.setitem(idx.MIRRORS, "mnist", [first, second])
    with pytest.raises(SiameseError) as error:
        idx.fetch("mnist", timeout=5)
    message = str(error.value)
    assert first + "train-images-idx3-ubyte.gz" in message and second + "train-images-idx3-ubyte.gz" in message
    assert "Not Found" in message
    assert cache_listing(offline) == []


def test_fetch_tries_the_environment_mirror_first(offline, servers, files, monkeypatch):
    preferred = servers()
    listed = servers()
    monkeypatch.setitem(idx.MIRRORS, "mnist", [listed.url])
    monkeypatch.setenv("KERAS_SIAMESE_MIRROR", preferred.url.rstrip("/"))
    idx.fetch("mnist", timeout=5)
    assert sorted(preferred.requests) == sorted(files)
    assert listed.requests == []
    # and when it fails, the listed mirrors still serve
    for path in offline.iterdir():
        path.unlink()
    monkeypatch.setenv("KERAS_SIAMESE_MIRROR", dead_url())
    idx.fetch("mnist", timeout=5)
    assert sorted(listed.requests) == sorted(files)


def test_load_splits_mnist_downloads_into_the_cache(offline, servers, monkeypatch):
    monkeypatch.setitem(idx.MIRRORS, "mnist", [servers().url])
    splits = load_splits("mnist", seed=0)
    assert splits.source["path"] == str(offline)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (53, 7, 6)  # val 2 + 2 + 3 (see below)


# --- MNIST-style sources from a folder ------------------------------------------------------------------------


def test_load_splits_mnist_from_a_folder_is_stratified(tmp_path):
    folder = write_tiny_folder(tmp_path / "mnist")
    train_x, train_y, test_x, test_y = tiny_arrays()
    splits = load_splits("mnist", data_dir=folder, seed=3)
    assert splits.train.image_shape == (4, 5, 1) and splits.train.images.dtype == np.uint8
    assert splits.train.class_names == [str(d) for d in range(10)]
    # val is 10% of every class of train, at least 2 for a pair: 2 of 20, 1 of 10 made 2, 3 of 30
    np.testing.assert_array_equal(np.bincount(splits.val.labels, minlength=10)[:3], [2, 2, 3])
    np.testing.assert_array_equal(np.bincount(splits.train.labels, minlength=10)[:3], [18, 8, 27])
    # the test split is the file's, in order
    np.testing.assert_array_equal(splits.test.images[..., 0], test_x)
    np.testing.assert_array_equal(splits.test.labels, test_y)
    assert list(splits.test.ids[:2]) == ["mnist:test:0", "mnist:test:1"]
    # train and val together are the training file, each image with its own label
    ids = np.concatenate([splits.train.ids, splits.val.ids])
    index = np.array([int(i.rsplit(":", 1)[1]) for i in ids])
    np.testing.assert_array_equal(np.sort(index), np.arange(60))
    images = np.concatenate([splits.train.images, splits.val.images])[..., 0]
    labels = np.concatenate([splits.train.labels, splits.val.labels])
    np.testing.assert_array_equal(images, train_x[index])
    np.testing.assert_array_equal(labels, train_y[index])
    assert splits.source == {
        "name": "mnist", "path": str(folder), "image_shape": [4, 5, 1], "classes": [str(d) for d in range(10)],
        "sizes": {"train": 53, "val": 7, "test": 6},
    }


def test_load_splits_mnist_val_depends_on_seed_only(tmp_path):
    folder = write_tiny_folder(tmp_path / "mnist")
    a, b, c = (load_splits("mnist", data_dir=folder, seed=s) for s in (1, 1, 2))
    assert list(a.val.ids) == list(b.val.ids)
    assert list(a.val.ids) != list(c.val.ids)
    assert list(a.test.ids) == list(c.test.ids)


def test_load_splits_fashion_mnist_names_and_resize(tmp_path):
    folder = write_tiny_folder(tmp_path / "fashion")
    splits = load_splits("fashion-mnist", data_dir=folder, shape=(8, 6, 3))
    assert splits.train.class_names[0] == "T-shirt_top" and len(splits.train.class_names) == 10
    assert splits.train.image_shape == splits.test.image_shape == (8, 6, 3)
    assert splits.source["image_shape"] == [8, 6, 3]


def test_load_splits_rejects_labels_beyond_the_class_list(tmp_path):
    folder = write_tiny_folder(tmp_path / "mnist")
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.array([0, 1, 2, 0, 1, 12], np.uint8))
    with pytest.raises(SiameseError, match="test labels go up to 12; mnist has 10 classes"):
        load_splits("mnist", data_dir=folder)


def test_load_splits_mnist_missing_data_dir(tmp_path):
    with pytest.raises(SiameseError, match="absent: data folder not found"):
        load_splits("mnist", data_dir=tmp_path / "absent")


def test_read_idx_sizes_that_overflow_64_bits_are_a_length_error(tmp_path):
    raw = b"\0\0\x08\x03" + (2**22).to_bytes(4, "big") + (2**21).to_bytes(4, "big") * 2  # product 2**64
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gz(raw))
    with pytest.raises(SiameseError, match="IDX header says shape"):
        idx.read_idx(path)


def test_fetch_falls_through_a_mirror_that_does_not_speak_http(offline, servers, files, monkeypatch):
    listener = socket.create_server(("127.0.0.1", 0))

    def answer_garbage():
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with connection:
                connection.recv(4096)
                connection.sendall(b"garbage\r\n")

    threading.Thread(target=answer_garbage, daemon=True).start()
    good = servers()
    monkeypatch.setitem(idx.MIRRORS, "mnist", [f"http://127.0.0.1:{listener.getsockname()[1]}/", good.url])
    try:
        idx.fetch("mnist", timeout=5)
    finally:
        listener.close()
    assert cache_listing(offline) == sorted(files)

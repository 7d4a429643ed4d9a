"""MNIST-style IDX `.gz` files: reading, and downloading with SHA-256 checks into a cache."""

import gzip
import hashlib
import http.client
import math
import os
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import numpy as np

from keras_siamese.atomic import atomic_path
from keras_siamese.errors import SiameseError

FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}

# SHA-256 of the canonical gzip files, as published by their mirrors.
SHA256 = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    },
}

MIRRORS = {
    "mnist": [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ],
    "fashion-mnist": [
        "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    ],
}

CLASS_NAMES = {
    "mnist": [str(d) for d in range(10)],
    "fashion-mnist": [
        "T-shirt_top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle_boot",
    ],
}

# Where Debian's package `dataset-fashion-mnist` puts the four files.
DEBIAN_FOLDERS = {"fashion-mnist": Path("/usr/share/datasets/fashion-mnist")}

_DTYPES = {0x08: np.uint8}


def read_idx(path):
    """Read a gzipped IDX file into a numpy array, checking its header and length."""
    path = Path(path)
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise SiameseError(f"{path}: file not found") from None
    except (OSError, EOFError, zlib.error) as error:
        raise SiameseError(f"{path}: not a readable gzip file ({error})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES or not 1 <= raw[3] <= 3:
        raise SiameseError(f"{path}: not an IDX file of unsigned bytes (bad header)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(raw[4 + 4 * k : 8 + 4 * k], "big") for k in range(ndim))
    if len(raw) != header + math.prod(shape):  # Python's integers: no wrap-around on a crafted header
        raise SiameseError(f"{path}: IDX header says shape {shape} but the file holds {len(raw) - header} bytes")
    return np.frombuffer(raw, np.uint8, offset=header).reshape(shape)


def read_idx_folder(folder):
    """The four standard files in `folder` as (train_x, train_y, test_x, test_y)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SiameseError(f"{folder}: data folder not found")
    arrays = {key: read_idx(folder / name) for key, name in FILES.items()}
    for split in ("train", "test"):
        x, y = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise SiameseError(
                f"{folder}: {split} images {x.shape} and labels {y.shape} do not match (expected (N, H, W) and (N,))"
            )
    return arrays["train_images"], arrays["train_labels"], arrays["test_images"], arrays["test_labels"]


def cache_root():
    """`$KERAS_SIAMESE_CACHE`, else `$XDG_CACHE_HOME/keras-siamese`, else `~/.cache/keras-siamese`."""
    if os.environ.get("KERAS_SIAMESE_CACHE"):
        return Path(os.environ["KERAS_SIAMESE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "keras-siamese"


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def mirrors_for(name):
    """The mirror list for `name`, with `$KERAS_SIAMESE_MIRROR` (a base URL) tried first."""
    extra = os.environ.get("KERAS_SIAMESE_MIRROR")
    return ([extra.rstrip("/") + "/"] if extra else []) + MIRRORS[name]


def fetch(name, cache_dir=None, timeout=60):
    """Return a folder holding the four verified files of `name`, downloading what is missing.

    Files already in the cache are re-verified; a file that fails its check is
    downloaded again. Downloads go to a temporary file that only replaces the
    cached name once its SHA-256 matches, so the cache never holds a bad file.
    """
    folder = Path(cache_dir) if cache_dir else cache_root() / name
    for filename, expected in SHA256[name].items():
        target = folder / filename
        if target.is_file() and sha256_of(target) == expected:
            continue
        _download(name, filename, expected, target, timeout)
    return folder


def _download(name, filename, expected, target, timeout):
    errors = []
    for base in mirrors_for(name):
        url = base + filename
        try:
            with atomic_path(target) as tmp:
                with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
                    for block in iter(lambda: response.read(1 << 20), b""):
                        out.write(block)
                actual = sha256_of(tmp)
                if actual != expected:
                    raise ValueError(f"SHA-256 mismatch (got {actual[:12]}..., expected {expected[:12]}...)")
            return
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as error:
            errors.append(f"{url}: {getattr(error, 'reason', error)}")
    raise SiameseError(
        f"could not download {filename} for {name} into {target.parent} ({'; '.join(errors)}); "
        f"put the four IDX .gz files in a folder and pass --data-dir"
    )

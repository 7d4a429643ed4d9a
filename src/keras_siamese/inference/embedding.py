"""Embedding images with a trained tower, in large batches."""

from pathlib import Path

import numpy as np

from keras_siamese.data.dataset import to_uint8
from keras_siamese.data.folder import ImageFiles, picture_array, read_images, resize_images
from keras_siamese.data.stream import stream_images
from keras_siamese.errors import SiameseError
from keras_siamese.metrics.neighbours import euclidean

PIXELS_PER_BATCH = 2**20  # batches of 1,024 MNIST-size images, 256 of 64x64, 16 of 224x224
PAIRS_PER_BLOCK = 2**16  # pair distances in blocks, so the float64 differences stay small


def tower_of(model):
    """The embedding tower of a SiameseModel, or the tower itself."""
    return getattr(model, "tower", model)


def as_model(model, siamese=False):
    """`model` itself, or the model in a model file; SiameseError for anything else. A bare tower passes
    (it embeds) unless `siamese`: then it must be a SiameseModel (a threshold, a distance, a record)."""
    if isinstance(model, (str, Path)):
        from keras_siamese.inference.model_io import load_model

        return load_model(model)
    if not hasattr(tower_of(model), "input_shape"):
        raise SiameseError(f"model must be a SiameseModel (ks.load_model) or a model file; received "
                           f"{type(model).__name__}")
    if siamese and not hasattr(model, "tower"):
        raise SiameseError(f"model must be a SiameseModel (ks.load_model) or a model file; received a bare tower "
                           f"({type(model).__name__}), which has no threshold: wrap it, SiameseModel(tower)")
    return model


def _picture(item, shape):
    """One image of a list, as uint8 `shape`: a file is read, a PIL image or an image array of another size or
    colour is converted as files are."""
    from PIL import Image

    if isinstance(item, (str, Path)):
        return read_images([Path(item)], shape[:2], shape[2])[0]
    if isinstance(item, Image.Image):
        return picture_array(item, shape[:2], shape[2], "a PIL image")
    array = np.asarray(item)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 3):
        raise SiameseError(f"an image must have shape (H, W) or (H, W, 1 or 3); received {array.shape}")
    return resize_images(to_uint8(array)[None], shape)[0]


def as_image_batch(images, shape, progress=False):
    """A uint8 batch `(N, H, W, C)` matching `shape` from an array (one image or a batch), image paths, or
    a list of paths, PIL images and image arrays of any size."""
    from PIL import Image

    if isinstance(images, (str, Path, Image.Image)):
        images = [images]
    if isinstance(images, (list, tuple)) and images:
        if all(isinstance(item, (str, Path)) for item in images):
            return read_images([Path(p) for p in images], shape[:2], shape[2], progress)
        return np.stack([_picture(item, shape) for item in images])
    batch = np.asarray(images)
    if batch.ndim < 2 or batch.dtype == object:
        raise SiameseError(f"images must be an image (H, W[, C]), a batch (N, H, W[, C]), image files or PIL "
                           f"images; received {type(images).__name__} of shape {batch.shape}")
    if batch.shape == tuple(shape) or (batch.shape == tuple(shape[:2]) and shape[2] == 1):
        batch = batch.reshape(1, *shape)  # one image
    elif batch.ndim == 3 and shape[2] == 1:
        batch = batch[..., None]  # (N, H, W) grayscale
    if batch.shape[1:] != tuple(shape):
        raise SiameseError(f"an array of shape {np.shape(images)} reads as {len(batch)} images of shape "
                           f"{batch.shape[1:]}; the model takes {tuple(shape)} (an image of another size or "
                           "colour is converted when given in a list: [image])")
    return to_uint8(batch)


def default_batch_size(shape):
    """Large batches for throughput, bounded so activations of large images stay small."""
    return int(np.clip(2 ** int(np.log2(PIXELS_PER_BATCH / (shape[0] * shape[1]))), 16, 1024))


def embed_images(model, images, batch_size=None, progress=False):
    """Embeddings `(N, embedding_dim)` of images (uint8 arrays, floats in 0..1, file paths, or ImageFiles,
    which are streamed)."""
    from keras_siamese.inference.folding import inference_tower  # imports Keras, which `siamese --help` avoids

    if isinstance(images, ImageFiles):
        return embed_files(as_model(model), images.paths, batch_size, progress)
    if batch_size is not None and (not isinstance(batch_size, (int, np.integer)) or batch_size < 1):
        raise SiameseError(f"batch_size must be a positive integer; received {batch_size!r}")
    tower = inference_tower(as_model(model))
    shape = tuple(tower.input_shape[1:])
    batch = as_image_batch(images, shape, progress)
    batch_size = batch_size or default_batch_size(shape)
    if len(batch) == 0:
        return np.zeros((0, int(tower.output_shape[-1])), np.float32)
    # predict_on_batch skips the input pipeline `predict` builds on every call
    chunks = [tower.predict_on_batch(batch[i : i + batch_size]) for i in range(0, len(batch), batch_size)]
    return np.concatenate([np.asarray(c, np.float32) for c in chunks])


def embed_files(model, paths, batch_size=None, progress=False):
    """Embeddings `(N, D)` of image files, decoded on background threads a few batches ahead of the
    tower, so reading overlaps embedding and only a few batches of pixels are in memory at once."""
    from tqdm.auto import tqdm

    tower = tower_of(model)
    shape = tuple(tower.input_shape[1:])
    batch_size = batch_size or default_batch_size(shape)
    out = np.empty((len(paths), int(tower.output_shape[-1])), np.float32)
    start = 0
    with tqdm(total=len(paths), desc="embedding", unit="img", disable=not progress) as bar:
        for batch in stream_images(paths, shape[:2], shape[2], batch_size):
            out[start:start + len(batch)] = embed_images(model, batch, batch_size)
            start += len(batch)
            bar.update(len(batch))
    return out


def pair_distances(embeddings, pairs):
    """Euclidean distances (the model's, see `euclidean`) of the index pairs `(M, 2)` from embeddings."""
    pairs = np.asarray(pairs).reshape(-1, 2)
    distances = np.empty(len(pairs))
    for start in range(0, len(pairs), PAIRS_PER_BLOCK):
        a, b = pairs[start:start + PAIRS_PER_BLOCK].T
        distances[start:start + len(a)] = euclidean(embeddings[a], embeddings[b])
    return distances

"""Embedding images with a trained tower, in large batches."""

from pathlib import Path

import numpy as np

from keras_siamese.data.dataset import to_uint8
from keras_siamese.data.folder import ImageFiles, read_images
from keras_siamese.data.stream import stream_images
from keras_siamese.errors import SiameseError
from keras_siamese.metrics.neighbours import euclidean

PIXELS_PER_BATCH = 2**20  # batches of 1,024 MNIST-size images, 256 of 64x64, 16 of 224x224
PAIRS_PER_BLOCK = 2**16  # pair distances in blocks, so the float64 differences stay small


def tower_of(model):
    """The embedding tower of a SiameseModel, or the tower itself."""
    return getattr(model, "tower", model)


def as_image_batch(images, shape, progress=False):
    """A uint8 batch `(N, H, W, C)` matching `shape` from arrays or image paths."""
    if isinstance(images, (str, Path)):
        images = [images]
    if isinstance(images, (list, tuple)) and images and isinstance(images[0], (str, Path)):
        return read_images([Path(p) for p in images], shape[:2], shape[2], progress)
    batch = np.asarray(images)
    if batch.shape in (tuple(shape), tuple(shape[:2])):
        batch = batch.reshape(1, *shape)  # one image
    elif batch.ndim == 3 and shape[2] == 1:
        batch = batch[..., None]  # (N, H, W) grayscale
    if batch.shape[1:] != tuple(shape):
        raise SiameseError(f"images have shape {batch.shape[1:]}; the model takes {tuple(shape)}")
    return to_uint8(batch)


def default_batch_size(shape):
    """Large batches for throughput, bounded so activations of large images stay small."""
    return int(np.clip(2 ** int(np.log2(PIXELS_PER_BATCH / (shape[0] * shape[1]))), 16, 1024))


def embed_images(model, images, batch_size=None, progress=False):
    """Embeddings `(N, embedding_dim)` of images (uint8 arrays, floats in 0..1, file paths, or ImageFiles,
    which are streamed)."""
    from keras_siamese.inference.folding import inference_tower  # imports Keras, which `siamese --help` avoids

    if isinstance(images, ImageFiles):
        return embed_files(model, images.paths, batch_size, progress)
    tower = inference_tower(model)
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

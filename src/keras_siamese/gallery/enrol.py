"""What to enrol from a folder or a data source, and embedding image files as a stream."""

from pathlib import Path

import numpy as np

from keras_siamese.data.folder import list_images
from keras_siamese.data.stream import stream_images
from keras_siamese.inference.embedding import default_batch_size, embed_images, tower_of


def folder_entries(root):
    """`(paths, ids, labels)` of every image under `root`: a file in a subfolder is labelled with the
    name of the top subfolder (class folders); a file directly in `root` has label "" (unlabelled).
    Ids are paths relative to the folder's parent ("photos/cat/1.png")."""
    root = Path(root)
    paths = list_images(root)
    relative = [p.relative_to(root) for p in paths]
    ids = [(Path(root.resolve().name) / r).as_posix() for r in relative]
    labels = [r.parts[0] if len(r.parts) > 1 else "" for r in relative]
    return paths, ids, labels


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

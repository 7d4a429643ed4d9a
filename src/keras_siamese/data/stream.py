"""Image files read in batches on background threads, a few batches ahead of the consumer."""

from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from keras_siamese.data.folder import read_image


def stream_images(paths, size, channels, batch_size, prefetch=2):
    """Yield uint8 batches `(n <= batch_size, height, width, channels)` of `paths`, in order.

    `prefetch` threads each decode a whole batch, so at most `prefetch + 1`
    batches are held at once (those decoding and the caller's): memory stays
    bounded however many files there are, and the next batches decode while the
    caller works on the current one.
    (One thread per batch: a pool per batch contends for the GIL and was slower.)
    """
    starts = iter(range(0, len(paths), batch_size))
    with ThreadPoolExecutor(max_workers=prefetch) as pool:
        pending = deque()

        def submit():
            start = next(starts, None)
            if start is not None:
                pending.append(pool.submit(_read_batch, paths[start:start + batch_size], size, channels))

        for _ in range(prefetch):
            submit()
        while pending:
            batch = pending.popleft().result()
            submit()
            yield batch


def _read_batch(paths, size, channels):
    out = np.empty((len(paths), size[0], size[1], channels), np.uint8)
    for i, path in enumerate(paths):
        out[i] = read_image(path, size, channels)
    return out

"""Image files read in batches on background threads, a few batches ahead of the consumer."""

from collections import deque
from concurrent.futures import ThreadPoolExecutor

from keras_siamese.data.folder import read_images


def stream_images(paths, size, channels, batch_size, prefetch=2):
    """Yield uint8 batches `(n <= batch_size, height, width, channels)` of `paths`, in order.

    At most `prefetch + 1` batches are held at once, so memory stays bounded
    however many files there are; the next batches decode while the caller
    works on the current one.
    """
    starts = iter(range(0, len(paths), batch_size))
    with ThreadPoolExecutor(max_workers=prefetch) as pool:
        pending = deque()

        def submit():
            start = next(starts, None)
            if start is not None:
                pending.append(pool.submit(read_images, paths[start:start + batch_size], size, channels, False))

        for _ in range(prefetch + 1):
            submit()
        while pending:
            batch = pending.popleft().result()
            submit()
            yield batch

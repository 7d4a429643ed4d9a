"""Micro-batches: images from concurrent requests embedded together by one worker thread."""

import asyncio
import queue
import threading
from concurrent.futures import Future

import numpy as np


class MicroBatcher:
    """Embeds image batches submitted from many requests in as few tower calls as possible.

    One worker thread takes every request waiting when it becomes free (up
    to `max_batch` images) and embeds them in one call of `embed(images)`, so
    under load requests share calls and when idle none waits for company.
    Batches are padded to a power of two, so the tower sees few distinct
    shapes (no retracing). `batches` and `images` count the calls made.
    """

    def __init__(self, embed, max_batch=64):
        self.embed = embed
        self.max_batch = int(max_batch)
        self.batches = self.images = 0
        self._worker = self._queue = None
        self._starting = threading.Lock()

    def submit(self, images):
        """A Future of the embeddings `(n, D)` of the uint8 images `(n, H, W, C)`."""
        future = Future()
        with self._starting:  # the worker starts with the first request, and again after `close`
            if self._worker is None:  # each worker has a queue of its own
                self._queue = queue.Queue()
                self._worker = threading.Thread(target=self._run, args=(self._queue,), name="micro-batcher",
                                                daemon=True)
                self._worker.start()
            self._queue.put((np.asarray(images), future))
        return future

    async def embed_async(self, images):
        return await asyncio.wrap_future(self.submit(images))

    def close(self):
        """Stop the worker once the requests queued before are answered (a request submitted meanwhile
        waits, then starts a new worker: never two at once)."""
        with self._starting:
            if self._worker is not None:
                self._queue.put(None)
                self._worker.join()
                self._worker = None

    def _run(self, jobs_queue):
        while True:
            first = jobs_queue.get()
            if first is None:
                return
            jobs, size = [first], len(first[0])
            while size < self.max_batch:
                try:
                    job = jobs_queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    jobs_queue.put(None)  # stop after this batch
                    break
                jobs.append(job)
                size += len(job[0])
            self._embed(jobs, size)

    def _embed(self, jobs, size):
        images = np.concatenate([images for images, _ in jobs])
        padded = 1 << max(size - 1, 0).bit_length()
        if padded > size and padded <= self.max_batch:
            images = np.concatenate([images, np.zeros((padded - size, *images.shape[1:]), images.dtype)])
        try:
            embeddings = np.asarray(self.embed(images))[:size]
        except Exception as error:  # every waiting request learns of it; the worker lives on
            for _, future in jobs:
                future.set_exception(error)
            return
        self.batches += 1
        self.images += size
        start = 0
        for batch, future in jobs:
            future.set_result(embeddings[start:start + len(batch)])
            start += len(batch)

"""Helpers for the service tests: a tiny model with a gallery folder, and a real uvicorn on 127.0.0.1."""

import contextlib
import io
import socket
import threading
import time

import numpy as np
from PIL import Image

from conftest import synthetic_images


def png_bytes(array):
    out = io.BytesIO()
    Image.fromarray(np.asarray(array, np.uint8).squeeze()).save(out, "PNG")
    return out.getvalue()


def tiny_model():
    """An untrained seed tower on 12x12 grey images, with a threshold between its typical distances."""
    import keras

    from keras_siamese import SiameseModel, build_tower, embed

    keras.utils.set_random_seed(0)
    model = SiameseModel(build_tower("seed", (12, 12, 1), 4))
    images, _ = synthetic_images(classes=3, per_class=4, size=12)
    embeddings = embed(model, images)
    distances = np.linalg.norm(embeddings[:, None] - embeddings[None], axis=-1)
    model.threshold = float(np.median(distances[np.triu_indices(len(images), 1)]))
    return model


def gallery_folder(root):
    """Three classes of four PNGs in class folders; returns the folder."""
    images, labels = synthetic_images(classes=3, per_class=4, size=12)
    for i, (image, label) in enumerate(zip(images, labels)):
        folder = root / ["circle", "square", "cross"][label]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i:02d}.png").write_bytes(png_bytes(image))
    return root


@contextlib.contextmanager
def running(app):
    """Serve `app` with uvicorn on 127.0.0.1 and a free port in a thread; yields the base URL."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()

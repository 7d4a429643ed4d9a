"""Running the service under uvicorn from model and gallery files."""

import importlib.util
import socket
from pathlib import Path

from keras_siamese.errors import SiameseError

EXTRA = ("fastapi", "uvicorn", "multipart")


def require_serve_extra():
    """SiameseError naming the pip command unless the serve extra's packages are installed."""
    missing = [name for name in EXTRA if importlib.util.find_spec(name) is None]
    if missing:
        raise SiameseError(f"siamese serve needs {', '.join(missing)}: pip install 'keras-siamese[serve]'")


def check_address(host, port):
    """SiameseError unless a server can listen on `host`:`port` now (taken, or a host that does not resolve)."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]  # IPv6 hosts too, as uvicorn takes
        socket.create_server((host, port), family=family).close()
    except OSError as error:
        reason = str(error.strerror or error).split(" (while attempting")[0]  # without the address again
        raise SiameseError(f"cannot listen on {host}:{port}: {reason}") from None


def serve(model_path, gallery_path=None, host="127.0.0.1", port=8000, allow_enroll=False, token=None,
          max_request_bytes=None, max_pixels=None, announce=print):
    """Load the model (and the gallery, when its file exists) and serve them until interrupted."""
    require_serve_extra()
    import uvicorn

    from keras_siamese.gallery.gallery import Gallery
    from keras_siamese.inference.model_io import load_model
    from keras_siamese.serve.app import MAX_REQUEST_BYTES, check_token, create_app

    check_address(host, port)
    check_token(token, allow_enroll)  # before the slow loading
    model = load_model(model_path)
    gallery = None
    if gallery_path is not None and Path(gallery_path).exists():
        gallery = Gallery.load(gallery_path, model)
    elif gallery_path is not None and not allow_enroll:
        raise SiameseError(f"{gallery_path}: gallery file not found (with --allow-enroll the server starts one)")
    elif gallery_path is not None:  # a new gallery records its model, as `siamese index` does, for `search`
        gallery = Gallery(model, model_path=Path(model_path).resolve())
    app = create_app(model, gallery, gallery_path, allow_enroll, token,
                     max_request_bytes or MAX_REQUEST_BYTES, max_pixels)
    served = app.state.service.gallery
    size = "no gallery" if served is None else f"gallery {gallery_path}: {len(served)} images"
    announce(f"serving {model_path} ({size}) on http://{host}:{port}/  (API docs: /docs)")
    if app.state.token:
        announce(f"enrolment token: {app.state.token}")
    uvicorn.run(app, host=host, port=port, log_level="warning")

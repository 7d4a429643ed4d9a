"""The HTTP service: compare, embed, search and enrol over a model and an optional gallery, and its page.

The top floor beside the CLI: it uses data, inference, gallery and metrics; nothing
imports it. Every answer is JSON (errors as `{"detail": "..."}`), images are decoded
off the event loop, embedded in micro-batches, and a request that fails leaves the
server running.
"""

import io
import os
import secrets
import sys
import threading
from contextlib import ExitStack, asynccontextmanager, contextmanager
from importlib import resources
from pathlib import Path
from typing import Annotated

import numpy as np
from fastapi import Depends, FastAPI, File, Form, Header, HTTPException, Query, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from PIL import Image, UnidentifiedImageError

from keras_siamese.atomic import exclusive, file_version
from keras_siamese.budget import max_pixels as budget_max_pixels
from keras_siamese.data.folder import declared_pixels, read_image, upright
from keras_siamese.errors import SiameseError
from keras_siamese.gallery.fingerprint import model_fingerprint
from keras_siamese.gallery.gallery import Gallery
from keras_siamese.inference.compare import decide
from keras_siamese.inference.embedding import embed_images
from keras_siamese.metrics.neighbours import euclidean
from keras_siamese.serve.batcher import MicroBatcher
from keras_siamese.serve.limits import BodyLimit

MAX_REQUEST_BYTES = 10 * 2**20
MAX_K = 100
MAX_IMAGES = 64  # per request: each is decoded in full, up to the pixel limit
ENROL_LOCK_WAIT = 5.0  # seconds an enrolment waits for another process writing the gallery file
UPLOAD_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF")  # not EPS, which Pillow decodes with Ghostscript
DEFAULT_K = 5
THUMBNAIL = 160
STATIC = resources.files("keras_siamese.serve") / "static"


class NamedBytes(io.BytesIO):
    """Uploaded bytes that read_image can open and name in its messages by their file name."""

    def __init__(self, data, name):
        super().__init__(data)
        self.name = name

    def __str__(self):
        return self.name

    def __repr__(self):  # Pillow's messages show the file as its repr
        return repr(self.name)


class Service:
    """What the endpoints share: the model, the micro-batcher, the gallery and its lock."""

    def __init__(self, model, gallery=None, gallery_path=None, token=None, max_pixels=None):
        self.model = model
        self.shape = tuple(model.input_image_shape)
        self.gallery = gallery
        self.gallery_path = None if gallery_path is None else Path(gallery_path)
        self.read_stamp = file_version(self.gallery_path)  # the gallery file as this server last read or wrote it
        self.token = token
        self.fingerprint = gallery.fingerprint if gallery is not None else model_fingerprint(model)
        self.max_pixels = int(max_pixels or budget_max_pixels())  # uploads over it are refused from their header
        self.lock = threading.Lock()  # the gallery in memory: searches and an enrolment's update
        self.enrolling = threading.Lock()  # enrolments queue here, so only another process's write can time out
        self.batcher = MicroBatcher(lambda images: embed_images(model, images))

    def decode(self, data, name):
        """Uploaded bytes as a uint8 image of the model's shape; 413 over the pixel limit, 415 if not an image."""
        try:
            with Image.open(NamedBytes(data, name), formats=UPLOAD_FORMATS) as header:
                pixels = header.width * header.height
        except Image.DecompressionBombError as error:  # Pillow's own limit came first: its message has the size
            pixels = declared_pixels(error)
        except UnidentifiedImageError:
            raise HTTPException(415, f"{name}: not a readable image (accepted: {', '.join(UPLOAD_FORMATS)})") from None
        except (OSError, ValueError, SyntaxError) as error:
            raise HTTPException(415, f"{name}: not a readable image ({error})") from None
        if pixels > self.max_pixels:
            raise HTTPException(413, f"{name}: {pixels:,} pixels; the limit is {self.max_pixels:,} "
                                     f"(raise it with --max-pixels)")
        try:
            return read_image(NamedBytes(data, name), self.shape[:2], self.shape[2], self.max_pixels,
                              UPLOAD_FORMATS)
        except SiameseError as error:
            raise HTTPException(415, str(error)) from None

    async def embed(self, datas, names):
        """Embeddings of uploaded files' bytes, decoded off the event loop and embedded in a micro-batch."""
        if len(datas) > MAX_IMAGES:
            raise HTTPException(413, f"{len(datas)} images in one request; the limit is {MAX_IMAGES}")
        images = [await run_in_threadpool(self.decode, data, name) for data, name in zip(datas, names)]
        return await self.batcher.embed_async(np.stack(images))

    def need_gallery(self):
        if self.gallery is None:
            raise HTTPException(409, "no gallery: start the server with --gallery (and --allow-enroll to build one)")
        return self.gallery

    def current_gallery(self):
        """The gallery, read again first when its file changed since this server last read or wrote it (an
        `index --add` meanwhile, or another server). Call it holding `lock`."""
        gallery = self.need_gallery()
        stamp = file_version(self.gallery_path)
        if stamp is not None and stamp != self.read_stamp:
            self.gallery = Gallery.load(self.gallery_path, self.model, gallery.approximate)
            self.read_stamp = stamp
        return self.gallery

    def search(self, embedding, k):
        self.need_gallery()
        with self.lock:
            result = self.current_gallery().search_embeddings(embedding[None], k)[0]
        for neighbour in result["neighbours"]:
            neighbour["image_url"] = f"/gallery/{neighbour['index']}/image" if neighbour.pop("path") else None
        return {**result, "threshold": self.model.threshold}

    def enrol(self, datas, names, labels, embeddings):
        """Store the uploads beside the gallery file, add them to the gallery as its file holds it now, and
        save it atomically. The file stays locked meanwhile, so no other writer's images are lost; a request
        that fails leaves neither its files nor its rows, in memory or on disk."""
        self.need_gallery()
        folder = self.gallery_path.with_name(self.gallery_path.name + ".images")
        with self.enrolling, self.file_lock(), self.lock:  # the file first: searches never wait on another process
            gallery = self.current_gallery()
            before = (gallery.model_path, gallery.approximate)
            paths, ids = [], []
            try:
                folder.mkdir(parents=True, exist_ok=True)
                for data, name in zip(datas, names):
                    path = folder / f"{len(gallery) + len(paths):08d}-{_safe_name(name)}"
                    path.write_bytes(data)
                    paths.append(str(path.resolve()))
                    ids.append(f"enrolled/{path.name}")
                gallery.add_embeddings(embeddings, ids, labels, paths)
                gallery.save(self.gallery_path)
            except BaseException as error:
                for written in paths:
                    Path(written).unlink(missing_ok=True)
                self.gallery = self.stored_gallery(*before)  # without this request's rows
                if isinstance(error, OSError):
                    raise HTTPException(507, f"cannot store the enrolled images: {error.strerror or error}") from None
                raise
            self.read_stamp = file_version(self.gallery_path)
            return {"added": len(ids), "ids": ids, "size": len(gallery)}

    @contextmanager
    def file_lock(self):
        """The gallery file's lock, waited for briefly; 503 while another process (an `index --add`) writes."""
        with ExitStack() as stack:
            try:
                stack.enter_context(exclusive(self.gallery_path, wait=ENROL_LOCK_WAIT))
            except SiameseError as error:
                raise HTTPException(503, str(error)) from None
            except OSError as error:
                raise HTTPException(507, f"cannot store the enrolled images: {error.strerror or error}") from None
            yield

    def stored_gallery(self, model_path, approximate):
        """The gallery as its file holds it (an empty one while there is no file)."""
        self.read_stamp = file_version(self.gallery_path)
        if self.read_stamp is None:
            return Gallery(self.model, approximate, model_path)
        return Gallery.load(self.gallery_path, self.model, approximate)

    def info(self):
        import keras

        from keras_siamese import __version__

        with self.lock:
            gallery = None if self.gallery is None else self.current_gallery()
        versions = {"keras-siamese": __version__, "keras": keras.__version__, "python": sys.version.split()[0]}
        backend = keras.config.backend()
        module = sys.modules.get({"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}.get(backend, ""))
        if module is not None:
            versions[backend] = getattr(module, "__version__", "unknown")
        return {
            "input_shape": list(self.shape),
            "embedding_dim": int(self.model.embedding_dim),
            "threshold": self.model.threshold,
            "calibration": self.model.calibration,
            "fingerprint": self.fingerprint,
            "backend": backend,
            "versions": versions,
            "gallery": None if gallery is None else {
                "size": len(gallery), "labels": len(set(gallery.labels) - {""}),
                "search": "approximate" if gallery.uses_approximate else "exact",
            },
            "enrol": self.token is not None,
            "limits": {"max_pixels": self.max_pixels, "max_k": MAX_K},
            "batches": {"calls": self.batcher.batches, "images": self.batcher.images},
        }

    def thumbnail(self, index):
        self.need_gallery()
        with self.lock:
            gallery = self.current_gallery()
        if not 0 <= index < len(gallery) or not gallery.paths[index] or not Path(gallery.paths[index]).is_file():
            raise HTTPException(404, f"gallery image {index}: no image file")
        try:
            with Image.open(gallery.paths[index]) as image:
                if image.width * image.height > self.max_pixels:
                    raise HTTPException(413, f"gallery image {index}: too large for a thumbnail")
                picture = upright(image)
                picture.thumbnail((THUMBNAIL, THUMBNAIL))
                if picture.mode not in ("L", "RGB", "RGBA"):
                    picture = picture.convert("RGBA" if "A" in picture.mode else "RGB")
                out = io.BytesIO()
                picture.save(out, "PNG")
        except Image.DecompressionBombError:
            raise HTTPException(413, f"gallery image {index}: too large for a thumbnail") from None
        except (UnidentifiedImageError, OSError, ValueError) as error:
            raise HTTPException(415, f"gallery image {index}: not readable ({error})") from None
        return out.getvalue()


def _safe_name(name, max_bytes=120):
    """`name` as a file name: letters, digits and `._-` only, at most `max_bytes` bytes of UTF-8 (its end,
    so the suffix stays; file systems limit bytes, not characters)."""
    keep = "".join(c if c.isalnum() or c in "._-" else "_" for c in Path(name).name)
    keep = keep.encode()[-max_bytes:].decode(errors="ignore")  # a character cut in two is dropped
    return keep.lstrip(".") or "image"


def check_token(token, allow_enroll):
    """Raise SiameseError for an enrolment token that cannot serve: without enrolment, or empty."""
    if token is not None and not allow_enroll:
        raise SiameseError("--token is the enrolment token: it needs --allow-enroll")
    if token is not None and not token.strip():
        raise SiameseError("--token '': an empty enrolment token would let anyone enrol; give one, or leave "
                           "--token out for a random one")
    if token is not None and token != token.strip():
        raise SiameseError(f"--token {token!r}: begins or ends with spaces, which no Authorization header keeps")


def create_app(model, gallery=None, gallery_path=None, allow_enroll=False, token=None,
               max_request_bytes=MAX_REQUEST_BYTES, max_pixels=None):
    """The ASGI app serving `model` (and `gallery`, saved to `gallery_path` after each enrolment).

    With `allow_enroll`, POST /gallery takes `Authorization: Bearer <token>`
    (a random token when none is given; read it from `app.state.token`).
    """
    if allow_enroll and gallery_path is None:
        raise SiameseError("--allow-enroll needs --gallery: the file enrolled images are saved to")
    check_token(token, allow_enroll)
    if allow_enroll and gallery is None:
        gallery = Gallery(model)
    token = (token or secrets.token_urlsafe(18)) if allow_enroll else None
    service = Service(model, gallery, gallery_path, token, max_pixels)

    @asynccontextmanager
    async def lifespan(app):
        yield
        service.batcher.close()

    app = FastAPI(title="keras-siamese", version=_version(), lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Compare images, embed them, and search a gallery of known images with a Siamese "
                              "model. Images are uploaded as multipart form files.")
    app.state.service, app.state.token = service, token
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")

    @app.exception_handler(Exception)
    async def unexpected(request, error):  # JSON, and the server keeps going
        return JSONResponse({"detail": f"internal error: {type(error).__name__}"}, status_code=500)

    @app.exception_handler(SiameseError)
    async def bad_input(request, error):
        return JSONResponse({"detail": str(error)}, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request, error):  # FastAPI's own list, as the one line every other error is
        problems = ["{}: {}".format(".".join(str(part) for part in problem.get("loc", ())[1:]) or "request",
                                    problem.get("msg", "invalid")) for problem in error.errors()]
        return JSONResponse({"detail": "; ".join(problems)}, status_code=422)

    def check_k(k):
        if not 1 <= k <= MAX_K:
            raise HTTPException(422, f"k must be between 1 and {MAX_K}; received {k}")
        return k

    def authorised(authorization: Annotated[str | None, Header()] = None):
        if token is None:
            raise HTTPException(403, "enrolment is off: start the server with --allow-enroll")
        scheme, _, given = (authorization or "").strip().partition(" ")  # the scheme in any letter case
        if scheme.lower() != "bearer" or not secrets.compare_digest(given.strip().encode(), token.encode()):
            raise HTTPException(401, "enrolment needs the header Authorization: Bearer <token>")

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(str(STATIC / "index.html"))

    @app.get("/docs", include_in_schema=False)
    async def docs():
        return FileResponse(str(STATIC / "docs.html"))

    @app.get("/health", summary="Liveness, and the server's resident memory")
    async def health():
        return {"status": "ok", "rss_bytes": _rss_bytes()}

    @app.get("/info", summary="The model and gallery served: input shape, threshold, calibration, versions")
    async def info():
        return service.info()

    @app.post("/compare", summary="Distance between two images, with the same/different decision")
    async def compare(image_a: Annotated[UploadFile, File()], image_b: Annotated[UploadFile, File()]):
        a, b = await service.embed(*await _read([image_a, image_b]))
        distance = float(euclidean(a, b, model.distance.epsilon))
        decision = decide(model, distance)
        return {"distance": distance, "threshold": model.threshold, "decision": decision[0] if decision else None}

    @app.post("/embed", summary="Embeddings of one or more images")
    async def embed(images: Annotated[list[UploadFile], File()]):
        embeddings = await service.embed(*await _read(images))
        return {"embeddings": embeddings.tolist(), "dim": int(embeddings.shape[1])}

    @app.post("/search", summary="The k nearest gallery images of an image, and a match or unknown decision")
    async def search(image: Annotated[UploadFile, File()], k: Annotated[int | None, Form()] = None,
                     k_query: Annotated[int | None, Query(alias="k", include_in_schema=False)] = None):
        if k is not None and k_query is not None and k != k_query:
            raise HTTPException(422, f"k is given twice, {k} in the form and {k_query} in the query")
        k = check_k(next((value for value in (k, k_query) if value is not None), DEFAULT_K))
        service.need_gallery()
        (embedding,) = await service.embed(*await _read([image]))
        return await run_in_threadpool(service.search, embedding, k)

    @app.post("/gallery", summary="Enrol labelled images (needs --allow-enroll and the token)",
              dependencies=[Depends(authorised)])
    async def enrol(images: Annotated[list[UploadFile], File()], labels: Annotated[list[str], Form()]):
        if len(labels) == 1:
            labels = labels * len(images)
        if len(labels) != len(images):
            raise HTTPException(422, f"one label per image, or one for all; received {len(labels)} for "
                                     f"{len(images)} images")
        datas, names = await _read(images)
        embeddings = await service.embed(datas, names)
        return await run_in_threadpool(service.enrol, datas, names, labels, embeddings)

    @app.get("/gallery/{index}/image", summary="A gallery image as a PNG thumbnail", include_in_schema=True)
    async def thumbnail(index: int):
        return Response(await run_in_threadpool(service.thumbnail, index), media_type="image/png")

    app.add_middleware(BodyLimit, max_bytes=max_request_bytes)
    return app


async def _read(uploads):
    """The bytes and file names of uploaded files."""
    return [await upload.read() for upload in uploads], [upload.filename or "upload" for upload in uploads]


def _version():
    from keras_siamese import __version__

    return __version__


def _rss_bytes():
    """Resident memory of this process from /proc (None where there is none)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None

"""The HTTP service: every endpoint, its limits and errors, enrolment that survives a restart, micro-batches."""

import struct
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from keras_siamese import Gallery, compare, embed
from keras_siamese.gallery import model_fingerprint
from keras_siamese.serve.app import create_app
from keras_siamese.serve.batcher import MicroBatcher
from serving import gallery_folder, png_bytes, running, tiny_model

pytestmark = pytest.mark.core  # backend-agnostic: runs under TensorFlow, JAX and PyTorch


@pytest.fixture(scope="module")
def model():
    return tiny_model()


@pytest.fixture
def served(model, tmp_path):
    """A client of an app with a gallery of the 12 images under `folder`, enrolment on (token "secret")."""
    folder = gallery_folder(tmp_path / "known")
    gallery = Gallery(model)
    gallery.add(folder)
    gallery.save(tmp_path / "known.npz")
    app = create_app(model, gallery, tmp_path / "known.npz", allow_enroll=True, token="secret",
                     max_request_bytes=200_000, max_pixels=10_000)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, folder, gallery


def files(*paths):
    return [(field, (path.name, path.read_bytes())) for field, path in paths]


def test_health_and_info(served, model):
    client, _, _ = served
    assert client.get("/health").json()["status"] == "ok"
    info = client.get("/info").json()
    assert info["input_shape"] == [12, 12, 1] and info["embedding_dim"] == 4
    assert info["threshold"] == pytest.approx(model.threshold)
    assert info["fingerprint"] == model_fingerprint(model)
    assert info["gallery"] == {"size": 12, "labels": 3, "search": "exact"}
    assert info["backend"] in info["versions"] and "keras" in info["versions"]


def test_compare_and_embed_agree_with_the_library(served, model):
    client, folder, _ = served
    a, b = sorted(folder.rglob("*.png"))[:2]
    answer = client.post("/compare", files=files(("image_a", a), ("image_b", b))).json()
    expected = compare(model, a, b)
    assert answer["distance"] == pytest.approx(expected["distance"], rel=1e-5)
    assert answer["decision"] == expected["decision"] and answer["threshold"] == pytest.approx(model.threshold)
    embedded = client.post("/embed", files=files(("images", a), ("images", b))).json()
    np.testing.assert_allclose(embedded["embeddings"], embed(model, [a, b]), rtol=1e-5, atol=1e-6)


def test_search_answers_as_the_gallery_does(served):
    client, folder, gallery = served
    query = sorted((folder / "square").iterdir())[0]
    answer = client.post("/search", files=files(("image", query)), data={"k": "3"}).json()
    (expected,) = gallery.search([query], k=3)
    assert [n["id"] for n in answer["neighbours"]] == [n["id"] for n in expected["neighbours"]]
    assert answer["neighbours"][0]["id"] == f"known/square/{query.name}"
    assert answer["decision"] == "match" and answer["label"] == "square"
    in_query = client.post("/search?k=2", files=files(("image", query))).json()
    assert len(in_query["neighbours"]) == 2  # the query string's k counts as the form's does
    assert len(client.post("/search", files=files(("image", query))).json()["neighbours"]) == 5  # the default
    twice = client.post("/search?k=2", files=files(("image", query)), data={"k": "3"})
    assert twice.status_code == 422 and "k is given twice" in twice.json()["detail"]
    thumbnail = client.get(answer["neighbours"][0]["image_url"])
    assert thumbnail.status_code == 200 and thumbnail.content.startswith(b"\x89PNG")
    assert client.get("/gallery/99/image").status_code == 404


def test_bad_requests_get_json_errors_and_the_server_lives_on(served, monkeypatch):
    client, folder, gallery = served
    image = sorted(folder.rglob("*.png"))[0]
    not_image = client.post("/search", files={"image": ("notes.txt", b"hello")})
    assert not_image.status_code == 415 and "notes.txt: not a readable image" in not_image.json()["detail"]
    missing = client.post("/compare", files=files(("image_a", image)))  # image_b missing
    assert missing.status_code == 422 and missing.json() == {"detail": "image_b: Field required"}
    assert "object at 0x" not in not_image.json()["detail"]
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0))
    header += chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")  # a PNG declaring past Pillow's own limit
    beyond = client.post("/search", files={"image": ("huge.png", header)})
    assert beyond.status_code == 413 and "10,000,000,000 pixels; the limit is 10,000" in beyond.json()["detail"]
    huge = client.post("/search", files={"image": ("big.png", b"0" * 300_000)})
    assert huge.status_code == 413 and "limit is 200,000" in huge.json()["detail"]

    def chunked():
        yield b"--b\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\n\r\n"
        for _ in range(30):
            yield b"0" * 10_000
        yield b"\r\n--b--\r\n"

    streamed = client.post("/search", content=chunked(), headers={"content-type": "multipart/form-data; boundary=b"})
    assert streamed.status_code == 413 and "more than" in streamed.json()["detail"]
    bomb = client.post("/search", files={"image": ("bomb.png", png_bytes(np.zeros((200, 200))))})
    assert bomb.status_code == 413 and "40,000 pixels; the limit is 10,000" in bomb.json()["detail"]
    assert client.post("/search", files=files(("image", image)), data={"k": "0"}).status_code == 422

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(gallery, "search_embeddings", broken)
    failed = client.post("/search", files=files(("image", image)))
    assert failed.status_code == 500 and failed.json() == {"detail": "internal error: RuntimeError"}
    assert client.post("/compare", files=files(("image_a", image), ("image_b", image))).status_code == 200


def test_search_without_a_gallery_and_enrolment_off(model):
    with TestClient(create_app(model)) as client:
        image = png_bytes(np.zeros((12, 12)))
        assert client.post("/search", files={"image": ("a.png", image)}).status_code == 409
        off = client.post("/gallery", files={"images": ("a.png", image)}, data={"labels": "x"})
        assert off.status_code == 403 and "--allow-enroll" in off.json()["detail"]


def test_enrolment_needs_the_token_and_survives_a_restart(served, model, tmp_path):
    client, folder, _ = served
    new = png_bytes(np.full((12, 12), 200))
    upload = {"images": ("new one.png", new)}
    assert client.post("/gallery", files=upload, data={"labels": "blank"}).status_code == 401
    wrong = client.post("/gallery", files=upload, data={"labels": "blank"}, headers={"Authorization": "Bearer no"})
    assert wrong.status_code == 401
    for other in ("Basic secret", "Bearersecret", "Bearer secret2"):
        assert client.post("/gallery", files=upload, data={"labels": "blank"},
                           headers={"Authorization": other}).status_code == 401
    token = {"Authorization": "bearer  secret"}  # the scheme in any case (RFC 7235), spaces around the token
    mismatch = client.post("/gallery", files=[("images", ("a.png", new))] * 2, data={"labels": ["a", "b", "c"]},
                           headers=token)
    assert mismatch.status_code == 422
    enrolled = client.post("/gallery", files=upload, data={"labels": "blank"}, headers=token).json()
    assert enrolled == {"added": 1, "ids": ["enrolled/00000012-new_one.png"], "size": 13}
    assert (tmp_path / "known.npz.images" / "00000012-new_one.png").read_bytes() == new
    long_name = "\U0001d400" * 90 + ".png"  # 90 letters of 4 bytes each: over a file name's 255 bytes
    stored = client.post("/gallery", files={"images": (long_name, new)}, data={"labels": "blank"}, headers=token)
    assert stored.status_code == 200 and stored.json()["ids"][0].endswith(".png")
    assert len(stored.json()["ids"][0].split("/")[1].encode()) <= 130

    restarted = create_app(model, Gallery.load(tmp_path / "known.npz", model))  # a fresh server on the file
    with TestClient(restarted) as again:
        answer = again.post("/search", files={"image": ("q.png", new)}, data={"k": "1"}).json()
        assert answer["neighbours"][0]["id"].startswith("enrolled/000000")
        assert answer["label"] == "blank"
        assert answer["neighbours"][0]["distance"] == pytest.approx(1e-7 ** 0.5, rel=1e-3)
        assert again.get(answer["neighbours"][0]["image_url"]).status_code == 200


def test_micro_batcher_embeds_waiting_requests_together():
    release, calls = threading.Event(), []

    def embed_rows(images):
        calls.append(len(images))
        release.wait(10)
        return images.reshape(len(images), -1)[:, :1].astype(np.float32)

    batcher = MicroBatcher(embed_rows, max_batch=8)
    try:
        first = batcher.submit(np.full((1, 2, 2, 1), 1))
        while not calls:  # the worker is busy with the first request...
            threading.Event().wait(0.01)
        waiting = [batcher.submit(np.full((1, 2, 2, 1), i)) for i in range(2, 7)]  # ...while five more queue up
        release.set()
        assert first.result(10).tolist() == [[1.0]]
        assert [f.result(10).tolist() for f in waiting] == [[[float(i)]] for i in range(2, 7)]
        assert calls == [1, 8]  # the five waiting images in one call, padded to 8
        assert (batcher.batches, batcher.images) == (2, 6)
    finally:
        batcher.close()


def test_a_real_server_on_localhost_answers_concurrent_clients(served, model):
    _, folder, gallery = served
    app = create_app(model, gallery)
    a, b = sorted(folder.rglob("*.png"))[:2]
    expected = compare(model, a, b)["distance"]
    with running(app) as url:
        assert url.startswith("http://127.0.0.1:")
        page = httpx.get(url + "/").text
        docs = httpx.get(url + "/docs").text
        assert "<script src=\"/static/app.js\">" in page and "openapi.json" in docs
        assert "http://" not in page + docs and "https://" not in page + docs  # nothing loads from elsewhere
        paths = httpx.get(url + "/openapi.json").json()["paths"]
        assert {"/compare", "/embed", "/search", "/gallery", "/health", "/info"} <= set(paths)

        def one(_):
            with httpx.Client() as client:
                return client.post(url + "/compare", files=files(("image_a", a), ("image_b", b))).json()["distance"]

        with ThreadPoolExecutor(8) as pool:
            distances = list(pool.map(one, range(32)))
        assert distances == pytest.approx([expected] * 32, rel=1e-5)
        assert httpx.get(url + "/info").json()["batches"]["images"] == 64  # every image went through the batcher


def test_enrolment_keeps_what_others_added_to_the_gallery_file(served, model, tmp_path):
    client, _, _ = served
    path = tmp_path / "known.npz"
    elsewhere = Gallery.load(path, model)  # `siamese index --add` while the server runs
    elsewhere.add(np.full((1, 12, 12, 1), 90, np.uint8), labels=["grey"], ids=["added-elsewhere"])
    elsewhere.save(path)
    found = client.post("/search", files={"image": ("q.png", png_bytes(np.full((12, 12), 90)))}, data={"k": "1"})
    assert found.json()["neighbours"][0]["id"] == "added-elsewhere"  # searches see it
    enrolled = client.post("/gallery", files={"images": ("new.png", png_bytes(np.full((12, 12), 200)))},
                           data={"labels": "blank"}, headers={"Authorization": "Bearer secret"})
    assert enrolled.json()["size"] == 14
    assert Gallery.load(path, model).ids[12:] == ["added-elsewhere", "enrolled/00000013-new.png"]


def test_concurrent_enrolments_queue_and_all_are_kept(served, model, tmp_path, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    from keras_siamese.serve import app

    monkeypatch.setattr(app, "ENROL_LOCK_WAIT", 0)  # the wait is for other processes: this server's own queue
    client, _, _ = served
    size = len(Gallery.load(tmp_path / "known.npz", model))

    def enrol(n):
        return client.post("/gallery", files={"images": (f"c{n}.png", png_bytes(np.full((12, 12), 10 * n)))},
                           data={"labels": f"c{n}"}, headers={"Authorization": "Bearer secret"}).status_code

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(enrol, range(12))) == [200] * 12
    assert len(Gallery.load(tmp_path / "known.npz", model)) == size + 12


def test_a_failed_enrolment_leaves_no_rows_and_no_files(served, model, tmp_path, monkeypatch):
    client, _, _ = served
    token = {"Authorization": "Bearer secret"}
    upload = {"images": ("new.png", png_bytes(np.full((12, 12), 200)))}

    def full_disk(self, path):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(Gallery, "save", full_disk)
        failed = client.post("/gallery", files=upload, data={"labels": "blank"}, headers=token)
    assert failed.status_code == 507 and "No space left on device" in failed.json()["detail"]
    assert client.get("/info").json()["gallery"]["size"] == 12
    assert not list((tmp_path / "known.npz.images").iterdir())
    assert client.post("/gallery", files=upload, data={"labels": "blank"}, headers=token).json()["size"] == 13
    assert len(Gallery.load(tmp_path / "known.npz", model)) == 13

    (tmp_path / "other.npz.images").write_text("a file where the images folder goes")
    app = create_app(model, Gallery(model), tmp_path / "other.npz", allow_enroll=True, token="secret")
    with TestClient(app, raise_server_exceptions=False) as other:
        blocked = other.post("/gallery", files=upload, data={"labels": "blank"}, headers=token)
        assert blocked.status_code == 507 and "cannot store the enrolled images" in blocked.json()["detail"]
        assert other.get("/info").json()["gallery"]["size"] == 0


def test_a_gallery_the_server_starts_records_its_model(model, tmp_path, monkeypatch):
    import uvicorn

    from keras_siamese.gallery.gallery import recorded_model
    from keras_siamese.serve.server import serve

    model.save(tmp_path / "model.keras")
    started = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **settings: started.update(app=app))
    serve(tmp_path / "model.keras", tmp_path / "new.npz", allow_enroll=True, token="secret", port=0,
          announce=lambda line: None)
    with TestClient(started["app"]) as client:
        enrolled = client.post("/gallery", files={"images": ("a.png", png_bytes(np.zeros((12, 12))))},
                               data={"labels": "x"}, headers={"Authorization": "Bearer secret"})
        assert enrolled.status_code == 200
    assert recorded_model(tmp_path / "new.npz") == str((tmp_path / "model.keras").resolve())


def test_uploads_are_limited_in_format_count_and_pixels(model, tmp_path, monkeypatch):
    from keras_siamese import budget

    monkeypatch.setenv(budget.MAX_PIXELS_ENV, "100")  # the app's own limit, not the environment's, applies
    with TestClient(create_app(model, max_pixels=10_000), raise_server_exceptions=False) as client:
        eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 12 12\n0 0 moveto\nshowpage\n"
        refused = client.post("/embed", files={"images": ("a.eps", eps)})
        assert refused.status_code == 415 and "accepted: PNG, JPEG" in refused.json()["detail"]
        image = png_bytes(np.zeros((50, 50)))  # 2,500 pixels: over the environment's limit, within the app's
        assert client.post("/embed", files={"images": ("a.png", image)}).status_code == 200
        many = client.post("/embed", files=[("images", (f"{i}.png", png_bytes(np.zeros((12, 12)))))
                                            for i in range(65)])
        assert many.status_code == 413 and "65 images in one request; the limit is 64" in many.json()["detail"]


def test_a_thumbnail_over_pillows_own_limit_is_refused(served, monkeypatch):
    from PIL import Image

    client, _, _ = served
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)  # the 12x12 gallery images are now "bombs" to Pillow
    answer = client.get("/gallery/0/image")
    assert answer.status_code == 413 and "too large for a thumbnail" in answer.json()["detail"]


def test_a_token_without_enrolment_is_refused(model):
    from keras_siamese.errors import SiameseError

    with pytest.raises(SiameseError, match="--token .* needs --allow-enroll"):
        create_app(model, token="secret")
    with pytest.raises(SiameseError, match="--token .* needs --allow-enroll"):
        create_app(model, token="")
    with pytest.raises(SiameseError, match="an empty enrolment token would let anyone enrol"):
        create_app(model, None, "gallery.npz", allow_enroll=True, token=" ")
    with pytest.raises(SiameseError, match="begins or ends with spaces"):
        create_app(model, None, "gallery.npz", allow_enroll=True, token=" abc")


def test_the_micro_batcher_works_again_after_a_close():
    """An app's lifespan closes its batcher at shutdown; the same app served again must still answer."""
    batcher = MicroBatcher(lambda images: images.reshape(len(images), -1)[:, :1].astype(np.float32))
    for value in (3, 4):
        assert batcher.submit(np.full((1, 2, 2, 1), value)).result(10).tolist() == [[float(value)]]
        batcher.close()
    batcher.close()  # closing a closed one is harmless


def test_an_enrolment_while_another_process_writes_the_gallery_is_503_and_searches_go_on(served, tmp_path,
                                                                                           monkeypatch):
    import subprocess
    import sys
    import time

    from keras_siamese.serve import app as service_module

    client, _, _ = served
    monkeypatch.setattr(service_module, "ENROL_LOCK_WAIT", 0.5)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\nfrom keras_siamese.atomic import exclusive\n"
        f"with exclusive({str(tmp_path / 'known.npz')!r}):\n    print('held', flush=True)\n    time.sleep(30)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"  # `siamese index --add` at work on the file
        began = time.monotonic()
        busy = client.post("/gallery", files={"images": ("a.png", png_bytes(np.zeros((12, 12))))},
                           data={"labels": "x"}, headers={"Authorization": "Bearer secret"})
        assert busy.status_code == 503 and "another siamese process" in busy.json()["detail"]
        assert time.monotonic() - began < 10
        search = client.post("/search", files={"image": ("q.png", png_bytes(np.zeros((12, 12))))})
        assert search.status_code == 200
    finally:
        holder.kill()
        holder.wait()
    assert client.get("/info").json()["gallery"]["size"] == 12

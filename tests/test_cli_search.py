"""`siamese index`, `search` and `serve` from the command line, in-process."""

import importlib.util

import numpy as np
import pytest
from PIL import Image

from conftest import QUICK, error_line
from keras_siamese import SiameseModel, build_tower, load_model
from keras_siamese.cli import main
from keras_siamese.inference.model_io import save_model


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    """A model trained for one epoch on a tiny folder, and a gallery of that folder."""
    from conftest import write_folder

    root = tmp_path_factory.mktemp("search")
    folder = write_folder(root / "images", per_class=8)
    assert main(["train", "--data", str(folder), "--output", str(root / "out"), *QUICK]) == 0
    model = root / "out" / "model.keras"
    assert main(["index", "--model", str(model), "--data", str(folder), "--output", str(root / "g.npz"),
                 "--quiet"]) == 0
    return folder, model, root / "g.npz"


def test_index_then_search_prints_neighbours_and_the_match(indexed, tmp_path, capsys):
    folder, model, gallery = indexed
    capsys.readouterr()
    query = sorted((folder / "square").iterdir())[0]
    assert main(["search", "--gallery", str(gallery), str(query), "-k", "3", "--output", str(tmp_path / "m.png")]) == 0
    lines = capsys.readouterr().out.splitlines()
    threshold = load_model(model).threshold
    assert lines[0] == f"{query}: match square (distance 0.0003 < {threshold:.4f})"  # itself: sqrt(1e-7)
    assert lines[1].split() == ["1", "0.0003", "square", f"images/square/{query.name}"]
    assert len(lines) == 1 + 3 + 1 and lines[-1] == f"montage: {tmp_path / 'm.png'}"
    distances = [float(line.split()[1]) for line in lines[1:4]]
    assert distances == sorted(distances)
    with Image.open(tmp_path / "m.png") as montage:
        assert montage.width > montage.height  # one row: the query and its 3 neighbours


def test_the_decision_follows_the_threshold(indexed, tmp_path, capsys):
    _, model, gallery = indexed
    far = tmp_path / "far.png"
    Image.fromarray(np.tile(np.array([0, 255], np.uint8), (16, 8))).save(far)
    capsys.readouterr()
    assert main(["search", "--gallery", str(gallery), "--model", str(model), str(far), "-k", "1"]) == 0
    heading = capsys.readouterr().out.splitlines()[0]
    nearest = float(heading.split("nearest ")[1].split()[0]) if "unknown" in heading else None
    # the decision follows the printed distance and the model's threshold, whichever it is
    threshold = load_model(model).threshold
    if nearest is None:
        assert float(heading.split("distance ")[1].split()[0]) < threshold
    else:
        assert heading.startswith(f"{far}: unknown") and nearest >= threshold


def test_add_appends_and_a_named_source_is_enrolled(indexed, tmp_path, capsys, monkeypatch):
    folder, model, gallery = indexed
    copy = tmp_path / "g.npz"
    copy.write_bytes(gallery.read_bytes())
    extra = tmp_path / "extra"
    extra.mkdir()
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(extra / "blank.png")
    assert main(["index", "--model", str(model), "--data", str(extra), "--output", str(copy), "--add",
                 "--quiet"]) == 0
    assert capsys.readouterr().out.strip() == f"enrolled 1 image; {copy}: 25 images, 3 labels, exact search"
    assert main(["index", "--model", str(model), "--data", "mnist-sample", "--output", str(tmp_path / "s.npz"),
                 "--approximate", "--quiet"]) == 0
    assert capsys.readouterr().out.strip() == f"enrolled 5000 images; {tmp_path / 's.npz'}: 5000 images, " \
                                              "10 labels, approximate search"
    assert "hnsw" in np.load(tmp_path / "s.npz").files
    drawn = {}  # the montage shows a named source's neighbours, found by their ids
    monkeypatch.setattr("keras_siamese.plotting.montage.plot_search_montage",
                        lambda queries, results, images, path, names: drawn.update(results=results, images=images))
    query = next((folder / "circle").iterdir())
    assert main(["search", "--gallery", str(tmp_path / "s.npz"), str(query), "-k", "2", "--output",
                 str(tmp_path / "m.png")]) == 0
    from keras_siamese.data.folder import resize_images
    from keras_siamese.data.sources import load_mnist_sample

    digits = load_mnist_sample()
    for neighbour, image in zip(drawn["results"][0]["neighbours"], drawn["images"][0]):
        row = int(neighbour["id"].split(":")[1])
        expected = load_model(model).input_image_shape
        assert neighbour["id"] == str(digits.ids[row])
        np.testing.assert_array_equal(image, resize_images(digits.images[row:row + 1], expected)[0])


def test_errors_are_one_line(indexed, tmp_path, capsys):
    folder, model, gallery = indexed
    other = tmp_path / "other.keras"
    save_model(SiameseModel(build_tower("seed", (16, 17, 1), 8), threshold=0.5), other)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    query = str(next((folder / "circle").iterdir()))
    with np.load(gallery) as arrays:
        members = {name: arrays[name] for name in arrays.files}
    np.savez(tmp_path / "no_ids.npz", **{k: v for k, v in members.items() if k != "ids"})
    np.savez(tmp_path / "short.npz", **{**members, "embeddings": members["embeddings"][:3]})
    np.savez(tmp_path / "empty.npz", **{**members, **{k: members[k][:0] for k in ("embeddings", "ids", "labels",
                                                                                  "paths")}})
    moved = tmp_path / "moved.keras"
    moved.write_bytes(model.read_bytes())
    assert main(["index", "--model", str(moved), "--data", str(folder / "circle"), "--output",
                 str(tmp_path / "orphan.npz"), "--quiet"]) == 0
    moved.unlink()  # the gallery's recorded model is gone
    cases = [
        (["search", "--gallery", str(tmp_path / "orphan.npz"), query],
         "moved.keras: model file not found (the model " + str(tmp_path / "orphan.npz") + " records; moved? pass"),
        (["search", "--gallery", str(gallery), "--model", str(other), query], "built with another model"),
        (["search", "--gallery", str(tmp_path / "no_ids.npz"), query], "no_ids.npz: a damaged gallery file (no ids)"),
        (["search", "--gallery", str(tmp_path / "short.npz"), query], "short.npz: a damaged gallery file (3 embed"),
        (["search", "--gallery", str(tmp_path / "empty.npz"), query], "empty.npz: the gallery holds no images"),
        (["search", "--gallery", str(tmp_path / "none.npz"), query], "none.npz: gallery file not found"),
        (["search", "--gallery", str(tmp_path), query], "is a folder, not a gallery file"),
        (["search", "--gallery", str(text), query], "notes.txt: not a gallery file"),
        (["search", "--gallery", str(gallery), str(text)], "notes.txt"),
        (["index", "--model", str(model), "--data", str(tmp_path / "nowhere"), "--output", str(tmp_path / "x.npz"),
          "--add"], "x.npz: gallery file not found"),
        (["search", "--gallery", str(gallery), query, "--output", str(tmp_path / "m.txt")],
         "m.txt: the file name must end in .png"),
        (["search", "--gallery", str(gallery), query, "--output", str(tmp_path)], "is a folder, not a file"),
        (["index", "--model", str(model), "--data", str(folder), "--output", str(tmp_path)], "is a folder, not a file"),
        (["index", "--model", str(model), "--data", str(folder), "--output", str(text / "g.npz")],
         "notes.txt is a file, not a folder"),
        (["serve", "--model", str(model), "--allow-enroll"], "--allow-enroll needs --gallery"),
        (["serve", "--model", str(model), "--gallery", str(tmp_path / "none.npz")], "none.npz: gallery file not found"),
    ]
    for argv, fragment in cases:
        capsys.readouterr()
        assert main(argv) == 2, argv
        assert fragment in error_line(capsys), argv
    with pytest.raises(SystemExit):
        main(["search", "--gallery", str(gallery), query, "-k", "0"])
    if importlib.util.find_spec("uvicorn"):
        import socket

        capsys.readouterr()
        with socket.create_server(("127.0.0.1", 0)) as taken:
            port = taken.getsockname()[1]
            assert main(["serve", "--model", str(model), "--port", str(port)]) == 2
        assert error_line(capsys) == f"siamese serve: error: cannot listen on 127.0.0.1:{port}: Address already in use"
        from keras_siamese.serve.server import check_address

        try:  # IPv6 where this machine has it
            socket.create_server(("::1", 0), family=socket.AF_INET6).close()
            hosts = ("localhost", "127.0.0.1", "::1")
        except OSError:
            hosts = ("localhost", "127.0.0.1")
        for host in hosts:
            check_address(host, 0)  # any free port: no error


def test_serve_without_the_extra_names_the_pip_command(indexed, monkeypatch, capsys):
    _, model, _ = indexed
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a))
    assert main(["serve", "--model", str(model)]) == 2
    assert error_line(capsys) == "siamese serve: error: siamese serve needs uvicorn: pip install 'keras-siamese[serve]'"


def test_evaluate_reports_open_set_identification(indexed, tmp_path, capsys):
    import json

    from keras_siamese import embed
    from keras_siamese.evaluation import evaluation_images
    from keras_siamese.metrics.identification import identification_report

    folder, model, _ = indexed
    capsys.readouterr()
    assert main(["evaluate", "--model", str(model), "--data", str(folder), "--split", "all", "--output",
                 str(tmp_path / "e"), "--episodes", "20", "--quiet"]) == 0
    reported = json.loads((tmp_path / "e" / "metrics.json").read_text())["identification"]
    loaded = load_model(model)
    images, _ = evaluation_images(loaded, str(folder), "all", progress=False)
    expected = identification_report(embed(loaded, images.images), images.labels, loaded.threshold, seed=0)
    assert reported["identification_rate"] == pytest.approx(expected["identification_rate"])
    assert reported["unknown_rejection_rate"] == pytest.approx(expected["unknown_rejection_rate"])
    assert (reported["known_probes"], reported["unknown_probes"]) == (2 * 4, 8)  # 2 known classes of 8, 1 unknown
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("open-set identification"))
    assert line.endswith(f"{expected['identification_rate']:.4f} identified at the threshold, "
                         f"{expected['unknown_rejection_rate']:.4f} of unknowns rejected")


def test_search_draws_a_gallery_of_idx_files_from_its_data_dir(indexed, tmp_path, capsys, monkeypatch):
    from keras_siamese.data import idx
    from keras_siamese.data.folder import resize_images
    from test_data_idx import tiny_arrays, write_tiny_folder

    _, model, _ = indexed
    data_dir = write_tiny_folder(tmp_path / "idx")
    assert main(["index", "--model", str(model), "--data", "mnist", "--data-dir", str(data_dir), "--output",
                 str(tmp_path / "g.npz"), "--quiet"]) == 0

    def no_download(*args, **kwargs):
        raise AssertionError("search downloaded MNIST instead of reading --data-dir")

    monkeypatch.setattr(idx, "fetch", no_download)
    drawn = {}
    monkeypatch.setattr("keras_siamese.plotting.montage.plot_search_montage",
                        lambda queries, results, images, path, names: drawn.update(results=results, images=images))
    query = tmp_path / "q.png"
    Image.fromarray(tiny_arrays()[0][0]).save(query)
    assert main(["search", "--gallery", str(tmp_path / "g.npz"), str(query), "-k", "3", "--output",
                 str(tmp_path / "m.png"), "--data-dir", str(data_dir)]) == 0
    train_x = tiny_arrays()[0]
    shape = load_model(model).input_image_shape
    for neighbour, image in zip(drawn["results"][0]["neighbours"], drawn["images"][0]):
        _, split, row = neighbour["id"].split(":")
        source = train_x if split == "train" else tiny_arrays()[2]
        np.testing.assert_array_equal(image, resize_images(source[int(row)][None, ..., None], shape)[0])

"""Plotting: every plot writes a readable PNG atomically, headless."""

import sys

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from keras_siamese.errors import SiameseError
from keras_siamese.plotting.embeddings import plot_embedding_map
from keras_siamese.plotting.history import plot_history
from keras_siamese.plotting.montage import plot_search_montage
from keras_siamese.plotting.pairs import plot_pairs
from keras_siamese.plotting.verification import plot_distance_histograms, plot_roc

RNG = np.random.default_rng(0)
HISTORY = {"loss": [0.9, 0.6, 0.5], "val_loss": [1.0, 0.7, 0.75],
           "val_auc": [0.8, 0.9, 0.92], "val_accuracy": [0.7, 0.8, 0.85]}
DISTANCES = np.r_[RNG.gamma(2, 0.2, 50), RNG.gamma(6, 0.25, 150)]
SAME = np.r_[np.ones(50), np.zeros(150)].astype(bool)
EMBEDDINGS = RNG.normal(size=(60, 4)) + np.repeat(np.arange(3), 20)[:, None]
LABELS = np.repeat(np.arange(3), 20)


def gray(h=28, w=28):
    return RNG.integers(0, 256, (h, w, 1), dtype=np.uint8)


def rgb(h=20, w=30):
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


PLOTS = {
    "history": lambda path: plot_history(HISTORY, path, title="run"),
    "pairs": lambda path: plot_pairs([gray(), rgb()], [rgb(), gray(14, 14)], [0.1, 0.9], path,
                                     names=[("a.png", "b.png"), ("c.png", "d.png")],
                                     decisions=[True, False], threshold=0.5),
    "roc": lambda path: plot_roc([0, 0.001, 0.01, 0.1, 1], [0, 0.3, 0.6, 0.9, 1], path, auc=0.93,
                                 operating_point={"far": 0.01, "tar": 0.6, "label": "t=0.5"}, eer=0.1),
    "histograms": lambda path: plot_distance_histograms(DISTANCES, SAME, path, threshold=0.6),
    "map": lambda path: plot_embedding_map(EMBEDDINGS, LABELS, ["a", "b", "c"], path),
}


def assert_png(path, min_side=200):
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert min(image.size) >= min_side


@pytest.mark.parametrize("name", PLOTS)
def test_each_plot_writes_a_png_and_nothing_else(tmp_path, name):
    path = tmp_path / "out" / f"{name}.png"
    PLOTS[name](path)
    assert_png(path)
    assert list(path.parent.iterdir()) == [path]


@pytest.mark.parametrize("name", PLOTS)
def test_failing_save_leaves_old_file_and_no_temp_file(tmp_path, monkeypatch, name):
    path = tmp_path / f"{name}.png"
    path.write_bytes(b"old")

    def broken_savefig(self, fname, **kwargs):
        open(fname, "wb").write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken_savefig)
    with pytest.raises(OSError, match="disk full"):
        PLOTS[name](path)
    assert list(tmp_path.iterdir()) == [path]
    assert path.read_bytes() == b"old"


def test_history_single_epoch_and_loss_only(tmp_path):
    plot_history({"loss": [0.7], "val_loss": [0.8]}, tmp_path / "one.png")
    plot_history({"loss": list(np.linspace(1, 0.1, 60))}, tmp_path / "train_only.png")
    assert_png(tmp_path / "one.png")
    assert_png(tmp_path / "train_only.png")


def test_history_of_a_diverged_run_still_plots(tmp_path):
    nan = float("nan")
    plot_history({"loss": [nan, nan], "val_loss": [nan, nan], "val_auc": [nan, nan]}, tmp_path / "nan.png")
    assert_png(tmp_path / "nan.png")


def test_history_without_losses_is_an_error(tmp_path):
    with pytest.raises(SiameseError, match="loss"):
        plot_history({"val_auc": [0.9]}, tmp_path / "h.png")


def test_pairs_mismatched_lengths_is_an_error(tmp_path):
    with pytest.raises(SiameseError, match="same non-zero number"):
        plot_pairs([gray()], [gray(), gray()], [0.1, 0.2], tmp_path / "p.png")


def test_names_with_dollar_signs_are_drawn_as_they_are(tmp_path):
    # matplotlib reads text between two $ as a formula, and fails to draw a bad one
    plot_pairs([gray()], [gray()], [0.3], tmp_path / "p.png", names=[("x$^$y.png", "$HOME$.png")])
    plot_embedding_map(EMBEDDINGS, LABELS, ["a$_", "$b$", "c"], tmp_path / "m.png")
    neighbours = [{"id": "$x$^", "distance": 0.2, "label": "$_"}, {"id": "y", "distance": 0.4, "label": "b$^$"}]
    plot_search_montage([gray()], [{"decision": "match", "label": "$_", "neighbours": neighbours}],
                        [[gray(), None]], tmp_path / "s.png", query_names=["q$^$.png"])
    for name in ("p.png", "m.png", "s.png"):
        assert_png(tmp_path / name, min_side=150)


def test_pairs_show_without_display_just_saves(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    plot_pairs([gray(28, 28)[..., 0]], [gray()], [0.3], tmp_path / "p.png", show=True)
    assert_png(tmp_path / "p.png", min_side=150)
    assert capsys.readouterr() == ("", "")


def test_roc_without_extras_and_mismatch(tmp_path):
    plot_roc([0.0, 0.5, 1.0], [0.0, 0.8, 1.0], tmp_path / "roc.png")
    assert_png(tmp_path / "roc.png")
    with pytest.raises(SiameseError):
        plot_roc([0.0, 1.0], [0.0, 0.5, 1.0], tmp_path / "bad.png")


def test_histograms_with_one_relation_only(tmp_path):
    plot_distance_histograms([0.2, 0.3, 0.3], [True, True, True], tmp_path / "h.png")
    assert_png(tmp_path / "h.png")


def test_map_tsne_subsampled(tmp_path):
    embeddings = RNG.normal(size=(150, 8))
    plot_embedding_map(embeddings, RNG.integers(0, 5, 150), None, tmp_path / "t.png",
                       method="tsne", max_points=100)
    assert_png(tmp_path / "t.png")


def test_map_many_classes_uses_colour_bar(tmp_path):
    labels = np.arange(300) % 30
    plot_embedding_map(RNG.normal(size=(300, 5)), labels, [f"c{i}" for i in range(30)],
                       tmp_path / "many.png")
    assert_png(tmp_path / "many.png")


def test_map_one_dimensional_embeddings(tmp_path):
    plot_embedding_map(RNG.normal(size=(30, 1)), np.arange(30) % 2, ["x", "y"], tmp_path / "1d.png")
    assert_png(tmp_path / "1d.png")


def test_map_unknown_method_is_named(tmp_path):
    with pytest.raises(SiameseError, match="'isomap'"):
        plot_embedding_map(EMBEDDINGS, LABELS, None, tmp_path / "m.png", method="isomap")
    assert not (tmp_path / "m.png").exists()


def test_map_umap_missing_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "umap", None)  # makes `import umap` raise ImportError
    with pytest.raises(SiameseError, match="pip install umap-learn"):
        plot_embedding_map(EMBEDDINGS, LABELS, None, tmp_path / "u.png", method="umap")


def test_package_does_not_import_keras():
    import subprocess

    code = ("import sys, keras_siamese.plotting; "
            "sys.exit(any(m in sys.modules for m in ('keras', 'tensorflow')))")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0

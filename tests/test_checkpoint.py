"""Checkpoints and resume: an interrupted run continues to the weights the uninterrupted one reaches."""

import json
import re

import keras
import numpy as np
import pytest

from conftest import synthetic_images
from keras_siamese import SiameseError
from keras_siamese.training.trainer import Trainer, resume, train

pytestmark = pytest.mark.core

SETTINGS = dict(epochs=3, batch_size=8, images_per_class=4, embedding_dim=8, val_fraction=0.25, progress=False,
                patience=2)


class StopAfter(keras.callbacks.Callback):
    """Simulates a crash: raises once `epochs` epochs have ended (after their checkpoint is written)."""

    def __init__(self, epochs):
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epochs:
            raise KeyboardInterrupt


def weights(model):
    return [keras.ops.convert_to_numpy(w) for w in model.tower.weights]


@pytest.mark.parametrize("augment", [False, True])
def test_resumed_run_ends_where_the_uninterrupted_one_does(tmp_path, augment):
    data = synthetic_images(classes=3, per_class=12)
    settings = {**SETTINGS, "augment": augment}
    whole = train(data, output=tmp_path / "whole", **settings)
    with pytest.raises(KeyboardInterrupt):
        train(data, output=tmp_path / "cut", callbacks=[StopAfter(1)], **settings)
    record = json.loads((tmp_path / "cut" / "config.json").read_text())
    assert record["status"] == "incomplete" and record["epochs_run"] == 1
    assert not (tmp_path / "cut" / "model.keras").exists()
    before = json.loads((tmp_path / "cut" / "checkpoint.json").read_text())["seconds"]
    resumed = resume(tmp_path / "cut", data=data, progress=False)
    assert resumed.record["train_seconds"] > before > 0  # the whole run's time, not the resumed part's
    for a, b in zip(weights(whole.model), weights(resumed.model)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert resumed.history["loss"] == pytest.approx(whole.history["loss"], rel=1e-5)
    assert resumed.model.threshold == pytest.approx(whole.model.threshold, rel=1e-5)
    final = json.loads((tmp_path / "cut" / "config.json").read_text())
    assert final["status"] == "complete"
    assert not list((tmp_path / "cut").glob("checkpoint*"))  # a finished run keeps no checkpoint
    with pytest.raises(SiameseError, match="the run finished; there is nothing to resume"):
        resume(tmp_path / "cut", data=data)


class StopAtTheEnd(keras.callbacks.Callback):
    """Simulates a crash after the last epoch's checkpoint, before the run's outputs are written."""

    def on_train_end(self, logs=None):
        raise KeyboardInterrupt


def test_a_run_interrupted_after_its_last_epoch_resumes_to_its_best_epoch(tmp_path, monkeypatch):
    """Early stopping puts back the best epoch's weights when training ends; a run cut off after its last
    checkpoint must get them too, though no epoch is left to train."""
    from keras_siamese.training.callbacks import ValidationMetrics

    measure = ValidationMetrics.measure

    def rising(self, tower):  # the validation loss 1, 2, 3: the first epoch is the best
        self.epochs = getattr(self, "epochs", 0) + 1
        return *measure(self, tower)[:2], float(self.epochs)

    monkeypatch.setattr(ValidationMetrics, "measure", rising)
    data = synthetic_images(classes=3, per_class=12)
    settings = {**SETTINGS, "patience": 5}
    whole = train(data, output=tmp_path / "whole", **settings)
    assert whole.history["val_loss"] == [1.0, 2.0, 3.0]
    with pytest.raises(KeyboardInterrupt):
        train(data, output=tmp_path / "cut", callbacks=[StopAtTheEnd()], **settings)
    last = train(data, output=None, **{**settings, "patience": 0})  # no early stopping: the last epoch's weights
    resumed = resume(tmp_path / "cut", data=data, progress=False)
    for a, b in zip(weights(whole.model), weights(resumed.model)):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(weights(last.model), weights(resumed.model)))


def test_a_new_run_in_a_finished_runs_folder_leaves_that_run_whole_until_it_finishes(tmp_path):
    data = synthetic_images(classes=3, per_class=12)
    train(data, output=tmp_path / "out", **{**SETTINGS, "epochs": 1})
    finished = {name: (tmp_path / "out" / name).read_bytes() for name in ("model.keras", "config.json")}
    with pytest.raises(KeyboardInterrupt):
        train(data, output=tmp_path / "out", callbacks=[StopAfter(1)], **{**SETTINGS, "seed": 7})
    assert {name: (tmp_path / "out" / name).read_bytes() for name in finished} == finished
    resumed = resume(tmp_path / "out", data=data, progress=False)
    assert json.loads((tmp_path / "out" / "config.json").read_text())["settings"]["seed"] == 7
    assert resumed.record["status"] == "complete"


@pytest.mark.parametrize("damage, fragment", [
    (lambda arrays, record: arrays.write_bytes(arrays.read_bytes()[:1000]), "unreadable checkpoint arrays"),
    (lambda arrays, record: arrays.write_bytes(b""), "unreadable checkpoint arrays"),
    (lambda arrays, record: arrays.write_bytes(np.random.default_rng(0).bytes(5000)), "unreadable checkpoint arrays"),
    (lambda arrays, record: record.write_text("[1, 2]"), "not a checkpoint record"),
    (lambda arrays, record: record.write_text(json.dumps({**json.loads(record.read_text()), "history": None})),
     "not a checkpoint record"),
    (lambda arrays, record: np.savez(arrays, **{"model/0": np.zeros(3)}), "does not fit this model"),
])
def test_a_damaged_checkpoint_is_one_clear_error(tmp_path, damage, fragment):
    data = synthetic_images(classes=3, per_class=12)
    with pytest.raises(KeyboardInterrupt):
        train(data, output=tmp_path / "cut", callbacks=[StopAfter(1)], **SETTINGS)
    record = tmp_path / "cut" / "checkpoint.json"
    damage(tmp_path / "cut" / json.loads(record.read_text())["arrays"], record)
    with pytest.raises(SiameseError, match=fragment):
        resume(tmp_path / "cut", data=data, progress=False)


def test_stored_arrays_of_other_shapes_are_named_not_printed(tmp_path):
    data = synthetic_images(classes=3, per_class=12)
    with pytest.raises(KeyboardInterrupt):
        train(data, output=tmp_path / "cut", callbacks=[StopAfter(1)], **SETTINGS)
    arrays = tmp_path / "cut" / json.loads((tmp_path / "cut" / "checkpoint.json").read_text())["arrays"]
    with np.load(arrays) as stored:
        changed = {key: stored[key] for key in stored.files}
    changed["model/0"] = np.zeros((2, 2), np.float32)
    np.savez(arrays, **changed)
    with pytest.raises(SiameseError, match=r"model/0 has shape \(2, 2\)") as error:
        resume(tmp_path / "cut", data=data, progress=False)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("changed, fragment", [
    (lambda images, labels: (images[:-6], labels[:-6]), "split sizes"),
    (lambda images, labels: (images[:, :10], labels), "image shape: [12, 12, 1] then, [10, 12, 1] now"),
    (lambda images, labels: (images, np.where(labels == 2, 5, labels)), "classes: 2 then, 5 now"),
])
def test_resuming_on_other_data_is_refused(tmp_path, changed, fragment):
    images, labels = synthetic_images(classes=3, per_class=12)
    with pytest.raises(KeyboardInterrupt):
        train((images, labels), output=tmp_path / "cut", callbacks=[StopAfter(1)], **SETTINGS)
    with pytest.raises(SiameseError, match=re.escape(fragment)):
        resume(tmp_path / "cut", data=changed(images, labels), progress=False)


def test_a_folder_being_trained_into_is_refused_to_a_second_run_and_to_resume(tmp_path):
    import subprocess
    import sys

    data = synthetic_images(classes=3, per_class=12)
    with pytest.raises(KeyboardInterrupt):
        train(data, output=tmp_path / "out", callbacks=[StopAfter(1)], **SETTINGS)
    holder = subprocess.Popen(  # a run in another process: it holds the folder's model file
        [sys.executable, "-c", "import sys, time; from keras_siamese.atomic import exclusive\n"
         "with exclusive(sys.argv[1], wait=0):\n    print('held', flush=True); time.sleep(60)",
         str(tmp_path / "out" / "model.keras")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(SiameseError, match="another siamese process"):
            train(data, output=tmp_path / "out", **SETTINGS)
        with pytest.raises(SiameseError, match="another siamese process"):
            resume(tmp_path / "out", data=data, progress=False)
    finally:
        holder.kill()
        holder.wait()


def test_resume_needs_a_checkpoint(tmp_path):
    with pytest.raises(SiameseError, match="no checkpoint to resume"):
        resume(tmp_path)


def test_a_run_on_arrays_resumes_only_with_its_arrays(tmp_path):
    data = synthetic_images(classes=3, per_class=12)
    with pytest.raises(KeyboardInterrupt):
        train(data, output=tmp_path / "cut", callbacks=[StopAfter(1)], **SETTINGS)
    with pytest.raises(SiameseError, match="pass them again"):
        Trainer.resume(tmp_path / "cut")


def test_a_run_resumes_only_on_its_backend_and_with_its_unlabelled_images(tmp_path):
    import keras

    from conftest import write_folder

    data = synthetic_images(classes=3, per_class=12)
    unlabeled = write_folder(tmp_path / "unlabeled", classes=("u",), per_class=8)
    with pytest.raises(KeyboardInterrupt):
        train(data, output=tmp_path / "cut", callbacks=[StopAfter(1)], unlabeled=str(unlabeled), **SETTINGS)
    state_file = tmp_path / "cut" / "checkpoint.json"
    state = json.loads(state_file.read_text())
    assert state["backend"] == keras.config.backend() and state["trained_on"]["unlabeled images"] == 8
    for path in sorted((unlabeled / "u").iterdir())[:4]:
        path.unlink()
    with pytest.raises(SiameseError, match=r"unlabeled images: 8 then, 4 now"):
        resume(tmp_path / "cut", data=data, progress=False)
    other = "jax" if keras.config.backend() != "jax" else "tensorflow"
    state_file.write_text(json.dumps({**state, "backend": other}))
    with pytest.raises(SiameseError, match=f"the run trained on {other}; resume it with KERAS_BACKEND={other}"):
        resume(tmp_path / "cut", data=data, progress=False)


def test_callbacks_must_be_a_list_of_callbacks(tmp_path):
    data = synthetic_images(classes=3, per_class=12)
    with pytest.raises(SiameseError, match="callbacks must be a list of Keras callbacks; received StopAfter"):
        train(data, output=None, callbacks=StopAfter(1), **SETTINGS)
    with pytest.raises(SiameseError, match="callbacks must be Keras callbacks; received 1"):
        train(data, output=None, callbacks=[1], **SETTINGS)


def test_a_run_whose_data_folder_moved_says_so(tmp_path):
    from conftest import write_folder

    folder = write_folder(tmp_path / "images", per_class=8)
    with pytest.raises(KeyboardInterrupt):
        train(str(folder), output=tmp_path / "cut", callbacks=[StopAfter(1)], **SETTINGS)
    folder.rename(tmp_path / "elsewhere")
    with pytest.raises(SiameseError, match=r"cut: the run's data folder .*images is gone \(moved or renamed\?\)"):
        Trainer.resume(tmp_path / "cut")


def test_a_kill_between_the_arrays_and_the_record_resumes_from_the_record(tmp_path):
    """The next epoch's arrays written, the record not yet: the record's own arrays are still there."""
    from keras_siamese.training import checkpoint

    data = synthetic_images(classes=3, per_class=12)
    with pytest.raises(KeyboardInterrupt):
        train(data, output=tmp_path / "cut", callbacks=[StopAfter(1)], **SETTINGS)
    state = json.loads((tmp_path / "cut" / "checkpoint.json").read_text())
    (tmp_path / "cut" / checkpoint.arrays_name(1)).write_bytes(b"arrays of an epoch the record never named")
    assert (tmp_path / "cut" / state["arrays"]).is_file()
    whole = train(data, output=tmp_path / "whole", **SETTINGS)
    resumed = resume(tmp_path / "cut", data=data, progress=False)
    for a, b in zip(weights(whole.model), weights(resumed.model)):
        np.testing.assert_array_equal(a, b)


def test_a_run_recorded_with_a_setting_its_loss_ignores_still_resumes(tmp_path):
    """Runs interrupted before such settings were refused recorded them; resuming must not refuse them now."""
    data = synthetic_images(classes=3, per_class=12)
    settings = {**SETTINGS, "loss": "contrastive", "images_per_class": None}
    with pytest.raises(KeyboardInterrupt):
        train(data, output=tmp_path / "cut", callbacks=[StopAfter(1)], **settings)
    state_file = tmp_path / "cut" / "checkpoint.json"
    state = json.loads(state_file.read_text())
    state["settings"].update(images_per_class=4, margin=1.0, temperature=0.3)  # an older run's record
    state_file.write_text(json.dumps(state))
    assert resume(tmp_path / "cut", data=data, progress=False).record["status"] == "complete"
    with pytest.raises(SiameseError, match="temperature is not used by loss 'contrastive'"):
        train(data, output=None, **{**settings, "temperature": 0.3})

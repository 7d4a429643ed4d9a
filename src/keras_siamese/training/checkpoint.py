"""Checkpoints at every epoch end, and resuming an interrupted run from the last one.

A checkpoint is `checkpoint-E.npz` (every variable of the training model,
random generator states of augmentation and dropout included, and of the
optimizer, after epoch E) plus `checkpoint.json` (the settings and data, the
epoch, the array file's name, the history so far, and the early-stopping
counters), each written atomically, the JSON last; the previous epoch's arrays
are removed only then. A kill at any moment leaves a JSON naming arrays that
match it. The batches of epoch `e` are a function of
(seed, e), so a resumed run draws what the uninterrupted one would have.
"""

import json
import time
import zipfile
from pathlib import Path

import keras
import numpy as np

from keras_siamese.atomic import atomic_path, write_json
from keras_siamese.errors import SiameseError

STATE = "checkpoint.json"


def arrays_name(epoch):
    return f"checkpoint-{epoch}.npz"
EARLY_STOPPING_STATE = ("wait", "best", "best_epoch", "stopped_epoch")


class Checkpoint(keras.callbacks.Callback):
    """Writes the trainer's state into `folder` at the end of every epoch. Placed after early stopping, it
    sees that callback's updated counters, and puts back restored ones when training begins."""

    def __init__(self, trainer, folder):
        super().__init__()
        self.trainer, self.folder, self.logged = trainer, Path(folder), {}

    def on_train_begin(self, logs=None):
        restored = getattr(self.trainer, "restored_early_stopping", None)
        stopping = _early_stopping(self.trainer)
        if restored and stopping is not None and restored[0]:
            for name, value in restored[0].items():
                if value is not None:  # an infinite best was written as null: keep the fresh one
                    setattr(stopping, name, value)
            stopping.best_weights = restored[1]

    def on_epoch_end(self, epoch, logs=None):
        if not np.isfinite((logs or {}).get("loss", 0.0)):  # a diverged epoch: the last finite one stays saved
            return
        for key, value in (logs or {}).items():
            self.logged.setdefault(key, []).append(float(value))
        history = {key: [*self.trainer.history.get(key, []), *values] for key, values in self.logged.items()}
        save(self.folder, self.trainer, epoch, history)


def _early_stopping(trainer):
    return next((c for c in trainer.callbacks if isinstance(c, keras.callbacks.EarlyStopping)), None)


def save(folder, trainer, epoch, history):
    """Write the checkpoint of finished epoch `epoch` (0-based) into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    model, optimizer = trainer.objective.model, trainer.objective.model.optimizer
    arrays = {f"model/{i}": keras.ops.convert_to_numpy(v) for i, v in enumerate(model.variables)}
    arrays |= {f"optimizer/{i}": keras.ops.convert_to_numpy(v) for i, v in enumerate(optimizer.variables)}
    stopping = _early_stopping(trainer)
    early = None
    if stopping is not None:
        early = {name: _plain(getattr(stopping, name, None)) for name in EARLY_STOPPING_STATE}
        if stopping.best_weights is not None:
            arrays |= {f"best/{i}": np.asarray(w) for i, w in enumerate(stopping.best_weights)}
    with atomic_path(folder / arrays_name(epoch)) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
    state = {"status": "incomplete", "epoch": epoch, "arrays": arrays_name(epoch), "settings": trainer.config.to_dict(),
             "data": trainer.data_record, "trained_on": trained_on(trainer.splits, trainer.unlabeled),
             "backend": keras.config.backend(), "history": history,
             "early_stopping": early, "seconds": trainer.earlier_seconds + time.perf_counter() - trainer.started}
    write_json(folder / STATE, state)
    _remove_arrays(folder, keep=arrays_name(epoch))
    if not holds_finished_run(folder):  # whose record stays with its outputs until this run replaces them all
        write_json(folder / "config.json", {  # the folder says that its run has not finished
            "status": "incomplete", "epochs_run": epoch + 1, "resume": f"siamese train --resume {folder}",
            "settings": state["settings"]})


def trained_on(splits, unlabeled=None):
    """What a resumed run must find again: the image shape, the class names, the split sizes and the number
    of unlabelled images."""
    record = {"image shape": [int(n) for n in splits.train.image_shape],
              "classes": [str(name) for name in splits.train.class_names],
              "split sizes": {name: len(splits.split(name)) for name in ("train", "val", "test")}}
    return record if unlabeled is None else {**record, "unlabeled images": len(unlabeled)}


def check_same_data(folder, state, splits, unlabeled=None):
    """SiameseError when `splits` (and `unlabeled`) differ from the data the checkpointed run trained on."""
    before, now = state.get("trained_on"), trained_on(splits, unlabeled)
    if not isinstance(before, dict):  # a checkpoint from before the record was kept
        return
    for key, value in now.items():
        if key in before and before[key] != value:  # (a key a checkpoint predates: not recorded then)
            then, found = before.get(key), value
            if key == "classes" and isinstance(then, list):  # the first difference, not every name
                then, found = ((len(then), len(found)) if len(then) != len(found) else
                               next((a, b) for a, b in zip(then, found) if a != b))
            raise SiameseError(f"{folder}: the data differ from the run's ({key}: {then} then, {found} now); "
                               "resuming needs the images the run began with")


def holds_finished_run(folder):
    """Whether `folder`'s config.json is the record of a finished run."""
    try:
        return json.loads((Path(folder) / "config.json").read_text()).get("status") == "complete"
    except (OSError, ValueError, AttributeError):
        return False


def _remove_arrays(folder, keep=None):
    for path in Path(folder).glob("checkpoint-*.npz"):
        if path.name != keep:
            path.unlink(missing_ok=True)


def remove(folder):
    """Remove the checkpoint files of a finished run."""
    (Path(folder) / STATE).unlink(missing_ok=True)
    _remove_arrays(folder)


def _numbered(arrays, prefix):
    """The keys `prefix/0`, `prefix/1`... of `arrays`, in number order."""
    numbered = [k for k in arrays if k.startswith(prefix + "/") and k[len(prefix) + 1:].isdigit()]
    return sorted(numbered, key=lambda k: int(k[len(prefix) + 1:]))


def _plain(value):
    return float(value) if isinstance(value, (np.floating, float)) else value


def read_state(folder):
    """The checkpoint record of `folder`; SiameseError when there is none or it is unreadable."""
    path = Path(folder) / STATE
    if not path.is_file():
        if holds_finished_run(folder):
            raise SiameseError(f"{folder}: the run finished; there is nothing to resume")
        raise SiameseError(f"{folder}: no checkpoint to resume ({STATE} is written at each epoch end)")
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise SiameseError(f"{path}: unreadable checkpoint ({error})") from None
    kinds = {"epoch": int, "arrays": str, "settings": dict, "history": dict}
    if not isinstance(state, dict) or not all(isinstance(state.get(key), kind) for key, kind in kinds.items()) \
            or not isinstance(state.get("early_stopping"), (dict, type(None))):
        raise SiameseError(f"{path}: not a checkpoint record (it holds {', '.join(kinds)})")
    if not (Path(folder) / state["arrays"]).is_file():
        raise SiameseError(f"{path}: its arrays {state.get('arrays')} are missing")
    return state


def restore(folder, trainer):
    """Load the checkpoint in `folder` into a built trainer; returns the epoch to start from."""
    state = read_state(folder)
    backend = state.get("backend", keras.config.backend())  # older checkpoints do not say
    if backend != keras.config.backend():
        raise SiameseError(f"{folder}: the run trained on {backend}; resume it with KERAS_BACKEND={backend} (on "
                           f"{keras.config.backend()} it would not continue to the same weights)")
    check_same_data(folder, state, trainer.splits, trainer.unlabeled)
    path = Path(folder) / state["arrays"]
    try:
        with np.load(path) as stored:
            arrays = {key: stored[key] for key in stored.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise SiameseError(f"{path}: unreadable checkpoint arrays ({error})") from None
    model = trainer.objective.model
    optimizer = model.optimizer
    optimizer.build(model.trainable_variables)
    for prefix, variables in (("model", model.variables), ("optimizer", optimizer.variables)):
        keys = _numbered(arrays, prefix)
        if len(keys) != len(variables):
            raise SiameseError(f"{folder}: the checkpoint does not fit this model ({prefix} variables: "
                               f"{len(keys)} stored, {len(variables)} built)")
        for variable, key in zip(variables, keys):
            if arrays[key].shape != tuple(variable.shape):
                raise SiameseError(f"{folder}: the checkpoint does not fit this model ({key} has shape "
                                   f"{arrays[key].shape}; the model's {variable.path} has {tuple(variable.shape)})")
            variable.assign(arrays[key])
    best_weights = [arrays[k] for k in _numbered(arrays, "best")] or None
    trainer.history = {key: list(values) for key, values in state["history"].items()}
    seconds = state.get("seconds")
    trainer.earlier_seconds = float(seconds) if isinstance(seconds, (int, float)) else 0.0
    trainer.restored_early_stopping = (state.get("early_stopping"), best_weights)
    return state["epoch"] + 1

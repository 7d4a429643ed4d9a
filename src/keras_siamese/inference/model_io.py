"""Loading and saving model files, with one-line errors for files that are not ours."""

import os
import re
import zipfile
from pathlib import Path

from keras_siamese.atomic import atomic_path
from keras_siamese.errors import SiameseError

MODEL_SUFFIXES = (".keras",)


def load_model(path):
    """Load a keras-siamese `.keras` file in Keras safe mode; returns a SiameseModel."""
    import keras

    from keras_siamese.models.siamese import SiameseModel

    path = Path(os.fsdecode(path) if isinstance(path, bytes) else path)
    if path.is_dir():
        inside = " (use the model.keras inside it)" if (path / "model.keras").is_file() else ""
        raise SiameseError(f"{path}: is a folder, not a model file{inside}")
    if path.is_symlink() and not path.exists():
        raise SiameseError(f"{path}: a symbolic link to nothing (broken, or a loop)")
    if not path.is_file():
        raise SiameseError(f"{path}: {'not a regular file' if path.exists() else 'model file not found'}")
    if path.suffix != ".keras":
        raise SiameseError(f"{path}: not a .keras model file")
    with open(path, "rb"):  # unreadable: PermissionError, which the caller reports as one (is_zipfile hides it)
        pass
    if not zipfile.is_zipfile(path):
        raise SiameseError(f"{path}: not a Keras model file (not a zip archive; corrupt or truncated?)")
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as error:  # Keras raises many types for a broken archive
        raise SiameseError(f"{path}: cannot load the model ({brief(error)})") from None
    if not isinstance(model, SiameseModel):
        raise SiameseError(f"{path}: a Keras model, but not a keras-siamese model ({type(model).__name__})")
    return model


def brief(error, limit=300):
    """An exception's message on one line, cut after whole sentences (or, for one long sentence, after a
    whole word, marked with "...") to stay within `limit` characters."""
    text = " ".join(str(error).split()) or type(error).__name__
    if len(text) <= limit:
        return text
    kept = ""
    for sentence in re.split(r"(?<=[.!?])\s+", text):
        if len(kept) + len(sentence) + 1 > limit:
            break
        kept = f"{kept} {sentence}".strip()
    return kept or text[: limit - 4].rsplit(" ", 1)[0] + " ..."


def save_model(model, path):
    """Write `model` (a SiameseModel, what `load_model` reads back) to `path` atomically (the old file stays
    until the new one is complete)."""
    from keras_siamese.models.siamese import SiameseModel

    if not isinstance(model, SiameseModel):
        hint = "; wrap a tower in ks.SiameseModel(tower, threshold)" if hasattr(model, "layers") else ""
        raise SiameseError(f"save_model writes a SiameseModel; received {type(model).__name__}{hint}")
    path = Path(os.fsdecode(path) if isinstance(path, bytes) else path)
    if path.suffix not in MODEL_SUFFIXES:
        raise SiameseError(f"{path}: model files must end in .keras")
    with atomic_path(path) as tmp:
        model.save(tmp)
    return path

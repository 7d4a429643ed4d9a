"""Loading and saving model files, with one-line errors for files that are not ours."""

import zipfile
from pathlib import Path

from keras_siamese.atomic import atomic_path
from keras_siamese.errors import SiameseError


def load_model(path):
    """Load a keras-siamese `.keras` file in Keras safe mode; returns a SiameseModel."""
    import keras

    from keras_siamese.models.siamese import SiameseModel

    path = Path(path)
    if not path.is_file():
        raise SiameseError(f"{path}: model file not found")
    if path.suffix != ".keras":
        raise SiameseError(f"{path}: not a .keras model file")
    if not zipfile.is_zipfile(path):
        raise SiameseError(f"{path}: not a Keras model file (not a zip archive; corrupt or truncated?)")
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as error:  # Keras raises many types for a broken archive
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise SiameseError(f"{path}: cannot load the model ({message[:200]})") from None
    if not isinstance(model, SiameseModel):
        raise SiameseError(f"{path}: a Keras model, but not a keras-siamese model ({type(model).__name__})")
    return model


def save_model(model, path):
    """Write `model` to `path` atomically (the old file stays until the new one is complete)."""
    path = Path(path)
    if path.suffix != ".keras":
        raise SiameseError(f"{path}: model files must end in .keras")
    with atomic_path(path) as tmp:
        model.save(tmp)
    return path

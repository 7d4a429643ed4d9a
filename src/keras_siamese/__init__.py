"""keras-siamese: learn image similarity with Siamese networks on Keras 3.

    import keras_siamese as ks
    result = ks.train("mnist-sample", output="output")
    model = ks.load_model("output/model.keras")
    ks.compare(model, "a.png", "b.png")   # {'distance': ..., 'decision': 'same'}
"""

import importlib

__version__ = "0.1.0"

_API = {
    "train": "keras_siamese.training.trainer",
    "TrainResult": "keras_siamese.training.trainer",
    "Trainer": "keras_siamese.training.trainer",
    "resume": "keras_siamese.training.trainer",
    "TrainConfig": "keras_siamese.training.config",
    "load_model": "keras_siamese.inference.model_io",
    "save_model": "keras_siamese.inference.model_io",
    "embed": ("keras_siamese.inference.embedding", "embed_images"),
    "distances": "keras_siamese.inference.compare",
    "compare": "keras_siamese.inference.compare",
    "calibrate": ("keras_siamese.inference.calibration", "calibrate_model"),
    "recenter": ("keras_siamese.inference.calibration", "recenter_model"),
    "evaluate": "keras_siamese.evaluation",
    "load_splits": "keras_siamese.data.sources",
    "ImageSet": "keras_siamese.data.dataset",
    "SiameseModel": "keras_siamese.models.siamese",
    "build_tower": "keras_siamese.models.towers",
    "SiameseError": "keras_siamese.errors",
    "Gallery": "keras_siamese.gallery.gallery",
}

__all__ = sorted(_API) + ["__version__"]


def __getattr__(name):
    """Import the public API lazily, so `siamese --help` does not start a backend."""
    if name not in _API:
        raise AttributeError(f"module 'keras_siamese' has no attribute {name!r}")
    module, attribute = _API[name] if isinstance(_API[name], tuple) else (_API[name], name)
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value

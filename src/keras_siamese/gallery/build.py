"""Building a gallery file from a folder or a named data source, and opening one with its model."""

from pathlib import Path

from keras_siamese.atomic import exclusive
from keras_siamese.errors import SiameseError
from keras_siamese.gallery.gallery import Gallery, recorded_model


def index_images(model_path, data, output, add=False, approximate=None, data_dir=None, progress=True):
    """Enrol every image of `data` (a folder, streamed, or a source name such as mnist-sample) with the
    model at `model_path` into the gallery file `output` (appending with `add`); returns (gallery, added)."""
    from keras_siamese.data.dataset import concatenate
    from keras_siamese.data.sources import is_folder_source, load_splits
    from keras_siamese.inference.model_io import load_model
    from keras_siamese.outputs import check_output_file, check_outside

    check_output_file(output)
    check_outside(output, data)
    model = load_model(model_path)
    with exclusive(output):  # read to written: a server enrolling into the file meanwhile waits, and loses nothing
        if add:
            gallery = Gallery.load(output, model, approximate)
            if gallery.model_path is None or not Path(gallery.model_path).is_file():  # the same weights: record
                gallery.model_path = Path(model_path).resolve()  # a model `search` can find
        else:
            gallery = Gallery(model, approximate, model_path=Path(model_path).resolve())
        if is_folder_source(data):
            added = gallery.add(data, progress=progress)
        else:
            splits = load_splits(data, data_dir, model.input_image_shape, progress=progress)
            images = concatenate([splits.train, splits.val, splits.test])
            labels = [images.class_names[code] for code in images.labels]
            added = gallery.add(images.images, labels=labels, ids=[str(i) for i in images.ids], progress=progress)
        gallery.save(output)
    return gallery, added


def open_gallery(path, model_path=None, approximate=None):
    """A saved gallery with its model: `model_path`, or the model file recorded in the gallery."""
    from keras_siamese.inference.model_io import load_model

    given = model_path
    model_path = model_path or recorded_model(path)
    if model_path is None:
        raise SiameseError(f"{path}: the gallery does not record its model; pass --model")
    if given is None and not Path(model_path).exists():
        raise SiameseError(f"{model_path}: model file not found (the model {path} records; moved? pass --model)")
    return Gallery.load(path, load_model(model_path), approximate)

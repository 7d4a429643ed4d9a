"""The Siamese pair model: one shared tower, a distance, and an optional calibrated threshold."""

import keras

from keras_siamese.errors import SiameseError
from keras_siamese.models.layers import EuclideanDistance


@keras.saving.register_keras_serializable(package="keras_siamese")
class SiameseModel(keras.Model):
    """Maps an image pair `[a, b]` to the Euclidean distance of their embeddings.

    `tower` embeds one batch of images (pixels 0..255; it rescales itself).
    `threshold` is the calibrated decision distance: pairs closer than it are
    "same". `calibration` records how it was chosen (rule, data, figures);
    `info` holds anything else worth keeping in the file (training settings).
    All three travel inside the `.keras` file.
    """

    def __init__(self, tower, threshold=None, calibration=None, info=None, **kwargs):
        super().__init__(**kwargs)
        _check_tower(tower)
        self.tower = tower
        self.distance = EuclideanDistance(dtype="float32", name="distance")
        self.threshold = None if threshold is None else float(threshold)
        self.calibration = dict(calibration or {})
        self.info = dict(info or {})
        self.built = True  # the tower is a built functional model; the distance has no weights

    @property
    def input_image_shape(self):
        """(height, width, channels) of the images the tower takes."""
        return tuple(self.tower.input_shape[1:])

    @property
    def embedding_dim(self):
        return int(self.tower.output_shape[-1])

    def build(self, input_shape=None):
        self.built = True

    def call(self, inputs, training=None):
        a, b = inputs
        return self.distance([self.tower(a, training=training), self.tower(b, training=training)])

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], 1)

    def get_config(self):
        tower = keras.saving.serialize_keras_object(self.tower)
        tower.pop("compile_config", None)  # a tower trained on its own keeps its loss; the file needs none
        return {
            "name": self.name,
            "tower": tower,
            "threshold": self.threshold,
            "calibration": self.calibration,
            "info": self.info,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["tower"] = keras.saving.deserialize_keras_object(config["tower"])
        return cls(**config)


def _check_tower(tower):
    """SiameseError unless `tower` is a built model taking images of one size, `(N, H, W, C)`, to vectors
    `(N, D)`: every command embeds and resizes to that size, and the distance compares vectors."""
    try:
        inputs, outputs = tuple(tower.input_shape), tuple(tower.output_shape)
    except (AttributeError, ValueError) as error:
        raise SiameseError(f"tower must be a built Keras model of one input and one output ({error})") from None
    if len(inputs) != 4 or None in inputs[1:]:
        raise SiameseError(f"tower must take images of a fixed size (N, height, width, channels); its input is "
                           f"{inputs}")
    if len(outputs) != 2 or outputs[1] is None:
        raise SiameseError(f"tower must output one embedding vector per image, (N, D); its output is {outputs} "
                           "(end it with pooling or Flatten, then Dense)")

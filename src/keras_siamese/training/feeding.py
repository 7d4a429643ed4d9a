"""What `fit` reads an EpochStream through, per backend."""

import itertools

import keras

PREFETCH = 2  # batches made ahead of the training step


def fit_input(stream):
    """`stream` (an EpochStream) as `fit`'s input.

    On TensorFlow, a tf.data pipeline with a fixed prefetch and autotuning off. Given the PyDataset, Keras
    wraps it in an autotuned prefetch whose tuning thread sleeps for periods that double as the iterator
    lives; the iterator lasts the whole run, so destroying it at the end made `fit` wait up to 20 s to
    return, in about a third of `siamese train --data mnist-sample` runs (docs/benchmarks.md). Other
    backends read the PyDataset itself.
    """
    if keras.config.backend() != "tensorflow":
        return stream
    import tensorflow as tf

    def batches():
        for i in itertools.count():
            yield _as_tuples(stream[i])

    signature = tf.nest.map_structure(
        lambda array: tf.TensorSpec((None, *array.shape[1:]), tf.as_dtype(array.dtype)), _as_tuples(stream[0]))
    options = tf.data.Options()
    options.autotune.enabled = False
    return tf.data.Dataset.from_generator(batches, output_signature=signature).prefetch(PREFETCH).with_options(
        options)


def _as_tuples(batch):
    """The batch with lists as tuples, the one sequence type tf.data's structures take from a generator."""
    if isinstance(batch, (list, tuple)):
        return tuple(_as_tuples(part) for part in batch)
    return batch

"""Where training runs: one device, or data-parallel over several devices and JAX hosts, on Keras' engines.

TensorFlow trains under `tf.distribute.MirroredStrategy`, JAX under
`keras.distribution.DataParallel` (over several processes once
`join_hosts` has run). The in-batch losses see the global batch either way:
JAX computes the loss on the global, sharded batch; on TensorFlow each replica
gathers every replica's embeddings and labels (`AcrossReplicas`), computes the
loss of the whole batch, and all_gather's gradient returns to each replica the
part that concerns its own rows. Batch-norm layers use the global batch's
statistics (synchronized on TensorFlow, global arrays on JAX).

Inference during and after training (validation, the batch-norm refresh,
calibration, writing) runs on a plain copy of the tower on this process
(`local_tower`): TensorFlow's `predict` under a strategy returns every
replica's outputs, and JAX arrays spread over hosts cannot be read by one.
"""

import contextlib
import os
from concurrent.futures import ThreadPoolExecutor

import keras
import numpy as np

from keras_siamese.errors import SiameseError, check


def join_hosts(coordinator, num_processes, process_id):
    """Join a multi-process JAX run (one process per host): `coordinator` is process 0's "host:port".
    Call before anything else touches JAX; `keras.distribution.initialize` reads the same values from
    KERAS_DISTRIBUTION_JOB_ADDRESSES, KERAS_DISTRIBUTION_NUM_PROCESSES and KERAS_DISTRIBUTION_PROCESS_ID."""
    if keras.config.backend() != "jax":
        raise SiameseError("training on several hosts needs the JAX backend (KERAS_BACKEND=jax); TensorFlow's "
                           "multi-worker fit is not supported, use --devices on one host")
    coordinator = coordinator or os.environ.get("KERAS_DISTRIBUTION_JOB_ADDRESSES")
    num_processes = _count(num_processes, "num_processes", "KERAS_DISTRIBUTION_NUM_PROCESSES")
    process_id = _count(process_id, "process_id", "KERAS_DISTRIBUTION_PROCESS_ID")
    check(num_processes is None or num_processes >= 1, "num_processes", num_processes, "must be at least 1")
    if num_processes is not None and num_processes > 1:
        check(process_id is not None and 0 <= process_id < num_processes, "process_id", process_id,
              f"must be given, from 0 to {num_processes - 1} (--num-processes - 1)")
        host, _, port = (coordinator or "").rpartition(":")
        check(host and port.isdigit() and 0 < int(port) < 65536, "coordinator", coordinator,
              "must be process 0's address as HOST:PORT, the same for every process")
    keras.distribution.initialize(coordinator, num_processes, process_id)


def _count(value, argument, variable):
    """`value`, or else the integer in environment `variable` (None when neither is set)."""
    if value is not None or variable not in os.environ:
        return value
    text = os.environ[variable]
    check(text.strip().lstrip("-").isdigit(), argument, f"{text!r} (from {variable})", "must be an integer")
    return int(text)


def process_index():
    """This process's rank among the hosts of a multi-process run (0 when alone)."""
    if keras.config.backend() != "jax":
        return 0
    import jax

    return jax.process_index()


def process_count():
    if keras.config.backend() != "jax":
        return 1
    import jax

    return jax.process_count()


class Replicas:
    """`count` devices per process training one model data-parallel (1: plain training).

    `scope()` wraps building and fitting; `loss(loss)` makes an in-batch loss see
    the global batch; `local_tower(...)` gives an inference copy on this process.
    """

    def __init__(self, count=1):
        self.count = count
        self.strategy = self.distribution = None
        if count == 1 and process_count() == 1:
            return
        backend = keras.config.backend()
        if backend == "tensorflow":
            import tensorflow as tf

            self.strategy = tf.distribute.MirroredStrategy([d.name for d in _tensorflow_devices(count)])
        elif backend == "jax":
            # each process gives its own rows of every batch (EpochBatches.distribute), not Keras' shards
            self.distribution = keras.distribution.DataParallel(devices=_jax_devices(count), auto_shard_dataset=False)
        else:
            raise SiameseError(f"--devices {count}: data-parallel training needs the TensorFlow or JAX backend "
                               f"(KERAS_BACKEND); this is {backend}")

    @property
    def replicated(self):
        return self.strategy is not None or self.distribution is not None

    @property
    def global_count(self):
        """Devices training together across every process."""
        if self.distribution is not None:
            return len(self.distribution.device_mesh.devices.flatten())
        return self.count

    @contextlib.contextmanager
    def scope(self):
        if self.strategy is not None:
            with self.strategy.scope():
                yield
        elif self.distribution is not None:
            with self.distribution.scope():
                yield
        else:
            yield

    def prepare(self, tower):
        """Batch-norm layers of `tower` take the global batch's statistics (TensorFlow; JAX does by itself)."""
        if self.strategy is not None:
            from keras_siamese.training.callbacks import batch_norm_layers

            for layer in batch_norm_layers(tower):
                layer.synchronized = True

    def loss(self, loss):
        """`loss` computed on the global batch (TensorFlow replicas gather it first)."""
        return AcrossReplicas(loss) if self.strategy is not None else loss

    def local_tower(self, tower, rebuild):
        """None when not replicated, else a LocalTower: `rebuild()` makes a fresh tower of the same
        architecture outside the distribution, into which `synced()` copies the trained values."""
        return LocalTower(tower, rebuild, self.outside) if self.replicated else None

    def outside(self, function):
        """`function()`, run as plain single-process, single-device work inside a distributed fit: with
        JAX's distribution unset; on TensorFlow on a thread of its own, since a strategy's scope belongs to
        the thread that entered it (inside it, Keras would run a plain model's predict on every replica)."""
        if self.strategy is not None:
            with ThreadPoolExecutor(max_workers=1) as pool:
                return pool.submit(function).result()
        if self.distribution is None:
            return function()
        from keras.src.distribution import distribution_lib

        current = distribution_lib.distribution()
        distribution_lib.set_distribution(None)
        try:
            return function()
        finally:
            distribution_lib.set_distribution(current)


class LocalTower:
    """A plain copy of a replicated tower, built on this process and refreshed from it on demand;
    `outside(function)` runs work with it during a distributed fit."""

    def __init__(self, tower, rebuild, outside):
        self.source, self.copy, self.outside = tower, rebuild(), outside

    def synced(self):
        self.copy.set_weights(local_values(self.source))
        return self.copy


def local_values(model):
    """Every weight of `model` as numpy arrays this process holds (JAX: its own replica of each)."""
    if keras.config.backend() == "jax":
        return [np.asarray(v.value.addressable_data(0)) for v in model.weights]
    return model.get_weights()


class AcrossReplicas(keras.losses.Loss):
    """An in-batch loss over the batches of all TensorFlow replicas: each replica gathers every replica's
    labels and embeddings in replica order (the global batch, as one device would see it) and computes the
    loss of all of them. Keras scales each replica's loss by 1 / replicas; all_gather's gradient sums the
    replicas' gradients for each row, so the summed update is that of the global batch."""

    def __init__(self, loss):
        super().__init__(name=loss.name, reduction=loss.reduction)
        self.inner = loss

    def call(self, y_true, y_pred):
        import tensorflow as tf

        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:
            y_true, y_pred = context.all_gather(y_true, axis=0), context.all_gather(y_pred, axis=0)
        return self.inner.call(y_true, y_pred)


def _tensorflow_devices(count):
    """`count` TensorFlow devices: GPUs, or on a host without them CPU devices (virtual ones split the CPU;
    they exercise the distributed path, they do not add compute)."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        cpu = tf.config.list_physical_devices("CPU")[0]
        if len(tf.config.get_logical_device_configuration(cpu) or [None]) < count:
            try:
                tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
            except RuntimeError:  # the runtime has started: its devices are fixed
                pass
    devices = tf.config.list_logical_devices("GPU" if gpus else "CPU")
    if len(devices) < count:
        raise SiameseError(f"--devices {count}: this process has {len(devices)} {'GPU' if gpus else 'CPU'} "
                           "device(s), and TensorFlow's devices can no longer be split once it has started")
    return devices[:count]


def _jax_devices(count):
    """The devices of a JAX run: this process's first `count`, or with several processes all of theirs
    (`count` each). On a host without accelerators `count` virtual CPU devices are asked for first, which
    JAX allows only before it starts."""
    import jax

    try:
        if getattr(jax.config, "jax_num_cpu_devices", count) < count:  # the option came with JAX 0.4.38
            jax.config.update("jax_num_cpu_devices", count)
    except RuntimeError:  # JAX's backends have started
        pass
    local = jax.local_devices()
    if len(local) < count or (jax.process_count() > 1 and len(local) != count):
        raise SiameseError(f"--devices {count}: this process has {len(local)} JAX {local[0].platform} "
                           "device(s) (CPU devices can be split only before JAX starts)")
    return local[:count] if jax.process_count() == 1 else jax.devices()

"""What one setting may cost: pixels per image, images per batch, bytes of memory.

Every bound here is checked before the memory is taken, and its error says what the
settings would need and which flag lowers it.
"""

import math
import os

from keras_siamese.errors import SiameseError

MAX_PIXELS_ENV = "SIAMESE_MAX_PIXELS"
DEFAULT_MAX_PIXELS = 64_000_000  # a 48-megapixel photo passes; 13,000 x 13,000 does not
# Decoding an image holds it as decoded (up to 4 bytes a pixel), converted (up to 4) and as an array (up to 4).
BYTES_PER_DECODED_PIXEL = 12
MEMORY_SHARE = 0.8  # of the memory available when the check runs
# Floats a training step holds per float of layer output. Measured: `siamese train` on mnist-sample (small tower,
# TensorFlow, CPU) peaks 0.38 MB higher per image of batch (batches of 128, 1,024 and 2,048); 1 float per
# output float predicts 0.41 MB.
FLOATS_PER_ACTIVATION = 1
# A folder whose decoded images would take more bytes than this (or a quarter of the memory available, if
# less) trains from disk by default: its images are decoded batch by batch, by background workers.
STREAM_ABOVE = 2**30
# In-batch losses hold a few (batch x batch) float matrices: distances, masks, exponentials and their gradients.
PAIR_MATRICES = 8


def max_pixels():
    """The largest image (width x height) any command decodes: $SIAMESE_MAX_PIXELS, else DEFAULT_MAX_PIXELS."""
    text = os.environ.get(MAX_PIXELS_ENV)
    if not text:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise SiameseError(f"{MAX_PIXELS_ENV}={text!r}: must be a positive whole number of pixels")
    return value


def decode_memory(limit=None):
    """Bytes that decoding may hold at once: images are decoded while their pixels in flight stay
    within `limit` (default max_pixels()), so at most about `limit` x BYTES_PER_DECODED_PIXEL."""
    return (limit or max_pixels()) * BYTES_PER_DECODED_PIXEL


def available_memory(meminfo="/proc/meminfo", cgroup="/sys/fs/cgroup"):
    """Bytes this process may still take: the smaller of the system's available memory and the
    room left under a cgroup (container) limit; None where neither can be read. The cgroup's
    inactive file pages (a page cache the kernel reclaims first) count as room, as `docker stats`
    counts them."""
    candidates = []
    try:
        with open(meminfo) as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    candidates.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    try:
        with open(f"{cgroup}/memory.max") as f:
            limit = f.read().strip()
        with open(f"{cgroup}/memory.current") as f:
            used = int(f.read().strip())
        if limit != "max":
            candidates.append(max(int(limit) - used + _reclaimable(cgroup), 0))
    except (OSError, ValueError):
        pass
    return min(candidates) if candidates else None


def _reclaimable(cgroup):
    """The cgroup's inactive file pages in bytes (0 where memory.stat cannot be read)."""
    try:
        with open(f"{cgroup}/memory.stat") as f:
            for line in f:
                name, _, value = line.partition(" ")
                if name == "inactive_file":
                    return int(value)
    except (OSError, ValueError):
        pass
    return 0


def format_bytes(count):
    """`count` bytes as "1.5 GB" / "12 MB" (powers of 1,000)."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= size:
            return f"{count / size:.1f} {unit}" if count < 10 * size else f"{count / size:.0f} {unit}"
    return f"{int(count)} bytes"


def check_memory(needed, what, fix):
    """Raise SiameseError when `needed` bytes exceed MEMORY_SHARE of the memory available now.

    The message reads "`what` needs about X; Y is available: `fix`". Nothing is checked
    where the available memory cannot be read.
    """
    available = available_memory()
    if available is not None and needed > MEMORY_SHARE * available:
        raise SiameseError(f"{what} needs about {format_bytes(needed)}; {format_bytes(available)} is available: {fix}")


def image_set_bytes(count, shape):
    """Bytes of `count` uint8 images of `shape` = (height, width, channels)."""
    return count * math.prod(shape)


def stream_above():
    """Decoded bytes above which `--stream auto` leaves a folder's images on disk."""
    available = available_memory()
    return STREAM_ABOVE if available is None else min(STREAM_ABOVE, available // 4)


def check_image_set(count, shape, what="the images"):
    """Refuse, before allocating, an in-memory image set larger than the memory available."""
    height, width, channels = shape
    check_memory(image_set_bytes(count, shape), f"{what}: {count:,} images of {height}x{width}x{channels}",
                 "lower --image-size, or use fewer images")


def fit_batch_size(batch_size, images, pairs=False, images_per_class=2):
    """`batch_size` bounded by the data: returns `(batch_size, note)`, `note` None when unchanged.

    Pair losses count pairs, and an epoch holds about two per image (one same-class and
    one other-class partner), so a batch takes at most `2 * images` pairs. In-batch losses
    count images: at most `images`, rounded down to whole classes of `images_per_class`
    (at least two classes, which small classes fill by repeating images).
    """
    if pairs:
        bound, unit = 2 * images, f"{2 * images:,} pairs an epoch draws from {images:,} training images"
    else:
        bound = max(images // images_per_class * images_per_class, 2 * images_per_class)
        unit = f"{images:,} training images"
    if batch_size <= bound:
        return batch_size, None
    why = "" if pairs or bound <= images else f" (the least: 2 classes of --images-per-class {images_per_class}, " \
        "images repeated)"
    return bound, f"--batch-size {batch_size:,} is more than the {unit}; using {bound:,}{why}"


def activation_floats(model):
    """Floats of every layer output for one input of `model` (nested models counted layer by layer)."""
    total = 0
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:
            total += activation_floats(layer)
            continue
        try:
            outputs = layer.output
        except (AttributeError, ValueError):  # a layer never called symbolically
            continue
        for output in outputs if isinstance(outputs, (list, tuple)) else [outputs]:
            total += math.prod(d for d in output.shape[1:] if d)
    return total


def training_memory(tower, batch_images, in_batch=False):
    """Estimated bytes of one training step: the tower's activations for `batch_images` images
    (FLOATS_PER_ACTIVATION floats each), plus PAIR_MATRICES (batch x batch) matrices for in-batch losses."""
    floats = FLOATS_PER_ACTIVATION * activation_floats(tower) * batch_images
    if in_batch:
        floats += PAIR_MATRICES * batch_images**2
    return 4 * floats


def check_training_memory(tower, batch_images, in_batch=False):
    """Refuse a run whose training step (see training_memory) cannot fit in the memory still available."""
    shape = "x".join(str(d) for d in tower.input_shape[1:])
    check_memory(training_memory(tower, batch_images, in_batch),
                 f"training on batches of {batch_images:,} images of {shape}",
                 "lower --batch-size or --image-size")

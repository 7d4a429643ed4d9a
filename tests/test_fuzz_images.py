"""Image loading on random and mutated bytes: an image or one SiameseError, never another error or a hang."""

import io
import signal
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from keras_siamese.data.folder import read_image
from keras_siamese.errors import SiameseError

SECONDS = 10  # a decode that takes longer counts as a hang
LIMIT = 1_000_000  # pixels; mutated headers may claim any size


def encoded(fmt, mode, size=(13, 9), **options):
    rng = np.random.default_rng(0)
    bands = len(Image.new(mode, (1, 1)).getbands())
    pixels = rng.integers(0, 255, (size[1], size[0], bands), dtype=np.uint8)
    image = Image.fromarray(pixels[..., 0] if bands == 1 else pixels, "L" if bands == 1 else "RGBA"[:bands])
    image = image.convert(mode)
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


SEEDS = [
    encoded("PNG", "L"), encoded("PNG", "RGBA"), encoded("PNG", "P"), encoded("PNG", "I;16"),
    encoded("JPEG", "RGB"), encoded("JPEG", "L", progressive=True), encoded("GIF", "P"), encoded("BMP", "RGB"),
    encoded("TIFF", "RGB", compression="tiff_lzw"), encoded("WEBP", "RGB"), encoded("ICO", "RGBA"),
    encoded("PPM", "RGB"), encoded("TGA", "RGB"),
]


@st.composite
def mutated(draw):
    """A valid file of some format with bytes flipped, cut, repeated or inserted."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "repeat"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == "cut":
            data = data[:at]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        else:
            data[at:at] = data[at : at + draw(st.integers(1, 64))]
    return bytes(data)


class Hang(Exception):
    pass


def read_bytes(data, size, channels):
    """read_image on `data` written to a file, with an alarm turning a hang into Hang."""

    def alarm(signum, frame):
        raise Hang(f"reading took over {SECONDS} s")

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "image"
        path.write_bytes(data)
        previous = signal.signal(signal.SIGALRM, alarm)
        signal.alarm(SECONDS)
        try:
            return read_image(path, size, channels, max_pixels=LIMIT)
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)


def check(data, size, channels):
    try:
        image = read_bytes(data, size, channels)
    except SiameseError as error:
        assert str(error).startswith(str(Path(tempfile.gettempdir()))) and "\n" not in str(error)
        return
    assert image.dtype == np.uint8 and image.shape == (*size, channels)


@given(mutated(), st.sampled_from([(8, 8), (5, 11)]), st.sampled_from([1, 3]))
def test_mutated_images(data, size, channels):
    check(data, size, channels)


@given(st.binary(max_size=2048), st.sampled_from([1, 3]))
def test_random_bytes(data, channels):
    check(data, (8, 8), channels)


@pytest.mark.parametrize("seed", range(len(SEEDS)))
def test_every_seed_file_reads(seed):
    assert read_bytes(SEEDS[seed], (8, 8), 3).shape == (8, 8, 3)


DAMAGED_EXIF = sorted((Path(__file__).parent / "data" / "damaged_exif").iterdir())


@pytest.mark.parametrize("path", DAMAGED_EXIF, ids=[p.name for p in DAMAGED_EXIF])
def test_damaged_exif_metadata(path):
    """Files whose EXIF block a fuzzer damaged (found by mutating the block of a JPEG and a TIFF with an
    orientation tag): Pillow raised TypeError and struct.error from them, past the one-line errors."""
    check(path.read_bytes(), (8, 8), 1)

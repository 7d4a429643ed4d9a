"""Images on disk: reading any file Pillow opens, and class-subfolder data sets."""

import contextlib
import os
import re
import stat
import struct
import sys
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from keras_siamese import budget
from keras_siamese.data.dataset import ImageSet, to_uint8
from keras_siamese.data.pixel_cache import PixelCache
from keras_siamese.errors import SiameseError

# Our pixel limit is checked on every header before decoding, so Pillow's warning (from 89 Mpx) only
# ever precedes our own one-line error or an image the user allowed; it would leak to stderr.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)

# Folder images are resized to their median size when it is at most this, else to DEFAULT_SIZE.
MAX_NATIVE_SIZE = 96
DEFAULT_SIZE = 64


def _files(root, fence=None):
    """Every non-hidden file under `root`, sorted; linked folders are followed, except a link back to a
    folder above it (a loop), and with `fence` (the data folder holding `root`, a class folder) a link to
    elsewhere inside `fence`: another class's images, which would take this class's label (named in a note)."""
    found, above = [], {str(root): frozenset()}
    home = os.path.realpath(root)
    for dirpath, dirnames, filenames in os.walk(root, onerror=_unreadable_folder, followlinks=True):
        chain = above.pop(dirpath) | {os.path.realpath(dirpath)}
        kept = []
        for name in dirnames:
            target = os.path.realpath(os.path.join(dirpath, name))
            if name.startswith(".") or target in chain:
                continue
            if fence is not None and _inside(target, fence) and not _inside(target, home):
                print(f"note: {os.path.join(dirpath, name)}: links to {target}, elsewhere in the data folder; left "
                      "out, as its images would take this class's label", file=sys.stderr)
                continue
            kept.append(name)
        dirnames[:] = kept
        above.update((os.path.join(dirpath, name), chain) for name in dirnames)
        found += [Path(dirpath) / name for name in filenames if not name.startswith(".")]
    return sorted(found)


def _entries(folder, fence):
    """The non-hidden entries of `folder`, by name, without links back to `fence` or above it (loops); an
    unreadable folder is noted and has none."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as error:
        _unreadable_folder(error)
        return []
    return [e for e in entries if not e.name.startswith(".")
            and not (e.is_dir() and _inside(fence, os.path.realpath(e.path)))]


def _inside(path, folder):
    """Whether the resolved `path` is `folder` (resolved) or under it."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _unreadable_folder(error):
    """os.walk's errors, which it would skip silently: a class or its images would go missing unsaid. Said,
    and skipped (a `lost+found` at a disk's root is unreadable to its users, and holds no images)."""
    print(f"note: {error.filename}: cannot read the folder ({error.strerror or error}); its images are left out",
          file=sys.stderr)


def check_folder(root):
    """`root` as a Path; SiameseError when it is a file or does not exist."""
    root = Path(root)
    if not root.is_dir():
        raise SiameseError(f"{root}: {'is a file, not a folder' if root.exists() else 'folder not found'}")
    return root


def list_images(root, fenced=False):
    """Every non-hidden file under `root` (recursively), sorted; a missing or empty folder is an error.
    `fenced`: `root` holds class (or split) folders, and a link from one of them to elsewhere in `root`
    is left out, with a note (see `_files`)."""
    root = check_folder(root)
    if fenced:
        fence, files = os.path.realpath(root), []
        splits = {folder.name for folder in split_folders(root).values()}
        for entry in _entries(root, fence):
            inner = _entries(entry.path, fence) if entry.name in splits else [entry]  # a split's class folders
            for item in inner:
                files += _files(Path(item.path), fence) if item.is_dir() else [Path(item.path)] * item.is_file()
        files.sort()
    else:
        files = _files(root)
    if not files:
        raise SiameseError(f"{root}: folder holds no files")
    return files


def is_image_file(path):
    """Whether `path` looks like an image: its suffix is one Pillow reads, or else its header is one Pillow
    recognises (read, not decoded). A file that cannot be read counts, so that reading it names the problem."""
    if Path(path).suffix.lower() in Image.registered_extensions():
        return True
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return False
        with Image.open(path):
            return True
    except (UnidentifiedImageError, SyntaxError, ValueError, EOFError, TypeError, struct.error):
        return False
    except OSError:  # unreadable, or an image too large for Pillow's own check
        return True


class _PixelBudget:
    """Lets threads decode while the pixels being decoded stay within a limit (one image always may),
    so decoding memory is bounded by the limit, not by the number of threads."""

    def __init__(self):
        self._changed = threading.Condition()
        self._used = 0

    @contextlib.contextmanager
    def hold(self, pixels, limit):
        if pixels <= limit // 1024:  # small: all threads together hold a negligible share, no need to wait
            yield
            return
        with self._changed:
            self._changed.wait_for(lambda: self._used == 0 or self._used + pixels <= limit)
            self._used += pixels
        try:
            yield
        finally:
            with self._changed:
                self._used -= pixels
                self._changed.notify_all()


_decoding = _PixelBudget()


@contextlib.contextmanager
def _readable(path):
    """Turn Pillow's many errors for a bad file into one SiameseError naming `path`."""
    try:
        yield
    except FileNotFoundError:
        raise SiameseError(f"{path}: file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, TypeError, struct.error) as error:
        raise SiameseError(f"{path}: not a readable image ({error})") from None  # TypeError: a damaged TIFF


def _open_header(path, limit=None, formats=None):
    """`path` opened but not decoded; refused when its header gives more than `limit` pixels, or when its
    format is not one of `formats` (Pillow's names; default: any). Pillow's own limit
    (`PIL.Image.MAX_IMAGE_PIXELS`, for the whole process) is raised to `limit` where it is lower."""
    limit = limit or budget.max_pixels()
    with _readable(path):
        if isinstance(path, (str, os.PathLike)) and not stat.S_ISREG(os.stat(path).st_mode):
            raise SiameseError(f"{path}: not a regular file")  # a pipe would block the read, a device never end
        if Image.MAX_IMAGE_PIXELS is not None and limit > Image.MAX_IMAGE_PIXELS:
            Image.MAX_IMAGE_PIXELS = limit  # Pillow's own check (at twice it) then never refuses what `limit` allows
        try:
            image = Image.open(path, formats=formats)
        except Image.DecompressionBombError as error:  # Pillow's own check came first: its message has the size
            raise _too_large(path, f"{declared_pixels(error):,}", limit) from None
    if image.width * image.height > limit:
        image.close()
        raise _too_large(path, f"{image.width}x{image.height} is {image.width * image.height:,}", limit)
    return image


def declared_pixels(error):
    """The pixel count an image declared, from Pillow's DecompressionBombError (its message holds it)."""
    return int(re.search(r"\d+", str(error))[0])


def _too_large(path, pixels, limit):
    return SiameseError(
        f"{path}: {pixels} pixels, over the limit of {limit:,} (raise it with --max-pixels or {budget.MAX_PIXELS_ENV})")


SIXTEEN_BIT_AS_I = ("PNG", "PPM")  # formats whose 16-bit grey Pillow opens as mode "I", at full scale 65535


_TURNS = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
          5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
          8: Image.Transpose.ROTATE_90}  # by EXIF orientation


def upright(image):
    """`image` turned as its EXIF orientation says. Pillow's `exif_transpose` also rewrites the EXIF block,
    which raises on damaged metadata; here damaged metadata is only ignored."""
    try:
        orientation = image.getexif().get(0x0112)
    except Exception:  # noqa: BLE001 - any parse error of the metadata: there is no orientation to apply
        return image
    turn = _TURNS.get(orientation) if isinstance(orientation, int) else None
    return image if turn is None else image.transpose(turn)


def _to_mode(image, mode):
    """`image` (loaded) in mode "L" or "RGB": upright (EXIF), transparency on white, wide grey scaled to 0..255."""
    file_format = image.format  # the file's: a turned copy has none
    if "exif" in image.info or "Raw profile type exif" in image.info or file_format == "TIFF":  # else no orientation
        image = upright(image)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode in ("P", "L", "RGB") and "transparency" in image.info):
        rgba = image.convert("RGBA")
        image = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image.alpha_composite(rgba)
    if image.mode.startswith("I;16") or (image.mode == "I" and file_format in SIXTEEN_BIT_AS_I):
        # 16-bit grey: its full scale is 65535, whatever the brightest pixel
        image = Image.fromarray(np.rint(np.asarray(image, dtype=np.float32) / 257).astype(np.uint8))
    elif image.mode.startswith(("I", "F")):  # 32-bit or float grey: convert("L") would clip at 255
        image = Image.fromarray(to_uint8(np.asarray(image)))
    return image.convert(mode)


def read_image(path, size, channels, max_pixels=None, formats=None):
    """One image file as uint8 `(height, width, channels)`, resized to `size` = (height, width).

    Files over `max_pixels` (default: budget.max_pixels()) are refused from their header,
    before decoding; threads decode together only while their pixels stay within it.
    `formats` limits the formats accepted (Pillow's names; default: any).
    """
    limit = max_pixels or budget.max_pixels()
    image = _open_header(path, limit, formats)
    with _decoding.hold(image.width * image.height, limit):
        with _readable(path):
            image.load()
        return picture_array(image, size, channels, path)


def picture_array(image, size, channels, name="an image"):
    """A loaded PIL image as uint8 `(height, width, channels)` at `size`, converted as every file is (upright,
    transparency on white, 16-bit scaled); `name` is what an error names."""
    try:
        image = _to_mode(image, "L" if channels == 1 else "RGB")
        if image.size != (size[1], size[0]):
            image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    except (OSError, ValueError) as error:
        raise SiameseError(f"{name}: cannot convert the image ({error})") from None
    except SiameseError as error:  # a float image with NaN, from `to_uint8`
        raise SiameseError(f"{name}: {error}") from None
    array = np.asarray(image, dtype=np.uint8)
    return array[..., None] if channels == 1 else array


def read_images(paths, size, channels, progress=True, max_pixels=None):
    """Many image files as one uint8 array `(N, height, width, channels)`, read in parallel.

    Refused before reading when the array would not fit in the memory available.
    """
    from tqdm.auto import tqdm

    budget.check_image_set(len(paths), (*size, channels), "reading the images")
    out = np.empty((len(paths), size[0], size[1], channels), np.uint8)

    def load(i):
        out[i] = read_image(paths[i], size, channels, max_pixels)

    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) * 2)) as pool:
        jobs = pool.map(load, range(len(paths)))
        for _ in tqdm(jobs, total=len(paths), desc="reading images", unit="img",
                      disable=not progress or len(paths) < 500, leave=False):
            pass
    return out


class ImageFiles:
    """Image files decoded on demand: an array-like of uint8 `(N, height, width, channels)` whose rows are
    read from disk when indexed, so a folder of any size holds only its paths in memory.

    `files[i]` is one decoded image; `files[rows]` (a slice or index array) a decoded batch;
    `subset(rows)` and `resized(shape)` stay on disk. `cached()` is a copy that keeps
    each decoded image in a PixelCache, so later epochs read pixels instead of decoding.
    """

    ndim = 4
    dtype = np.dtype(np.uint8)

    def __init__(self, paths, shape, max_pixels=None, cache=None):
        self.paths = paths if isinstance(paths, np.ndarray) and paths.dtype == object else np.array(
            [str(p) for p in paths], dtype=object)
        self.image_shape = tuple(int(s) for s in shape)
        self.max_pixels = max_pixels
        self.cache = cache

    def __len__(self):
        return len(self.paths)

    @property
    def shape(self):
        return (len(self.paths), *self.image_shape)

    @property
    def nbytes(self):
        """Bytes held in memory: the paths only; pixels live on disk."""
        return int(sum(len(p) for p in self.paths)) + 8 * len(self.paths)

    def __getitem__(self, rows):
        if isinstance(rows, (int, np.integer)):
            return self._read(int(rows) % len(self))
        positions = range(*rows.indices(len(self))) if isinstance(rows, slice) else np.asarray(rows)
        out = np.empty((len(positions), *self.image_shape), np.uint8)
        for i, position in enumerate(positions):
            out[i] = self._read(position)
        return out

    def _read(self, position):
        cache = self.cache
        if cache is not None and cache.filled[position]:
            return cache.read(position)
        image = read_image(self.paths[position], self.image_shape[:2], self.image_shape[2], self.max_pixels)
        if cache is not None:
            cache.write(position, image)
        return image

    def cached(self):
        """These files with a PixelCache of their decoded pixels, when the temporary folder has room."""
        cache = None if self.cache is not None else PixelCache.made(len(self), self.image_shape)
        return self if cache is None else ImageFiles(self.paths, self.image_shape, self.max_pixels, cache)

    def __array__(self, dtype=None, copy=None):
        budget.check_image_set(len(self), self.image_shape, "decoding the images")
        images = self[:]
        return images if dtype is None else images.astype(dtype)

    def subset(self, rows):
        return ImageFiles(self.paths[rows], self.image_shape, self.max_pixels)

    def resized(self, shape):
        return ImageFiles(self.paths, shape, self.max_pixels)

    @staticmethod
    def concatenate(parts):
        return ImageFiles(np.concatenate([p.paths for p in parts]), parts[0].image_shape, parts[0].max_pixels)


def stack_images(parts, where="the images"):
    """One image array-like from several of one shape: ImageFiles stay on disk, arrays are concatenated."""
    on_disk = [isinstance(p, ImageFiles) for p in parts]
    if all(on_disk):
        return ImageFiles.concatenate(parts)
    if any(on_disk):
        raise SiameseError(f"{where}: cannot mix images streamed from disk with images in memory")
    return np.concatenate(parts)


def should_stream(count, shape, stream="auto"):
    """Whether `count` images of `shape` train from disk: `stream` True or False, or "auto" (or None): when
    their decoded pixels would pass budget.stream_above()."""
    if stream not in ("auto", None):
        return bool(stream)
    return budget.image_set_bytes(count, shape) > budget.stream_above()


def resize_image_set(images, shape):
    """An ImageSet with its images resized and converted to `shape` (see `resize_images`)."""
    return ImageSet(resize_images(images.images, shape), images.labels, images.class_names, images.ids)


def resize_images(images, shape):
    """uint8 images `(N, H, W, C)` resized and converted to `shape` = (height, width, channels);
    ImageFiles are resized as they are decoded."""
    if images.shape[1:] == tuple(shape):
        return images
    if isinstance(images, ImageFiles):
        return images.resized(shape)
    budget.check_image_set(len(images), shape, "resizing the images")
    out = np.empty((len(images), *shape), np.uint8)
    mode = {1: "L", 3: "RGB"}
    for i, image in enumerate(images):
        picture = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image, mode[image.shape[-1]])
        picture = picture.convert(mode[shape[2]]).resize((shape[1], shape[0]), Image.Resampling.BILINEAR)
        array = np.asarray(picture, np.uint8)
        out[i] = array[..., None] if shape[2] == 1 else array
    return out


def infer_shape(paths, sample=200):
    """A shape for images of unknown size: their median size if at most MAX_NATIVE_SIZE (else
    DEFAULT_SIZE square), with 1 channel if all sampled images are grey."""
    heights, widths, grey = [], [], True
    for path in paths[:: max(1, len(paths) // sample)]:
        with _open_header(path) as image:
            heights.append(image.height)
            widths.append(image.width)
            grey = grey and image.mode in ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")
    height, width = int(np.median(heights)), int(np.median(widths))
    if max(height, width) > MAX_NATIVE_SIZE:
        height = width = DEFAULT_SIZE
    return height, width, 1 if grey else 3


def _class_folders(root):
    classes = sorted(p for p in Path(root).iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise SiameseError(f"{root}: no class subfolders (expected one folder of images per class)")
    return classes


def scan_classes(root, fence=None):
    """Image paths and class names of a class-subfolder layout (files directly in `root` are ignored). Links
    from a class folder to elsewhere in `fence` (default `root`; the data folder when `root` is one of its
    splits) are left out, with a note."""
    root = check_folder(root)
    paths, names = [], []
    fence = os.path.realpath(root if fence is None else fence)  # the data folder (above a split folder)
    for folder in _class_folders(root):
        files = _files(folder, fence)
        paths += files
        names += [folder.name] * len(files)
    if not paths:
        raise SiameseError(f"{root}: class subfolders hold no images")
    return paths, names


SPLIT_FOLDERS = {"train": ("train", "training"), "val": ("val", "valid", "validation"), "test": ("test", "testing")}


def split_folders(root):
    """`{split: folder}` when `root` is laid out as `train/` (or `training/`) plus `val/` (or `valid/`,
    `validation/`) and/or `test/` (or `testing/`), in any letter case, each of class subfolders; {} for a
    plain folder of class subfolders."""
    root = Path(root)
    try:
        entries = [Path(entry.path) for entry in sorted(os.scandir(root), key=lambda e: e.name) if entry.is_dir()]
    except OSError:
        return {}
    subfolders = {}
    for folder in entries:
        subfolders.setdefault(folder.name.lower(), []).append(folder)
    found = {split: [f for name in names for f in subfolders.get(name, [])] for split, names in SPLIT_FOLDERS.items()}
    if not (found["train"] and sum(bool(folders) for folders in found.values()) > 1):
        return {}  # a plain folder of classes, whatever their names
    for split, folders in found.items():
        if len(folders) > 1:  # VAL/ and val/, or train/ and training/: which one is meant?
            raise SiameseError(f"{root}: {len(folders)} folders for the {split} split, "
                               f"{' and '.join(f.name + '/' for f in folders)}; merge them or rename all but one")
    return {split: folders[0] for split, folders in found.items() if folders}


def complete_shape(shape, infer):
    """`shape` = (height, width, channels) with None parts (or None) filled from `infer()`."""
    if shape is not None and None not in shape:
        return tuple(shape)
    guess = infer()
    return guess if shape is None else tuple(g if s is None else s for s, g in zip(shape, guess))


def load_image_folder(root, shape=None, progress=True, class_names=None, stream="auto", fence=None):
    """A class-subfolder folder as an ImageSet; `shape` = (height, width, channels), None parts inferred.

    `class_names` fixes the code of each class (so a test folder shares the train
    folder's codes); classes not in it are appended. With `stream` (True, or "auto"
    for a folder too large to hold; see `should_stream`) the images stay on disk as
    ImageFiles, decoded when a batch needs them. `fence`: the data folder `root` is a split of (see
    `scan_classes`).
    """
    paths, names = scan_classes(root, fence)
    shape = complete_shape(shape, lambda: infer_shape(paths))
    if should_stream(len(paths), shape, stream):
        images = ImageFiles(paths, shape)
    else:
        images = read_images(paths, shape[:2], shape[2], progress)
    known = list(class_names or [])
    known += sorted(set(names) - set(known))
    code = {name: i for i, name in enumerate(known)}
    labels = np.array([code[n] for n in names], np.int64)
    ids = images.paths if isinstance(images, ImageFiles) else np.array([str(p) for p in paths])  # one copy of the paths
    return ImageSet(images, labels, known, ids), shape

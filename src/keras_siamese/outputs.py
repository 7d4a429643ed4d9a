"""Checks of output locations, run before any slow work so that no result is thrown away at the end."""

import os
import tempfile
from pathlib import Path

from keras_siamese.atomic import TMP_MARK, remove_stale, resolve_target
from keras_siamese.errors import SiameseError

FIGURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".pdf", ".svg")  # the figure formats matplotlib writes here


def check_outside(path, data, flag="--output"):
    """Raise SiameseError when `path` lies in the data folder `data` (a folder of class subfolders or splits),
    where later runs on that data would read what is written as images of a class."""
    from keras_siamese.data.sources import is_folder_source

    if not isinstance(data, (str, os.PathLike)) or not is_folder_source(data):
        return
    folder = os.path.realpath(data)
    where = os.path.abspath(path)
    placed = os.path.join(os.path.realpath(os.path.dirname(where)), os.path.basename(where))  # a link, not its target
    if any(spot == folder or spot.startswith(folder.rstrip(os.sep) + os.sep)
           for spot in (os.path.realpath(resolve_target(path)), placed)):
        raise SiameseError(f"{flag} {path}: inside the data folder {data}, whose later runs would read what is "
                           "written there as images; choose a place outside it")


def check_output_folder(path, flag="--output"):
    """Raise SiameseError unless `path` is a folder this process can write into, or can create.

    An existing file is refused, as is a place under a file or a folder without write
    permission (probed by creating and removing an unnamed file). Stale temporary files
    of ours in an existing folder are removed. Creates nothing.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise SiameseError(f"{flag} {path}: is a file, not a folder")
    if path.is_symlink() and not path.exists():
        raise SiameseError(f"{flag} {path}: a link to {path.readlink()}, which does not exist")
    existing = _nearest_existing(path, flag)
    _probe(existing, path, flag)
    if existing == path:
        remove_stale(path)
    return path


def check_output_file(path, suffixes=None, flag="--output", exact=False):
    """Raise SiameseError unless a file can be written at `path` (through a symlink, to its target):
    not a folder, ending in one of `suffixes` (lower case, with the dot; in any case unless `exact`, as
    Keras wants `.keras` for a model) when given, in a writable place."""
    path = Path(path)
    if path.is_dir():
        raise SiameseError(f"{flag} {path}: is a folder, not a file")
    if suffixes and (path.suffix if exact else path.suffix.lower()) not in suffixes:
        raise SiameseError(f"{flag} {path}: the file name must end in {', '.join(suffixes)}")
    target = resolve_target(path)
    if path.is_symlink() and not target.parent.is_dir():
        raise SiameseError(f"{flag} {path}: a link to {target}, whose folder does not exist")
    for folder in target.absolute().parents:  # a file in the way is named, with the path as given
        if folder.exists():
            if not folder.is_dir():
                raise SiameseError(f"{flag} {path}: {folder} is a file, not a folder")
            break
    check_output_folder(target.parent, flag)
    return path


def _nearest_existing(path, flag):
    for folder in (path, *path.absolute().parents):
        if folder.exists():
            if not folder.is_dir():
                raise SiameseError(f"{flag} {path}: {folder} is a file, not a folder")
            return folder
    return Path("/")


def _probe(folder, path, flag):
    try:
        tempfile.TemporaryFile(dir=folder, prefix=f".probe{TMP_MARK}{os.getpid()}-").close()
    except OSError as error:
        where = "" if folder == path else f" (in {folder})"
        raise SiameseError(f"{flag} {path}: cannot write there{where}: {error.strerror or error}") from None

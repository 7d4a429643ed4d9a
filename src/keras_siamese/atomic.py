"""Write files so that a reader sees either the old file or the complete new one, after a crash too.

Temporary files are hidden and named `.{name}.siamese-tmp-{pid}-{random}{suffix}` beside the
file they replace, so a later run recognises those of a process that died (kill -9, power
loss) and removes them. Writers of one file take an advisory lock (`.{name}.siamese-lock`
beside it), so two processes never replace the same file at once. A long `name` is cut
there (with a hash of the whole), so a file name the system allows never fails for them.
"""

import contextlib
import csv
import hashlib
import json
import math
import os
import re
import stat
import tempfile
import threading
import time
from pathlib import Path

from keras_siamese.errors import SiameseError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks
    fcntl = None

TMP_MARK = ".siamese-tmp-"
LOCK_SUFFIX = ".siamese-lock"
LOCK_WAIT = 30.0  # seconds a writer waits for another process to finish writing the same file
HIDDEN_NAME_BYTES = 96  # of a file's name in its temporary and lock files' names
_OURS = re.compile(r"^\..*" + re.escape(TMP_MARK) + r"(\d+)-")
_held = {}  # lock file -> file descriptor: the locks this process holds, so that they nest
_owners = {}  # lock file -> RLock: one thread of this process holds a lock file's lock at a time
_owners_guard = threading.Lock()
_swept = set()  # folders whose stale files this process has removed already


def resolve_target(path):
    """The file that writing `path` should replace: `path`, or where its symlink (chain) points."""
    path = Path(path)
    if not path.is_symlink():
        return path
    try:
        return Path(os.path.realpath(path, strict=True))
    except FileNotFoundError:  # a dangling link: create its target
        return Path(os.path.realpath(path))
    except OSError as error:
        raise SiameseError(f"{path}: cannot follow the symbolic link ({error.strerror or error})") from None


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; on success it replaces `path`.

    On any exception (Ctrl-C and SIGTERM included) the temporary file is removed and
    `path` is left untouched. A symlink is written through: its target is replaced and the
    link stays. The new file keeps the mode of the one it replaces. The temporary name
    keeps the suffix of `path`, so writers that infer the format from it (Keras,
    matplotlib) keep working. OSErrors about the temporary file name `path` instead. The
    new file's data, then its name, are flushed to disk (fsync) before the block ends, so
    a power loss cannot leave an empty or partly written file under the name.
    """
    path = Path(path)
    target = resolve_target(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if str(target.parent.absolute()) not in _swept:  # once per folder: writing many files stays linear
        remove_stale(target.parent)
    with exclusive(target):
        mode = stat.S_IMODE(target.stat().st_mode) if target.is_file() else 0o666 & ~_umask()
        tmp = ""
        try:
            suffix = target.suffix if len(os.fsencode(target.suffix)) <= 16 else ""  # a format's, not a long name's
            fd, tmp = tempfile.mkstemp(prefix=f".{_short(target.name)}{TMP_MARK}{os.getpid()}-", suffix=suffix,
                                       dir=target.parent)
            os.close(fd)
            yield Path(tmp)
            _sync_file(tmp, mode)
            os.replace(tmp, target)
            _sync_folder(target.parent)
        except BaseException as error:
            if tmp:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
            if isinstance(error, OSError) and isinstance(error.filename, str):
                error.filename = error.filename.replace(tmp, str(path)) if tmp else str(path)
            elif isinstance(error, OSError) and error.filename is None and error.errno is not None:
                error.filename = str(path)  # a full disk met by a writer that names no file
            raise


def cut_name(name, limit):
    """`name` cut to at most `limit` bytes as the file system encodes it, at a whole character (a name stays
    valid UTF-8)."""
    name = name[:limit]
    while len(os.fsencode(name)) > limit:
        name = name[:-1]
    return name


def _short(name):
    """`name`, or for a long one its first characters and a hash of the whole: a part of hidden files' names."""
    raw = os.fsencode(name)
    if len(raw) <= HIDDEN_NAME_BYTES:
        return name
    return f"{cut_name(name, HIDDEN_NAME_BYTES - 9)}~{hashlib.sha1(raw).hexdigest()[:8]}"


def _sync_file(path, mode):
    """Give a file `mode` and flush its data to disk: opened for writing first (Windows flushes no read-only
    handle), since a read-only `mode` would then refuse the opening to anyone but root."""
    fd = os.open(path, os.O_RDWR)
    try:
        os.chmod(path, mode)
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync_folder(path):
    """Flush a folder's entries to disk, where the system allows it (Windows opens no folders; some network
    and FUSE file systems refuse): the file is in place either way."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def exclusive(path, wait=LOCK_WAIT):
    """Hold the advisory lock of `path` (a hidden lock file beside it) for the block.

    Locks nest within a thread. Another thread of this process, or another process,
    holding the lock is waited for up to `wait` seconds (0: refuse at once), then refused
    with a SiameseError naming `path` (and that process). Use it around a
    read-modify-write, such as calibrating a model file in place, so that no result is
    silently lost.
    """
    target = resolve_target(path)
    lock = target.parent / f".{_short(target.name)}{LOCK_SUFFIX}"
    key = str(lock.absolute())
    deadline = time.monotonic() + wait
    with _owners_guard:
        owner = _owners.setdefault(key, threading.RLock())
    if not owner.acquire(timeout=max(wait, 0)):
        raise SiameseError(f"{path}: another thread of this process is writing to this file; run again when it "
                           "has finished")
    try:
        if fcntl is None or key in _held:  # no advisory locks here, or this thread holds it already
            yield
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        _held[key] = _acquire(lock, path, max(deadline - time.monotonic(), 0))
        try:
            yield
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(lock)
            os.close(_held.pop(key))
    finally:
        owner.release()


def _acquire(lock, path, wait):
    """An open, flock-ed descriptor of `lock`; retried while the file is replaced under us."""
    deadline = time.monotonic() + wait
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise OSError(error.errno, error.strerror, str(path)) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            if time.monotonic() >= deadline:
                raise SiameseError(
                    f"{path}: another siamese process (pid {holder}) is writing to this file; "
                    "run again when it has finished") from None
            time.sleep(0.05)
            continue
        if _same_file(fd, lock):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            return fd
        os.close(fd)  # the holder removed the lock file as we opened it: take the new one


def file_version(path):
    """What tells one version of a file from the next (inode, size, modification time; a file replaced
    atomically gets a new inode), or None when there is no file (or no path)."""
    try:
        status = os.stat(path)
    except (OSError, TypeError):
        return None
    return status.st_ino, status.st_size, status.st_mtime_ns


def _same_file(fd, path):
    try:
        here, there = os.fstat(fd), os.stat(path)
    except FileNotFoundError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def remove_stale(folder):
    """Remove temporary files of ours in `folder` whose process is gone, and unheld lock files."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    _swept.add(str(Path(folder).absolute()))
    for entry in entries:
        match = _OURS.match(entry.name)
        if match and not _alive(int(match.group(1))):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
        elif entry.name.startswith(".") and entry.name.endswith(LOCK_SUFFIX) and fcntl is not None:
            _remove_unheld_lock(Path(entry.path))


def _remove_unheld_lock(lock):
    if str(lock.absolute()) in _held:
        return
    try:
        fd = os.open(lock, os.O_RDONLY)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if _same_file(fd, lock):
            os.unlink(lock)
    except OSError:
        pass  # held by a live process: leave it
    finally:
        os.close(fd)


def _alive(pid):
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path, data):
    """Write `data` as indented JSON, atomically; NaN and infinities become null (valid JSON)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(_finite(data), indent=2) + "\n")


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def write_csv(path, header, rows):
    """Write `header` and `rows` (sequences; None as an empty cell) as CSV, atomically, streaming."""
    # file names that are not valid UTF-8 reach Python as surrogates: written back as their own bytes
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8", errors="surrogateescape") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(("" if v is None else v for v in row) for row in rows)

"""Write files so that a reader sees either the old file or the complete new one."""

import contextlib
import csv
import json
import math
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; on success it replaces `path`.

    On any exception the temporary file is removed and `path` is left untouched.
    The temporary name keeps the suffix of `path`, so writers that infer the
    format from it (Keras, matplotlib) keep working.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


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
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(("" if v is None else v for v in row) for row in rows)

"""Decoded images kept on disk, so that streamed training decodes each file once, not once per epoch."""

import os
import shutil
import tempfile

import numpy as np

DISK_SHARE = 0.5  # of the free space in the temporary folder, at most


class PixelCache:
    """Rows of uint8 pixels in an unlinked temporary file, written and read with pwrite/pread.

    The rows live in the operating system's page cache (or on disk), not in this
    process's memory, so a streamed run stays flat however large the folder. The file
    disappears with the process. `filled[i]` says whether row `i` is stored.
    """

    def __init__(self, count, shape):
        self.shape = tuple(shape)
        self.row_bytes = int(np.prod(shape))
        handle, name = tempfile.mkstemp(prefix="keras-siamese-", suffix=".pixels")
        os.unlink(name)
        self.fd = handle
        os.ftruncate(handle, count * self.row_bytes)  # sparse until written (EFBIG past a file-size limit)
        self.filled = np.zeros(count, bool)
        self.full = False

    @classmethod
    def made(cls, count, shape):
        """A cache for `count` rows of `shape`, or None where the temporary folder has no room for it, or
        cannot make it (a full disk or inode table, a file-size limit): streaming then decodes every epoch."""
        if not cls.fits(count, shape):
            return None
        try:
            return cls(count, shape)
        except OSError:
            return None

    @classmethod
    def fits(cls, count, shape):
        """Whether `count` rows of `shape` fit in DISK_SHARE of the temporary folder's free space."""
        return count * int(np.prod(shape)) <= DISK_SHARE * shutil.disk_usage(tempfile.gettempdir()).free

    def read(self, row):
        data = os.pread(self.fd, self.row_bytes, row * self.row_bytes)
        return np.frombuffer(data, np.uint8).reshape(self.shape)

    def write(self, row, pixels):
        """Store row `row`. Once the disk is full (the file is sparse: its space was not taken when made,
        and other writers share the disk), writing stops and the rows not stored are decoded again."""
        if self.full:
            return
        data = np.ascontiguousarray(pixels, np.uint8).tobytes()
        try:
            written = os.pwrite(self.fd, data, row * self.row_bytes)
        except OSError:  # ENOSPC, EDQUOT, EFBIG, EIO: a cache is worth no failed run
            written = -1
        if written != len(data):  # or a short write, as a disk fills up: the row is not stored
            self.full = True
            return
        self.filled[row] = True

    def __del__(self):
        fd, self.fd = getattr(self, "fd", None), None
        if fd is not None:
            os.close(fd)

"""Open and read only regular files, never blocking, never unbounded.

Why: the library reads files other people may have put in place -- a
``*.dist-info/entry_points.txt``, an ``nvidia/*/lib/*.so*`` in a site
folder, a CUDA header.  ``open()`` on a FIFO blocks until a writer appears
(``import mlx_portable`` hung forever), ``/dev/zero`` never ends, and a
device may do anything on open.  Every such read goes through here: the
file is opened with ``O_NONBLOCK`` (a FIFO opens at once instead of
waiting), ``fstat`` must say it is a regular file, and at most ``limit``
bytes are read.
"""

from __future__ import annotations

import errno
import os
import stat

__all__ = ["FolderNotFile", "NotARegularFile", "is_regular", "open_regular", "read_regular"]

_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


class NotARegularFile(OSError):
    """The path names a FIFO, socket, device or folder, where a regular file was expected."""


class FolderNotFile(NotARegularFile, IsADirectoryError):
    """The path names a folder (also an ``IsADirectoryError``, as ``open()`` raises)."""


def is_regular(path: str) -> bool:
    """Whether ``path`` (symlinks followed) is a regular file; ``False`` when it cannot be seen."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def open_regular(path: str, *, nofollow: bool = False) -> int:
    """A file descriptor for the regular file ``path`` (the caller closes it).

    ``nofollow`` refuses a symlink at the last component (``O_NOFOLLOW``).
    Raises :class:`NotARegularFile` for anything else, ``OSError`` when it
    cannot be opened.
    """
    flags = _FLAGS | (getattr(os, "O_NOFOLLOW", 0) if nofollow else 0)
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise FolderNotFile(errno.EISDIR, "not a regular file (a folder)", path)
        if not stat.S_ISREG(mode):
            raise NotARegularFile(errno.EINVAL, "not a regular file (a FIFO, socket or device)", path)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_regular(path: str, limit: int) -> bytes:
    """At most ``limit`` bytes of the regular file ``path``; ``OSError`` (or :class:`NotARegularFile`)."""
    fd = open_regular(path)
    try:
        chunks: list[bytes] = []
        left = limit
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)

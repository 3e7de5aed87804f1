"""Bounded reads of files a user (or a cloned repository) controls.

Why: a FIFO named ``particle.include`` blocks ``open()`` until a writer appears, i.e. forever; a 20 MB
``settings.json`` takes the event loop for seconds. Every read of a project or configuration file goes
through :func:`read_regular`: it opens without blocking (``O_NONBLOCK``, so opening a FIFO returns at
once), refuses anything that is not a regular file (FIFO, socket, device, directory) and never reads
more than ``limit`` bytes. Errors are ``OSError`` subclasses with ``filename`` set and a
``strerror`` a user can act on, so existing ``except OSError`` paths report them.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

MAX_CONFIG_BYTES = 1024 * 1024  # settings.json, project.properties, particle.include/ignore, profiles
MAX_SOURCE_BYTES = 10 * 1024 * 1024  # the file selection's per-file limit (project.MAX_FILE_SIZE)


class NotRegularFile(OSError):
    """The path is a FIFO, socket, device or directory: never opened for reading."""


class TooLarge(OSError):
    """The file is larger than the caller's limit; ``size`` and ``limit`` say by how much."""

    def __init__(self, path: str, size: int, limit: int) -> None:
        super().__init__(errno.EFBIG, f"{size:,} bytes is over the {limit:,}-byte limit for this file", path)
        self.size = size
        self.limit = limit


def kind_of(mode: int) -> str:
    """Plain words for a non-regular file mode (for messages)."""
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISDIR(mode):
        return "a directory"
    return "not a regular file"


def read_regular(path: Path | str, limit: int = MAX_CONFIG_BYTES) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; see the module docstring."""
    name = os.fspath(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(name, flags)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotRegularFile(
                errno.EINVAL, f"is {kind_of(info.st_mode)}, not a regular file; fieldsafe never reads those", name
            )
        if info.st_size > limit:
            raise TooLarge(name, info.st_size, limit)
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:  # grew while we read it
                raise TooLarge(name, size, limit)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_text_regular(path: Path | str, limit: int = MAX_CONFIG_BYTES, *, errors: str = "replace") -> str:
    """:func:`read_regular` decoded as UTF-8 (``errors`` as for ``bytes.decode``)."""
    return read_regular(path, limit).decode("utf-8", errors=errors)

"""Reading an attached path from disk, with a message a person can act on for each failure.

Every OS error is translated here, once, into an
:class:`~nbchat.core.errors.AttachmentError` naming the path as the user gave it.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from nbchat.core.errors import AttachmentError

from . import problems

__all__ = ["read_path", "stat_key"]


def _resolve(path: str | os.PathLike[str]) -> tuple[str, Path]:
    """The name to show (the path as given) and the path to open (``~`` expanded)."""
    name = os.fspath(path)
    return name, Path(name).expanduser()


def _translate(name: str, target: Path, error: OSError) -> AttachmentError:
    """One OS error -> the matching user-facing message."""
    if isinstance(error, (FileNotFoundError, NotADirectoryError)) or error.errno in (
        errno.ENOENT,
        errno.ENOTDIR,
    ):
        stub = target.parent / f".{target.name}.icloud"
        try:
            icloud_stub = stub.exists()
        except OSError:
            icloud_stub = False
        return problems.not_found(name, os.getcwd(), icloud_stub=icloud_stub)
    if isinstance(error, IsADirectoryError):
        return problems.is_directory(name)
    if isinstance(error, PermissionError) or error.errno in (errno.EACCES, errno.EPERM):
        return problems.permission_denied(name)
    return problems.unreadable(name, error.strerror or "input/output error")


def _stat_file(name: str, target: Path) -> os.stat_result:
    try:
        info = target.stat()
    except OSError as error:
        raise _translate(name, target, error) from error
    if stat.S_ISDIR(info.st_mode):
        raise problems.is_directory(name)
    if not stat.S_ISREG(info.st_mode):
        raise problems.not_regular_file(name)
    return info


def stat_key(path: str | os.PathLike[str]) -> tuple[str, int, int]:
    """``(absolute path, size in bytes, mtime in ns)``: a cache key that changes with the file.

    Raises the same :class:`AttachmentError` as :func:`read_path` for a missing file,
    a directory or a path the user may not read.
    """
    name, target = _resolve(path)
    info = _stat_file(name, target)
    return (os.path.abspath(target), info.st_size, info.st_mtime_ns)


def read_path(path: str | os.PathLike[str], *, max_file_bytes: int) -> bytes:
    """All the bytes of the file at ``path``, refusing files over ``max_file_bytes``.

    The size is checked before reading, and again while reading, so a file that grows
    in between is still refused instead of filling memory.
    """
    name, target = _resolve(path)
    info = _stat_file(name, target)
    if info.st_size > max_file_bytes:
        raise problems.too_large(name, info.st_size, max_file_bytes)
    try:
        with open(target, "rb") as handle:
            data = handle.read(max_file_bytes + 1)
    except OSError as error:
        raise _translate(name, target, error) from error
    if len(data) > max_file_bytes:
        raise problems.too_large(name, max(len(data), info.st_size), max_file_bytes)
    return data

"""fsutil.py — the few file-system primitives whose ordering makes storage durable.

Contract: this is the only module of ``raftkv.storage`` that calls ``os.fsync``. Rules it
implements (POSIX, Linux ext4/xfs):

- ``write_all(fd, parts)`` writes every byte of ``parts`` with as few syscalls as possible
  (``os.writev``), looping on short writes; it does not sync.
- ``sync_file(fd)`` makes a file's data and size durable (``fsync``).
- ``sync_dir(path)`` makes a directory's entries durable (creations, renames, deletions): a
  renamed file is only durably present after its directory is fsynced.
- Files are created ``FILE_MODE`` (0600) and directories ``DIR_MODE`` (0700), as etcd does:
  the log holds every value ever written.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

__all__ = ["DIR_MODE", "FILE_MODE", "sync_dir", "sync_file", "write_all"]

FILE_MODE = 0o600
DIR_MODE = 0o700
_IOV_MAX = 1024  # Linux IOV_MAX; writev rejects more buffers per call


def write_all(fd: int, parts: Sequence[bytes | memoryview]) -> int:
    """Write all of ``parts`` to ``fd`` (at its current offset); return the byte count."""
    total = sum(len(p) for p in parts)
    views = [memoryview(p) for p in parts if len(p)]
    while views:
        n = os.writev(fd, views[:_IOV_MAX])
        # Drop the fully written buffers, keep the rest of a partially written one.
        while views and n >= len(views[0]):
            n -= len(views[0])
            views.pop(0)
        if n:
            views[0] = views[0][n:]
    return total


def sync_file(fd: int) -> None:
    """fsync one open file (data + metadata such as its size)."""
    os.fsync(fd)


def sync_dir(path: str) -> None:
    """fsync a directory so that creations, renames and deletions in it are durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

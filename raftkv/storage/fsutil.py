"""fsutil.py — the few file-system primitives whose ordering makes storage durable.

Contract: this is the only module of ``raftkv.storage`` that calls ``os.fsync``. Rules it
implements (POSIX, Linux ext4/xfs):

- ``write_all(fd, parts)`` writes every byte of ``parts`` with as few syscalls as possible
  (``os.writev``), looping on short writes; it does not sync.
- ``sync_file(fd)`` makes a file's data and size durable (``fsync``).
- ``sync_dir(path)`` makes a directory's entries durable (creations, renames, deletions): a
  renamed file is only durably present after its directory is fsynced.
- ``atomic_write(path, data)``: write ``path.tmp``, fsync it, rename over ``path``, fsync the
  directory. After it returns, ``path`` holds ``data``; after a crash at any point, ``path``
  holds either the old contents or ``data``, never a mix (a stray ``*.tmp`` may remain).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

__all__ = ["atomic_write", "sync_dir", "sync_file", "write_all"]

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


def atomic_write(path: str, data: bytes) -> None:
    """Replace ``path`` by ``data`` atomically and durably (tmp, fsync, rename, fsync dir)."""
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        write_all(fd, [data])
        sync_file(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)
    sync_dir(os.path.dirname(path) or ".")

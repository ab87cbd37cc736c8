"""errors.py — the storage package's exception tree.

    StorageError (OSError-free base; every storage failure is one of these)
    ├── StorageCorrupt      on-disk data fails a check: names the file, the byte offset and why.
    │                       Raised by ``Storage.open`` and snapshot readers; the node must stop.
    ├── StorageLocked       another process holds the data directory's lock file
    ├── StorageClosed       the Storage was closed (or failed) and cannot be used
    └── StorageFailed       an I/O call failed mid-write (disk full, EIO, fsync error): the
                            in-memory view no longer matches the disk, so the Storage refuses
                            every later call (etcd: "the instance becomes inoperable").

Programming errors by the caller (a gap in the entries given to ``save``, an older snapshot than
the one stored) raise ``ValueError``: they are bugs in the driver/core, not disk problems.
"""

from __future__ import annotations

__all__ = [
    "StorageClosed",
    "StorageCorrupt",
    "StorageError",
    "StorageFailed",
    "StorageLocked",
]


class StorageError(Exception):
    """Base of every error the storage layer raises for disk/state problems."""


class StorageCorrupt(StorageError):
    """Data on disk is damaged or inconsistent. Never silently repaired.

    ``path`` is the file (or directory) at fault, ``offset`` the byte offset inside it where the
    damage starts (0 when the whole file is at fault, e.g. a missing segment), ``why`` a short
    human reason.
    """

    def __init__(self, path: str, offset: int, why: str) -> None:
        super().__init__(f"storage corrupt: {path} at offset {offset}: {why}")
        self.path = path
        self.offset = offset
        self.why = why

    def __reduce__(self) -> tuple[type[StorageCorrupt], tuple[str, int, str]]:
        return (type(self), (self.path, self.offset, self.why))


class StorageLocked(StorageError):
    """The data directory is already open (its ``LOCK`` file is held by another process)."""


class StorageClosed(StorageError):
    """The Storage was closed, or has failed, and cannot be used any more."""


class StorageFailed(StorageError):
    """A write or fsync failed; the Storage is now unusable (restart and recover from disk)."""

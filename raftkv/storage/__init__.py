"""raftkv.storage — durable write-ahead log, hard state and snapshots (docs/storage.md).

    from raftkv.storage import Storage, StorageCorrupt, RecoveredState
    st = Storage.open(data_dir, segment_bytes=64 << 20, keep_snapshots=3)
    rec = st.recovered                       # hard_state, snapshot | None, entries after it
    st.save(hard_state_or_None, entries)     # ONE fsync per call (group commit)
    st.save_snapshot(snapshot)               # atomic + durable, prunes snapshots and segments
    st.close()

Modules: records (record bytes), wal (segments), snapshot (snapshot files and streams),
recovery (read + replay a directory), storage (the Storage facade), check (check-data),
fsutil (the only place that fsyncs), errors (the exception tree).
"""

from raftkv.storage.errors import (
    StorageClosed,
    StorageCorrupt,
    StorageError,
    StorageFailed,
    StorageLocked,
)
from raftkv.storage.snapshot import SnapshotStreamError
from raftkv.storage.storage import RecoveredState, Storage, StorageStats

__all__ = [
    "RecoveredState",
    "SnapshotStreamError",
    "Storage",
    "StorageClosed",
    "StorageCorrupt",
    "StorageError",
    "StorageFailed",
    "StorageLocked",
    "StorageStats",
]

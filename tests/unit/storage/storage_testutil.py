"""Helpers shared by the storage tests (entries, snapshots, reopening)."""

from __future__ import annotations

import os
from collections.abc import Iterable

from raftkv.raft.types import Entry, EntryKind, HardState, Snapshot, SnapshotMeta
from raftkv.storage import Storage

SMALL_SEGMENT = 4096


def ents(lo: int, hi: int, term: int = 1, size: int = 8) -> list[Entry]:
    """Entries lo..hi inclusive; data encodes index and term so mix-ups are visible."""
    return [
        Entry(
            index=i,
            term=term,
            kind=EntryKind.NORMAL,
            data=(f"{i}:{term}:".encode() + b"x" * size)[: max(size, 1)],
        )
        for i in range(lo, hi + 1)
    ]


def snap(
    index: int, term: int, data: bytes = b"state", members: Iterable[str] = ("a", "b", "c")
) -> Snapshot:
    return Snapshot(meta=SnapshotMeta(index=index, term=term, members=tuple(members)), data=data)


def hs(term: int, voted_for: str | None = None, commit: int = 0) -> HardState:
    return HardState(term=term, voted_for=voted_for, commit=commit)


def reopen(st: Storage, **kw: int) -> Storage:
    st.close()
    return Storage.open(st.data_dir, **kw)


def segments(data_dir: str) -> list[str]:
    wal = os.path.join(data_dir, "wal")
    return sorted(os.path.join(wal, n) for n in os.listdir(wal) if n.endswith(".wal"))


def snapshots(data_dir: str) -> list[str]:
    d = os.path.join(data_dir, "snap")
    return sorted(os.path.join(d, n) for n in os.listdir(d) if n.endswith(".snap"))


def pairs(entries: Iterable[Entry]) -> list[tuple[int, int]]:
    return [(e.index, e.term) for e in entries]

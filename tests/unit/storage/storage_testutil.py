"""Helpers shared by the storage tests (entries, snapshots, reopening)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field

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


@dataclass
class Model:
    hs: HardState = field(default_factory=HardState)
    snapshot: Snapshot | None = None
    log: list[Entry] = field(default_factory=list)  # contiguous, right after the snapshot

    @property
    def snap_index(self) -> int:
        return self.snapshot.meta.index if self.snapshot else 0

    @property
    def snap_term(self) -> int:
        return self.snapshot.meta.term if self.snapshot else 0

    @property
    def last(self) -> int:
        return self.snap_index + len(self.log)

    def term_at(self, i: int) -> int | None:
        if i == self.snap_index:
            return self.snap_term
        if self.snap_index < i <= self.last:
            return self.log[i - self.snap_index - 1].term
        return None

    def apply_snapshot(self, s: Snapshot) -> None:
        i, t = s.meta.index, s.meta.term
        keep = self.term_at(i) == t
        self.log = self.log[i - self.snap_index :] if keep else []
        self.snapshot = s

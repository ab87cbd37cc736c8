"""disk.py — a simulated disk for one node: durable state plus writes not yet synced.

Model (what a WAL + snapshot store on a real disk guarantees, and no more):
- ``write(hard_state, entries)`` buffers ONE batch (hard state and entries together, as the real
  storage writes one CRC-checked record per Ready); ``sync()`` makes every buffered batch durable,
  in order. A batch is atomic: a crash never keeps its entries without its hard state.
- ``crash(rng)`` keeps a random *prefix* of the unsynced writes (a torn tail: the disk may have
  written some of them before power was lost) and forgets the rest.
- ``save_snapshot`` is atomic and durable (write tmp, fsync, rename, fsync dir). A snapshot the
  node *received* discards the whole stored log (the core restarts its log after it); a snapshot
  the driver *took* (compaction) drops only the entries it covers.
- ``recover()`` returns what a restarted node finds: hard state, snapshot, entries after it.

``writes`` records the logical log (durable + buffered) so the driver can check Raft's log
properties on what the node actually wrote.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from raftkv.raft.types import Entry, HardState, Snapshot

__all__ = ["DiskImage", "SimDisk"]


@dataclass(slots=True)
class DiskImage:
    """One consistent view of the stored state: hard state, snapshot, entries after the snapshot."""

    hard_state: HardState = field(default_factory=HardState)
    snapshot: Snapshot | None = None
    entries: list[Entry] = field(default_factory=list)

    @property
    def offset(self) -> int:
        return self.snapshot.meta.index if self.snapshot is not None else 0

    @property
    def offset_term(self) -> int:
        return self.snapshot.meta.term if self.snapshot is not None else 0

    def last_index(self) -> int:
        return self.offset + len(self.entries)

    def term_at(self, index: int) -> int | None:
        off = self.offset
        if index == off:
            return self.offset_term
        if off < index <= off + len(self.entries):
            return self.entries[index - off - 1].term
        return None

    def entry_at(self, index: int) -> Entry | None:
        off = self.offset
        if off < index <= off + len(self.entries):
            return self.entries[index - off - 1]
        return None

    def append(self, entries: tuple[Entry, ...] | list[Entry]) -> None:
        """Store ``entries``; a suffix from ``entries[0].index`` on is replaced."""
        if not entries:
            return
        first = entries[0].index
        off = self.offset
        if first <= off:
            # Entries the snapshot already covers: keep only the part after it.
            entries = [e for e in entries if e.index > off]
            if not entries:
                return
            first = entries[0].index
        if first > self.last_index() + 1:
            raise AssertionError(
                f"disk: append leaves a gap: first={first} last={self.last_index()}"
            )
        del self.entries[first - off - 1 :]
        self.entries.extend(entries)

    def install_snapshot(self, snapshot: Snapshot, *, keep_suffix: bool) -> None:
        keep = [e for e in self.entries if e.index > snapshot.meta.index] if keep_suffix else []
        self.snapshot = snapshot
        self.entries = keep

    def copy(self) -> DiskImage:
        return DiskImage(self.hard_state, self.snapshot, list(self.entries))


class SimDisk:
    """Durable image + ordered buffer of unsynced writes."""

    def __init__(self) -> None:
        self.durable = DiskImage()
        self._pending: list[tuple[str, object]] = []
        self.syncs = 0
        self.torn_writes_lost = 0

    @property
    def has_unsynced(self) -> bool:
        return bool(self._pending)

    def write(self, hs: HardState | None, entries: tuple[Entry, ...] = ()) -> None:
        """Buffer one atomic batch (either part may be empty)."""
        if hs is not None or entries:
            self._pending.append(("batch", (hs, entries)))

    def sync(self) -> None:
        for kind, value in self._pending:
            self._apply(self.durable, kind, value)
        self._pending.clear()
        self.syncs += 1

    def save_snapshot(self, snapshot: Snapshot, *, received: bool) -> None:
        """Atomic + durable. Buffered writes are synced first (they were issued before)."""
        self.sync()
        self.durable.install_snapshot(snapshot, keep_suffix=not received)

    def crash(self, rng: random.Random) -> int:
        """Power loss: a random prefix of unsynced writes survives; returns how many are lost."""
        keep = rng.randint(0, len(self._pending)) if self._pending else 0
        for kind, value in self._pending[:keep]:
            self._apply(self.durable, kind, value)
        lost = len(self._pending) - keep
        self.torn_writes_lost += lost
        self._pending.clear()
        return lost

    def recover(self) -> DiskImage:
        if self._pending:
            raise AssertionError("disk: recover() with unsynced writes (crash() first)")
        return self.durable.copy()

    @staticmethod
    def _apply(image: DiskImage, kind: str, value: object) -> None:
        assert kind == "batch" and isinstance(value, tuple)
        hs, entries = value
        if entries:
            image.append(entries)
        if hs is not None:
            image.hard_state = hs

"""log.py — the in-memory Raft log: the entries after the latest snapshot.

Contract:
- Entries are kept in one Python list with an ``offset`` (the snapshot index): entry ``i`` lives
  at ``_entries[i - offset - 1]``. Append is amortised O(1), lookup by index is O(1); slicing
  copies only the slice. Compaction (rare) drops a prefix.
- ``offset``/``offset_term`` name the last entry covered by the snapshot; ``term(offset)`` is known,
  anything before it is not (``None``).
- Indexes are contiguous; terms never decrease along the log (checked on append).
- The log does not know what is durable: the node tracks that (``RaftNode._stabled``).
"""

from __future__ import annotations

from collections.abc import Iterable

from raftkv.raft.errors import _check
from raftkv.raft.types import Entry

__all__ = ["RaftLog"]


class RaftLog:
    """Entries after the snapshot, plus the snapshot's (index, term)."""

    __slots__ = ("_entries", "offset", "offset_term")

    def __init__(
        self, offset: int = 0, offset_term: int = 0, entries: Iterable[Entry] = ()
    ) -> None:
        self.offset = offset
        self.offset_term = offset_term
        self._entries: list[Entry] = []
        self.append(list(entries))

    def __len__(self) -> int:
        return len(self._entries)

    def first_index(self) -> int:
        """The first index held in memory (offset + 1; may be > last_index if empty)."""
        return self.offset + 1

    def last_index(self) -> int:
        return self.offset + len(self._entries)

    def last_term(self) -> int:
        return self._entries[-1].term if self._entries else self.offset_term

    def term(self, index: int) -> int | None:
        """Term of the entry at ``index``; None if compacted away or beyond the end."""
        off = self.offset
        if index == off:
            return self.offset_term
        if off < index <= off + len(self._entries):
            return self._entries[index - off - 1].term
        return None

    def entry(self, index: int) -> Entry:
        _check(self.offset < index <= self.last_index(), "log has no entry %d", index)
        return self._entries[index - self.offset - 1]

    def match_term(self, index: int, term: int) -> bool:
        return self.term(index) == term

    def is_up_to_date(self, last_index: int, last_term: int) -> bool:
        """Raft §5.4.1 election restriction: is (last_term, last_index) as up to date as ours?"""
        mine = self.last_term()
        return last_term > mine or (last_term == mine and last_index >= self.last_index())

    def slice(self, lo: int, hi: int) -> list[Entry]:
        """Entries lo..hi inclusive (clamped to what is in memory)."""
        off = self.offset
        lo = max(lo, off + 1)
        if hi < lo:
            return []
        return self._entries[lo - off - 1 : hi - off]

    def slice_limited(self, lo: int, max_entries: int, max_bytes: int) -> list[Entry]:
        """Up to ``max_entries`` entries from ``lo``, data totalling <= max_bytes (at least one)."""
        off = self.offset
        start = lo - off - 1
        if start < 0 or start >= len(self._entries):
            return []
        out = self._entries[start : start + max_entries]
        total = 0
        for i, e in enumerate(out):
            total += len(e.data)
            if total > max_bytes and i > 0:
                return out[:i]
        return out

    def append(self, entries: list[Entry]) -> None:
        """Append entries that continue the log exactly (index last+1, terms non-decreasing)."""
        if not entries:
            return
        last = self.last_index()
        last_term = self.last_term()
        for e in entries:
            _check(e.index == last + 1, "log gap: appending %d after %d", e.index, last)
            _check(
                e.term >= last_term,
                "term goes backwards at %d: %d < %d",
                e.index,
                e.term,
                last_term,
            )
            last, last_term = e.index, e.term
        self._entries.extend(entries)

    def append_one(self, entry: Entry) -> None:
        """Hot path for the leader's own proposals: the caller built index last+1, its term."""
        self._entries.append(entry)

    def truncate_from(self, index: int) -> None:
        """Drop entries >= index (a follower replacing a conflicting suffix)."""
        _check(index > self.offset, "truncate into the snapshot: %d <= %d", index, self.offset)
        del self._entries[index - self.offset - 1 :]

    def compact(self, index: int) -> None:
        """Drop entries <= index (they are covered by a snapshot now)."""
        t = self.term(index)
        _check(t is not None, "compact at unknown index %d", index)
        assert t is not None
        del self._entries[: index - self.offset]
        self.offset, self.offset_term = index, t

    def restore(self, index: int, term: int) -> None:
        """Replace the whole log by a snapshot ending at (index, term)."""
        self._entries = []
        self.offset, self.offset_term = index, term

    def last_index_of_term(self, term: int) -> int | None:
        """Largest index whose entry has ``term`` (binary search: terms never decrease)."""
        ents = self._entries
        lo, hi = 0, len(ents)
        while lo < hi:  # first position with entry.term > term
            mid = (lo + hi) // 2
            if ents[mid].term <= term:
                lo = mid + 1
            else:
                hi = mid
        if lo > 0 and ents[lo - 1].term == term:
            return self.offset + lo
        if lo == 0 and self.offset_term == term and self.offset > 0:
            return self.offset
        return None

    def first_index_of_term(self, term: int) -> int:
        """Smallest in-memory index whose entry has ``term`` (the log must hold that term)."""
        ents = self._entries
        lo, hi = 0, len(ents)
        while lo < hi:  # first position with entry.term >= term
            mid = (lo + hi) // 2
            if ents[mid].term < term:
                lo = mid + 1
            else:
                hi = mid
        return self.offset + lo + 1

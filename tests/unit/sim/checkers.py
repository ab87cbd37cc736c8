"""checkers.py — the global Raft safety properties, checked as the simulation runs.

``History`` sees everything the simulated drivers see (what each node persisted, applied, which
role/term it reported) and raises ``Violation`` the moment a property fails:

- Election Safety: at most one leader per term, over the whole run (Raft §5.2).
- Leader Append-Only: a leader never overwrites or deletes entries of its own log (§5.3).
- Log Matching: if two logs hold an entry with the same index and term, the logs are identical up
  to it (§5.3). Checked inductively on every write to any node's log: an (index, term) pair always
  names the same command and the same previous term.
- Leader Completeness: an entry committed in term U is in the log of every leader of a term > U
  (§5.4). U is bounded above by the term of the node that delivered the entry as committed (a
  leader commits in its own term; a follower learns commits from the leader of its current term),
  which keeps the check sound. A leader's log is recorded when it takes office.
- State Machine Safety: no two nodes apply different entries at one index (§5.4.3); the digest
  chain extends this to whole prefixes (and to snapshots).
- No acknowledged write lost: an acknowledged write stays committed at its index and term.
- Persist before send: a granted vote and an append acknowledgement leave a node only after the
  vote / the entries are durable on its disk.
- Linearizable reads: see linearizability.py (incremental checks here, the exact check at the end).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from raftkv.raft.types import Entry, EntryKind
from tests.unit.sim.kvmodel import chain_digest, decode_put
from tests.unit.sim.linearizability import ReadOp, WriteOp, check_history

__all__ = ["CommittedEntry", "History", "LeaderRecord", "Violation"]


class Violation(AssertionError):
    """A safety or liveness property failed. ``prop`` names it."""

    def __init__(self, prop: str, detail: str) -> None:
        self.prop = prop
        self.detail = detail
        super().__init__(f"{prop}: {detail}")


@dataclass(slots=True)
class CommittedEntry:
    term: int
    kind: EntryKind
    data: bytes
    digest: bytes
    commit_term: int  # an upper bound on the term in which it was committed
    first_node: str


@dataclass(slots=True)
class LeaderRecord:
    term: int
    node: str
    offset: int  # snapshot index of the leader's log when it took office
    terms: list[int]  # terms of entries offset+1 .. offset+len
    elected_at: int

    def term_at(self, index: int) -> int | None:
        if self.offset < index <= self.offset + len(self.terms):
            return self.terms[index - self.offset - 1]
        return None


@dataclass(slots=True)
class _KeyTimeline:
    ack_times: list[int] = field(default_factory=list)  # ascending
    ack_max_index: list[int] = field(default_factory=list)  # prefix max of log index
    read_ends: list[int] = field(default_factory=list)
    read_max_index: list[int] = field(default_factory=list)


class History:
    def __init__(self) -> None:
        self.leaders: dict[int, LeaderRecord] = {}
        self.committed: dict[int, CommittedEntry] = {}
        self.max_committed = 0
        self.entry_ids: dict[tuple[int, int], tuple[int, int, bytes]] = {}
        self.writes: dict[str, WriteOp] = {}  # by value
        self.reads: list[ReadOp] = []
        self.acked: dict[str, tuple[int, int]] = {}  # value -> (index, term)
        self.value_index: dict[str, int] = {}  # value -> committed log index
        self._timelines: dict[str, _KeyTimeline] = {}
        self.clock = 0
        self.elections = 0
        self.candidates: dict[int, set[str]] = {}  # term -> nodes seen as candidate in it
        self.snapshots_installed = 0

    def tick_clock(self) -> int:
        """The monotone clock that orders client-visible events (invoke / complete)."""
        self.clock += 1
        return self.clock

    # -- Election Safety + Leader Completeness at election -----------------------------------
    def leader_seen(
        self, node: str, term: int, offset: int, offset_term: int, terms: list[int], now: int
    ) -> None:
        rec = self.leaders.get(term)
        if rec is not None:
            if rec.node != node:
                raise Violation(
                    "Election Safety",
                    f"two leaders in term {term}: {rec.node} (since t={rec.elected_at}) and {node}",
                )
            return
        rec = LeaderRecord(term, node, offset, list(terms), now)
        self.leaders[term] = rec
        self.elections += 1
        # Leader Completeness: everything committed in an earlier term must be in its log.
        for index in range(offset + 1, self.max_committed + 1):
            ce = self.committed.get(index)
            if ce is not None and ce.commit_term < term:
                self._check_leader_has(rec, index, ce)
        ce = self.committed.get(offset)
        if offset and ce is not None and ce.term != offset_term and ce.commit_term < term:
            raise Violation(
                "Leader Completeness",
                f"leader {node} of term {term} starts from a snapshot at {offset}/{offset_term}, "
                f"but {offset}/{ce.term} is committed",
            )

    def _check_leader_has(self, rec: LeaderRecord, index: int, ce: CommittedEntry) -> None:
        if index <= rec.offset:
            return  # covered by the leader's snapshot (snapshots are checked by digest)
        have = rec.term_at(index)
        if have != ce.term:
            acked = ""
            if ce.kind is EntryKind.NORMAL:
                acked = " (an ACKNOWLEDGED write)" if self._is_acked(ce.data) else ""
            raise Violation(
                "Leader Completeness",
                f"entry {index}/{ce.term}{acked}, committed by term {ce.commit_term} at the "
                f"latest (first applied on {ce.first_node}), is missing from the log of "
                f"{rec.node}, leader of term {rec.term} (it has "
                f"{'nothing' if have is None else f'term {have}'} at {index})",
            )

    def _is_acked(self, data: bytes) -> bool:
        try:
            value = decode_put(data)[1]
        except ValueError:
            return False
        return value in self.acked

    # -- Log Matching ----------------------------------------------------------------------
    def entry_written(self, node: str, entry: Entry, prev_term: int | None) -> None:
        key = (entry.index, entry.term)
        ident = (-1 if prev_term is None else prev_term, int(entry.kind), entry.data)
        seen = self.entry_ids.get(key)
        if seen is None:
            self.entry_ids[key] = ident
            return
        if seen[1:] != ident[1:]:
            raise Violation(
                "Log Matching",
                f"{node} wrote entry {entry.index}/{entry.term} = {entry.data!r}, but another "
                f"log holds {entry.index}/{entry.term} = {seen[2]!r}",
            )
        if prev_term is not None and seen[0] >= 0 and seen[0] != prev_term:
            raise Violation(
                "Log Matching",
                f"{node} holds {entry.index}/{entry.term} after an entry of term {prev_term}, "
                f"another log holds it after term {seen[0]}: the logs differ before a "
                "matching entry",
            )

    # -- State Machine Safety ----------------------------------------------------------------
    def applied(self, node: str, node_term: int, entry: Entry, digest_after: bytes) -> None:
        ce = self.committed.get(entry.index)
        if ce is None:
            prev = self.committed.get(entry.index - 1)
            self.committed[entry.index] = CommittedEntry(
                entry.term, entry.kind, entry.data, digest_after, node_term, node
            )
            self.max_committed = max(self.max_committed, entry.index)
            if entry.kind is EntryKind.NORMAL and entry.data:
                self.write_committed(decode_put(entry.data)[1], entry.index)
            if prev is not None and chain_digest(prev.digest, entry) != digest_after:
                raise Violation(
                    "State Machine Safety",
                    f"{node} applied {entry.index}/{entry.term} on top of a state that differs "
                    f"from the committed prefix up to {entry.index - 1}",
                )
            self._commit_recorded(entry.index, node_term)
            return
        if (ce.term, ce.kind, ce.data) != (entry.term, entry.kind, entry.data):
            raise Violation(
                "State Machine Safety",
                f"{node} applied {entry.index}/{entry.term} {entry.data!r} but {ce.first_node} "
                f"applied {entry.index}/{ce.term} {ce.data!r} at the same index",
            )
        if ce.digest != digest_after:
            raise Violation(
                "State Machine Safety",
                f"{node} applied {entry.index}/{entry.term} on a state whose prefix differs from "
                f"{ce.first_node}'s (digest chain mismatch)",
            )
        if node_term < ce.commit_term:
            ce.commit_term = node_term
            self._commit_recorded(entry.index, node_term)

    def _commit_recorded(self, index: int, commit_term: int) -> None:
        ce = self.committed[index]
        for term, rec in self.leaders.items():
            if term > commit_term:
                self._check_leader_has(rec, index, ce)

    def snapshot_restored(self, node: str, index: int, term: int, digest: bytes) -> None:
        self.snapshots_installed += 1
        ce = self.committed.get(index)
        if index == 0:
            return
        if ce is None:
            raise Violation(
                "State Machine Safety",
                f"{node} restored a snapshot at {index}/{term}, an index nobody applied",
            )
        if ce.term != term or ce.digest != digest:
            raise Violation(
                "State Machine Safety",
                f"{node} restored a snapshot at {index}/{term} whose state differs from the "
                f"committed prefix (committed {index}/{ce.term})",
            )

    # -- clients -------------------------------------------------------------------------
    def write_invoked(self, op: WriteOp) -> None:
        self.writes[op.value] = op

    def write_committed(self, value: str, index: int) -> None:
        op = self.writes.get(value)
        if op is not None and op.index is None:
            op.index = index
            self.value_index[value] = index

    def write_acked(self, op: WriteOp, index: int, term: int) -> None:
        """The client learned its write committed: entry ``index``/``term`` (one of its
        attempts) was applied. The write took effect at ``op.index`` (its first application)."""
        if op.complete is not None:
            return  # a second attempt of an already acknowledged write
        op.complete = self.tick_clock()
        self.acked[op.value] = (index, term)
        ce = self.committed.get(index)
        if ce is None or ce.term != term:
            raise Violation(
                "No acknowledged write lost",
                f"write {op.value!r} acknowledged at {index}/{term} but committed there is "
                f"{'nothing' if ce is None else f'term {ce.term}'}",
            )
        if op.index is None:
            raise Violation(
                "No acknowledged write lost",
                f"write {op.value!r} acknowledged at {index}/{term} but never took effect",
            )
        tl = self._timeline(op.key)
        tl.ack_times.append(op.complete)
        tl.ack_max_index.append(max(op.index, tl.ack_max_index[-1] if tl.ack_max_index else 0))

    def read_completed(self, op: ReadOp) -> None:
        """Incremental linearizability: a read can't be older than what completed before it."""
        self.reads.append(op)
        if op.value is None:
            idx = 0
        else:
            got = self.value_index.get(op.value)
            if got is None:
                raise Violation(
                    "Linearizable reads",
                    f"read of {op.key!r} on {op.node} returned {op.value!r}, never committed",
                )
            idx = got
        tl = self._timeline(op.key)
        i = bisect.bisect_left(tl.ack_times, op.start)
        if i > 0 and tl.ack_max_index[i - 1] > idx:
            raise Violation(
                "Linearizable reads",
                f"stale read of {op.key!r} on {op.node} (read_index={op.read_index}, applied="
                f"{op.served_at}): returned the write at log index {idx}, but the write at "
                f"{tl.ack_max_index[i - 1]} was acknowledged before the read started",
            )
        j = bisect.bisect_left(tl.read_ends, op.start)
        if j > 0 and tl.read_max_index[j - 1] > idx:
            raise Violation(
                "Linearizable reads",
                f"stale read of {op.key!r} on {op.node}: returned the write at log index {idx}, "
                f"but an earlier read that completed before it started saw log index "
                f"{tl.read_max_index[j - 1]}",
            )
        tl.read_ends.append(op.end)
        tl.read_max_index.append(max(idx, tl.read_max_index[-1] if tl.read_max_index else 0))

    def _timeline(self, key: str) -> _KeyTimeline:
        tl = self._timelines.get(key)
        if tl is None:
            tl = self._timelines[key] = _KeyTimeline()
        return tl

    def check_linearizable(self) -> None:
        err = check_history(self.writes.values(), self.reads)
        if err is not None:
            raise Violation("Linearizable reads", err)

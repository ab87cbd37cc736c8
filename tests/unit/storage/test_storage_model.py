"""Property-based: random append / truncate / snapshot / compact / reopen / crash sequences,
checked against a simple in-memory model of what the Storage must hold."""

from __future__ import annotations

import copy
import os
import shutil
import struct
import tempfile

from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from raftkv.raft.types import Entry, EntryKind, HardState, Snapshot, SnapshotMeta
from raftkv.storage import Storage
from tests.unit.storage.storage_testutil import Model, segments

SEGMENT_BYTES = 4096
VOTES = st.sampled_from([None, "raft-0", "raft-1", "ü-node"])


class StorageMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="raftkv-storage-model-")
        self.st = Storage.open(self.dir, segment_bytes=SEGMENT_BYTES, keep_snapshots=2)
        self.model = Model()
        self.before_last_save: Model | None = None  # set while the newest record is a save's

    def teardown(self) -> None:
        self.st.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _reopen(self) -> None:
        self.st.close()
        self.st = Storage.open(self.dir, segment_bytes=SEGMENT_BYTES, keep_snapshots=2)
        rec = self.st.recovered
        assert rec.hard_state == self.model.hs
        assert rec.snapshot == self.model.snapshot
        assert rec.entries == self.model.log

    @rule(
        back=st.integers(0, 4),
        n=st.integers(0, 8),
        bump=st.integers(0, 2),
        covered=st.integers(0, 2),
        new_hs=st.none() | st.tuples(st.integers(0, 50), VOTES, st.integers(0, 100)),
        data=st.binary(max_size=300),
        noop=st.booleans(),
    )
    def append(
        self,
        back: int,
        n: int,
        bump: int,
        covered: int,
        new_hs: tuple[int, str | None, int] | None,
        data: bytes,
        noop: bool,
    ) -> None:
        m = self.model
        e0 = max(m.snap_index + 1, m.last + 1 - back)
        term = max(m.term_at(e0 - 1) or 0, 1) + bump
        kind = EntryKind.NOOP if noop else EntryKind.NORMAL
        batch = [Entry(index=e0 + k, term=term, kind=kind, data=data[k:]) for k in range(n)]
        # entries already inside the snapshot may be passed again: they are skipped
        lo = max(1, m.snap_index + 1 - covered)
        batch = [Entry(index=i, term=1, data=b"old") for i in range(lo, m.snap_index + 1)] + batch
        hs = (
            None
            if new_hs is None
            else HardState(term=new_hs[0], voted_for=new_hs[1], commit=new_hs[2])
        )
        before = copy.deepcopy(m)
        self.st.save(hs, batch)
        wrote = hs is not None or n > 0
        self.before_last_save = before if wrote else self.before_last_save
        if hs is not None:
            m.hs = hs
        if n:
            m.log = m.log[: e0 - m.snap_index - 1] + batch[len(batch) - n :]

    @precondition(lambda self: self.model.last > self.model.snap_index)
    @rule(k=st.integers(0, 1000), data=st.binary(max_size=64))
    def compact(self, k: int, data: bytes) -> None:
        m = self.model
        index = m.snap_index + 1 + k % (m.last - m.snap_index)
        term = m.term_at(index)
        assert term is not None
        s = Snapshot(meta=SnapshotMeta(index=index, term=term, members=("raft-0",)), data=data)
        self.st.save_snapshot(s)
        m.apply_snapshot(s)
        self.before_last_save = None

    @rule(k=st.integers(0, 10), dterm=st.integers(0, 3), data=st.binary(max_size=64))
    def install(self, k: int, dterm: int, data: bytes) -> None:
        """A snapshot from a leader: may or may not match the local log (Raft §7)."""
        m = self.model
        index = m.snap_index + 1 + k
        term = max(m.snap_term, 1) + dterm
        s = Snapshot(meta=SnapshotMeta(index=index, term=term, members=("a", "b")), data=data)
        self.st.save_snapshot(s)
        m.apply_snapshot(s)
        self.before_last_save = None

    @rule()
    def reopen(self) -> None:
        self._reopen()

    @precondition(lambda self: self.before_last_save is not None)
    @rule(frac=st.floats(0, 1, exclude_max=True))
    def crash_mid_last_save(self, frac: float) -> None:
        """Power cut while the last save was being written: its record is torn."""
        self.st.close()
        seg = segments(self.dir)[-1]
        with open(seg, "rb") as f:
            raw = f.read()
        off, start = 24, 24
        while off < len(raw):
            start = off
            off += 16 + struct.unpack_from("<I", raw, off)[0]
        assert off == len(raw)
        with open(seg, "r+b") as f:
            f.truncate(start + int(frac * (len(raw) - start)))
        assert self.before_last_save is not None
        self.model = self.before_last_save
        self.before_last_save = None
        self.st = Storage.open(self.dir, segment_bytes=SEGMENT_BYTES, keep_snapshots=2)
        self._reopen()

    @invariant()
    def views_match(self) -> None:
        m = self.model
        assert self.st.last_index == m.last
        assert self.st.first_index == m.snap_index + 1
        assert self.st.hard_state == m.hs
        for i in (m.snap_index, m.last, (m.snap_index + m.last) // 2, m.last + 1):
            assert self.st.term_at(i) == m.term_at(i), i
        snaps = os.listdir(os.path.join(self.dir, "snap"))
        assert len([s for s in snaps if s.endswith(".snap")]) <= 2


StorageMachine.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestStorageModel = StorageMachine.TestCase

"""The snapshot trigger (snapshot_policy.py): entry floor, log bytes relative to the last
snapshot's size, and the ceiling."""

from __future__ import annotations

from raftkv.server.snapshot_policy import (
    LOG_RATIO,
    MAX_LOG_BYTES,
    SnapshotSchedule,
    should_snapshot,
)


def test_never_before_the_entry_floor() -> None:
    assert not should_snapshot(99, MAX_LOG_BYTES * 2, 0, 100)
    assert should_snapshot(100, 0, 0, 100)  # tiny data: the floor alone decides, as before


def test_log_bytes_relative_to_the_last_snapshot() -> None:
    last = 10 << 20
    assert not should_snapshot(10_000, int(LOG_RATIO * last) - 1, last, 100)
    assert should_snapshot(10_000, int(LOG_RATIO * last), last, 100)


def test_ceiling_bounds_the_log_whatever_the_data_size() -> None:
    huge = 1 << 40
    assert not should_snapshot(10_000, MAX_LOG_BYTES - 1, huge, 100)
    assert should_snapshot(10_000, MAX_LOG_BYTES, huge, 100)


def test_schedule_counts_from_the_last_snapshot_and_keeps_what_was_applied_while_writing() -> None:
    s = SnapshotSchedule()
    s.restored(100)  # e.g. recovered at start
    s.last_bytes = 1000
    s.log_bytes = 600
    assert not s.due(100 + 9, snapshot_every=10)  # the entry floor
    assert s.due(100 + 10, snapshot_every=10)  # 600 >= 0.5 x 1000
    s.copied()  # snapshot of index 110 copied...
    s.log_bytes += 50  # ...then more entries applied while it is written
    s.written(110, size=2000)
    assert (s.index, s.applied_at, s.last_bytes, s.log_bytes) == (110, 110, 2000, 50)
    s.written(105, size=None)  # not adopted (a newer one was there): the index stays
    assert (s.index, s.applied_at) == (110, 110)
    s.nothing_new(120)
    assert (s.applied_at, s.log_bytes) == (120, 0)

"""The snapshot trigger (snapshot_policy.py): entry floor, log bytes relative to the last
snapshot's size, and the ceiling."""

from __future__ import annotations

from raftkv.server.snapshot_policy import LOG_RATIO, MAX_LOG_BYTES, should_snapshot


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

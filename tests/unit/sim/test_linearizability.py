"""The linearizability checker on hand-made histories (no Raft involved)."""

from __future__ import annotations

from tests.unit.sim.linearizability import ReadOp, WriteOp, check_history


def w(value: str, invoke: int, complete: int | None, index: int | None, key: str = "k") -> WriteOp:
    return WriteOp(key=key, value=value, invoke=invoke, complete=complete, index=index)


def r(value: str | None, start: int, end: int, key: str = "k") -> ReadOp:
    return ReadOp(key=key, start=start, end=end, value=value, node="n")


def test_sequential_history_is_linearizable() -> None:
    writes = [w("a", 1, 2, 5), w("b", 5, 6, 7)]
    reads = [r(None, 0, 1), r("a", 3, 4), r("b", 7, 8)]
    assert check_history(writes, reads) is None


def test_read_after_acknowledged_write_must_see_it() -> None:
    writes = [w("a", 1, 2, 5), w("b", 3, 4, 6)]
    err = check_history(writes, [r("a", 5, 6)])  # b was acknowledged at 4, read started at 5
    assert err is not None and "stale read" in err


def test_concurrent_write_may_or_may_not_be_seen() -> None:
    writes = [w("a", 1, 2, 5), w("b", 3, 10, 6)]
    assert check_history(writes, [r("a", 4, 5)]) is None
    assert check_history(writes, [r("b", 4, 5)]) is None


def test_unacknowledged_committed_write_may_be_seen_later() -> None:
    writes = [w("a", 1, None, 5)]  # the client never learned the outcome
    assert check_history(writes, [r(None, 2, 3), r("a", 4, 5)]) is None


def test_reads_may_not_go_back_in_time() -> None:
    writes = [w("a", 1, 2, 5), w("b", 3, 20, 6)]
    # the first read saw b (concurrent); a read starting after it finished must not see a
    err = check_history(writes, [r("b", 4, 5), r("a", 6, 7)])
    assert err is not None and "stale read" in err


def test_overlapping_reads_may_disagree() -> None:
    writes = [w("a", 1, 2, 5), w("b", 3, 20, 6)]
    assert check_history(writes, [r("b", 4, 8), r("a", 6, 7)]) is None


def test_read_of_a_never_committed_value() -> None:
    writes = [w("a", 1, None, None)]
    err = check_history(writes, [r("a", 2, 3)])
    assert err is not None and "no committed write" in err


def test_write_order_must_respect_real_time() -> None:
    # b was acknowledged before a was even invoked, yet the log puts a first: a later read of b
    # cannot be explained
    writes = [w("b", 1, 2, 7), w("a", 3, 4, 6)]
    err = check_history(writes, [r("b", 5, 6)])
    assert err is not None


def test_keys_are_independent() -> None:
    writes = [w("a", 1, 2, 5, key="x"), w("b", 3, 4, 6, key="y")]
    assert check_history(writes, [r(None, 5, 6, key="z"), r("a", 5, 6, key="x")]) is None

"""log.py: the in-memory log with a snapshot offset."""

from __future__ import annotations

import pytest

from raftkv.raft import Entry, InvariantViolation
from raftkv.raft.log import RaftLog


def _log(terms: list[int], offset: int = 0, offset_term: int = 0) -> RaftLog:
    return RaftLog(
        offset, offset_term, [Entry(index=offset + i, term=t) for i, t in enumerate(terms, 1)]
    )


def test_indexing_after_an_offset() -> None:
    log = _log([2, 2, 3], offset=10, offset_term=2)
    assert (log.first_index(), log.last_index(), log.last_term()) == (11, 13, 3)
    assert [log.term(i) for i in (9, 10, 11, 13, 14)] == [None, 2, 2, 3, None]
    assert log.entry(12).index == 12
    assert [e.index for e in log.slice(1, 12)] == [11, 12]
    assert log.slice(14, 20) == []


def test_append_must_be_contiguous_with_non_decreasing_terms() -> None:
    log = _log([1, 2])
    with pytest.raises(InvariantViolation):
        log.append([Entry(index=4, term=2)])
    with pytest.raises(InvariantViolation):
        log.append([Entry(index=3, term=1)])
    log.append([Entry(index=3, term=2)])
    assert log.last_index() == 3


def test_truncate_and_compact() -> None:
    log = _log([1, 1, 2, 2, 3])
    log.truncate_from(4)
    assert log.last_index() == 3
    log.compact(2)
    assert (log.offset, log.offset_term, log.last_index()) == (2, 1, 3)
    with pytest.raises(InvariantViolation):
        log.truncate_from(2)
    log.restore(50, 7)
    assert (log.last_index(), log.last_term(), len(log)) == (50, 7, 0)


def test_limited_slices_respect_count_and_bytes() -> None:
    log = RaftLog(0, 0, [Entry(index=i, term=1, data=b"x" * 10) for i in range(1, 11)])
    assert len(log.slice_limited(1, 4, 1000)) == 4
    assert len(log.slice_limited(1, 100, 35)) == 3
    assert len(log.slice_limited(1, 100, 1)) == 1  # at least one entry
    assert log.slice_limited(11, 5, 100) == []


def test_term_searches() -> None:
    log = _log([1, 1, 3, 3, 3, 5], offset=4, offset_term=1)
    assert log.last_index_of_term(3) == 9
    assert log.last_index_of_term(1) == 6
    assert log.last_index_of_term(2) is None
    assert log.last_index_of_term(5) == 10
    assert log.first_index_of_term(3) == 7
    assert log.first_index_of_term(1) == 5


def test_up_to_date_comparison() -> None:
    log = _log([1, 2, 2])
    assert log.is_up_to_date(3, 2) and log.is_up_to_date(1, 3)
    assert not log.is_up_to_date(2, 2) and not log.is_up_to_date(10, 1)

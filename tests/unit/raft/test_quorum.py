"""quorum.py: majority arithmetic."""

from __future__ import annotations

import pytest

from raftkv.raft.quorum import VoteResult, committed_index, quorum_size, vote_result


@pytest.mark.parametrize(("n", "q"), [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3), (7, 4)])
def test_quorum_size(n: int, q: int) -> None:
    assert quorum_size(n) == q


def test_committed_index_is_the_quorum_th_largest_match() -> None:
    assert committed_index([5, 3, 9], 2) == 5
    assert committed_index([5, 3, 9, 1, 1], 3) == 3
    assert committed_index([7], 1) == 7


def test_vote_result() -> None:
    voters = ["a", "b", "c"]
    assert vote_result({"a": True}, voters) is VoteResult.PENDING
    assert vote_result({"a": True, "b": True}, voters) is VoteResult.WON
    assert vote_result({"a": True, "b": False, "c": False}, voters) is VoteResult.LOST
    assert vote_result({"a": True, "x": True}, voters) is VoteResult.PENDING  # non-voters ignored

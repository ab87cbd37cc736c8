"""quorum.py — majority arithmetic, as pure functions.

- ``quorum_size(n)``: the smallest majority of ``n`` voters.
- ``committed_index(matches, quorum)``: the highest index replicated on a quorum.
- ``vote_result(votes, voters)``: WON / LOST / PENDING for a tally (granted or rejected per voter).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping

__all__ = ["VoteResult", "committed_index", "quorum_size", "vote_result"]


class VoteResult(enum.Enum):
    PENDING = "pending"
    WON = "won"
    LOST = "lost"


def quorum_size(n: int) -> int:
    return n // 2 + 1


def committed_index(matches: Iterable[int], quorum: int) -> int:
    """The largest index ``i`` such that at least ``quorum`` of ``matches`` are >= i."""
    ordered = sorted(matches, reverse=True)
    return ordered[quorum - 1] if len(ordered) >= quorum else 0


def vote_result(votes: Mapping[str, bool], voters: Iterable[str]) -> VoteResult:
    voters = tuple(voters)
    q = quorum_size(len(voters))
    granted = sum(1 for v in voters if votes.get(v) is True)
    rejected = sum(1 for v in voters if votes.get(v) is False)
    if granted >= q:
        return VoteResult.WON
    if rejected > len(voters) - q:
        return VoteResult.LOST
    return VoteResult.PENDING

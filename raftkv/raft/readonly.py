"""readonly.py — batched ReadIndex rounds (Raft thesis §6.4), leader side bookkeeping.

A read is released as ``(request_id, index)`` where ``index`` is the commit index recorded when its
round started, once a quorum (the leader included) answered a heartbeat sent at or after that start.

Batching: a read that arrives while no round is in flight starts one; reads arriving while rounds
are in flight wait in ``next_batch`` and start ONE round together (when the in-flight rounds finish,
or at the next heartbeat). Heartbeats carry the newest round's ``context``; an answer for context
``c`` acknowledges every round with context <= c (it was sent after they started). So a burst of
reads costs one heartbeat round per batch, not per read.

Reads that arrive before the leader committed an entry of its own term wait in ``waiting`` (the
commit index is not known to be current until then).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection
from dataclasses import dataclass, field

__all__ = ["ReadOnly", "ReadRound"]


@dataclass(slots=True)
class ReadRound:
    context: int
    index: int
    request_ids: list[str]
    acks: set[str] = field(default_factory=set)


class ReadOnly:
    __slots__ = ("_seq", "next_batch", "rounds", "waiting")

    def __init__(self, seq: int = 0) -> None:
        self._seq = seq
        self.rounds: deque[ReadRound] = deque()
        self.next_batch: list[str] = []
        self.waiting: list[str] = []

    @property
    def seq(self) -> int:
        return self._seq

    def reset(self) -> None:
        """Leadership lost: forget every pending read (the driver fails them via soft_state)."""
        self.rounds.clear()
        self.next_batch = []
        self.waiting = []

    def newest_context(self) -> int:
        return self.rounds[-1].context if self.rounds else 0

    def start_round(self, index: int, request_ids: list[str], self_id: str) -> ReadRound:
        self._seq += 1
        r = ReadRound(self._seq, index, request_ids, {self_id})
        self.rounds.append(r)
        return r

    def ack(
        self, peer: str, context: int, quorum: int, voters: Collection[str] | None = None
    ) -> list[ReadRound]:
        """Record that ``peer`` answered heartbeat ``context``; return the rounds now confirmed.

        Only acknowledgements from ``voters`` (when given) count toward ``quorum``: a learner's
        answer (or a non-voting leader's own) proves nothing about who could elect a new leader.
        """
        if context <= 0:
            return []
        for r in self.rounds:
            if r.context > context:
                break
            r.acks.add(peer)
        done: list[ReadRound] = []
        while self.rounds and self._count(self.rounds[0].acks, voters) >= quorum:
            done.append(self.rounds.popleft())
        return done

    @staticmethod
    def _count(acks: set[str], voters: Collection[str] | None) -> int:
        if voters is None:
            return len(acks)
        return sum(1 for a in acks if a in voters)

"""readonly.py — batched ReadIndex rounds (Raft thesis §6.4), leader side bookkeeping.

The shape of etcd's ``read_only.go``: the core calls methods, never touches the fields.

- ``add_request(index, request_ids, self_id)``: reads at commit index ``index``. No round in
  flight: they start one now (returns its ``context``: broadcast heartbeats carrying it). A round
  in flight: they join the next batch (returns 0) — so a burst of reads costs one heartbeat round
  per batch, not per read. This module is the ONE batching owner (the driver hands over what it
  has, every pass, and never decides when a round starts).
- ``start_batch(index, self_id)``: the next batch starts a round now (at the heartbeat tick, or
  once the rounds in flight are confirmed: ``in_flight`` is False).
- ``recv_ack(peer, context)``: ``peer`` answered a heartbeat carrying ``context``; that answer
  acknowledges every round with context <= ``context`` (it was sent after they started).
- ``advance(quorum, voters)``: pop the rounds a quorum of voters acknowledged, oldest first. A
  round's reads are released as ``(request_id, round.index)``.
- ``defer(request_id)`` / ``take_deferred()``: reads that arrived before the leader committed an
  entry of its own term (the commit index is not known to be current until then).
- ``reset()``: leadership lost, forget everything (the driver fails its waiters via soft_state).

A request id is opaque here: the core decides what releasing it means (a local ReadState today;
an answer to another node could be another kind of id).
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
    __slots__ = ("_deferred", "_next_batch", "_rounds", "_seq")

    def __init__(self, seq: int = 0) -> None:
        self._seq = seq
        self._rounds: deque[ReadRound] = deque()
        self._next_batch: list[str] = []
        self._deferred: list[str] = []

    # ------------------------------------------------------------------ read-only views
    @property
    def seq(self) -> int:
        return self._seq

    @property
    def rounds(self) -> tuple[ReadRound, ...]:
        """The rounds in flight, oldest first."""
        return tuple(self._rounds)

    @property
    def next_batch(self) -> list[str]:
        """Reads waiting for the next round (a copy)."""
        return list(self._next_batch)

    @property
    def waiting(self) -> list[str]:
        """Reads waiting for a commit in the leader's term (a copy)."""
        return list(self._deferred)

    @property
    def in_flight(self) -> bool:
        return bool(self._rounds)

    def last_pending_context(self) -> int:
        """The newest round's context (0: none): what heartbeats carry."""
        return self._rounds[-1].context if self._rounds else 0

    # ------------------------------------------------------------------ requests
    def add_request(self, index: int, request_ids: list[str], self_id: str) -> int:
        """Reads at commit ``index``: a new round's context (send heartbeats with it), or 0 when
        they joined the next batch because a round is in flight."""
        if self._rounds:
            self._next_batch.extend(request_ids)
            return 0
        return self.start_round(index, list(request_ids), self_id).context

    def start_batch(self, index: int, self_id: str) -> int:
        """Start a round for the next batch now; its context, or 0 if the batch is empty."""
        if not self._next_batch:
            return 0
        batch, self._next_batch = self._next_batch, []
        return self.start_round(index, batch, self_id).context

    def start_round(self, index: int, request_ids: list[str], self_id: str) -> ReadRound:
        """A round for ``request_ids`` at ``index`` now, acknowledged by ``self_id`` already."""
        self._seq += 1
        r = ReadRound(self._seq, index, request_ids, {self_id})
        self._rounds.append(r)
        return r

    def defer(self, request_id: str) -> None:
        """Hold a read until the leader committed an entry of its term (``take_deferred``)."""
        self._deferred.append(request_id)

    def take_deferred(self) -> list[str]:
        deferred, self._deferred = self._deferred, []
        return deferred

    def reset(self) -> None:
        """Leadership lost: forget every pending read (the driver fails them via soft_state)."""
        self._rounds.clear()
        self._next_batch = []
        self._deferred = []

    # ------------------------------------------------------------------ acknowledgements
    def recv_ack(self, peer: str, context: int) -> None:
        """``peer`` answered a heartbeat carrying ``context`` (0: not a read round's)."""
        if context <= 0:
            return
        for r in self._rounds:
            if r.context > context:
                break
            r.acks.add(peer)

    def advance(self, quorum: int, voters: Collection[str] | None = None) -> list[ReadRound]:
        """Pop and return the rounds now confirmed, oldest first.

        Only acknowledgements from ``voters`` (when given) count toward ``quorum``: a learner's
        answer (or a non-voting leader's own) proves nothing about who could elect a new leader.
        """
        done: list[ReadRound] = []
        rounds = self._rounds
        while rounds and self._count(rounds[0].acks, voters) >= quorum:
            done.append(rounds.popleft())
        return done

    @staticmethod
    def _count(acks: set[str], voters: Collection[str] | None) -> int:
        if voters is None:
            return len(acks)
        return sum(1 for a in acks if a in voters)

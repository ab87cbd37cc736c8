"""reads.py — ``LinearizableReads``: the driver's side of ReadIndex (thesis §6.4).

A request thread calls ``enqueue(waiter)`` and blocks; the driver thread, once per pass, hands
EVERY read queued since the last pass to the core as ONE request id (``start``). The core's
``readonly.py`` is the one batching owner: it decides when a round of heartbeats starts (now, or
together with the reads that arrive while a round is in flight) and releases ``ReadState(id,
index)``; ``released`` records the index, and ``applied`` wakes the reads once the state machine
applied that index (at the very end of the pass: ``wake``).

Wake-ups: while a round is in flight (``in_flight``) a new read does not wake the driver; the
round's confirmation (a heartbeat answer) or the next tick does, and the read is handed over
then. The driver refreshes the flag BEFORE it looks at the queue (``enqueue`` appends before it
looks at the flag), so a queued read is never left without a wake-up.

Thread-safety: ``enqueue`` and ``in_flight`` from any thread; everything else on the driver
thread only.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from raftkv.errors import CommitTimeout, RaftkvError
from raftkv.raft import NotLeader as CoreNotLeader, RaftNode, ReadState
from raftkv.server.waiters import Waiter

__all__ = ["LinearizableReads"]


@dataclass(slots=True)
class _Read:
    created: float
    index: int = -1  # -1 until the core released the ReadState
    waiters: list[Waiter[int]] = field(default_factory=list)


class LinearizableReads:
    def __init__(
        self, clock: Callable[[], float], not_leader: Callable[[str | None], RaftkvError]
    ) -> None:
        self._clock = clock
        self._not_leader = not_leader
        self._queue: deque[Waiter[int]] = deque()  # waiting to be handed to the core
        self._pending: dict[str, _Read] = {}  # handed over, ReadState not released yet
        self._released: list[_Read] = []  # released, waiting for the state machine to apply
        self._wake: list[_Read] = []  # answered during this pass
        self._seq = 0
        self._in_flight = False

    # ------------------------------------------------------------------ any thread
    def enqueue(self, waiter: Waiter[int]) -> bool:
        """Queue a read; True if the driver must be woken for it (no round in flight)."""
        self._queue.append(waiter)
        return not self._in_flight

    # ------------------------------------------------------------------ driver thread
    @property
    def queued(self) -> bool:
        return bool(self._queue)

    @property
    def pending(self) -> bool:
        return bool(self._pending)

    def refresh_in_flight(self) -> None:
        self._in_flight = bool(self._pending)

    def start(self, node: RaftNode) -> None:
        """Hand every queued read to the core as one request id."""
        queue = self._queue
        reads: list[Waiter[int]] = []
        while queue:
            reads.append(queue.popleft())
        if not reads:
            return
        self._seq += 1
        rid = f"r{self._seq}"
        try:
            node.read_index(rid)
        except CoreNotLeader as err:
            e = self._not_leader(err.leader_hint)
            for w in reads:
                w.fail(e)
        else:
            self._pending[rid] = _Read(created=self._clock(), waiters=reads)

    def released(self, read_states: Sequence[ReadState]) -> None:
        """The core confirmed these reads at their index (Ready.read_states)."""
        for rs in read_states:
            read = self._pending.pop(rs.request_id, None)
            if read is not None:
                read.index = rs.index
                self._released.append(read)

    def applied(self, applied_index: int) -> None:
        """The state machine applied up to ``applied_index``: answer the reads it covers."""
        if not self._released:
            return
        still = []
        for read in self._released:
            if read.index <= applied_index:
                self._wake.append(read)
            else:
                still.append(read)
        self._released = still

    def wake(self) -> None:
        """End of the pass: release the request threads answered during it."""
        reads, self._wake = self._wake, []
        for read in reads:
            for w in read.waiters:
                w.resolve(read.index)

    def ask_again(self, before: float | None = None) -> None:
        """Hand the reads of the rounds started before ``before`` (default: all) back to the
        queue, oldest first, to be asked again at the next ``start``: a follower's read index
        request or its answer was lost, or its leader changed (the old one's answer will not
        come). A later read index serves the same reads (it is at least as recent)."""
        again = [rid for rid, r in self._pending.items() if before is None or r.created < before]
        for rid in reversed(again):
            self._queue.extendleft(reversed(self._pending.pop(rid).waiters))

    def expire(self, horizon: float) -> None:
        """Forget rounds started before ``horizon``: nobody waits for them any more (the request
        timed out)."""
        stale = [rid for rid, r in self._pending.items() if r.created < horizon]
        for rid in stale:
            for w in self._pending.pop(rid).waiters:
                w.fail(CommitTimeout("linearizable read was never confirmed; retry"))

    def fail_all(self, err: BaseException) -> None:
        """Leadership lost or the node stops: every read not answered yet fails with ``err``."""
        for read in [*self._pending.values(), *self._released]:
            for w in read.waiters:
                w.fail(err)
        self._pending.clear()
        self._released = []
        while self._queue:
            self._queue.popleft().fail(err)

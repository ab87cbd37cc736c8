"""handover.py — ``Handover``: leadership transfers asked for by an admin, and the one a leader
starts when it shuts down (thesis §3.10; the core does the protocol, this tracks who waits).

- ``transfer(node, role, leader, target, waiter)``: ask the core to hand leadership over; the
  waiter is answered with the new leader once our role changes (``on_role``), or fails after
  4 election timeouts (``expire``).
- ``begin_shutdown(node, role, peers)``: a leader of a multi-node cluster hands over before it
  stops; ``stop()`` (another thread) waits while ``pending``, bounded by 3 election timeouts.

Driver thread only, except ``pending`` and ``shutdown_seen`` (read by ``NodeDriver.stop``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from raftkv.errors import CommitTimeout, NoLeader, RaftkvError
from raftkv.raft import NotLeader as CoreNotLeader, RaftNode, Role
from raftkv.server.waiters import Waiter

__all__ = ["Handover"]

log = logging.getLogger(__name__)


class Handover:
    def __init__(
        self,
        election_s: float,
        clock: Callable[[], float],
        not_leader: Callable[[str | None], RaftkvError],
    ) -> None:
        self._election_s = election_s
        self._clock = clock
        self._not_leader = not_leader
        self._transfers: list[tuple[float, Waiter[str | None]]] = []  # (deadline, waiter)
        self.pending = False  # a shutdown handover is under way
        self._deadline = 0.0
        self.shutdown_seen = threading.Event()  # the driver took in the shutdown

    def transfer(
        self,
        node: RaftNode,
        role: Role,
        leader: str | None,
        target: str | None,
        waiter: Waiter[str | None] | None,
    ) -> bool:
        """Ask the core to hand leadership over; True if a transfer is under way."""
        if role is not Role.LEADER:
            if waiter is not None:
                waiter.fail(self._not_leader(leader))
            return False
        try:
            chosen = node.transfer_leadership(target)
        except CoreNotLeader as err:
            if waiter is not None:
                waiter.fail(self._not_leader(err.leader_hint))
            return False
        except Exception as err:  # the core refused (e.g. no follower): report, don't die
            log.warning("event=transfer-leadership-refused error=%s", err)
            if waiter is not None:
                waiter.fail(NoLeader(f"leadership transfer refused: {err}"))
            return False
        log.info("event=transfer-leadership target=%s", chosen or target or "auto")
        if waiter is not None:
            self._transfers.append((self._clock() + 4 * self._election_s, waiter))
        return True

    def begin_shutdown(self, node: RaftNode, role: Role, leader: str | None, peers: int) -> None:
        """We are stopping: a leader with followers hands leadership over first."""
        if role is Role.LEADER and peers > 1:
            self.pending = self.transfer(node, role, leader, None, None)
            self._deadline = self._clock() + 3 * self._election_s
        self.shutdown_seen.set()  # stop() may now rely on ``pending``

    def on_role(self, role: Role, leader: str | None) -> None:
        """Our role changed: a transfer we waited for is over once we no longer lead."""
        if role is Role.LEADER:
            return
        self.pending = False
        transfers, self._transfers = self._transfers, []
        for _, w in transfers:
            w.resolve(leader)

    def expire(self, now: float, still_leader: bool) -> None:
        if self.pending and now >= self._deadline:
            log.warning("event=handover-timeout still-leader=%s", still_leader)
            self.pending = False
        if not self._transfers:
            return
        keep = []
        for deadline, w in self._transfers:
            if now >= deadline:
                w.fail(CommitTimeout("leadership transfer did not complete; still the leader"))
            else:
                keep.append((deadline, w))
        self._transfers = keep

    def fail_all(self, err: BaseException) -> None:
        transfers, self._transfers = self._transfers, []
        for _, w in transfers:
            w.fail(err)

"""handover.py: a transfer's waiter learns the new leader, or times out; a leader that shuts
down hands over first, a follower does not."""

from __future__ import annotations

from raftkv.errors import CommitTimeout, NotLeader, RaftkvError
from raftkv.raft import Role
from raftkv.server.handover import Handover
from raftkv.server.waiters import Waiter


class _Core:
    def __init__(self) -> None:
        self.targets: list[str | None] = []

    def transfer_leadership(self, target: str | None = None) -> str:
        self.targets.append(target)
        return target or "n2"


def _not_leader(hint: str | None) -> RaftkvError:
    return NotLeader(f"leader is {hint}", leader=hint)


def test_a_transfer_is_answered_with_the_new_leader_or_times_out() -> None:
    now = [0.0]
    h = Handover(election_s=1.0, clock=lambda: now[0], not_leader=_not_leader)
    core = _Core()
    done: Waiter[str | None] = Waiter()
    assert h.transfer(core, Role.LEADER, "n1", "n3", done)  # type: ignore[arg-type]
    h.on_role(Role.FOLLOWER, "n3")
    assert done.wait(0) and done.value == "n3"

    late: Waiter[str | None] = Waiter()
    h.transfer(core, Role.LEADER, "n1", None, late)  # type: ignore[arg-type]
    h.expire(now=3.9, still_leader=True)
    assert not late.done
    h.expire(now=4.0, still_leader=True)  # 4 election timeouts
    assert late.wait(0) and isinstance(late.error, CommitTimeout)
    assert core.targets == ["n3", None]


def test_a_follower_refuses_and_only_a_leader_hands_over_on_shutdown() -> None:
    h = Handover(election_s=1.0, clock=lambda: 0.0, not_leader=_not_leader)
    core = _Core()
    w: Waiter[str | None] = Waiter()
    assert not h.transfer(core, Role.FOLLOWER, "n2", None, w)  # type: ignore[arg-type]
    assert isinstance(w.error, NotLeader) and w.error.leader == "n2"
    h.begin_shutdown(core, Role.FOLLOWER, "n2", peers=3)  # type: ignore[arg-type]
    assert h.shutdown_seen.is_set() and not h.pending and core.targets == []
    h.begin_shutdown(core, Role.LEADER, "n1", peers=3)  # type: ignore[arg-type]
    assert h.pending and core.targets == [None]
    h.expire(now=3.0, still_leader=True)  # abandoned after 3 election timeouts
    assert not h.pending

"""reads.py: the driver's side of ReadIndex — queued reads go to the core as one request id, are
answered once the state machine applied their index, and fail on a lost leadership."""

from __future__ import annotations

from raftkv.errors import CommitTimeout, NotLeader, RaftkvError
from raftkv.raft import NotLeader as CoreNotLeader, ReadState
from raftkv.server.reads import LinearizableReads
from raftkv.server.waiters import Waiter


class _Core:
    def __init__(self, leader: bool = True) -> None:
        self.leader = leader
        self.asked: list[str] = []

    def read_index(self, request_id: str) -> None:
        if not self.leader:
            raise CoreNotLeader("n2")
        self.asked.append(request_id)


def _not_leader(hint: str | None) -> RaftkvError:
    return NotLeader(f"leader is {hint}", leader=hint)


def answer(w: Waiter[int]) -> int | BaseException:
    assert w.wait(0), "not answered"
    if w.error is not None:
        return w.error
    assert w.value is not None
    return w.value


def test_queued_reads_share_one_request_and_wait_for_the_apply() -> None:
    now = [0.0]
    reads = LinearizableReads(lambda: now[0], _not_leader)
    core = _Core()
    ws: list[Waiter[int]] = [Waiter() for _ in range(3)]
    assert reads.enqueue(ws[0])  # nothing in flight: wake the driver
    reads.start(core)  # type: ignore[arg-type]
    reads.refresh_in_flight()
    assert not reads.enqueue(ws[1]) and not reads.enqueue(ws[2])  # in flight: no wake-up
    reads.start(core)  # type: ignore[arg-type]
    assert core.asked == ["r1", "r2"]  # one id per hand-over, the core batches them
    reads.released([ReadState("r1", 5), ReadState("r2", 7)])
    reads.applied(6)
    reads.wake()
    assert answer(ws[0]) == 5 and not ws[1].done and not ws[2].done
    reads.applied(7)
    reads.wake()
    assert answer(ws[1]) == 7 and answer(ws[2]) == 7
    reads.refresh_in_flight()
    assert not reads.pending and reads.enqueue(Waiter())


def test_a_follower_fails_reads_with_the_leader_hint() -> None:
    reads = LinearizableReads(lambda: 0.0, _not_leader)
    w: Waiter[int] = Waiter()
    reads.enqueue(w)
    reads.start(_Core(leader=False))  # type: ignore[arg-type]
    err = answer(w)
    assert isinstance(err, NotLeader) and err.leader == "n2"


def test_lost_leadership_fails_every_unanswered_read_and_expiry_forgets_old_rounds() -> None:
    now = [0.0]
    reads = LinearizableReads(lambda: now[0], _not_leader)
    core = _Core()
    started, released, queued = Waiter[int](), Waiter[int](), Waiter[int]()
    reads.enqueue(released)
    reads.start(core)  # type: ignore[arg-type]
    reads.released([ReadState("r1", 9)])
    reads.enqueue(started)
    reads.start(core)  # type: ignore[arg-type]
    reads.enqueue(queued)
    reads.fail_all(_not_leader(None))
    assert all(isinstance(answer(w), NotLeader) for w in (started, released, queued))

    old: Waiter[int] = Waiter()
    reads.enqueue(old)
    reads.start(core)  # type: ignore[arg-type]
    now[0] = 10.0
    reads.expire(horizon=5.0)
    assert isinstance(answer(old), CommitTimeout)
    assert not reads.pending


def test_a_follower_asks_again_for_rounds_never_answered() -> None:
    # a follower's read index request (or the answer) was lost, or its leader changed: the reads
    # of the rounds started before the horizon are asked again, oldest first; a late answer to
    # the old id is ignored
    now = [0.0]
    reads = LinearizableReads(lambda: now[0], _not_leader)
    core = _Core()
    old: list[Waiter[int]] = [Waiter(), Waiter()]
    for w in old:
        reads.enqueue(w)
    reads.start(core)  # type: ignore[arg-type]
    now[0] = 1.0
    new: Waiter[int] = Waiter()
    reads.enqueue(new)
    reads.start(core)  # type: ignore[arg-type]
    reads.ask_again(0.5)  # only r1 is older than the horizon
    assert reads.queued and reads.pending
    reads.start(core)  # type: ignore[arg-type]
    assert core.asked == ["r1", "r2", "r3"]
    reads.released([ReadState("r1", 4)])  # the old answer after all: nobody waits on r1
    reads.released([ReadState("r3", 6), ReadState("r2", 6)])
    reads.applied(6)
    reads.wake()
    assert [answer(w) for w in (*old, new)] == [6, 6, 6]
    reads.ask_again()  # nothing pending: nothing to do
    assert not reads.queued and not reads.pending

"""proposals.py: a write is acknowledged only if the entry applied at its index has its term;
answers wait for the end of the pass; a stop answers proposed writes "unknown outcome"."""

from __future__ import annotations

from raftkv.errors import NodeFailed, OutcomeUnknown, ProposalLost
from raftkv.kv import Command, Op, Outcome, Result
from raftkv.server.proposals import Proposals
from raftkv.server.waiters import Waiter


def put(key: str) -> Command:
    return Command(op=Op.PUT, key=key, value="v")


def test_same_term_is_acknowledged_another_term_is_lost_at_the_end_of_the_pass() -> None:
    lost: list[int] = []
    p = Proposals(lambda: lost.append(1))
    ours, overwritten = Waiter[Result](), Waiter[Result]()
    p.add(5, 2, ours, put("a"))
    p.add(6, 2, overwritten, put("b"))
    ok = Result(outcome=Outcome.OK, index=5, term=2, key="a", value="v")
    p.applied(5, 2, ok)
    p.applied(6, 3, None)  # a new leader's entry (term 3) took index 6
    p.applied(7, 3, None)  # nobody waits there
    assert not ours.done and not overwritten.done  # released at the end of the pass
    p.wake()
    assert ours.value is ok
    assert isinstance(overwritten.error, ProposalLost) and lost == [1]
    assert not p


def test_a_stop_answers_proposed_writes_unknown_outcome() -> None:
    p = Proposals(lambda: None)
    w = Waiter[Result]()
    p.add(9, 1, w, put("x"))
    p.fail_all(NodeFailed("disk gone"))
    assert isinstance(w.error, OutcomeUnknown) and "may still be committed" in str(w.error)
    assert p.indexes() == []

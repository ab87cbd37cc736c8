"""readonly.py: ReadIndex rounds acknowledged by heartbeat contexts."""

from __future__ import annotations

from raftkv.raft.readonly import ReadOnly, ReadRound


def _ack(ro: ReadOnly, peer: str, context: int, quorum: int) -> list[ReadRound]:
    ro.recv_ack(peer, context)
    return ro.advance(quorum)


def test_an_ack_confirms_every_round_up_to_its_context() -> None:
    ro = ReadOnly()
    r1 = ro.start_round(5, ["a"], "me")
    r2 = ro.start_round(7, ["b", "c"], "me")
    assert ro.last_pending_context() == r2.context
    assert _ack(ro, "p1", r1.context, 3) == []
    done = _ack(ro, "p2", r2.context, 3)  # p2 answered the newer heartbeat: confirms both
    assert [r.request_ids for r in done] == [["a"]]
    assert _ack(ro, "p1", r2.context, 3)[0].request_ids == ["b", "c"]
    assert not ro.rounds


def test_unrelated_contexts_confirm_nothing() -> None:
    ro = ReadOnly()
    r = ro.start_round(1, ["a"], "me")
    assert _ack(ro, "p1", 0, 2) == []
    assert _ack(ro, "p1", r.context - 1, 2) == []
    ro.reset()
    assert not ro.rounds and ro.waiting == [] and ro.next_batch == []


def test_reads_arriving_while_a_round_is_in_flight_share_the_next_round() -> None:
    ro = ReadOnly()
    first = ro.add_request(3, ["a"], "me")
    assert first > 0 and ro.in_flight
    assert ro.add_request(4, ["b"], "me") == 0  # joined the next batch
    assert ro.add_request(4, ["c"], "me") == 0
    assert ro.next_batch == ["b", "c"] and ro.last_pending_context() == first
    ro.recv_ack("p1", first)
    assert [r.request_ids for r in ro.advance(2)] == [["a"]] and not ro.in_flight
    second = ro.start_batch(5, "me")
    assert second > first and ro.next_batch == []
    assert [(r.index, r.request_ids) for r in ro.rounds] == [(5, ["b", "c"])]
    assert ro.start_batch(5, "me") == 0  # nothing left to batch


def test_a_learner_ack_does_not_count_toward_the_quorum() -> None:
    ro = ReadOnly()
    ctx = ro.add_request(1, ["a"], "me")
    ro.recv_ack("learner", ctx)
    assert ro.advance(2, voters={"me", "p1", "p2"}) == []
    ro.recv_ack("p1", ctx)
    assert [r.request_ids for r in ro.advance(2, voters={"me", "p1", "p2"})] == [["a"]]


def test_deferred_reads_are_handed_back_once() -> None:
    ro = ReadOnly()
    ro.defer("x")
    ro.defer("y")
    assert ro.waiting == ["x", "y"]
    assert ro.take_deferred() == ["x", "y"]
    assert ro.take_deferred() == [] and ro.waiting == []

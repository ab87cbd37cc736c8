"""readonly.py: ReadIndex rounds acknowledged by heartbeat contexts."""

from __future__ import annotations

from raftkv.raft.readonly import ReadOnly


def test_an_ack_confirms_every_round_up_to_its_context() -> None:
    ro = ReadOnly()
    r1 = ro.start_round(5, ["a"], "me")
    r2 = ro.start_round(7, ["b", "c"], "me")
    assert ro.newest_context() == r2.context
    assert ro.ack("p1", r1.context, quorum=3) == []
    done = ro.ack("p2", r2.context, quorum=3)  # p2 answered the newer heartbeat: confirms both
    assert [r.request_ids for r in done] == [["a"]]
    assert ro.ack("p1", r2.context, quorum=3)[0].request_ids == ["b", "c"]
    assert not ro.rounds


def test_unrelated_contexts_confirm_nothing() -> None:
    ro = ReadOnly()
    r = ro.start_round(1, ["a"], "me")
    assert ro.ack("p1", 0, quorum=2) == []
    assert ro.ack("p1", r.context - 1, quorum=2) == []
    ro.reset()
    assert not ro.rounds and ro.waiting == [] and ro.next_batch == []

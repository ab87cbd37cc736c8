"""Flow control: batching by count and bytes, bounded in-flight appends, probe pacing."""

from __future__ import annotations

from raftkv.raft import AppendEntries, AppendEntriesResponse
from tests.unit.raft.raftnet import Network


def _appends_to(msgs: list, dst: str) -> list[AppendEntries]:
    return [m for m in msgs if isinstance(m, AppendEntries) and m.dst == dst]


def test_entries_are_batched_up_to_max_entries_per_msg() -> None:
    net = Network(3, max_entries_per_msg=4)
    net.elect("n1")
    n1 = net.node("n1")
    for i in range(10):
        n1.propose(bytes([i]))
    rd = n1.ready()
    sizes = [len(m.entries) for m in _appends_to(list(rd.messages), "n2")]
    assert sizes == [4, 4, 2]  # pipelined in one Ready, none larger than the limit
    n1.advance(rd)


def test_entries_are_batched_up_to_max_bytes_per_msg() -> None:
    net = Network(3, max_bytes_per_msg=250)
    net.elect("n1")
    n1 = net.node("n1")
    for _ in range(5):
        n1.propose(b"x" * 100)
    n1.propose(b"y" * 1000)  # larger than the limit: still sent, alone
    rd = n1.ready()
    sizes = [len(m.entries) for m in _appends_to(list(rd.messages), "n2")]
    assert sizes == [2, 2, 1, 1]


def test_in_flight_appends_are_bounded_per_follower() -> None:
    net = Network(3, max_inflight_msgs=2, max_entries_per_msg=1)
    net.elect("n1")
    net.drop_types(AppendEntriesResponse)
    mark = len(net.delivered)
    n1 = net.node("n1")
    for i in range(6):
        n1.propose(bytes([i]))
        net.stabilize()
    sent = [m for m in net.delivered[mark:] if isinstance(m, AppendEntries) and m.entries]
    assert len(_appends_to(sent, "n2")) == 2
    net.recover()
    net.tick_all(5)
    assert net.node("n2").last_log_index == 7
    assert n1.commit == 7


def test_probe_sends_one_append_until_answered() -> None:
    # n2 has a stale log: the leader must probe for the match point one message at a time
    net = Network(3, logs={"n1": [1, 1, 2], "n2": [1, 1, 1, 1, 1], "n3": [1, 1, 2]})
    net.drop_types(AppendEntriesResponse)
    net.elect("n1")
    n1 = net.node("n1")
    for i in range(3):
        n1.propose(bytes([i]))
        net.stabilize()
    assert len(_appends_to(net.delivered, "n2")) == 1  # paused in probe
    net.tick("n1")  # a heartbeat; its answer lets one more probe out
    net.stabilize()
    net.recover()
    net.tick_all(3)
    assert net.terms("n2") == net.terms("n1")


def test_lost_append_in_replicate_state_is_recovered_by_heartbeats() -> None:
    net = Network(3)
    net.elect("n1")
    net.filters.append(lambda m: isinstance(m, AppendEntries) and m.dst == "n2" and m.entries)
    net.node("n1").propose(b"lost")
    net.stabilize()
    net.recover()
    assert net.node("n2").last_log_index == 1
    net.tick_all(2)
    assert net.node("n2").last_log_index == 2

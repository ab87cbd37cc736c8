"""A follower that lost its disk (wiped, or its acknowledged tail rolled back) is caught up.

The leader remembers the match index the follower acknowledged before the loss. When the
follower's answer to the leader's current probe (or to the append right after its match) shows
it no longer holds that entry, the leader resets the match (progress.lost_log) and probes from
the follower's hint: it gets the log, or the snapshot the leader ALREADY holds, at once (it used
to wait for the leader's next compaction).
"""

from __future__ import annotations

from raftkv.raft import AppendEntriesResponse, InstallSnapshot
from tests.unit.raft.raftnet import Disk, Network


def _fill(net: Network, leader: str, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        net.node(leader).propose(f"v{i}".encode())
        net.stabilize()


def _wipe(net: Network, nid: str) -> None:
    net.peers[nid].disk = Disk()
    net.restart(nid)


def test_wiped_follower_gets_the_snapshot_the_leader_already_has() -> None:
    net = Network(3)
    net.elect("n1")
    _fill(net, "n1", 10)
    n1 = net.node("n1")
    n1.compact(n1.applied_index, b"state")
    snap_index = n1.applied_index
    assert n1.status().progress["n3"] == snap_index
    _wipe(net, "n3")
    net.tick_all(3)  # heartbeats alone do not reveal the loss (a heartbeat carries no log)
    _fill(net, "n1", 1, start=100)  # the next append does
    net.tick_all(3)
    p3 = net.peers["n3"]
    assert [s.meta.index for s in p3.restored_snapshots] == [snap_index]
    assert n1.status().snapshot_index == snap_index  # no new snapshot was needed
    assert [e.data for e in p3.applied] == [b"v100"]
    assert net.node("n3").status().applied_index == n1.status().applied_index
    assert n1.status().progress["n3"] == n1.status().last_log_index
    rejects = [m for m in net.delivered if isinstance(m, AppendEntriesResponse) and m.reject]
    assert rejects and all(m.src == "n3" for m in rejects)


def test_wiped_follower_without_compaction_gets_the_whole_log() -> None:
    net = Network(3)
    net.elect("n1")
    _fill(net, "n1", 8)
    _wipe(net, "n3")
    _fill(net, "n1", 2, start=100)
    net.tick_all(3)
    n3 = net.node("n3")
    assert net.peers["n3"].restored_snapshots == []
    assert [e.index for e in n3.log_entries()] == list(range(1, n3.last_log_index + 1))
    assert n3.last_log_index == net.node("n1").last_log_index
    assert net.peers["n3"].applied_index == net.peers["n1"].applied_index
    assert not any(isinstance(m, InstallSnapshot) for m in net.delivered)


def test_follower_whose_tail_rolled_back_is_probed_from_its_real_end() -> None:
    # the follower acknowledged 1..N, then restarts with a log cut at 3 (an unsynced tail lost)
    net = Network(3)
    net.elect("n1")
    _fill(net, "n1", 8)
    p3 = net.peers["n3"]
    p3.disk.entries = p3.disk.entries[:3]
    net.restart("n3")
    assert net.node("n3").last_log_index == 3
    _fill(net, "n1", 1, start=100)
    net.tick_all(2)
    assert net.node("n3").last_log_index == net.node("n1").last_log_index
    assert net.node("n1").status().progress["n3"] == net.node("n1").last_log_index

"""Membership changes through the log (thesis §4: single-server changes, learners).

Named after the thesis' rules: §4.1 (a server uses the latest configuration in its log, committed
or not; one change at a time), §4.2.1 (new servers join as non-voting learners), §4.2.2 (removing
the leader), §4.2.3 (removed servers must not disrupt), and the single-server erratum (a leader
commits an entry of its term before proposing a change).
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from raftkv.raft import (
    ConfChangeRefused,
    Entry,
    EntryKind,
    HardState,
    RaftNode,
    RequestVote,
    RestoredState,
    Role,
    decode_message,
    encode_message,
)
from raftkv.raft.membership import (
    ChangeOp,
    ConfChange,
    apply_change,
    decode_change,
    encode_change,
)
from raftkv.raft.messages import InstallSnapshot
from raftkv.raft.types import Membership, Snapshot, SnapshotMeta
from tests.unit.raft.raftnet import Network, make_config


def add(nid: str, url: str = "") -> ConfChange:
    return ConfChange(op=ChangeOp.ADD_LEARNER, node_id=nid, url=url or f"http://{nid}:1")


def promote(nid: str) -> ConfChange:
    return ConfChange(op=ChangeOp.PROMOTE, node_id=nid)


def remove(nid: str) -> ConfChange:
    return ConfChange(op=ChangeOp.REMOVE, node_id=nid)


def change(net: Network, leader: str, c: ConfChange) -> int:
    index = net.node(leader).propose_conf_change(c)
    net.stabilize()
    net.tick_all(2)
    return index


def cluster_with_learner() -> Network:
    net = Network(3)
    net.elect("n1")
    net.add_node("n4", peers=["n1", "n2", "n3"])
    change(net, "n1", add("n4"))
    return net


# ---------------------------------------------------------------------- the configuration


def test_first_leader_writes_the_bootstrap_configuration_into_the_log() -> None:
    net = Network(3)
    assert net.node("n2").status().config_index == 0  # from flags, not logged yet
    net.elect("n1")
    net.tick_all(2)
    for nid in net.ids:
        st = net.node(nid).status()
        assert st.config_index == 1 and st.voters == ("n1", "n2", "n3") and st.learners == ()
        assert net.peers[nid].disk.entries[0].kind is EntryKind.CONFIG


def test_4_2_1_a_learner_replicates_but_never_votes_or_campaigns() -> None:
    net = cluster_with_learner()
    n4 = net.node("n4")
    assert n4.membership.learners == ("n4",) and n4.membership.voters == ("n1", "n2", "n3")
    idx = net.node("n1").propose(b"x")
    net.stabilize()
    net.tick_all(2)
    assert n4.commit >= idx and n4.term_at(idx) == net.node("n1").term
    assert net.node("n1").status().progress["n4"] == net.node("n1").last_log_index
    # cut off from everyone for many election timeouts: never campaigns, term never moves
    term = n4.term
    net.isolate("n4")
    net.tick_all(100)
    assert n4.role is Role.FOLLOWER and n4.term == term
    n4.campaign()
    net.process("n4")
    assert n4.role is Role.FOLLOWER and n4.term == term


def test_a_learner_never_counts_toward_commit() -> None:
    net = cluster_with_learner()
    net.isolate("n2")
    net.isolate("n3")
    commit = net.node("n1").commit
    net.node("n1").propose(b"x")
    net.stabilize()
    net.tick_all(3)
    # n1 + n4 hold it: 2 of 4 nodes, but only 1 of 3 voters
    assert net.node("n4").last_log_index == net.node("n1").last_log_index
    assert net.node("n1").commit == commit


def test_a_learner_never_counts_toward_the_read_index_quorum() -> None:
    net = cluster_with_learner()
    net.node("n1").propose(b"x")
    net.stabilize()
    net.isolate("n2")
    net.isolate("n3")
    net.node("n1").read_index("r1")
    net.stabilize()
    net.tick("n1")
    net.stabilize()
    assert net.peers["n1"].read_states == []  # only the learner answered the heartbeat round
    net.recover()
    net.tick_all(2)
    assert [r.request_id for r in net.peers["n1"].read_states] == ["r1"]


def test_promoted_learner_votes_and_counts() -> None:
    net = cluster_with_learner()
    change(net, "n1", promote("n4"))
    for nid in net.ids:
        assert net.node(nid).membership.voters == ("n1", "n2", "n3", "n4")
    # 4 voters: quorum 3, so n1 + n4 alone cannot commit, n1 + n4 + n2 can
    net.isolate("n2")
    net.isolate("n3")
    c = net.node("n1").commit
    net.node("n1").propose(b"y")
    net.stabilize()
    assert net.node("n1").commit == c
    net.recover()
    net.isolate("n3")
    net.tick_all(2)
    assert net.node("n1").commit > c


def test_4_1_one_change_at_a_time() -> None:
    net = cluster_with_learner()
    net.isolate("n2")
    net.isolate("n3")
    net.node("n1").propose_conf_change(promote("n4"))
    net.stabilize()
    with pytest.raises(ConfChangeRefused) as ei:
        net.node("n1").propose_conf_change(remove("n2"))
    assert ei.value.reason == "in-flight"
    net.recover()
    net.tick_all(2)
    net.node("n1").propose_conf_change(remove("n2"))  # the previous one committed: accepted


def test_erratum_no_change_before_the_leaders_first_entry_commits() -> None:
    from raftkv.raft import AppendEntries

    net = Network(3)
    net.elect("n1")
    net.tick_all(2)
    net.isolate("n1")
    net.drop_types(AppendEntries)  # the new leader's first entry cannot reach anyone
    net.tick_all(30)
    leader = net.leader()
    assert leader in ("n2", "n3")
    lead = net.node(leader)
    assert lead.term_at(lead.commit) != lead.term
    with pytest.raises(ConfChangeRefused) as ei:
        lead.propose_conf_change(remove("n1"))
    assert ei.value.reason == "leader-not-ready"
    net.recover()
    net.tick_all(2)
    lead.propose_conf_change(remove("n1"))  # its term's entry committed: accepted


@pytest.mark.parametrize(
    ("conf_change", "why"),
    [
        (add("n2"), "already a member"),
        (promote("n2"), "already a voter"),
        (promote("n9"), "not a learner"),
        (remove("n9"), "not a member"),
    ],
)
def test_invalid_changes_are_refused(conf_change: ConfChange, why: str) -> None:
    net = Network(3)
    net.elect("n1")
    net.tick_all(2)
    with pytest.raises(ConfChangeRefused, match=why) as ei:
        net.node("n1").propose_conf_change(conf_change)
    assert ei.value.reason == "invalid"


def test_a_removed_id_can_never_come_back() -> None:
    net = cluster_with_learner()
    change(net, "n1", remove("n4"))
    assert net.node("n1").membership.removed == ("n4",)
    with pytest.raises(ConfChangeRefused, match="new id"):
        net.node("n1").propose_conf_change(add("n4"))


def test_a_removed_id_comes_back_only_when_the_operator_says_its_data_is_gone() -> None:
    net = cluster_with_learner()
    change(net, "n1", remove("n4"))
    again = ConfChange(
        op=ChangeOp.ADD_LEARNER, node_id="n4", url="http://n4:2", reuse_removed_id=True
    )
    change(net, "n1", again)
    conf = net.node("n1").membership
    assert conf.learners == ("n4",) and conf.removed == () and conf.url("n4") == "http://n4:2"


def test_the_last_voter_cannot_be_removed() -> None:
    conf = Membership(voters=("a",), index=3)
    with pytest.raises(ValueError, match="no voter"):
        apply_change(conf, remove("a"))


# ---------------------------------------------------------------------- append, not commit


def test_4_1_configuration_takes_effect_on_append_and_reverts_on_truncation() -> None:
    net = cluster_with_learner()
    # n1 appends "promote n4" and reaches only n4: not committed, yet both use it already
    net.isolate("n2")
    net.isolate("n3")
    idx = net.node("n1").propose_conf_change(promote("n4"))
    net.stabilize()
    assert net.node("n1").commit < idx
    for nid in ("n1", "n4"):
        assert net.node(nid).membership.voters == ("n1", "n2", "n3", "n4")
        assert net.node(nid).membership.index == idx
    # n2 leads a new term with n3; it overwrites index idx on n4 (n1 stays cut off)
    net.recover()
    net.isolate("n1")
    net.tick_all(40)
    leader = net.leader()
    assert leader in ("n2", "n3")
    net.node(leader).propose(b"after")
    net.stabilize()
    net.tick_all(2)
    n4 = net.node("n4")
    assert n4.term_at(idx) != net.node("n1").term_at(idx)
    assert n4.membership.voters == ("n1", "n2", "n3") and n4.membership.learners == ("n4",)
    # and a restart derives the same configuration from its disk
    net.restart("n4")
    assert net.node("n4").membership == n4.membership


def test_restart_recovers_the_configuration_exactly() -> None:
    net = cluster_with_learner()
    change(net, "n1", promote("n4"))
    change(net, "n1", remove("n2"))
    want = net.node("n3").membership
    net.restart("n3")
    assert net.node("n3").membership == want
    assert want.voters == ("n1", "n3", "n4") and want.removed == ("n2",)


def test_the_configuration_travels_in_snapshots() -> None:
    net = cluster_with_learner()
    change(net, "n1", promote("n4"))
    for i in range(5):
        net.node("n1").propose(bytes([i]))
    net.stabilize()
    net.tick_all(2)
    leader = net.peers["n1"]
    leader.node.compact(leader.applied_index, b"state")
    snap = leader.node.snapshot
    assert snap is not None and snap.meta.membership == leader.node.membership
    assert snap.meta.members == ("n1", "n2", "n3", "n4")
    # a new learner far behind gets the snapshot, and with it the configuration
    net.add_node("n5", peers=["n1"])
    change(net, "n1", add("n5"))
    assert net.peers["n5"].restored_snapshots, "n5 should have caught up by snapshot"
    assert net.node("n5").membership == net.node("n1").membership
    net.restart("n5")  # snapshot + log on disk -> the same configuration
    assert net.node("n5").membership == net.node("n1").membership
    # the wire codec keeps it
    m = InstallSnapshot(src="n1", dst="n5", term=1, snapshot=snap)
    assert decode_message(encode_message(m)) == m


def test_snapshot_files_keep_the_whole_configuration(tmp_path: Path) -> None:
    from raftkv.storage.snapshot import read_snapshot, write_snapshot

    conf = Membership(
        voters=("a", "b"), learners=("c",), urls=(("a", "http://a:1"),), removed=("z",), index=7
    )
    snap = Snapshot(meta=SnapshotMeta(index=9, term=2, members=("a", "b"), membership=conf))
    assert read_snapshot(write_snapshot(str(tmp_path), snap)) == snap
    old = Snapshot(meta=SnapshotMeta(index=9, term=2, members=("a", "b")))  # older format
    tmp2 = tmp_path / "old"
    tmp2.mkdir()
    assert read_snapshot(write_snapshot(str(tmp2), old)) == old


def test_config_entries_round_trip_and_reject_garbage() -> None:
    conf = Membership(voters=("a", "b"), learners=("c",), urls=(("c", "http://c:1"),), index=5)
    data = encode_change(add("c", "http://c:1"), conf)
    got_change, got_conf = decode_change(data, 5)
    assert got_change == add("c", "http://c:1") and got_conf == conf
    with pytest.raises(ValueError):
        decode_change(b"{}", 5)
    # a node never appends a malformed configuration entry (it ignores the message)
    net = Network(3)
    net.elect("n1")
    net.tick_all(2)
    n2 = net.node("n2")
    last = n2.last_log_index
    from raftkv.raft import AppendEntries

    bad = Entry(index=last + 1, term=n2.term, kind=EntryKind.CONFIG, data=b"nope")
    n2.step(
        AppendEntries(
            src="n1",
            dst="n2",
            term=n2.term,
            prev_index=last,
            prev_term=n2.term_at(last) or 0,
            entries=(bad,),
            commit=0,
        )
    )
    assert n2.last_log_index == last


# ---------------------------------------------------------------------- removal


def test_4_2_2_a_leader_that_removes_itself_leads_until_the_change_commits() -> None:
    net = Network(3)
    net.elect("n1")
    net.tick_all(2)
    n1 = net.node("n1")
    net.isolate("n2")
    net.isolate("n3")
    idx = n1.propose_conf_change(remove("n1"))
    net.stabilize()
    assert n1.role is Role.LEADER and n1.membership.voters == ("n2", "n3")
    n1.propose(b"still leading")  # it keeps accepting (they commit with the new voters)
    net.recover()
    net.stabilize()
    net.tick_all(3)
    assert n1.commit >= idx
    assert n1.role is Role.FOLLOWER
    leader = net.leader()
    assert leader in ("n2", "n3")  # handed over at once (TimeoutNow to an up-to-date voter)
    assert any(e.data == b"still leading" for e in net.peers[leader].applied)
    term = net.node(leader).term
    net.tick_all(60)  # the removed node never campaigns again
    assert n1.role is Role.FOLLOWER and net.node(leader).term == term


@pytest.mark.parametrize("pre_vote", [True, False])
def test_4_2_3_a_removed_node_cannot_disrupt_the_cluster(pre_vote: bool) -> None:
    net = Network(4, pre_vote=pre_vote)
    net.elect("n1")
    net.tick_all(2)
    net.isolate("n4")  # n4 never hears that it was removed
    change(net, "n1", remove("n4"))
    assert net.node("n1").membership.voters == ("n1", "n2", "n3")
    assert net.node("n4").membership.voters == ("n1", "n2", "n3", "n4")
    term = net.node("n1").term
    net.tick_all(30)  # n4 campaigns (it believes it is a voter): nobody listens
    net.recover()
    net.tick_all(60)
    assert net.leader() == "n1" and net.node("n1").term == term
    for nid in ("n2", "n3"):
        assert net.node(nid).term == term


def test_vote_requests_from_non_voters_are_ignored() -> None:
    net = cluster_with_learner()
    n2 = net.node("n2")
    term = n2.term
    n2.step(RequestVote(src="n4", dst="n2", term=term + 5, last_log_index=99, last_log_term=99))
    n2.step(RequestVote(src="zz", dst="n2", term=term + 5, last_log_index=99, last_log_term=99))
    assert n2.term == term and n2.status().leader == "n1"


# ---------------------------------------------------------------------- joining nodes


def test_a_joining_node_never_campaigns() -> None:
    node = RaftNode(make_config("n9", ["n1", "n2", "n3"]), random.Random(3))
    for _ in range(200):
        node.tick()
    node.campaign()
    assert node.role is Role.FOLLOWER and node.term == 0 and not node.has_ready()
    assert node.membership.role_of("n9") == "none"


def test_flags_only_bootstrap_an_empty_cluster() -> None:
    # a node whose log holds a configuration ignores its flags' peers
    conf = Membership(voters=("a", "b", "c"), index=1)
    data = encode_change(ConfChange(op=ChangeOp.BOOTSTRAP), conf)
    e = Entry(index=1, term=1, kind=EntryKind.CONFIG, data=data)
    node = RaftNode(
        make_config("a", ["a", "b", "c", "d", "e"]),
        random.Random(1),
        RestoredState(hard_state=HardState(term=1), entries=[e]),
    )
    assert node.membership.voters == ("a", "b", "c")


def test_status_shows_voters_learners_and_match_indexes() -> None:
    net = cluster_with_learner()
    st = net.node("n1").status()
    assert st.voters == ("n1", "n2", "n3") and st.learners == ("n4",)
    assert st.members == ("n1", "n2", "n3")
    last = net.node("n1").last_log_index
    assert st.progress == {"n1": last, "n2": last, "n3": last, "n4": last}
    assert st.config_index == net.node("n4").status().config_index > 1

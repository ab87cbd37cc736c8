"""raftctl.client against a real 3-node cluster (tests/cli/realnodes.py: faults injected by a relay
in front of each node): leader following, safe retries, error mapping."""

from __future__ import annotations

import pytest

from raftctl.backends.base import Replica
from raftctl.client import KVClient, Transport, normalize_url
from raftctl.clusterview import fetch_view
from raftctl.errors import CompareFailed, KeyNotFound, NodeError, OutcomeUnknown, Unavailable
from tests.cli.realnodes import RealCluster


def client_for(nodes: RealCluster, **kw: object) -> KVClient:
    return KVClient(nodes.urls, ids={n: nodes.url(n) for n in nodes.ids}, **kw)  # type: ignore[arg-type]


def test_normalize_url() -> None:
    assert normalize_url("raft-0.raft-service:8000/") == "http://raft-0.raft-service:8000"
    assert normalize_url(" http://x:1 ") == "http://x:1"


def test_put_get_delete_list_roundtrip(nodes: RealCluster) -> None:
    c = client_for(nodes)
    put = c.put("a/1", "one")
    assert put.status == 200 and put.body["index"] == 2 and put.leader == "raft-0"
    c.put("a/2", "two")
    c.put("b/1", "x")
    assert c.get("a/1").body["value"] == "one"
    _, items = c.list_keys(prefix="a/")
    assert [(i["key"], i["value"]) for i in items] == [("a/1", "one"), ("a/2", "two")]
    c.delete("a/1")
    with pytest.raises(KeyNotFound, match="key not found: a/1"):
        c.get("a/1")
    with pytest.raises(KeyNotFound):
        c.delete("a/1")


def test_keys_are_url_quoted(nodes: RealCluster) -> None:
    c = client_for(nodes)
    c.put("dir/with space?&", "v")
    assert nodes.store["dir/with space?&"][0] == "v"
    assert any("%2F" in s.path and "%3F" in s.path for s in nodes.requests_to("/v1/kv/"))


def test_compare_and_set(nodes: RealCluster) -> None:
    c = client_for(nodes)
    c.put("k", "v1")
    assert c.put("k", "v2", prev_value="v1").body["value"] == "v2"
    with pytest.raises(CompareFailed) as err:
        c.put("k", "v3", prev_value="v1")
    assert err.value.current == "v2" and err.value.exit_code == 1
    with pytest.raises(CompareFailed, match="current value is absent"):
        c.put("missing", "x", prev_value="anything")


def test_follows_the_leader_after_learning_it(nodes: RealCluster) -> None:
    nodes.elect("raft-2")
    c = client_for(nodes)
    c.put("k", "v")  # first goes to raft-0, which answers with X-Raft-Leader: raft-2
    before = len(nodes.seen)
    c.get("k")
    assert [s.node for s in nodes.seen[before:]] == ["raft-2"]


def test_unreachable_node_is_skipped(nodes: RealCluster) -> None:
    nodes.take_down("raft-0")
    c = client_for(nodes, timeout=1.0)
    assert c.put("k", "v").status == 200
    assert {s.node for s in nodes.seen} >= {"raft-0", "raft-1"}


def test_retry_on_503_keeps_the_request_id(nodes: RealCluster) -> None:
    nodes.fail_next("raft-0", 503, 503)
    nodes.fail_next("raft-1", 503)
    nodes.fail_next("raft-2", 503)
    c = client_for(nodes)
    c.put("k", "v")
    ids = [s.headers.get("X-Request-Id") for s in nodes.requests_to("/v1/kv/k")]
    assert len(ids) >= 4
    assert len(set(ids)) == 1 and ids[0] is not None and ids[0].endswith(":1")
    assert nodes.store["k"][0] == "v"


def test_ambiguous_failure_is_retried_once_applied(nodes: RealCluster) -> None:
    """The node applies the write but the answer is lost: the retry must not apply it twice."""
    nodes.drop_after_apply.add("raft-0")
    c = client_for(nodes, timeout=1.0)
    index_before = nodes.index
    reply = c.put("k", "v")
    assert reply.status == 200
    assert nodes.index == index_before + 1  # applied exactly once
    writes = nodes.requests_to("/v1/kv/k")
    assert len(writes) == 2
    assert writes[0].headers["X-Request-Id"] == writes[1].headers["X-Request-Id"]


def test_each_logical_write_gets_a_new_request_id(nodes: RealCluster) -> None:
    c = client_for(nodes)
    c.put("a", "1")
    c.put("b", "2")
    ids = [s.headers["X-Request-Id"] for s in nodes.requests_to("/v1/kv/")]
    assert ids[0] != ids[1] and ids[0].split(":")[0] == ids[1].split(":")[0]


def test_no_leader_until_deadline_is_unavailable(nodes: RealCluster) -> None:
    nodes.elect(None)
    c = client_for(nodes, deadline=0.5)
    with pytest.raises(Unavailable, match="no replica could serve"):
        c.put("k", "v")


def test_client_errors_are_not_retried(nodes: RealCluster) -> None:
    c = client_for(nodes)
    nodes.fail_next("raft-0", 400)
    with pytest.raises(NodeError, match="answered 400"):
        c.get("k")
    assert len(nodes.requests_to("/v1/kv/k")) == 1


def test_endpoint_discovery_maps_ids_to_urls(nodes: RealCluster) -> None:
    """With bare URLs (the client Pod's case), ids are learned from /v1/status."""
    nodes.elect("raft-1")
    c = KVClient(nodes.urls)
    c.put("k", "v")
    before = len(nodes.seen)
    c.get("k")
    assert [s.node for s in nodes.seen[before:]] == ["raft-1"]


def test_transport_reports_unreachable() -> None:
    from raftctl.client import NodeUnreachable

    t = Transport(timeout=0.5)
    with pytest.raises(NodeUnreachable):
        t.request("http://127.0.0.1:9", "GET", "/v1/status")


def test_view_shows_leader_lag_and_unreachable(nodes: RealCluster) -> None:
    nodes.lag_behind("raft-1", 300)  # cut off from Raft traffic while 300 writes commit
    nodes.take_down("raft-2")
    replicas = [Replica(id=n, url=nodes.url(n)) for n in nodes.ids]
    view = fetch_view(replicas, timeout=0.5)
    rows = {r.id: r for r in view.rows}
    assert view.leader == "raft-0" and view.term == 1
    assert rows["raft-0"].health == "healthy" and rows["raft-0"].lag == 0
    assert rows["raft-1"].health == "lagging" and rows["raft-1"].lag == 300
    assert rows["raft-2"].health == "unreachable" and not rows["raft-2"].reachable
    assert not view.healthy  # only one healthy replica of three
    doc = view.to_json()
    assert doc["leader"] == "raft-0" and len(doc["replicas"]) == 3


def test_view_frozen_and_down_states_come_from_the_target(nodes: RealCluster) -> None:
    nodes.take_down("raft-1")
    nodes.take_down("raft-2")
    replicas = [
        Replica(id="raft-0", url=nodes.url("raft-0")),
        Replica(id="raft-1", url=nodes.url("raft-1"), state="frozen"),
        Replica(id="raft-2", url=nodes.url("raft-2"), state="down"),
    ]
    view = fetch_view(replicas, timeout=0.5)
    assert [r.health for r in view.rows] == ["healthy", "frozen", "down"]


def test_idle_connection_closed_by_the_node_is_retried_on_a_fresh_one(nodes: RealCluster) -> None:
    nodes.silent_close.add("raft-0")
    c = client_for(nodes)
    c.put("k", "v")
    for _ in range(3):
        assert c.get("k").body["value"] == "v"
    assert [s.node for s in nodes.seen] == ["raft-0"] * 4  # never failed over to another node


def test_write_answered_504_until_the_deadline_is_an_unknown_outcome(nodes: RealCluster) -> None:
    """A 504 means the write may be applied: raftctl says "unknown outcome" (exit 3), never
    "failed" / unavailable; it retried with the same request id meanwhile."""
    for node in nodes.ids:
        nodes.fail_next(node, *([504] * 200))
    c = client_for(nodes, deadline=0.5)
    with pytest.raises(OutcomeUnknown, match=r"^unknown outcome: PUT /v1/kv/k may or may not") as e:
        c.put("k", "v")
    assert e.value.exit_code == 3 and e.value.exit_code not in (0, 1, 2)
    ids = {s.headers.get("X-Request-Id") for s in nodes.requests_to("/v1/kv/k")}
    assert len(ids) == 1
    # a read answered 504 is no write: plain unavailable
    with pytest.raises(Unavailable):
        c.get("k")


def test_write_sent_without_an_answer_until_the_deadline_is_an_unknown_outcome(
    nodes: RealCluster,
) -> None:
    """Every node takes the request and drops the connection: it may have been applied."""
    for node in nodes.ids:
        nodes.take_down(node)
    c = client_for(nodes, timeout=0.5, deadline=0.5)
    with pytest.raises(OutcomeUnknown, match="no answer"):
        c.put("k", "v")


def test_write_to_refusing_nodes_is_unavailable_not_unknown() -> None:
    from tests.support.ports import ReservedPort

    with ReservedPort() as refusing:  # held, never listening: every connect is refused
        c = KVClient([f"http://127.0.0.1:{refusing.port}"], timeout=0.5, deadline=0.3)
        with pytest.raises(Unavailable, match="no replica could serve"):
            c.put("k", "v")


@pytest.mark.parametrize("then", [500, 409])
def test_write_whose_retry_fails_after_a_504_stays_an_unknown_outcome(
    nodes: RealCluster, then: int
) -> None:
    """Found by review (hqa): a write answered 504 by one node and then 500 (node failed) or 409
    (exactly-once session expired) by the node it was retried on was reported as failed (exit 1),
    although the first attempt may have been applied. The retry's refusal says nothing about the
    first attempt: unknown outcome (exit 3)."""
    nodes.fail_next("raft-0", 504)
    nodes.fail_next("raft-1", then)
    c = client_for(nodes, deadline=2.0)
    with pytest.raises(OutcomeUnknown, match=rf"did not settle it .*answered {then}") as e:
        c.put("k", "v")
    assert e.value.exit_code == 3
    assert [s.node for s in nodes.requests_to("/v1/kv/k")] == ["raft-0", "raft-1"]


def test_write_retried_after_a_504_and_refused_as_invalid_is_failed(nodes: RealCluster) -> None:
    """A 4xx refusal of the request itself (400) is the same for every attempt: failed."""
    nodes.fail_next("raft-0", 504)
    nodes.fail_next("raft-1", 400)
    c = client_for(nodes, deadline=2.0)
    with pytest.raises(NodeError, match="answered 400") as e:
        c.put("k", "v")
    assert not isinstance(e.value, OutcomeUnknown)

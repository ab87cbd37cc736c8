"""A healthy 3-node cluster of real ``raftkv serve`` processes, one behaviour per test: one
leader, forwarding, linearizable and stale reads, listing, compare-and-set, delete, exactly-once
retries, bad input, metrics and readiness.

The tests only read and write (failures are in test_cluster.py), so they share one cluster per
module; each test writes its own keys and finds the current leader itself."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.integration.cluster import LocalCluster
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def c(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    cluster = LocalCluster(tmp_path_factory.mktemp("healthy"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()


def others(c: LocalCluster, i: int) -> list[int]:
    return [j for j in range(c.size) if j != i]


def a_follower(c: LocalCluster) -> int:
    return others(c, c.wait_for_leader())[0]


def test_one_leader_and_every_node_knows_every_member(c: LocalCluster) -> None:
    c.wait_for_leader()
    statuses = [c.status(i) for i in range(3)]
    assert [s["role"] for s in statuses].count("leader") == 1
    assert all(s["members"] == c.ids for s in statuses)


def test_writes_through_every_node_are_forwarded_to_the_leader(c: LocalCluster) -> None:
    leader = c.wait_for_leader()
    for i in range(3):
        r = c.put_ok(i, f"fwd/k{i}", f"v{i}")
        assert r.json["value"] == f"v{i}" and r.json["leader"] == c.ids[leader]
        assert r.header("X-Raftkv-Served-By") == c.ids[leader]
        assert r.header("X-Raft-Leader") == c.ids[leader]
        assert int(r.header("X-Raft-Term") or 0) >= 1 and int(r.header("X-Raft-Index") or 0) >= 1


def test_linearizable_reads_through_every_node_see_every_acknowledged_write(
    c: LocalCluster,
) -> None:
    for i in range(3):
        c.put_ok(i, f"lin/k{i}", f"v{i}")
    for i in range(3):
        for k in range(3):
            r = c.get(i, f"/v1/kv/lin/k{k}")
            assert r.status == 200 and r.json["value"] == f"v{k}", r


def test_stale_reads_are_local_and_catch_up(c: LocalCluster) -> None:
    c.put_ok(c.wait_for_leader(), "stale/k2", "v2")
    for i in range(3):
        wait_until(
            lambda i=i: c.get(i, "/v1/kv/stale/k2?consistency=stale").status == 200,
            10,
            f"stale read on node {i}",
        )


def test_a_listing_is_cut_at_the_limit_and_says_so(c: LocalCluster) -> None:
    for k in range(3):
        c.put_ok(k, f"list/k{k}", f"v{k}")
    r = c.get(a_follower(c), "/v1/kv?prefix=list/k&limit=2")
    assert [it["key"] for it in r.json["items"]] == ["list/k0", "list/k1"] and r.json["truncated"]


def test_compare_and_set_through_a_follower(c: LocalCluster) -> None:
    f = a_follower(c)
    c.put_ok(f, "cas/k0", "v0")
    r = c.put(f, "cas/k0", "new", query="?prev_value=wrong")
    assert r.status == 412 and r.json["value"] == "v0" and "error" in r.json
    assert c.put(f, "cas/k0", "new", query="?prev_value=v0").status == 200
    assert c.put(f, "cas/absent", "x", query="?prev_value=").status == 412


def test_delete_through_a_follower(c: LocalCluster) -> None:
    f = a_follower(c)
    c.put_ok(f, "del/k1", "v1")
    assert c.request(f, "DELETE", "/v1/kv/del/k1").status == 200
    assert c.request(f, "DELETE", "/v1/kv/del/k1").status == 404
    assert c.get(f, "/v1/kv/del/k1").status == 404


def test_a_request_id_retried_through_another_node_is_applied_once(c: LocalCluster) -> None:
    leader = c.wait_for_leader()
    f = others(c, leader)[0]
    h = {"X-Request-Id": "client-a:1"}
    first = c.put(f, "once", "1", headers=h)
    assert first.status == 200
    assert c.put(leader, "once", "2").status == 200
    again = c.put(others(c, f)[0], "once", "1", headers=h)
    assert again.status == 200 and again.json["index"] == first.json["index"]
    assert c.get(f, "/v1/kv/once").json["value"] == "2"


def test_bad_input_gets_its_status_and_a_json_error_never_html(c: LocalCluster) -> None:
    f = a_follower(c)
    bad = [
        (c.request(f, "PUT", "/v1/kv/" + "k" * 513, "v"), 400),
        (c.request(f, "PUT", "/v1/kv/a%FF", "v"), 400),
        (c.request(f, "PUT", "/v1/kv/100%", "v"), 400),
        (c.request(f, "PUT", "/v1/kv/k", b"\xff"), 400),
        (c.request(f, "PUT", "/v1/kv/k", b"x" * ((1 << 20) + 1)), 413),
        (c.request(f, "PUT", "/v1/kv/k?x=1", "v"), 400),
        (c.request(f, "PUT", "/v1/kv/k", "v", {"X-Request-Id": "bad"}), 400),
        (c.request(f, "GET", "/v1/kv?limit=-1"), 400),
        (c.request(f, "GET", "/v1/kv/k?consistency=maybe"), 400),
        (c.request(f, "GET", "/no/such/route"), 404),
        (c.request(f, "PATCH", "/v1/kv/k"), 405),
        (c.request(f, "POST", "/raft/v1/messages", "{not json"), 400),
        (c.request(f, "POST", "/raft/v1/messages", json.dumps({"messages": [{"v": 1}]})), 400),
        (
            c.request(
                f,
                "POST",
                "/raft/v1/messages",
                json.dumps(
                    {
                        "messages": [
                            {"v": 1, "type": "heartbeat", "src": "raft-0", "dst": "zz", "term": 1}
                        ]
                    }
                ),
            ),
            400,
        ),
    ]
    for reply, status in bad:
        assert reply.status == status, reply
        assert (reply.header("Content-Type") or "").startswith("application/json"), reply
        assert isinstance(reply.json["error"], str) and reply.json["error"]


def test_the_leader_exports_metrics_and_every_node_is_ready(c: LocalCluster) -> None:
    leader = c.wait_for_leader()
    c.put_ok(leader, "metrics/k", "v")  # at least one fsync observed
    text = c.get(leader, "/metrics").body.decode()
    assert 'raftkv_role{role="leader"} 1.0' in text and "raftkv_fsync_seconds_bucket" in text
    assert all(c.get(i, "/readyz").status == 200 for i in range(3))

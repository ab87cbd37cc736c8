"""Real 3-node clusters of ``raftkv serve`` on 127.0.0.1 through failures: SIGKILL and SIGSTOP of
the leader, restart, snapshot catch-up, graceful SIGTERM, the token. (What a healthy cluster does,
one behaviour per test: test_healthy_cluster.py.)"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.cluster import LocalCluster
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    c = LocalCluster(tmp_path)
    try:
        c.start()
        yield c
    finally:
        c.close()


def others(c: LocalCluster, i: int) -> list[int]:
    return [j for j in range(c.size) if j != i]


def test_sigkill_leader_loses_no_acknowledged_write(cluster: LocalCluster) -> None:
    c = cluster
    leader = c.wait_for_leader()
    term = c.status(leader)["term"]
    acked = {}
    for n in range(20):
        r = c.put_ok(n % 3, f"acked-{n}", str(n))
        acked[f"acked-{n}"] = str(n)
        assert r.status == 200
    once = c.put_ok(leader, "once", "first", headers={"X-Request-Id": "client-z:7"})
    c.kill(leader)
    rest = others(c, leader)
    new_leader = c.wait_for_leader(among=rest, min_term=term + 1)
    assert new_leader != leader
    # the session table is replicated: a retry after the failover is answered, not re-applied
    again = c.put_ok(rest[0], "once", "first", headers={"X-Request-Id": "client-z:7"})
    assert again.json["index"] == once.json["index"] and again.json["value"] == "first"
    # the same id on another request is refused, not answered with the old result
    reused = c.put(rest[0], "once", "second", headers={"X-Request-Id": "client-z:7"})
    assert reused.status == 409 and reused.json["code"] == "request_id_reused", reused
    assert c.get(rest[1], "/v1/kv/once").json["value"] == "first"
    for key, value in acked.items():
        r = c.get(rest[0], f"/v1/kv/{key}")
        assert r.status == 200 and r.json["value"] == value, (key, r)
    c.put_ok(rest[1], "after-kill", "yes")
    # the crashed node comes back, recovers from its log and catches up
    c.start_node(leader)
    c.wait_serving(leader)
    wait_until(
        lambda: c.get(leader, "/v1/kv/after-kill?consistency=stale").status == 200,
        30,
        "restarted node caught up",
        c.logs,
    )
    assert c.get(leader, "/v1/kv/acked-19?consistency=stale").json["value"] == "19"


def test_sigstop_leader_is_replaced_and_steps_down_on_resume(cluster: LocalCluster) -> None:
    c = cluster
    old = c.wait_for_leader()
    term = c.status(old)["term"]
    c.put_ok(old, "before", "1")
    c.pause(old)
    try:
        rest = others(c, old)
        new = c.wait_for_leader(among=rest, min_term=term + 1)
        c.put_ok(rest[0], "during", "2")
    finally:
        c.resume(old)

    def stepped_down() -> bool:
        st = c.status(old)
        return st["role"] == "follower" and st["leader"] == c.ids[new] and st["term"] > term

    wait_until(stepped_down, 30, "resumed old leader steps down", c.logs)
    r = c.get(old, "/v1/kv/during")  # linearizable, forwarded to the new leader
    assert r.status == 200 and r.json["value"] == "2"


def test_full_restart_keeps_data_and_lagging_node_catches_up_by_snapshot(tmp_path: Path) -> None:
    c = LocalCluster(tmp_path, snapshot_every=20)
    try:
        c.start()
        leader = c.wait_for_leader()
        lagger = others(c, leader)[0]
        c.kill(lagger)
        live = others(c, lagger)
        for n in range(60):
            c.put_ok(live[n % 2], f"key-{n}", f"value-{n}")
        # the leader compacted its log past what the lagging node has
        wait_until(lambda: c.status(leader)["snapshot_index"] >= 40, 20, "leader snapshot")
        c.start_node(lagger)
        c.wait_serving(lagger)

        def caught_up() -> bool:
            st = c.status(lagger)
            r = c.get(lagger, "/v1/kv/key-59?consistency=stale")
            return r.status == 200 and st["snapshot_index"] > 0 and st["last_applied"] >= 60

        wait_until(caught_up, 30, "lagging node installs the snapshot and catches up", c.logs)
        assert "event=snapshot-installed" in c.log_path(lagger).read_text()
        assert c.get(lagger, "/v1/kv/key-0?consistency=stale").json["value"] == "value-0"

        # full-cluster restart: every node stops, all data survives
        for i in range(3):
            assert c.terminate(i) == 0
        for i in range(3):
            c.start_node(i)
        for i in range(3):
            c.wait_serving(i)
        c.wait_for_leader()
        for i in range(3):
            for n in (0, 33, 59):
                r = c.get(i, f"/v1/kv/key-{n}")
                assert r.status == 200 and r.json["value"] == f"value-{n}", (i, n, r)
        c.put_ok(0, "after-restart", "ok")
    finally:
        c.close()


def test_sigterm_on_leader_transfers_leadership_and_exits_cleanly(cluster: LocalCluster) -> None:
    c = cluster
    leader = c.wait_for_leader()
    term = c.status(leader)["term"]
    c.put_ok(leader, "k", "v")
    code = c.terminate(leader, timeout=30)
    assert code == 0, c.logs()
    log = c.log_path(leader).read_text()
    m = re.search(r"event=transfer-leadership target=(\S+)", log)
    assert m is not None and "event=stopped role=follower" in log, log[-2000:]
    rest = others(c, leader)
    new = c.wait_for_leader(among=rest, min_term=term + 1)
    # handed over, not elected after a timeout: the target leads, in the very next term
    assert c.ids[new] == m.group(1) and c.status(new)["term"] == term + 1
    assert c.get(rest[0], "/v1/kv/k").json["value"] == "v"
    c.put_ok(rest[1], "k2", "v2")


def test_token_cluster_and_admin_endpoints(tmp_path: Path) -> None:
    c = LocalCluster(tmp_path, token="s3cret-token")
    try:
        c.start()
        leader = c.wait_for_leader()  # Raft RPC works with the token
        term = c.status(leader)["term"]
        f = others(c, leader)[0]
        auth = {"Authorization": "Bearer s3cret-token"}
        # KV needs no token
        assert c.put_ok(f, "k", "v").status == 200
        # Raft RPC and admin need it
        r = c.request(f, "POST", "/raft/v1/messages", '{"messages": []}')
        assert r.status == 401 and "error" in r.json
        assert c.request(f, "POST", "/v1/admin/snapshot").status == 401
        wait_until(lambda: c.get(f, "/v1/kv/k?consistency=stale").status == 200, 10, "applied")
        r = c.request(f, "POST", "/v1/admin/snapshot", headers=auth)
        assert r.status == 200 and r.json["snapshot_index"] >= 2
        # transfer-leader through a follower: forwarded (with the token) to the leader
        target = others(c, leader)[1]
        r = c.request(
            f,
            "POST",
            "/v1/admin/transfer-leader",
            json.dumps({"target": c.ids[target]}),
            headers=auth,
        )
        assert r.status == 200, r
        new = c.wait_for_leader(min_term=term + 1)
        assert new == target
        assert c.get(leader, "/v1/kv/k").json["value"] == "v"
    finally:
        c.close()

"""Security on real processes: cluster-token rotation through a rolling restart, client tokens,
TLS and mutual TLS between peers, certificate reload (docs/security.md)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.cluster import LocalCluster, wait_until

pytestmark = pytest.mark.integration


def _set_flag(c: LocalCluster, flag: str, value: str) -> None:
    if flag in c.common:
        c.common[c.common.index(flag) + 1] = value
    else:
        c.common += [flag, value]


def _ready(c: LocalCluster, i: int) -> bool:
    return c.get(i, "/readyz", timeout=2).status == 200


def _rolling_restart(c: LocalCluster, step: str) -> None:
    """What a StatefulSet rolling update does: highest ordinal first, each pod must be Ready
    before the next one goes."""
    for i in reversed(range(c.size)):
        assert c.terminate(i) == 0, c.logs()
        c.start_node(i)
        c.wait_serving(i)
        wait_until(lambda i=i: _ready(c, i), 20, f"node {i} ready in step {step!r}", c.logs)
        leader = c.wait_for_leader()
        c.put_ok(leader, f"{step}-{i}", "v")
        for j in range(c.size):  # the write reached every node: peers accept each other
            wait_until(lambda j=j, i=i: c.get(j, f"/v1/kv/{step}-{i}?consistency=stale").status
                       == 200, 10, f"node {j} has {step}-{i}", c.logs)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    c = LocalCluster(tmp_path, size=3, token="old-token")
    try:
        yield c.start()
    finally:
        c.close()


def test_cluster_token_rotates_during_rolling_restarts(cluster: LocalCluster) -> None:
    c = cluster
    c.wait_for_leader()
    # step 1: accept both, still send the old one; step 2: send the new one, still accept the
    # old one; cleanup: only the new one (docs/security.md, "Rotating tokens")
    for step, tokens in (("accept-new", "old-token,new-token"),
                         ("send-new", "new-token,old-token"),
                         ("drop-old", "new-token")):
        _set_flag(c, "--token", tokens)
        _rolling_restart(c, step)
    leader = c.wait_for_leader()
    r = c.request(leader, "POST", "/v1/admin/snapshot", b"",
                  {"Authorization": "Bearer old-token"})
    assert r.status == 401 and r.json["code"] == "unauthorized"
    r = c.request(leader, "POST", "/v1/admin/snapshot", b"",
                  {"Authorization": "Bearer new-token"})
    assert r.status == 200, r


def test_sending_a_token_the_others_do_not_know_is_what_breaks(cluster: LocalCluster) -> None:
    """The failure the two-step rotation avoids: a node that already SENDS the new token while
    the others accept only the old one cannot get its messages accepted."""
    c = cluster
    leader = c.wait_for_leader()
    victim = (leader + 1) % c.size
    c.terminate(victim)
    _set_flag(c, "--token", "new-token")
    c.start_node(victim)
    c.wait_serving(victim)
    wait_until(lambda: "send-rejected status=401" in c.log_path(victim).read_text(), 20,
               "the new-token node's messages to be rejected with 401", c.logs)


def test_client_tokens_on_a_real_cluster(tmp_path: Path) -> None:
    c = LocalCluster(tmp_path, size=3, token="cl",
                     env={"RAFTKV_CLIENT_TOKENS": "rw", "RAFTKV_CLIENT_READ_TOKENS": "ro"})
    try:
        c.start()
        leader = c.wait_for_leader()
        follower = (leader + 1) % c.size
        rw, ro = {"Authorization": "Bearer rw"}, {"Authorization": "Bearer ro"}
        assert c.put(follower, "k", "v").status == 401
        r = c.put(follower, "k", "v", headers=ro)
        assert r.status == 403 and r.json["code"] == "forbidden"
        wait_until(lambda: c.put(follower, "k", "v", headers=rw).status == 200, 10,
                   "a relayed write with the read-write token")
        r = c.request(follower, "GET", "/v1/kv/k", headers=ro)  # relayed ReadIndex read
        assert r.status == 200 and r.json["value"] == "v", r
        assert c.get(follower, "/healthz").status == 200
        assert c.get(follower, "/metrics").status == 200
    finally:
        c.close()

"""Linearizable reads on followers (thesis §6.4) on real processes: the follower asks the leader
for a read index, waits until it applied it, and answers itself (no relay to the leader): a write
acknowledged by the leader is visible in the next read on any follower, across a leadership
change."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.integration.cluster import LocalCluster, wait_until

pytestmark = pytest.mark.integration


def _reads_ok(c: LocalCluster, i: int) -> float:
    text = c.get(i, "/metrics").body.decode()
    m = re.search(r'^raftkv_linearizable_reads_total\{result="ok"\} (\S+)$', text, re.M)
    return float(m.group(1)) if m else 0.0


def test_follower_serves_linearizable_reads_itself(tmp_path: Path) -> None:
    c = LocalCluster(tmp_path)
    try:
        c.start()
        leader = c.wait_for_leader()
        followers = [i for i in range(3) if i != leader]
        before = {i: _reads_ok(c, i) for i in range(3)}
        for n in range(30):
            c.put_ok(leader, "k", f"v{n}")
            for f in followers:  # read-your-writes through a follower, at once
                r = c.get(f, "/v1/kv/k")
                assert r.status == 200 and r.json["value"] == f"v{n}", (f, r)
                assert r.header("X-Raftkv-Served-By") == c.ids[f]  # answered by the follower
        for f in followers:  # the follower's driver ran the read barrier, not the leader's
            assert _reads_ok(c, f) - before[f] >= 30
        assert _reads_ok(c, leader) - before[leader] < 30
        r = c.get(followers[0], "/v1/kv/missing")
        assert r.status == 404 and "error" in r.json

        # leadership moves: the old leader is now a follower; its reads go to the new leader
        term = c.status(leader)["term"]
        target = followers[0]
        r = c.request(
            leader, "POST", "/v1/admin/transfer-leader", json.dumps({"target": c.ids[target]})
        )
        assert r.status == 200, r
        new = c.wait_for_leader(min_term=term + 1)
        c.put_ok(new, "k", "after-transfer")
        for i in range(3):
            wait_until(lambda i=i: c.get(i, "/v1/kv/k").status == 200, 10, f"node {i} reads")
            r = c.get(i, "/v1/kv/k")
            assert r.json["value"] == "after-transfer", (i, r)
            assert r.header("X-Raftkv-Served-By") == c.ids[i]
    finally:
        c.close()

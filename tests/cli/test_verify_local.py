"""`raftctl verify --chaos` on a real local cluster (real `raftkv serve` processes): faults are
injected while 8 clients run, every replica is restarted, and the run passes — linearizable,
durable, replicas in agreement — with a report drawn."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.localcluster import Local

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Local]:
    cluster = Local.new(tmp_path_factory.mktemp("raftctl-verify"))
    try:
        up = cluster.sh("up", "--timeout", "90")
        assert up.returncode == 0, up.stderr
        yield cluster
    finally:
        cluster.teardown()


def test_verify_chaos_passes_on_a_healthy_cluster(local: Local, tmp_path: Path) -> None:
    report = tmp_path / "run.html"
    res = local.sh(
        "verify",
        "--chaos",
        "--duration",
        "14",
        "--fault-interval",
        "5",
        "--hold",
        "2",
        "--report",
        str(report),
        "-o",
        "json",
        timeout=240,
    )
    doc = json.loads(res.stdout)
    assert res.returncode == 0, json.dumps(
        {k: doc[k] for k in ("violation", "notes", "agreement", "faults")}
    )
    assert doc["passed"] is True and doc["linearizable"] is True
    kinds = [f["kind"] for f in doc["faults"] if f["error"] is None]
    assert "kill-leader" in kinds and "stop-node" in kinds and kinds[-1] == "restart-all"
    assert doc["durability"]["ok"] is True and doc["durability"]["restart"] is True
    assert doc["durability"]["keys"] and all(k["answered"] for k in doc["durability"]["keys"])
    assert [a["ok"] for a in doc["agreement"]] == [True, True]
    hashes = {r["hash"] for r in doc["agreement"][1]["replicas"]}
    assert len(hashes) == 1 and len(doc["agreement"][1]["replicas"]) == 3
    f = doc["figures"]
    assert f["ok"] > 100 and f["ops"] == f["ok"] + f["failed"] + f["unknown"]
    assert 0 < f["availability"] <= 1 and f["longest_outage_s"] > 0
    # the leader changed at least once, and the report shows it with the fault windows
    assert len({o["term"] for o in doc["observations"]}) >= 2
    page = report.read_text()
    assert "kill-leader" in page and "leader/term change" in page and "PASS" in page
    # the cluster is whole again afterwards
    status = local.json("status")
    assert status["healthy"] and all(r["health"] == "healthy" for r in status["replicas"])

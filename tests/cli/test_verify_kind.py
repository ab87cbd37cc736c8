"""`raftctl verify --chaos --target kind` goes through the kind backend: its faults are the kind
target's commands (force-delete the leader's pod, `docker stop`/`docker start` its kind node, and
force-delete every pod for the full restart), recorded by the kind tests' fake runner, with fake
nodes behind a fake `kubectl proxy` serving the clients. No Kubernetes here (see docs/verify.md)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from raftctl import options
from raftctl.main import app
from tests.cli.fakenode import ApiServerProxy, FakeCluster
from tests.cli.test_kind_target import NODES, RecordingRunner


@pytest.fixture
def recorder(fake: FakeCluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[RecordingRunner]:
    proxy = ApiServerProxy(fake)
    rec = RecordingRunner(fake, proxy.port)
    monkeypatch.setattr(options, "runner_factory", lambda: rec)
    monkeypatch.delenv("RAFTCTL_ENDPOINTS", raising=False)
    try:
        yield rec
    finally:
        proxy.stop()


def test_verify_chaos_on_kind_injects_faults_through_the_kind_backend(
        recorder: RecordingRunner) -> None:
    res = CliRunner().invoke(app, [
        "verify", "--target", "kind", "--chaos", "--duration", "5", "--fault-interval", "1.6",
        "--hold", "0.5", "--clients", "3", "--keys", "2", "-o", "json"])
    doc = json.loads(res.stdout)
    assert res.exit_code == 0, res.stderr + json.dumps(doc["violation"])
    assert doc["target"] == "kind" and doc["linearizable"] is True
    deleted = [c[7] for c in recorder.calls if c[0] == "kubectl" and c[5:7] == ["delete", "pod"]]
    stopped = [c[2] for c in recorder.calls if c[:2] == ["docker", "stop"]]
    started = [c[2] for c in recorder.calls if c[:2] == ["docker", "start"]]
    kinds = [f["kind"] for f in doc["faults"] if f["error"] is None]
    assert kinds[:2] == ["kill-leader", "stop-node"] and kinds[-1] == "restart-all"
    assert stopped and set(started) == set(stopped)  # every stopped node started again
    assert set(NODES) <= set(deleted[-3:])  # the full restart deleted every pod
    assert len(deleted) >= 4  # ... after at least one kill-leader
    # the fake nodes have no /v1/admin/hash: agreement is skipped and said so, never "passed"
    assert doc["agreement"][0]["ok"] is None and "skipped" in doc["agreement"][0]["explanation"]
    assert doc["durability"]["ok"] is True

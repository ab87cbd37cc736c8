"""`raftctl verify --chaos --target kind` goes through the kind backend: its faults are the kind
target's commands (SIGKILL of the leader's container process through the kind node's container
runtime, `docker pause`/`docker unpause` of its kind node, and a SIGKILL of every replica for the
full restart), recorded by the kind tests' fake runner, with real nodes (tests/cli/realnodes.py)
behind fake `kubectl port-forward`s serving the clients. No Kubernetes here (see docs/verify.md)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from raftctl.main import app
from tests.cli.test_kind_target import NODES, RecordingRunner, kind  # noqa: F401 (fixture)


def _killed(calls: list[list[str]]) -> list[str]:
    """The pods SIGKILLed (docker exec <node> sh -c 'kill -9 <pid>'), in order."""
    by_node = {node: pod for pod, node in NODES.items()}
    return [
        by_node[c[2]]
        for c in calls
        if c[:2] == ["docker", "exec"] and c[3:5] == ["sh", "-c"] and c[5].startswith("kill -9 ")
    ]


def test_verify_chaos_on_kind_injects_faults_through_the_kind_backend(
    kind: RecordingRunner,  # noqa: F811 - the fixture
) -> None:
    kind.nodes.without_route("/v1/admin/hash")  # nodes of a version without the hash route
    res = CliRunner().invoke(
        app,
        [
            "verify",
            "--target",
            "kind",
            "--chaos",
            "--duration",
            "5",
            "--fault-interval",
            "1.6",
            "--hold",
            "0.5",
            "--clients",
            "3",
            "--keys",
            "2",
            "-o",
            "json",
        ],
    )
    assert res.stdout.strip(), f"exit {res.exit_code}: {res.stderr}"
    doc = json.loads(res.stdout)
    assert res.exit_code == 0, res.stderr + json.dumps(doc["violation"])
    assert doc["target"] == "kind" and doc["linearizable"] is True
    paused = [c[2] for c in kind.calls if c[:2] == ["docker", "pause"]]
    unpaused = [c[2] for c in kind.calls if c[:2] == ["docker", "unpause"]]
    kinds = [f["kind"] for f in doc["faults"] if f["error"] is None]
    assert kinds[:2] == ["kill-leader", "stop-node"] and kinds[-1] == "restart-all"
    assert paused and set(unpaused) == set(paused)  # every frozen node was thawed
    killed = _killed(kind.calls)
    assert set(NODES) <= set(killed[-3:])  # the full restart killed every replica
    assert len(killed) >= 4  # ... after at least one kill-leader
    # the nodes have no /v1/admin/hash: agreement is skipped and said so, never "passed"
    assert doc["agreement"][0]["ok"] is None and "skipped" in doc["agreement"][0]["explanation"]
    assert doc["durability"]["ok"] is True

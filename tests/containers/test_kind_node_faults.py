"""The kind target's docker commands against a real Docker engine: two containers labelled like
kind nodes (`io.x-k8s.kind.cluster=<name>`) stand in for a kind cluster's workers. raftctl's
real `SubprocessRunner` runs the docker side of the faults — `docker ps` states, `docker pause`
(the node is frozen: its processes stop), `docker unpause`, `docker start` of a node stopped by
older versions, and `kill-leader`'s `docker exec <node> crictl inspect ...` + `docker exec <node>
sh -c 'kill -9 <pid>'` (a stand-in `crictl` inside the "node" prints the pid of a workload
process, which must really die). Only kubectl is answered by a fake (there is no Kubernetes)."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from raftctl.backends.base import Replica
from raftctl.backends.kind import KindBackend, KindSettings
from raftctl.shell import Completed, Process, SubprocessRunner
from tests.containers.docker_cluster import BASE_IMAGE
from tests.support.waiting import wait_until

# The "node": a workload process (its pid in /tmp/workload.pid) and a crictl that logs its
# arguments and prints that pid, as `crictl inspect --output go-template --template
# '{{.info.pid}}' <id>` prints the container's pid on a real kind node.
NODE_SCRIPT = (
    "sleep 1000 & echo $! > /tmp/workload.pid; "
    "printf '#!/bin/sh\\necho \"$@\" > /tmp/crictl.args\\ncat /tmp/workload.pid\\n' "
    "> /usr/local/bin/crictl; chmod +x /usr/local/bin/crictl; exec sleep infinity"
)


def docker(*args: str) -> str:
    return subprocess.run(
        ["docker", *args], check=True, capture_output=True, text=True, timeout=60
    ).stdout.strip()


class HalfFakeRunner(SubprocessRunner):
    """docker for real; kubectl answered with one pod per node."""

    def __init__(self, nodes: Sequence[str]) -> None:
        self.nodes = list(nodes)
        self.docker_calls: list[list[str]] = []

    def run(self, argv: Sequence[str], **kw: Any) -> Completed:
        args = list(argv)
        if args[0] != "kubectl":
            self.docker_calls.append(args)
            return super().run(args, **kw)
        pods = [
            {
                "metadata": {"name": f"raft-{i}"},
                "spec": {"nodeName": node},
                "status": {
                    "phase": "Running",
                    "containerStatuses": [
                        {
                            "name": "raftkv",
                            "containerID": f"containerd://c{i}",
                            "state": {"running": {"startedAt": "now"}},
                        }
                    ],
                },
            }
            for i, node in enumerate(self.nodes)
        ]
        return Completed(tuple(args), 0, json.dumps({"items": pods}), "")

    def spawn(self, argv: Sequence[str]) -> Process:
        raise AssertionError(f"no port-forward expected here: {argv}")


@pytest.fixture
def nodes(container_tier: None) -> Iterator[tuple[str, list[str]]]:
    cluster = f"raftctl-test-{uuid.uuid4().hex[:8]}"
    names = [f"{cluster}-worker", f"{cluster}-worker2"]
    try:
        for name in names:
            docker(
                "run",
                "-d",
                "--name",
                name,
                "--label",
                f"io.x-k8s.kind.cluster={cluster}",
                "--entrypoint",
                "sh",
                BASE_IMAGE,
                "-c",
                NODE_SCRIPT,
            )
        wait_until(
            lambda: (
                not any(
                    subprocess.run(
                        ["docker", "exec", n, "test", "-x", "/usr/local/bin/crictl"],
                        capture_output=True,
                    ).returncode
                    for n in names
                )
            ),
            30,
            "the stand-in nodes to start",
            interval=0.1,
        )
        yield cluster, names
    finally:
        subprocess.run(["docker", "rm", "-f", *names], capture_output=True, timeout=60)


class Forwarded:
    """Stands in for PortForwards.ensure: records which pods would get a port-forward."""

    def __init__(self) -> None:
        self.pods: list[list[str]] = []

    def __call__(self, pods: Any) -> None:
        self.pods.append(sorted(pods))


def _backend(cluster: str, names: list[str]) -> tuple[KindBackend, HalfFakeRunner, Forwarded]:
    runner = HalfFakeRunner(names)
    backend = KindBackend(KindSettings(cluster=cluster), runner)
    forwarded = Forwarded()
    backend.forwards.ensure = forwarded  # type: ignore[method-assign]
    return backend, runner, forwarded


def test_pause_unpause_and_start_nodes_for_real(nodes: tuple[str, list[str]]) -> None:
    cluster, names = nodes
    backend, _, forwarded = _backend(cluster, names)
    assert backend.node_containers() == {names[0]: "running", names[1]: "running"}

    action = backend.stop(Replica("raft-1", "http://127.0.0.1:1", node=names[1]))
    assert action == f"docker pause {names[1]} (hosts raft-1): the whole node is frozen"
    assert backend.last_signal is not None
    assert backend.node_containers()[names[1]] == "paused"
    assert docker("inspect", "-f", "{{.State.Paused}}", names[1]) == "true"
    assert [r.state for r in backend.replicas()] == ["running", "frozen"]
    assert forwarded.pods[-1] == ["raft-0"]  # a frozen node's pod gets no port-forward

    docker("stop", "-t", "1", names[0])  # what raftctl < 0.2 did to a node
    assert backend.node_containers()[names[0]] == "exited"
    assert backend.replicas()[0].state == "down"
    assert forwarded.pods[-1] == []

    assert backend.restore() == sorted(names)
    assert backend.node_containers() == {names[0]: "running", names[1]: "running"}
    assert backend.restore() == []  # nothing left to resume


def test_kill_sigkills_the_process_the_runtime_names(nodes: tuple[str, list[str]]) -> None:
    cluster, names = nodes
    backend, runner, _ = _backend(cluster, names)
    pid = docker("exec", names[0], "cat", "/tmp/workload.pid")
    assert docker("exec", names[0], "sh", "-c", f"kill -0 {pid} && echo alive") == "alive"

    action = backend.kill(Replica("raft-0", "http://127.0.0.1:1", pod="raft-0"))
    assert action.startswith(f"SIGKILL to raft-0's raftkv process (pid {pid} on {names[0]})")
    assert (
        docker("exec", names[0], "cat", "/tmp/crictl.args")
        == "inspect --output go-template --template {{.info.pid}} c0"
    )
    assert runner.docker_calls[-1] == ["docker", "exec", names[0], "sh", "-c", f"kill -9 {pid}"]

    def workload_dead() -> bool:
        if (
            subprocess.run(
                ["docker", "exec", names[0], "sh", "-c", f"kill -0 {pid}"], capture_output=True
            ).returncode
            != 0
        ):
            return True
        # a zombie still answers kill -0 until reaped; its state says it is dead
        state = docker("exec", names[0], "sh", "-c", f"cat /proc/{pid}/stat 2>/dev/null || true")
        return state.split(")")[-1].split()[:1] == ["Z"]

    wait_until(workload_dead, 10, "the workload to die (it survived kill -9)", interval=0.1)
    assert docker("exec", names[1], "cat", "/tmp/workload.pid")  # the other node is untouched

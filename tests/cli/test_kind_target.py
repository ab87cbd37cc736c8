"""The kind target: the exact docker/kind/kubectl/helm command lines it runs, recorded by a fake
runner (no Kubernetes here), with fake nodes behind a fake `kubectl proxy` for the HTTP part."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import pytest
from typer.testing import CliRunner

from raftctl import options
from raftctl.backends.kind import repo_root
from raftctl.main import app
from raftctl.shell import Completed
from tests.cli.fakenode import ApiServerProxy, FakeCluster

ROOT = repo_root()
CTX = ["--context", "kind-raftkv", "--namespace", "default"]
HELM_CTX = ["--kube-context", "kind-raftkv", "--namespace", "default"]
NODES = {"raft-0": "kind-worker", "raft-1": "kind-worker2", "raft-2": "kind-worker3"}
SELECTOR = "app.kubernetes.io/instance=raftkv,app.kubernetes.io/component=node"
# build.sh gets raftctl's interpreter: it has pip, the system python3 of a PEP 668 machine has none.
BUILD = [str(ROOT / "images" / "build.sh"), "--python", sys.executable]


@dataclass
class FakeProc:
    stdout: io.StringIO
    pid: int = 4242
    terminated: bool = False

    def poll(self) -> int | None:
        return 0 if self.terminated else None

    def terminate(self) -> None:
        self.terminated = True

    def kill(self) -> None:
        self.terminated = True

    def wait(self, timeout: float | None = None) -> int:
        return 0


@dataclass
class RecordingRunner:
    """Records every argv; answers like docker/kind/kubectl/helm would; drives the fake nodes."""

    fake: FakeCluster
    proxy_port: int
    missing: set[str] = field(default_factory=set)
    clusters: list[str] = field(default_factory=lambda: ["raftkv"])
    stopped: list[str] = field(default_factory=list)
    calls: list[list[str]] = field(default_factory=list)
    spawned: list[FakeProc] = field(default_factory=list)
    spawn_argv: list[list[str]] = field(default_factory=list)

    def which(self, tool: str) -> str | None:
        return None if tool in self.missing else f"/usr/bin/{tool}"

    def spawn(self, argv: Sequence[str]) -> FakeProc:
        self.spawn_argv.append(list(argv))
        proc = FakeProc(io.StringIO(f"Starting to serve on 127.0.0.1:{self.proxy_port}\n"))
        self.spawned.append(proc)
        return proc

    def _pods(self) -> str:
        items = [
            {
                "metadata": {"name": pod},
                "spec": {"nodeName": node},
                "status": {"phase": "Running", "podIP": f"10.244.{i + 1}.7"},
            }
            for i, (pod, node) in enumerate(NODES.items())
        ]
        return json.dumps({"items": list(reversed(items))})

    def _next_leader(self, excluded: str) -> str:
        return next(p for p in NODES if p != excluded and p not in self.fake.down)

    def run(self, argv: Sequence[str], *, check: bool = True, stream: bool = False,
            timeout: float | None = None, cwd: str | None = None) -> Completed:
        args = list(argv)
        self.calls.append(args)
        out = ""
        if args[:3] == ["kind", "get", "clusters"]:
            out = "\n".join(self.clusters) + "\n"
        elif args[0] == "kubectl" and "get" in args and "pods" in args:
            out = self._pods()
        elif args[0] == "kubectl" and args[5:7] == ["delete", "pod"]:
            victim = args[7]
            self.fake.elect(self._next_leader(victim))
        elif args[:2] == ["docker", "stop"]:
            pod = next(p for p, n in NODES.items() if n == args[2])
            self.fake.take_down(pod)
            self.stopped.append(args[2])
            if self.fake.leader == pod:
                self.fake.elect(self._next_leader(pod))
        elif args[:3] == ["docker", "ps", "-a"]:
            out = "\n".join(self.stopped) + "\n"
        elif args[:2] == ["docker", "start"]:
            pod = next(p for p, n in NODES.items() if n == args[2])
            self.fake.bring_up(pod)
        return Completed(tuple(args), 0, out, "")


@pytest.fixture
def kind(fake: FakeCluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[RecordingRunner]:
    proxy = ApiServerProxy(fake)
    rec = RecordingRunner(fake, proxy.port)
    monkeypatch.setattr(options, "runner_factory", lambda: rec)
    monkeypatch.delenv("RAFTCTL_ENDPOINTS", raising=False)
    try:
        yield rec
    finally:
        proxy.stop()


cli = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    result = cli.invoke(app, [*args, "--target", "kind"])
    return result.exit_code, result.stdout, result.stderr


def test_build_push_install_commands(kind: RecordingRunner) -> None:
    assert invoke("build", "--tag", "t1")[0] == 0
    assert invoke("push", "--tag", "t1")[0] == 0
    assert invoke("install", "--tag", "t1", "--replicas", "5")[0] == 0
    assert kind.calls == [
        [*BUILD, "localhost:5001/raftkv:t1"],
        ["docker", "push", "localhost:5001/raftkv:t1"],
        ["helm", "upgrade", "--install", "raftkv", str(ROOT / "helm" / "raftkv"),
         "--create-namespace",
         "--set", "image.repository=localhost:5001/raftkv", "--set", "image.tag=t1",
         "--set", "image.pullPolicy=Always", "--set", "client.kind=Job",
         "--set", "replicaCount=5",
         "--wait", "--timeout", "10m", *HELM_CTX],
    ]


def test_build_and_up_pass_the_base_image_through(kind: RecordingRunner) -> None:
    assert invoke("build", "--tag", "t1", "--base", "local/python:3.11-bookworm")[0] == 0
    offline = "local/python:3.11-bookworm"
    assert kind.calls == [[*BUILD, "--base", offline, "localhost:5001/raftkv:t1"]]
    kind.calls.clear()
    code, _, err = invoke("up", "--base", "python:3.11-slim")
    assert code == 0, err
    assert [*BUILD, "--base", "python:3.11-slim", "localhost:5001/raftkv:dev"] in kind.calls


def test_default_kind_cluster_is_raftkv_never_kinds_own_default(kind: RecordingRunner) -> None:
    kind.clusters = ["kind"]  # a cluster made by plain `kind create cluster`: not ours
    assert invoke("up")[0] == 0
    assert [str(ROOT / "kind-with-registry.sh"), "--name", "raftkv"] in kind.calls
    assert all("kind-kind" not in c for c in kind.calls)


def test_up_creates_the_cluster_then_builds_pushes_installs_and_waits(
    kind: RecordingRunner,
) -> None:
    kind.clusters = []
    code, out, err = invoke("up", "--tag", "v2")
    assert code == 0, err
    assert kind.calls[:6] == [
        ["kind", "get", "clusters"],
        [str(ROOT / "kind-with-registry.sh"), "--name", "raftkv"],
        [*BUILD, "localhost:5001/raftkv:v2"],
        ["docker", "push", "localhost:5001/raftkv:v2"],
        ["helm", "upgrade", "--install", "raftkv", str(ROOT / "helm" / "raftkv"),
         "--create-namespace",
         "--set", "image.repository=localhost:5001/raftkv", "--set", "image.tag=v2",
         "--set", "image.pullPolicy=Always", "--set", "client.kind=Job",
         "--wait", "--timeout", "10m", *HELM_CTX],
        ["kubectl", *CTX, "rollout", "status", "statefulset/raft", "--timeout=300s"],
    ]
    assert ["kubectl", *CTX, "get", "pods", "-l", SELECTOR, "-o", "json"] in kind.calls
    assert kind.spawn_argv[0] == ["kubectl", "--context", "kind-raftkv", "proxy", "--port=0"]
    assert all(p.terminated for p in kind.spawned)  # the proxy never outlives the command
    assert "leader raft-0" in out and "kind-worker2" in out
    assert "raftctl put greeting hello --target kind" in out


def test_up_skips_cluster_creation_when_it_exists(kind: RecordingRunner) -> None:
    assert invoke("up")[0] == 0
    assert not any("kind-with-registry.sh" in c[0] for c in kind.calls)


def test_kv_goes_through_the_proxy_which_is_stopped_after(kind: RecordingRunner) -> None:
    assert invoke("put", "k", "v")[0] == 0
    code, out, _ = invoke("get", "k")
    assert (code, out) == (0, "v\n")
    assert kind.fake.store["k"][0] == "v"
    assert len(kind.spawned) == 2 and all(p.terminated for p in kind.spawned)
    code, _, err = invoke("get", "missing")
    assert code == 1 and err.strip() == "error: key not found: missing"
    assert all(p.terminated for p in kind.spawned)


def test_status_shows_pod_node_and_pod_ip(kind: RecordingRunner) -> None:
    kind.fake.elect("raft-1")
    code, out, _ = invoke("status")
    assert code == 0
    row = next(ln for ln in out.splitlines() if "raft-1" in ln and "leader" in ln)
    assert "kind-worker2" in row and "10.244.2.7" in row
    code, out, _ = invoke("status", "-o", "json")
    doc = json.loads(out)
    assert [(r["pod"], r["node"], r["pod_ip"]) for r in doc["replicas"]] == [
        ("raft-0", "kind-worker", "10.244.1.7"),
        ("raft-1", "kind-worker2", "10.244.2.7"),
        ("raft-2", "kind-worker3", "10.244.3.7"),
    ]
    # the node's /v1/status was fetched through the API server's pod proxy
    assert kind.fake.requests_to("/v1/status")
    assert kind.calls[0] == ["kubectl", *CTX, "get", "pods", "-l", SELECTOR, "-o", "json"]


def test_kill_leader_force_deletes_the_leaders_pod(kind: RecordingRunner) -> None:
    code, out, err = invoke("chaos", "kill-leader", "-o", "json")
    assert code == 0, err
    assert ["kubectl", *CTX, "delete", "pod", "raft-0", "--force", "--grace-period=0"] in kind.calls
    report = json.loads(out)
    assert report["old_leader"] == "raft-0" and report["new_leader"] == "raft-1"
    assert report["new_term"] == report["old_term"] + 1
    assert report["election_s"] is not None and report["write_s"] is not None
    assert report["recovered_s"] is not None


def test_stop_node_stops_the_kind_node_hosting_the_leader_then_restore(
    kind: RecordingRunner,
) -> None:
    kind.fake.elect("raft-2")
    code, out, err = invoke("chaos", "stop-node")
    assert code == 0, err
    assert ["docker", "stop", "kind-worker3"] in kind.calls
    assert "docker stop kind-worker3" in out
    code, out, err = invoke("chaos", "restore")
    assert code == 0, err
    assert ["docker", "ps", "-a", "--filter", "label=io.x-k8s.kind.cluster=raftkv",
            "--filter", "status=exited", "--format", "{{.Names}}"] in kind.calls
    assert ["docker", "start", "kind-worker3"] in kind.calls
    assert "kind-worker3" in out


def test_stop_node_of_a_follower_keeps_the_leader(kind: RecordingRunner) -> None:
    code, out, _ = invoke("chaos", "stop-node", "raft-1", "-o", "json", "--timeout", "10")
    assert code == 0
    assert ["docker", "stop", "kind-worker2"] in kind.calls
    report = json.loads(out)
    assert report["victim"] == "raft-1"
    assert report["new_leader"] == report["old_leader"] == "raft-0"
    assert report["new_term"] == report["old_term"]
    assert report["election_s"] is not None and report["write_s"] is not None


def test_down_and_purge(kind: RecordingRunner) -> None:
    assert invoke("down")[0] == 0
    assert kind.calls == [["helm", "uninstall", "raftkv", "--wait", *HELM_CTX]]
    kind.calls.clear()
    assert invoke("down", "--purge")[0] == 0
    assert kind.calls == [
        ["helm", "uninstall", "raftkv", "--wait", *HELM_CTX],
        ["kubectl", *CTX, "delete", "pvc", "-l", "app.kubernetes.io/instance=raftkv",
         "--ignore-not-found"],
        ["kubectl", *CTX, "delete", "secret", "raftkv-token", "--ignore-not-found"],
    ]


def test_names_and_namespace_are_passed_through(kind: RecordingRunner) -> None:
    result = cli.invoke(app, ["down", "--target", "kind", "--name", "kv2", "--namespace", "prod",
                              "--kind-cluster", "lab"])
    assert result.exit_code == 0
    assert kind.calls == [["helm", "uninstall", "kv2", "--wait", "--kube-context", "kind-lab",
                           "--namespace", "prod"]]


def test_logs_uses_kubectl_logs(kind: RecordingRunner) -> None:
    result = cli.invoke(app, ["logs", "raft-1", "--tail", "20", "--target", "kind"])
    assert result.exit_code == 0
    assert kind.calls == [["kubectl", *CTX, "logs", "raft-1", "--tail=20"]]
    kind.calls.clear()
    result = cli.invoke(app, ["logs", "raft-2", "-f", "--target", "kind"])
    assert result.exit_code == 0
    assert kind.calls == [["kubectl", *CTX, "logs", "raft-2", "--follow"]]


@pytest.mark.parametrize("tool", ["docker", "kind", "kubectl", "helm"])
def test_missing_tool_is_named(kind: RecordingRunner, tool: str) -> None:
    kind.missing = {tool}
    code, _, err = invoke("up")
    assert code == 1
    assert err.strip() == (f"error: {tool} not found on PATH (needed to run raftkv on kind): "
                           f"install {tool} and try again")
    assert kind.calls == []


def test_missing_kubectl_for_status(kind: RecordingRunner) -> None:
    kind.missing = {"kubectl"}
    code, _, err = invoke("status")
    assert code == 1 and "kubectl not found on PATH" in err


def test_real_runner_reports_a_missing_program() -> None:
    from raftctl.errors import ToolMissing
    from raftctl.shell import SubprocessRunner

    with pytest.raises(ToolMissing, match="no-such-tool-raftctl not found on PATH"):
        SubprocessRunner().run(["no-such-tool-raftctl", "version"])

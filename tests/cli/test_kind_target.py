"""The kind target: the exact docker/kind/kubectl/helm command lines it runs, recorded by a fake
runner (no Kubernetes here: a fake is unavoidable for kubectl, helm, kind and docker, since no kind
cluster can run on the CI machine). `kubectl port-forward` is faked by a real TCP relay on the port
raftctl asked for, in front of REAL raftkv nodes (tests/cli/realnodes.py), so the HTTP part (keys,
routing, chaos timings) is real. A "container kill" or "node pause" takes the pod's node off the
client network (its relay drops requests) and, if it led, moves leadership by a real transfer —
what raftctl observes from outside when Kubernetes kills or freezes a leader."""

from __future__ import annotations

import contextlib
import io
import json
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from typer.testing import CliRunner

from raftctl import options
from raftctl.backends import kind as kind_module, portforward
from raftctl.backends.base import Replica
from raftctl.backends.kind import (
    KindBackend,
    KindSettings,
    repo_root,
    schedulable_nodes,
    starting_nodes,
)
from raftctl.client import KVClient
from raftctl.errors import KeyNotFound, RaftctlError
from raftctl.main import app
from raftctl.routing import request_order
from raftctl.shell import Completed
from tests.cli.realnodes import RealCluster

ROOT = repo_root()
CTX = ["--context", "kind-raftkv", "--namespace", "default"]
HELM_CTX = ["--kube-context", "kind-raftkv", "--namespace", "default"]
NODES = {"raft-0": "raftkv-worker", "raft-1": "raftkv-worker2", "raft-2": "raftkv-worker3"}
SELECTOR = "app.kubernetes.io/instance=raftkv,app.kubernetes.io/component=node"
DIGEST = "sha256:" + "d" * 64
# build.sh gets raftctl's interpreter: it has pip, the system python3 of a PEP 668 machine has none.
BUILD = [str(ROOT / "images" / "build.sh"), "--python", sys.executable]
GET_PODS = ["kubectl", *CTX, "get", "pods", "-l", SELECTOR, "-o", "json"]
GET_NODES = ["kubectl", *CTX, "get", "nodes", "-o", "json"]
DOCKER_PS = [
    "docker",
    "ps",
    "-a",
    "--filter",
    "label=io.x-k8s.kind.cluster=raftkv",
    "--format",
    "{{.Names}} {{.State}}",
]


class Relay:
    """What `kubectl port-forward` does for raftctl: 127.0.0.1:<port> → the pod's port."""

    def __init__(self, port: int, target: int) -> None:
        class Pipe(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                try:
                    upstream = socket.create_connection(("127.0.0.1", target), timeout=5)
                except OSError:
                    return
                done = threading.Event()

                def pump(src: socket.socket, dst: socket.socket) -> None:
                    try:
                        while data := src.recv(65536):
                            dst.sendall(data)
                    except OSError:
                        pass
                    finally:
                        done.set()

                threading.Thread(target=pump, args=(upstream, self.request), daemon=True).start()
                pump(self.request, upstream)
                done.wait(5)
                upstream.close()

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", port), Pipe)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class FakeProc:
    """A spawned kubectl port-forward: its output, and the relay while it runs."""

    stdout: io.StringIO
    relay: Relay | None = None
    pid: int = 4242
    exit_code: int | None = None

    def poll(self) -> int | None:
        return self.exit_code

    def terminate(self) -> None:
        if self.relay is not None:
            self.relay.stop()
            self.relay = None
        if self.exit_code is None:
            self.exit_code = -15

    def kill(self) -> None:
        self.terminate()

    def wait(self, timeout: float | None = None) -> int:
        return self.exit_code or 0


@dataclass
class RecordingRunner:
    """Records every argv; answers like docker/kind/kubectl/helm would; drives the real nodes."""

    nodes: RealCluster
    missing: set[str] = field(default_factory=set)
    workers: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {
            n: {} for n in ("raftkv-worker", "raftkv-worker2", "raftkv-worker3", "raftkv-worker4")
        }
    )
    node_ready: dict[str, bool] = field(default_factory=dict)
    ready_after: dict[str, int] = field(default_factory=dict)  # node: `get nodes` calls until Ready
    node_polls: int = 0
    hosts: dict[str, str] = field(default_factory=dict)  # docker state of each kind node
    forward_fails: set[str] = field(default_factory=set)
    release_pods_left: list[int] = field(default_factory=list)  # pods listed per poll after down
    restart_after: float = 0.3  # the kubelet brings a killed container back after this long
    calls: list[list[str]] = field(default_factory=list)
    spawned: list[FakeProc] = field(default_factory=list)
    spawn_argv: list[list[str]] = field(default_factory=list)
    signal_at: dict[str, float] = field(default_factory=dict)
    pod_phases: list[str] = field(default_factory=list)
    pod_log: str = ""

    def __post_init__(self) -> None:
        self.hosts = {"raftkv-control-plane": "running", **{n: "running" for n in self.workers}}

    def which(self, tool: str) -> str | None:
        return None if tool in self.missing else f"/usr/bin/{tool}"

    # -- kubectl port-forward -------------------------------------------------------------------
    def spawn(self, argv: Sequence[str]) -> FakeProc:
        args = list(argv)
        self.spawn_argv.append(args)
        assert args[:5] == ["kubectl", *CTX] and args[5] == "port-forward", args
        pod = args[6].removeprefix("pod/")
        local, _, remote = args[7].partition(":")
        assert remote == "8000" and args[8:] == ["--address", "127.0.0.1"]
        if pod in self.forward_fails:
            proc = FakeProc(
                io.StringIO(
                    f"error: unable to forward port because pod is not "
                    f"running. Current status=Pending ({pod})\n"
                ),
                exit_code=1,
            )
        else:
            target = int(self.nodes.url(pod).rsplit(":", 1)[1])
            try:
                relay = Relay(int(local), target)
            except OSError as err:  # what kubectl prints when its port is taken
                proc = FakeProc(
                    io.StringIO(
                        f"Unable to listen on port {local}: Listeners failed to create with the "
                        f"following errors: [unable to create listener: Error listen tcp4 "
                        f"127.0.0.1:{local}: bind: {err.strerror.lower()}]\n"
                        "error: unable to listen on any of the requested ports: "
                        f"[{{{local} 8000}}]\n"
                    ),
                    exit_code=1,
                )
            else:
                proc = FakeProc(
                    io.StringIO(f"Forwarding from 127.0.0.1:{local} -> 8000\n"), relay=relay
                )
        self.spawned.append(proc)
        return proc

    def live_forwards(self) -> list[FakeProc]:
        return [p for p in self.spawned if p.poll() is None]

    # -- the cluster's state as kubectl and docker print it -------------------------------------
    def _pods(self) -> str:
        items = []
        for i, (pod, node) in enumerate(NODES.items()):
            running = pod not in self.nodes.down
            items.append({
                "metadata": {"name": pod},
                "spec": {"nodeName": node},
                "status": {
                    "phase": "Running",
                    "podIP": f"10.244.{i + 1}.7",
                    "conditions": [{"type": "Ready", "status": "True" if running else "False"}],
                    "containerStatuses": [{
                        "name": "raftkv",
                        "containerID": f"containerd://cid{i}",
                        "state": {"running": {}} if running else {"waiting": {}},
                    }],
                },
            })  # fmt: skip
        return json.dumps({"items": list(reversed(items))})

    def _nodes(self) -> str:
        self.node_polls += 1
        for name, polls in list(self.ready_after.items()):
            if self.node_polls > polls:
                self.node_ready[name] = True
                del self.ready_after[name]

        def node(name: str, extra: dict[str, Any]) -> dict[str, Any]:
            ready = self.node_ready.get(name, True)
            spec = dict(extra)
            if not ready:  # what the node lifecycle controller adds
                spec["taints"] = [
                    *spec.get("taints", []),
                    {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"},
                ]
            return {
                "metadata": {"name": name},
                "spec": spec,
                "status": {
                    "conditions": [{"type": "Ready", "status": "True" if ready else "Unknown"}]
                },
            }

        cp = node(
            "raftkv-control-plane",
            {"taints": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]},
        )
        return json.dumps({"items": [cp, *(node(n, e) for n, e in self.workers.items())]})

    def _release_pods(self) -> str:
        left = self.release_pods_left.pop(0) if self.release_pods_left else 0
        items = [
            {
                "metadata": {"name": f"raft-{i}", "deletionTimestamp": "now"},
                "spec": {"nodeName": NODES[f"raft-{i}"]},
                "status": {"phase": "Running"},
            }
            for i in range(left)
        ]
        return json.dumps({"items": items})

    def _pod_on(self, node: str) -> str:
        return next(p for p, n in NODES.items() if n == node)

    def _crash(self, pod: str, *, back: bool = True) -> None:
        self.signal_at[pod] = time.monotonic()
        self.nodes.take_down(pod)
        survivor = next((p for p in NODES if p not in self.nodes.down), None)
        if self.nodes.leader == pod and survivor is not None:
            self.nodes.elect(survivor)  # a real election would pick one of them too
        if back:  # the kubelet restarts the container / the StatefulSet re-creates the pod
            threading.Timer(self.restart_after, self._back, args=(pod,)).start()

    def _back(self, pod: str) -> None:
        self.nodes.bring_up(pod)  # (every replica was down: the leader kept its place)

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        stream: bool = False,
        timeout: float | None = None,
        cwd: str | None = None,
    ) -> Completed:
        args = list(argv)
        self.calls.append(args)
        out = ""
        if args == GET_PODS:
            out = self._pods()
        elif args == GET_NODES:
            out = self._nodes()
        elif args[0] == "kubectl" and args[5:7] == ["get", "pods"]:
            out = self._release_pods()
        elif args == DOCKER_PS:
            out = "".join(f"{n} {s}\n" for n, s in self.hosts.items())
        elif args[:2] == ["docker", "exec"] and args[3:5] == ["crictl", "inspect"]:
            out = f"{4100 + int(args[-1].removeprefix('cid'))}\n"
        elif args[:2] == ["docker", "exec"] and args[3:5] == ["sh", "-c"]:
            pid = int(args[5].removeprefix("kill -9 "))
            self._crash(self._pod_on(args[2]))
            assert pid == 4100 + int(self._pod_on(args[2])[-1])
        elif args[:5] == ["kubectl", *CTX] and args[5:7] == ["delete", "pod"]:
            self._crash(args[7])
        elif args[:2] == ["docker", "pause"]:
            self.hosts[args[2]] = "paused"
            self._crash(self._pod_on(args[2]), back=False)
        elif args[:2] in (["docker", "unpause"], ["docker", "start"]):
            self.hosts[args[2]] = "running"
            self.nodes.bring_up(self._pod_on(args[2]))
        elif args[5:8] == ["get", "statefulset", "raft"]:
            out = json.dumps(
                {
                    "spec": {
                        "serviceName": "raft-service",
                        "replicas": 3,
                        "template": {
                            "spec": {
                                "containers": [
                                    {"name": "raftkv", "image": f"localhost:5001/raftkv@{DIGEST}"}
                                ]
                            }
                        },
                    }
                }
            )
        elif args[5:6] == ["run"]:
            self.pod_phases = ["Pending", "Running", "Succeeded"]
        elif args[5:7] == ["get", "pod"]:
            out = self.pod_phases.pop(0) if len(self.pod_phases) > 1 else self.pod_phases[0]
        elif args[5:6] == ["logs"] and args[6].startswith("raftkv-bench-"):
            out = self.pod_log
        elif args[:2] == ["docker", "push"]:
            out = f"The push refers to repository [{args[2]}]\ndev: digest: {DIGEST} size: 2412\n"
        elif args[:3] == ["docker", "image", "inspect"]:
            out = json.dumps([f"localhost:5001/raftkv@{DIGEST}"])
        return Completed(tuple(args), 0, out, "")


@pytest.fixture
def kind(nodes: RealCluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[RecordingRunner]:
    rec = RecordingRunner(nodes)
    monkeypatch.setattr(options, "runner_factory", lambda: rec)
    monkeypatch.setattr(kind_module, "DOWN_POLL_S", 0.01)
    monkeypatch.setattr(kind_module, "NODE_POLL_S", 0.01)
    monkeypatch.setattr(kind_module, "NODE_WAIT_S", 0.3)
    monkeypatch.delenv("RAFTCTL_ENDPOINTS", raising=False)
    try:
        yield rec
    finally:
        for proc in rec.spawned:
            proc.terminate()


cli = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    result = cli.invoke(app, [*args, "--target", "kind"])
    return result.exit_code, result.stdout, result.stderr


def helm_install(tag: str, *extra: str, digest: str = DIGEST, anti: str = "hard") -> list[str]:
    return [
        "helm",
        "upgrade",
        "--install",
        "raftkv",
        str(ROOT / "helm" / "raftkv"),
        "--create-namespace",
        "--set",
        "image.repository=localhost:5001/raftkv",
        "--set",
        f"image.tag={tag}",
        "--set",
        f"image.digest={digest}",
        "--set",
        "image.pullPolicy=Always",
        "--set",
        "client.kind=Job",
        "--set",
        f"antiAffinity={anti}",
        *extra,
        "--wait",
        "--timeout",
        "10m",
        *HELM_CTX,
    ]


# ------------------------------------------------------------------ image, chart, worker check
def test_build_and_up_pass_the_base_image_through(kind: RecordingRunner) -> None:
    offline = "local/python:3.11-bookworm"
    assert invoke("build", "--tag", "t1", "--base", offline)[0] == 0
    assert kind.calls == [[*BUILD, "--base", offline, "localhost:5001/raftkv:t1"]]
    kind.calls.clear()
    code, _, err = invoke("up", "--base", "python:3.11-slim")
    assert code == 0, err
    assert [*BUILD, "--base", "python:3.11-slim", "localhost:5001/raftkv:dev"] in kind.calls


def test_build_push_install_commands_deploy_by_digest(kind: RecordingRunner) -> None:
    assert invoke("build", "--tag", "t1")[0] == 0
    code, out, _ = invoke("push", "--tag", "t1")
    assert code == 0 and DIGEST in out
    code, out, _ = invoke("install", "--tag", "t1", "--replicas", "3")
    assert code == 0 and f"localhost:5001/raftkv@{DIGEST}" in out
    assert kind.calls == [
        [*BUILD, "localhost:5001/raftkv:t1"],
        ["docker", "push", "localhost:5001/raftkv:t1"],
        GET_NODES,  # the worker check
        [
            "docker",
            "image",
            "inspect",
            "--format",
            "{{json .RepoDigests}}",
            "localhost:5001/raftkv:t1",
        ],  # install alone: the digest docker recorded at the push
        helm_install("t1", "--set", "replicaCount=3"),
    ]


def test_install_by_tag_when_no_digest_is_known(kind: RecordingRunner) -> None:
    def unpushed(argv: Sequence[str], **kw: Any) -> Completed:
        done = RecordingRunner.run(kind, argv, **kw)
        if list(argv[:3]) == ["docker", "image", "inspect"]:
            return Completed(done.argv, 0, "[]\n", "")
        return done

    kind.run = unpushed  # type: ignore[method-assign]
    code, out, err = invoke("install", "--tag", "t2")
    assert code == 0, err
    assert kind.calls[-1] == helm_install("t2", digest="")
    assert "deploying by tag" in err and "(by tag)" in out


def test_up_runs_the_cluster_script_then_builds_pushes_installs_by_digest(
    kind: RecordingRunner,
) -> None:
    code, out, err = invoke("up", "--tag", "v2")
    assert code == 0, err
    assert kind.calls[:6] == [
        [str(ROOT / "kind-with-registry.sh"), "--name", "raftkv"],  # creates or repairs, always
        GET_NODES,  # the worker check, before the long build
        [*BUILD, "localhost:5001/raftkv:v2"],
        ["docker", "push", "localhost:5001/raftkv:v2"],
        GET_NODES,
        helm_install("v2"),  # the digest the push printed: a rebuilt tag rolls out
    ]
    assert kind.calls[6] == [
        "kubectl",
        *CTX,
        "rollout",
        "status",
        "statefulset/raft",
        "--timeout=300s",
    ]
    assert GET_PODS in kind.calls
    assert "leader raft-0" in out and "raftkv-worker2" in out
    assert "raftctl put greeting hello --target kind" in out
    assert kind.spawned and not kind.live_forwards()  # no port-forward outlives the command


def test_rebuilding_the_same_tag_deploys_the_new_digest(kind: RecordingRunner) -> None:
    assert invoke("up")[0] == 0
    first = next(c for c in kind.calls if c[0] == "helm")
    new = "sha256:" + "e" * 64

    def rebuilt(argv: Sequence[str], **kw: Any) -> Completed:
        done = RecordingRunner.run(kind, argv, **kw)
        if list(argv[:2]) == ["docker", "push"]:
            return Completed(done.argv, 0, f"dev: digest: {new} size: 1\n", "")
        return done

    kind.run = rebuilt  # type: ignore[method-assign]
    kind.calls.clear()
    assert invoke("up")[0] == 0
    second = next(c for c in kind.calls if c[0] == "helm")
    assert f"image.digest={DIGEST}" in first and f"image.digest={new}" in second
    assert "image.tag=dev" in first and "image.tag=dev" in second


@pytest.mark.parametrize("workers", [1, 2])
def test_up_refuses_too_few_workers_for_the_hard_anti_affinity(
    kind: RecordingRunner, workers: int
) -> None:
    kind.workers = {f"raftkv-worker{i or ''}": {} for i in range(workers)}
    code, _, err = invoke("up")
    assert code == 1
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert errors == [
        (
            f"error: kind cluster 'raftkv' has {workers} schedulable worker node(s) "
            "for 3 replicas, and the chart's hard anti-affinity puts each replica on its own "
            "node: use a cluster with at least 3 workers (`--kind-cluster NAME`; "
            "./kind-with-registry.sh --name NAME "
            "makes 4), or `--anti-affinity soft`"
        )
    ]
    assert not any("build.sh" in c[0] or c[0] == "helm" for c in kind.calls)


def test_cordoned_tainted_and_unready_nodes_do_not_count(kind: RecordingRunner) -> None:
    kind.workers = {
        "raftkv-worker": {},
        "raftkv-worker2": {"unschedulable": True},
        "raftkv-worker3": {"taints": [{"key": "x", "effect": "NoExecute"}]},
        "raftkv-worker4": {"taints": [{"key": "y", "effect": "PreferNoSchedule"}]},
        "raftkv-worker5": {},
    }
    kind.node_ready = {"raftkv-worker5": False}
    nodes = json.loads(kind._nodes())["items"]
    assert schedulable_nodes(nodes) == ["raftkv-worker", "raftkv-worker4"]
    assert starting_nodes(nodes) == ["raftkv-worker5"]  # NotReady: may still come
    code, _, err = invoke("install", "--replicas", "3")
    assert code == 1
    assert (
        "error: kind cluster 'raftkv' has 2 schedulable worker node(s) (1 more not Ready "
        "after 0.3s: raftkv-worker5) for 3 replicas"
    ) in err
    assert invoke("install", "--replicas", "1")[0] == 0  # one replica needs one node


def test_the_worker_check_waits_for_new_workers_to_be_ready(kind: RecordingRunner) -> None:
    """Right after `kind create cluster` the workers are NotReady (and tainted not-ready)."""
    kind.node_ready = {"raftkv-worker2": False, "raftkv-worker3": False, "raftkv-worker4": False}
    kind.ready_after = {"raftkv-worker2": 3, "raftkv-worker3": 4}
    code, _, err = invoke("install")
    assert code == 0, err
    assert (
        "waiting for worker node(s) raftkv-worker2, raftkv-worker3, raftkv-worker4 to be Ready"
        in err
    )
    assert kind.calls.count(GET_NODES) == 5  # Ready after the 4th and 5th look
    assert kind.calls[-1][0] == "helm"


def test_soft_anti_affinity_skips_the_check_and_is_passed_to_the_chart(
    kind: RecordingRunner,
) -> None:
    kind.workers = {"raftkv-worker": {}}
    code, _, err = invoke("install", "--anti-affinity", "soft")
    assert code == 0, err
    assert GET_NODES not in kind.calls
    assert kind.calls[-1] == helm_install("dev", anti="soft")


def test_the_default_kind_cluster_is_raftkv_and_names_pass_through(
    kind: RecordingRunner,
) -> None:
    assert options.Globals().kind_cluster == KindSettings().cluster == "raftkv"
    result = cli.invoke(
        app,
        [
            "down",
            "--target",
            "kind",
            "--name",
            "kv2",
            "--namespace",
            "prod",
            "--kind-cluster",
            "lab",
        ],
    )
    assert result.exit_code == 0
    assert kind.calls[0] == [
        "helm",
        "uninstall",
        "kv2",
        "--wait",
        "--kube-context",
        "kind-lab",
        "--namespace",
        "prod",
    ]
    assert kind.calls[1] == [
        "kubectl",
        "--context",
        "kind-lab",
        "--namespace",
        "prod",
        "get",
        "pods",
        "-l",
        "app.kubernetes.io/instance=kv2",
        "-o",
        "json",
    ]


# ------------------------------------------------------------------ port-forward transport
def test_kv_goes_through_one_port_forward_per_pod_stopped_after(kind: RecordingRunner) -> None:
    assert invoke("put", "k", "v")[0] == 0
    assert sorted(a[6] for a in kind.spawn_argv) == ["pod/raft-0", "pod/raft-1", "pod/raft-2"]
    ports = {int(a[7].split(":")[0]) for a in kind.spawn_argv}
    assert len(ports) == 3 and all(p > 1024 for p in ports)
    assert not kind.live_forwards()
    code, out, _ = invoke("get", "k")
    assert (code, out) == (0, "v\n")
    assert kind.nodes.store["k"][0] == "v"
    code, _, err = invoke("get", "missing")
    assert code == 1 and err.strip() == "error: key not found: missing"
    assert len(kind.spawned) == 9 and not kind.live_forwards()


# Keys the API server's proxy would have rewritten (path cleaning) or refused (kubectl proxy's
# default reject rule ^.*/exec|attach...): through port-forward each is its own key.
ODD_KEYS = [
    "x/../y",
    "a//b",
    "/lead",
    "trail/",
    "execution-log",
    "attach",
    "exec/x",
    "..",
    ".",
    "pct%41",
    "tag#frag",
    "q?x",
    "ün",
    "sp ace",
    "a/./b",
    "%2F",
]


def test_keys_the_api_server_proxy_would_rewrite_reach_the_node_unchanged(
    kind: RecordingRunner,
) -> None:
    for i, key in enumerate(ODD_KEYS):
        code, _, err = invoke("put", key, f"v{i}")
        assert code == 0, (key, err)
    assert {k: v for k, (v, _) in kind.nodes.store.items()} == {
        k: f"v{i}" for i, k in enumerate(ODD_KEYS)
    }
    for i, key in enumerate(ODD_KEYS):
        code, out, err = invoke("get", key)
        assert (code, out) == (0, f"v{i}\n"), (key, err)


@pytest.fixture
def backend(kind: RecordingRunner) -> Iterator[KindBackend]:
    b = options.Globals(target=options.Target.kind).kind()
    try:
        yield b
    finally:
        b.close()


_keys = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40) | st.lists(
    st.sampled_from(["", ".", "..", "exec", "attach", "%", "#", "?", "a", "ü", "/"]),
    min_size=1,
    max_size=6,
).map("/".join).filter(bool)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(key=_keys)
def test_every_key_is_the_same_key_through_the_kind_transport(
    backend: KindBackend, kind: RecordingRunner, key: str
) -> None:
    kind.nodes.clear_keys()
    kind.nodes.put("bystander", "b")
    replicas = backend.replicas()
    client = KVClient([r.url for r in replicas], ids={r.id: r.url for r in replicas}, deadline=5)
    try:
        client.put(key, "v")
        assert set(kind.nodes.store) == {key, "bystander"}
        assert client.get(key).body["value"] == "v"
        client.delete(key)
        assert set(kind.nodes.store) == {"bystander"}
        with pytest.raises(KeyNotFound):
            client.get(key)
    finally:
        client.close()


def test_a_dead_forward_is_restarted_on_the_same_port(
    backend: KindBackend, kind: RecordingRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(portforward, "RESPAWN_S", 0.0)
    first = {r.id: r.url for r in backend.replicas()}
    assert len(kind.spawned) == 3
    victim = kind.spawned[1]
    victim.terminate()  # kubectl exited: "lost connection to pod" after a container restart
    victim.exit_code = 1
    again = {r.id: r.url for r in backend.replicas()}
    assert again == first  # clients keep their URLs
    assert len(kind.spawned) == 4 and kind.spawn_argv[3] == kind.spawn_argv[1]
    assert backend.replicas() and len(kind.spawned) == 4  # live forwards are kept
    backend.close()
    assert not kind.live_forwards()


def test_a_port_taken_before_kubectl_binds_it_is_replaced(
    backend: KindBackend, kind: RecordingRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    taken = squatter.getsockname()[1]
    picks = iter([taken, portforward.free_port(), portforward.free_port(), portforward.free_port()])
    monkeypatch.setattr(portforward, "free_port", lambda: next(picks))
    try:
        urls = {r.id: r.url for r in backend.replicas()}
    finally:
        squatter.close()
    tries = [a[7] for a in kind.spawn_argv if a[6] == "pod/raft-0"]
    assert len(tries) == 2 and tries[0] == f"{taken}:8000"
    assert urls["raft-0"] == f"http://127.0.0.1:{tries[1].split(':')[0]}"
    assert urls["raft-0"] != f"http://127.0.0.1:{taken}"
    client = KVClient([urls["raft-0"]], deadline=5)
    try:
        client.put("k", "v")  # through the replacement port
    finally:
        client.close()
    assert kind.nodes.store["k"][0] == "v"


def test_pods_that_cannot_answer_get_no_forward_and_fail_at_once(
    backend: KindBackend, kind: RecordingRunner
) -> None:
    kind.hosts["raftkv-worker2"] = "paused"  # raft-1's node is frozen
    kind.node_ready["raftkv-worker3"] = False  # raft-2's node NotReady
    replicas = {r.id: r for r in backend.replicas()}
    assert [a[6] for a in kind.spawn_argv] == ["pod/raft-0"]
    assert replicas["raft-1"].state == "frozen"
    assert replicas["raft-2"].node_ready is False
    assert replicas["raft-1"].url == replicas["raft-2"].url == kind_module.NO_ROUTE
    with socket.socket() as s:  # refused at once, no hanging, and nobody else can be there
        assert s.connect_ex(("127.0.0.1", int(kind_module.NO_ROUTE.rsplit(":", 1)[1]))) != 0
    kind.hosts["raftkv-worker2"] = "running"  # unpaused: it gets its forward and a real port
    assert {r.id: r.url for r in backend.replicas()}["raft-1"] != kind_module.NO_ROUTE
    assert [a[6] for a in kind.spawn_argv] == ["pod/raft-0", "pod/raft-1"]


def test_a_forward_that_fails_is_named_in_one_line(kind: RecordingRunner) -> None:
    kind.forward_fails = set(NODES)
    code, _, err = invoke("put", "k", "v")
    assert code == 1
    assert err.strip() == (
        "error: `kubectl port-forward` to raft-0 failed: error: unable to "
        "forward port because pod is not running. Current status=Pending "
        "(raft-0)"
    )
    assert kind.nodes.store == {}


# ------------------------------------------------------------------ routing (item 11)
def test_requests_go_to_the_leader_first_and_dead_pods_last(
    backend: KindBackend, kind: RecordingRunner
) -> None:
    kind.nodes.elect("raft-2")
    kind.hosts["raftkv-worker"] = "paused"  # raft-0, first by name, is frozen
    ordered = request_order(backend.replicas())
    assert [r.id for r in ordered] == ["raft-2", "raft-1", "raft-0"]
    unknown = [
        Replica("a", "http://127.0.0.1:1", node_ready=None),
        Replica("b", "http://127.0.0.1:1", node_ready=False),
        Replica("c", "http://127.0.0.1:1", state="restarting"),
    ]
    assert [r.id for r in request_order(unknown, timeout=0.2)] == ["a", "b", "c"]


def test_a_dead_leader_that_kubernetes_still_shows_ready_is_tried_last(
    backend: KindBackend, kind: RecordingRunner
) -> None:
    """The node hangs (not paused by raftctl, still Ready): the survivors still name it as
    leader, but only a replica that answers as leader goes first; the silent one goes last."""
    replicas = backend.replicas()
    kind.nodes.take_down("raft-0")  # the leader stops answering; followers still name it
    start = time.monotonic()
    ordered = request_order(replicas, timeout=0.5)
    assert time.monotonic() - start < 2.0
    assert [r.id for r in ordered][-1] == "raft-0"
    kind.nodes.elect("raft-2")
    assert request_order(replicas, timeout=0.5)[0].id == "raft-2"


def test_a_put_after_stop_node_does_not_wait_for_the_frozen_pod(kind: RecordingRunner) -> None:
    kind.nodes.elect("raft-1")
    kind.hosts["raftkv-worker"] = "paused"
    kind.nodes.take_down("raft-0")
    start = time.monotonic()
    code, _, err = invoke("put", "k", "v")
    assert code == 0, err
    assert time.monotonic() - start < 4.0  # the client timeout (5 s) was never paid
    kv = [s for s in kind.nodes.seen if s.path.startswith("/v1/kv")]
    assert kv[0].node == "raft-1"  # the leader, tried first
    assert not any(s.node == "raft-0" for s in kind.nodes.seen)


# ------------------------------------------------------------------ status (item 7)
def test_status_shows_pod_node_pod_ip_and_readiness(kind: RecordingRunner) -> None:
    kind.nodes.elect("raft-1")
    code, out, _ = invoke("status", "-o", "json")
    assert code == 0
    doc = json.loads(out)
    assert [
        (r["pod"], r["node"], r["pod_ip"], r["pod_ready"], r["node_ready"]) for r in doc["replicas"]
    ] == [
        ("raft-0", "raftkv-worker", "10.244.1.7", True, True),
        ("raft-1", "raftkv-worker2", "10.244.2.7", True, True),
        ("raft-2", "raftkv-worker3", "10.244.3.7", True, True),
    ]
    assert kind.calls[:3] == [GET_PODS, GET_NODES, DOCKER_PS]
    kind.node_ready["raftkv-worker3"] = False
    result = cli.invoke(app, ["status", "--target", "kind"])
    assert result.exit_code == 0
    row = next(ln for ln in result.stdout.splitlines() if "raft-1" in ln and "leader" in ln)
    assert "raftkv-worker2" in row and "10.244.2.7" in row and "yes/yes" in row
    row2 = next(ln for ln in result.stdout.splitlines() if "raft-2" in ln)
    assert "yes/no" in row2


# ------------------------------------------------------------------ chaos (items 5, 6)
def test_kill_leader_sigkills_the_container_process_and_keeps_the_pod(
    kind: RecordingRunner,
) -> None:
    code, out, err = invoke("chaos", "kill-leader", "-o", "json")
    assert code == 0, err
    inspect = [
        "docker",
        "exec",
        "raftkv-worker",
        "crictl",
        "inspect",
        "--output",
        "go-template",
        "--template",
        "{{.info.pid}}",
        "cid0",
    ]
    kill = ["docker", "exec", "raftkv-worker", "sh", "-c", "kill -9 4100"]
    assert inspect in kind.calls and kill in kind.calls
    assert kind.calls.index(inspect) + 1 == kind.calls.index(kill)
    assert not any(c[5:7] == ["delete", "pod"] for c in kind.calls if c[0] == "kubectl")
    report = json.loads(out)
    assert report["old_leader"] == "raft-0" and report["new_leader"] == "raft-1"
    assert report["new_term"] == report["old_term"] + 1
    assert "SIGKILL to raft-0's raftkv process (pid 4100 on raftkv-worker)" in report["action"]
    assert report["election_s"] is not None and report["write_s"] is not None
    assert report["recovered_s"] is not None and report["recovered_s"] >= kind.restart_after - 0.05


def test_chaos_times_start_at_the_signal_not_at_the_lookups(
    kind: RecordingRunner,
) -> None:
    def slow_inspect(argv: Sequence[str], **kw: Any) -> Completed:
        if list(argv[3:5]) == ["crictl", "inspect"]:
            time.sleep(1.0)  # a slow `docker exec` before the signal
        return RecordingRunner.run(kind, argv, **kw)

    kind.run = slow_inspect  # type: ignore[method-assign]
    kind.restart_after = 0.2
    code, out, err = invoke("chaos", "kill-leader", "-o", "json")
    assert code == 0, err
    report = json.loads(out)
    assert report["recovered_s"] < 1.0  # the 1 s lookup is not in the window


def test_delete_pod_is_its_own_fault(kind: RecordingRunner) -> None:
    code, out, err = invoke("chaos", "delete-pod", "raft-2", "-o", "json")
    assert code == 0, err
    assert ["kubectl", *CTX, "delete", "pod", "raft-2", "--wait=false"] in kind.calls
    report = json.loads(out)
    assert report["fault"] == "delete-pod" and report["victim"] == "raft-2"
    assert report["recovered_s"] is not None
    kind.calls.clear()
    code, out, err = invoke("chaos", "delete-pod", "--force", "-o", "json")
    assert code == 0, err
    assert [
        "kubectl",
        *CTX,
        "delete",
        "pod",
        "raft-0",
        "--wait=false",
        "--force",
        "--grace-period=0",
    ] in kind.calls
    result = cli.invoke(app, ["chaos", "delete-pod"])
    assert result.exit_code == 2 and "delete-pod needs --target kind" in result.stderr


def test_stop_node_pauses_the_kind_node_then_restore_unpauses(kind: RecordingRunner) -> None:
    kind.nodes.elect("raft-2")
    code, out, err = invoke("chaos", "stop-node", "-o", "json")
    assert code == 0, err
    assert ["docker", "pause", "raftkv-worker3"] in kind.calls
    assert not any(c[:2] == ["docker", "stop"] for c in kind.calls)
    report = json.loads(out)
    assert report["victim"] == "raft-2" and report["new_leader"] != "raft-2"
    assert "docker pause raftkv-worker3" in report["action"]
    code, out, err = invoke("status", "-o", "json")
    assert [r["state"] for r in json.loads(out)["replicas"]] == ["running", "running", "frozen"]
    kind.calls.clear()
    code, out, err = invoke("chaos", "restore", "-o", "json")
    assert code == 0, err
    assert ["docker", "unpause", "raftkv-worker3"] in kind.calls
    doc = json.loads(out)
    assert doc["restored"] == ["raftkv-worker3"] and doc["pending"] == {}
    assert doc["caught_up_s"]["raftkv-worker3"] is not None
    assert doc["timeout_s"] == 300.0  # kind's default: long enough for a node


def test_restore_starts_nodes_stopped_by_older_versions(kind: RecordingRunner) -> None:
    kind.hosts["raftkv-worker2"] = "exited"
    kind.nodes.take_down("raft-1")
    code, out, err = invoke("chaos", "restore")
    assert code == 0, err
    assert ["docker", "start", "raftkv-worker2"] in kind.calls
    assert not any(c[:2] == ["docker", "unpause"] for c in kind.calls)
    assert "raftkv-worker2" in out


def test_restore_names_what_is_still_pending(kind: RecordingRunner) -> None:
    kind.hosts["raftkv-worker2"] = "paused"
    kind.node_ready["raftkv-worker2"] = False  # the node stays NotReady after unpause
    kind.nodes.take_down("raft-1")
    code, out, _ = invoke("chaos", "restore", "--timeout", "1", "-o", "json")
    assert code == 1
    doc = json.loads(out)
    assert doc["pending"] == {"raftkv-worker2": "raft-1 on raftkv-worker2: node NotReady"}
    code, out, _ = invoke("chaos", "restore", "--timeout", "0.5")
    assert code == 0 and "nothing to restore" in out  # it was unpaused by the first call


def test_stop_node_of_a_follower_keeps_the_leader(kind: RecordingRunner) -> None:
    code, out, _ = invoke("chaos", "stop-node", "raft-1", "-o", "json", "--timeout", "10")
    assert code == 0
    assert ["docker", "pause", "raftkv-worker2"] in kind.calls
    report = json.loads(out)
    assert report["victim"] == "raft-1"
    assert report["new_leader"] == report["old_leader"] == "raft-0"
    assert report["new_term"] == report["old_term"]
    assert report["election_s"] is not None and report["write_s"] is not None


def test_stop_node_twice_is_refused(kind: RecordingRunner) -> None:
    kind.hosts["raftkv-worker2"] = "paused"
    code, _, err = invoke("chaos", "stop-node", "raft-1")
    assert code == 1 and "raft-1 is already stopped" in err


# ------------------------------------------------------------------ down (item 13), bench, logs
def test_down_waits_until_the_pods_are_gone(kind: RecordingRunner) -> None:
    kind.release_pods_left = [3, 2, 1]
    code, out, err = invoke("down")
    assert code == 0, err
    podlist = [
        "kubectl",
        *CTX,
        "get",
        "pods",
        "-l",
        "app.kubernetes.io/instance=raftkv",
        "-o",
        "json",
    ]
    assert kind.calls == [["helm", "uninstall", "raftkv", "--wait", *HELM_CTX]] + [podlist] * 4
    assert "pods gone after" in out


def test_down_says_which_pods_are_left_at_its_timeout(kind: RecordingRunner) -> None:
    kind.release_pods_left = [2] * 1000
    code, _, err = invoke("down", "--timeout", "0.2", "--purge")
    assert code == 1
    error = next(ln for ln in err.splitlines() if ln.startswith("error:"))
    assert error.startswith(
        "error: release raftkv uninstalled, but after 0.2s these pods are "
        "still there: raft-0 (Terminating on raftkv-worker), "
        "raft-1 (Terminating on raftkv-worker2);"
    )
    assert "the PVCs were not deleted" in err
    assert not any("pvc" in c for c in kind.calls)


def test_down_purge(kind: RecordingRunner) -> None:
    assert invoke("down", "--purge")[0] == 0
    assert kind.calls[-2:] == [
        [
            "kubectl",
            *CTX,
            "delete",
            "pvc",
            "-l",
            "app.kubernetes.io/instance=raftkv",
            "--ignore-not-found",
        ],
        ["kubectl", *CTX, "delete", "secret", "raftkv-token", "--ignore-not-found"],
    ]


def test_bench_says_it_measures_through_port_forward(kind: RecordingRunner) -> None:
    code, _, err = invoke("bench", "--duration", "0.5", "--clients", "2", "-o", "json")
    assert code == 0, err
    assert "measures from this machine through `kubectl port-forward`" in " ".join(err.split())


BENCH_DOC = {
    "clients": 4,
    "duration_s": 2.0,
    "read_ratio": 0.5,
    "value_size": 64,
    "ops": 300,
    "ops_per_s": 150.0,
    "writes": 100,
    "writes_per_s": 50.0,
    "reads": 200,
    "reads_per_s": 100.0,
    "errors": 0,
    "last_error": None,
    "write_latency_ms": {"p50": 2.1, "p90": 3.0, "p99": 4.0, "max": 5.0},
    "read_latency_ms": {"p50": 1.1, "p90": 2.0, "p99": 3.0, "max": 4.0},
}


def test_bench_in_cluster_runs_a_pod_of_the_node_image(
    kind: RecordingRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kind_module, "POD_POLL_S", 0.01)
    kind.pod_log = (
        "  1.0/2s  ops=150  150 ops/s  writes=50 reads=100 errors=0\n"
        + json.dumps(BENCH_DOC, indent=2)
        + "\n"
    )
    code, out, err = invoke("bench", "--in-cluster", "-c", "4", "-d", "2", "-o", "json")
    assert code == 0, err
    assert json.loads(out) == BENCH_DOC
    run = next(c for c in kind.calls if c[5:6] == ["run"])
    name = run[6]
    assert name.startswith("raftkv-bench-")
    endpoints = (
        "http://raft-0.raft-service:8000,http://raft-1.raft-service:8000,"
        "http://raft-2.raft-service:8000"
    )
    assert run == [
        "kubectl",
        *CTX,
        "run",
        name,
        f"--image=localhost:5001/raftkv@{DIGEST}",
        "--restart=Never",
        "--image-pull-policy=IfNotPresent",
        "--labels=app.kubernetes.io/instance=raftkv,app.kubernetes.io/component=bench",
        "--command",
        "--",
        "raftctl",
        "bench",
        "--endpoints",
        endpoints,
        "--clients",
        "4",
        "--duration",
        "2",
        "--read-ratio",
        "0.5",
        "--value-size",
        "64",
        "--output",
        "json",
    ]
    assert kind.calls[-3:] == [
        ["kubectl", *CTX, "get", "pod", name, "-o", "jsonpath={.status.phase}"],
        ["kubectl", *CTX, "logs", name],
        ["kubectl", *CTX, "delete", "pod", name, "--wait=false", "--ignore-not-found"],
    ]
    assert "measured inside the cluster by pod " + name in " ".join(err.split())
    assert not kind.spawned  # no port-forward: the load never leaves the cluster


def test_bench_in_cluster_failure_is_one_line_and_the_pod_is_deleted(
    kind: RecordingRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kind_module, "POD_POLL_S", 0.01)

    def failing(argv: Sequence[str], **kw: Any) -> Completed:
        done = RecordingRunner.run(kind, argv, **kw)
        if list(argv[5:6]) == ["run"]:
            kind.pod_phases = ["Failed"]
            kind.pod_log = "error: no replica answers at http://raft-0.raft-service:8000\n"
        return done

    kind.run = failing  # type: ignore[method-assign]
    code, _, err = invoke("bench", "--in-cluster")
    assert code == 1
    assert [ln for ln in err.splitlines() if ln.startswith("error:")] == [
        f"error: pod {kind.calls[-1][7]} failed: error: no replica answers at "
        "http://raft-0.raft-service:8000"
    ]
    assert kind.calls[-1][5:7] == ["delete", "pod"]
    result = cli.invoke(app, ["bench", "--in-cluster"])
    assert result.exit_code == 2 and "--in-cluster needs --target kind" in result.stderr


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
    assert err.strip() == (
        f"error: {tool} not found on PATH (needed to run raftkv on kind): "
        f"install {tool} and try again"
    )
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


def test_real_port_forward_process_lifecycle(tmp_path: Any) -> None:
    """The real SubprocessRunner path: a stand-in `kubectl` script prints what kubectl prints;
    PortForwards reads it (stdout and stderr), waits for readiness, and stops the process."""
    from raftctl.shell import SubprocessRunner

    script = tmp_path / "kubectl"
    script.write_text(
        "#!/bin/sh\n"
        'case "$6" in pod/bad) echo "error: pod bad not found" >&2; exit 1;; esac\n'
        'echo "Forwarding from 127.0.0.1:${7%%:*} -> 8000"\n'
        "exec sleep 30\n"
    )
    script.chmod(0o755)
    fw = portforward.PortForwards(SubprocessRunner(), [str(script), *CTX])
    try:
        fw.url("raft-0")
        fw.ensure(["raft-0"])
        proc = fw.forwards["raft-0"].proc
        assert proc.poll() is None and "raft-0" not in fw.errors
        fw.url("bad")
        fw.ensure(["bad"])
        assert fw.errors["bad"] == "error: pod bad not found"
        with pytest.raises(RaftctlError, match="port-forward` to bad failed: error: pod bad"):
            fw.close()
            fw.ensure(["bad"])
    finally:
        fw.close()
    assert proc.poll() is not None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_helpers_die_with_raftctl_even_when_it_is_sigkilled() -> None:
    """atexit stops the port-forwards on a normal exit or Ctrl-C; if raftctl is killed outright,
    the kernel sends them SIGTERM (PR_SET_PDEATHSIG), so no kubectl is left holding a port."""
    import os
    import signal
    import subprocess

    from tests.support.waiting import wait_until

    code = (
        "import sys, time\n"
        "from raftctl.shell import SubprocessRunner\n"
        "p = SubprocessRunner().spawn(['sleep', '60'])\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    child = 0
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        os.kill(child, 0)  # running
        parent.kill()
        parent.wait(10)

        def helper_dead() -> bool:
            try:
                stat = Path(f"/proc/{child}/stat").read_text()
            except FileNotFoundError:
                return True  # reaped
            return stat.rsplit(")", 1)[1].split()[0] == "Z"  # dead, waiting for init to reap it

        wait_until(helper_dead, 10, "the helper to die with raftctl (it outlived raftctl)")
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(10)
        # only if it is still our `sleep 60` (the pid may be reused once it is gone)
        with contextlib.suppress(OSError):
            if child and Path(f"/proc/{child}/cmdline").read_bytes() == b"sleep\x0060\x00":
                os.kill(child, signal.SIGKILL)

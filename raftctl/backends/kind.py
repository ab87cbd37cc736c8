"""kind.py — the kind target: the Helm chart on a local kind cluster with a registry on :5001.

Contract (docs/contracts.md §6): release ``--name`` (default ``raftkv``), StatefulSet ``raft``,
node pods labelled ``app.kubernetes.io/instance=<release>,app.kubernetes.io/component=node``,
container port 8000, image ``localhost:5001/raftkv:<tag>``, built by ``images/build.sh IMAGE:TAG``.

Every external command goes through ``shell.Runner`` (tests record the exact argv). kubectl and
helm always get the kind cluster's context (``kind-<cluster>``) and the namespace, so raftctl
never acts on another cluster the user has configured.

- ``build``: ``images/build.sh --python <raftctl's python> [--base BASE] IMAGE:TAG``;
  ``push``: ``docker push``;
  ``install``: ``helm upgrade --install`` with the image, replica count and ``--wait``, and
  ``client.kind=Job`` (Helm 3's ``--wait`` would wait until its timeout for the chart's default
  bare client Pod to become Ready, which a finished Pod never is);
  ``up``: create the kind cluster with ``./kind-with-registry.sh`` if it does not exist, then
  build, push, install, rollout status.
- Replicas are read with ``kubectl get pods -o json`` (pod, Kubernetes node, pod IP); raftctl
  reaches each pod's HTTP port through ONE ``kubectl proxy`` started on demand
  (``/api/v1/namespaces/<ns>/pods/<pod>:8000/proxy``), since pod IPs are not routable from the
  host.
- ``kill``: ``kubectl delete pod --force --grace-period=0``; ``stop``: ``docker stop`` the kind
  node container hosting the pod; ``restore``: ``docker start`` every stopped node container of
  the kind cluster; ``down``: ``helm uninstall --wait``, and with ``purge`` the PVCs and the token
  Secret too.
"""

from __future__ import annotations

import atexit
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from raftctl.backends.base import Replica, Reporter
from raftctl.errors import ClusterNotRunning, CommandFailed, RaftctlError, UnknownReplica
from raftctl.shell import Process, Runner, require

__all__ = ["KindBackend", "KindSettings", "repo_root"]

TOOLS = ("docker", "kind", "kubectl", "helm")
NODE_PORT = 8000
STATEFULSET = "raft"
_PROXY_LINE = re.compile(r"Starting to serve on [^:\s]+:(\d+)")


def repo_root() -> Path:
    """The raftkv checkout raftctl runs from (holds helm/, images/, kind-with-registry.sh)."""
    return Path(__file__).resolve().parents[2]


class KindSettings:
    """Names the kind target uses; all overridable from the command line."""

    def __init__(
        self,
        *,
        release: str = "raftkv",
        namespace: str = "default",
        cluster: str = "raftkv",
        registry: str = "localhost:5001",
        tag: str = "dev",
        base: str | None = None,
        root: Path | None = None,
    ) -> None:
        self.release = release
        self.base = base  # images/build.sh --base; None: build.sh's default (the public slim image)
        self.namespace = namespace
        self.cluster = cluster
        self.registry = registry
        self.tag = tag
        self.root = root or repo_root()

    @property
    def context(self) -> str:
        return f"kind-{self.cluster}"

    @property
    def image(self) -> str:
        return f"{self.registry}/raftkv"

    @property
    def chart(self) -> Path:
        return self.root / "helm" / "raftkv"


class KindBackend:
    """raftkv as a Helm release on a kind cluster."""

    target = "kind"

    def __init__(self, settings: KindSettings, runner: Runner) -> None:
        self.s = settings
        self.runner = runner
        self._proxy: Process | None = None
        self._proxy_port: int | None = None

    # -- command builders ------------------------------------------------------------------
    def kubectl(self, *args: str) -> list[str]:
        return ["kubectl", "--context", self.s.context, "--namespace", self.s.namespace, *args]

    def helm(self, *args: str) -> list[str]:
        return ["helm", *args, "--kube-context", self.s.context, "--namespace", self.s.namespace]

    def _run(self, argv: Sequence[str], **kw: Any) -> str:
        return self.runner.run(argv, **kw).stdout

    def _selector(self) -> str:
        return (f"app.kubernetes.io/instance={self.s.release},"
                "app.kubernetes.io/component=node")

    # -- image and chart ---------------------------------------------------------------------
    def build(self, reporter: Reporter) -> str:
        require(self.runner, ["docker"], "build the image")
        script = self.s.root / "images" / "build.sh"
        if not script.exists():
            raise RaftctlError(f"{script} not found: run raftctl from a raftkv checkout")
        ref = f"{self.s.image}:{self.s.tag}"
        reporter.step(f"building image {ref} (images/build.sh)")
        # build.sh downloads wheels with pip: raftctl's own interpreter has it (the venv's python3
        # on a PEP 668 system has none).
        argv = [str(script), "--python", sys.executable]
        if self.s.base:
            argv += ["--base", self.s.base]
        self._run([*argv, ref], cwd=str(self.s.root), timeout=1800)
        return ref

    def push(self, reporter: Reporter) -> str:
        require(self.runner, ["docker"], "push the image")
        ref = f"{self.s.image}:{self.s.tag}"
        reporter.step(f"pushing {ref}")
        self._run(["docker", "push", ref], timeout=600)
        return ref

    def install(self, replicas: int | None, reporter: Reporter) -> None:
        require(self.runner, ["helm", "kubectl"], "install the chart")
        if not self.s.chart.is_dir():
            raise RaftctlError(
                f"chart not found at {self.s.chart}: run raftctl from a raftkv checkout"
            )
        args = [
            "upgrade", "--install", self.s.release, str(self.s.chart),
            "--create-namespace",
            "--set", f"image.repository={self.s.image}",
            "--set", f"image.tag={self.s.tag}",
            "--set", "image.pullPolicy=Always",
            "--set", "client.kind=Job",  # a bare Pod would never satisfy --wait (Helm 3)
        ]  # fmt: skip
        if replicas is not None:
            args += ["--set", f"replicaCount={replicas}"]
        args += ["--wait", "--timeout", "10m"]
        reporter.step(f"helm upgrade --install {self.s.release} (waiting for the pods)")
        self._run(self.helm(*args), timeout=900)

    def cluster_exists(self) -> bool:
        out = self._run(["kind", "get", "clusters"])
        return self.s.cluster in out.split()

    # -- Backend ------------------------------------------------------------------------------
    def up(self, replicas: int | None, reporter: Reporter) -> bool:
        require(self.runner, TOOLS, "run raftkv on kind")
        if not self.cluster_exists():
            script = self.s.root / "kind-with-registry.sh"
            reporter.step(f"creating kind cluster {self.s.cluster} with a registry on :5001")
            self._run([str(script), "--name", self.s.cluster], cwd=str(self.s.root), timeout=900)
        self.build(reporter)
        self.push(reporter)
        self.install(replicas, reporter)
        reporter.step("waiting for the StatefulSet rollout")
        self._run(self.kubectl("rollout", "status", f"statefulset/{STATEFULSET}",
                               "--timeout=300s"), timeout=330)
        return True

    def down(self, purge: bool, reporter: Reporter) -> list[str]:
        require(self.runner, ["helm", "kubectl"], "remove the release")
        done: list[str] = []
        reporter.step(f"helm uninstall {self.s.release}")
        res = self.runner.run(self.helm("uninstall", self.s.release, "--wait"), check=False)
        if res.returncode == 0:
            done.append(f"uninstalled release {self.s.release}")
        elif "not found" in (res.stderr + res.stdout).lower():
            done.append(f"release {self.s.release} was not installed")
        else:
            raise CommandFailed(list(res.argv), res.returncode, res.stderr)
        if purge:
            reporter.step("deleting PersistentVolumeClaims and the token Secret")
            self._run(self.kubectl("delete", "pvc", "-l",
                                   f"app.kubernetes.io/instance={self.s.release}",
                                   "--ignore-not-found"))
            self._run(self.kubectl("delete", "secret", f"{self.s.release}-token",
                                   "--ignore-not-found"))
            done.append("deleted PVCs and token Secret")
        return done

    def pods(self) -> list[dict[str, Any]]:
        require(self.runner, ["kubectl"], "read the pods")
        out = self._run(self.kubectl("get", "pods", "-l", self._selector(), "-o", "json"))
        try:
            items = json.loads(out).get("items", [])
        except ValueError as err:
            raise RaftctlError(f"kubectl returned unreadable JSON: {err}") from err
        return sorted(items, key=lambda p: _ordinal(p["metadata"]["name"]))

    def replicas(self) -> list[Replica]:
        pods = self.pods()
        if not pods:
            raise ClusterNotRunning(
                f"no raftkv pods for release {self.s.release} in namespace {self.s.namespace} "
                f"(context {self.s.context}); start it with `raftctl up --target kind`"
            )
        base = self.proxy_url()
        out: list[Replica] = []
        for pod in pods:
            meta, spec, status = pod["metadata"], pod.get("spec", {}), pod.get("status", {})
            name = meta["name"]
            if meta.get("deletionTimestamp"):
                state = "terminating"
            elif status.get("phase") == "Running":
                state = "running"
            else:
                state = str(status.get("phase", "pending")).lower()
            out.append(Replica(
                id=name,
                url=f"{base}/api/v1/namespaces/{self.s.namespace}/pods/{name}:{NODE_PORT}/proxy",
                state=state,
                pod=name,
                node=spec.get("nodeName"),
                pod_ip=status.get("podIP"),
            ))  # fmt: skip
        return out

    def _find(self, replica_id: str) -> Replica:
        for r in self.replicas():
            if r.id == replica_id:
                return r
        raise UnknownReplica(f"unknown replica {replica_id!r}")

    def kill(self, replica: Replica) -> str:
        require(self.runner, ["kubectl"], "delete the pod")
        pod = replica.pod or replica.id
        self._run(self.kubectl("delete", "pod", pod, "--force", "--grace-period=0"))
        return f"force-deleted pod {pod}"

    def stop(self, replica: Replica) -> str:
        require(self.runner, ["docker", "kubectl"], "stop a kind node")
        node = replica.node or self._find(replica.id).node
        if not node:
            raise RaftctlError(f"pod {replica.id} is not scheduled on any node")
        self._run(["docker", "stop", node])
        return f"docker stop {node} (hosts {replica.id})"

    def restore(self) -> list[str]:
        require(self.runner, ["docker"], "restart kind nodes")
        out = self._run([
            "docker", "ps", "-a",
            "--filter", f"label=io.x-k8s.kind.cluster={self.s.cluster}",
            "--filter", "status=exited",
            "--format", "{{.Names}}",
        ])  # fmt: skip
        names = [n for n in out.split() if n]
        for name in names:
            self._run(["docker", "start", name])
        return names

    def logs(self, replica_id: str, *, tail: int | None, follow: bool) -> Iterator[str]:
        require(self.runner, ["kubectl"], "read pod logs")
        argv = self.kubectl("logs", replica_id)
        if tail is not None:
            argv.append(f"--tail={tail}")
        if follow:
            argv.append("--follow")
            self.runner.run(argv, stream=True)
            return
        yield from self._run(argv).splitlines(keepends=True)

    # -- kubectl proxy -------------------------------------------------------------------------
    def proxy_url(self) -> str:
        """Base URL of a ``kubectl proxy`` to the API server (started once, on demand)."""
        if self._proxy_port is None:
            proc = self.runner.spawn(["kubectl", "--context", self.s.context, "proxy", "--port=0"])
            self._proxy = proc
            atexit.register(self.close)  # never leave the proxy running after raftctl exits
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and self._proxy_port is None:
                line = proc.stdout.readline() if proc.stdout else ""
                match = _PROXY_LINE.search(line or "")
                if match:
                    self._proxy_port = int(match.group(1))
                elif not line and proc.poll() is not None:
                    break
            if self._proxy_port is None:
                self.close()
                raise RaftctlError("`kubectl proxy` did not start: is the kind cluster running?")
        return f"http://127.0.0.1:{self._proxy_port}"

    def close(self) -> None:
        if self._proxy is not None:
            self._proxy.terminate()
            try:
                self._proxy.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proxy.kill()
            self._proxy = None
            self._proxy_port = None


def _ordinal(name: str) -> tuple[str, int]:
    head, _, tail = name.rpartition("-")
    return (head, int(tail)) if tail.isdigit() else (name, -1)

"""kind.py — the kind target: the Helm chart on a local kind cluster with a registry on :5001.

Contract (docs/contracts.md §6): release ``--name`` (default ``raftkv``), StatefulSet ``raft``,
node pods labelled ``app.kubernetes.io/instance=<release>,app.kubernetes.io/component=node``,
container ``raftkv`` on port 8000, image ``localhost:5001/raftkv:<tag>``, built by
``images/build.sh IMAGE:TAG``, kind cluster ``--kind-cluster`` (default ``raftkv``, the default of
``kind-with-registry.sh`` too).

Every external command goes through ``shell.Runner`` (tests record the exact argv). kubectl and
helm always get the kind cluster's context (``kind-<cluster>``) and the namespace, so raftctl
never acts on another cluster the user has configured.

- ``build``: ``images/build.sh --python <raftctl's python> [--base BASE] IMAGE:TAG``.
- ``up``: ``./kind-with-registry.sh --name <cluster>`` every time (it creates the cluster and the
  registry, or repairs their wiring, idempotently), the worker check, build, push, install,
  rollout status.
- worker check (before build and install): with the chart's hard anti-affinity (the default) the
  cluster needs one schedulable node (Ready, not cordoned, no NoSchedule/NoExecute taint) per
  replica, else the pods stay Pending and ``helm --wait`` spins: a one-line error instead.
- ``push`` returns the digest the registry stored; ``install`` deploys ``image.digest`` (the chart
  renders ``repo@sha256:...``), so rebuilding the same tag rolls the pods out. Without a known
  digest (the image was never pushed from here) it deploys by tag and says so.
- Replicas are read from ``kubectl get pods`` and ``kubectl get nodes`` (pod and node readiness)
  and ``docker ps`` (a paused kind node: the replica is ``frozen``). raftctl reaches each pod
  through its own ``kubectl port-forward`` (``portforward.PortForwards``), never through the API
  server's proxy, whose path cleaning and reject rules would change or refuse keys. Pods on a
  NotReady or frozen node, or whose container is not running, get no forward and the URL
  ``NO_ROUTE``: they fail at once instead of hanging.
- ``kill``: SIGKILL to the node container's process through the kind node's container runtime
  (``crictl inspect`` for its pid, ``kill -9``): a crash; the kubelet restarts the container in the
  same pod. ``delete_pod``: ``kubectl delete pod`` (graceful, or ``--force --grace-period=0``).
  ``stop``: ``docker pause`` the kind node (a frozen host); ``restore``: ``docker unpause`` every
  paused node and ``docker start`` every exited one (stopped by older raftctl versions).
  ``last_signal`` is the monotonic time just before the signal command ran.
- ``down``: ``helm uninstall --wait``, then wait (``wait_s``) until the release's pods are gone and
  say which are left; with ``purge`` the PVCs and the token Secret too.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from raftctl.backends.base import Closing, Replica, Reporter
from raftctl.backends.portforward import PortForwards
from raftctl.errors import ClusterNotRunning, CommandFailed, RaftctlError, UnknownReplica
from raftctl.shell import Runner, require

__all__ = ["KindBackend", "KindSettings", "repo_root", "schedulable_nodes"]

TOOLS = ("docker", "kind", "kubectl", "helm")
STATEFULSET = "raft"
CONTAINER = "raftkv"
DEFAULT_REPLICAS = 3  # the chart's replicaCount
DOWN_POLL_S = 1.0
POD_POLL_S = 1.0
NODE_POLL_S = 2.0
NODE_WAIT_S = 120.0  # a new kind cluster's workers turn Ready some seconds after it is created
NODE_PORT = 8000
# The URL of a replica that gets no port-forward (not running, node frozen or NotReady): port 0
# refuses at once, and no other program can be listening there.
NO_ROUTE = "http://127.0.0.1:0"
_DIGEST = re.compile(r"digest: (sha256:[0-9a-f]{64})")


def repo_root() -> Path:
    """The raftkv checkout raftctl runs from (holds helm/, images/, kind-with-registry.sh)."""
    return Path(__file__).resolve().parents[2]


class KindSettings:
    """Names and knobs the kind target uses; all overridable from the command line."""

    def __init__(
        self,
        *,
        release: str = "raftkv",
        namespace: str = "default",
        cluster: str = "raftkv",
        registry: str = "localhost:5001",
        tag: str = "dev",
        base: str | None = None,
        anti_affinity: str = "hard",
        wait_s: float = 120.0,
        root: Path | None = None,
    ) -> None:
        self.release = release
        self.namespace = namespace
        self.cluster = cluster
        self.registry = registry
        self.tag = tag
        self.base = base  # images/build.sh --base; None: build.sh's default (the public slim image)
        self.anti_affinity = anti_affinity
        self.wait_s = wait_s
        self.root = root or repo_root()

    @property
    def context(self) -> str:
        return f"kind-{self.cluster}"

    @property
    def image(self) -> str:
        return f"{self.registry}/raftkv"

    @property
    def ref(self) -> str:
        return f"{self.image}:{self.tag}"

    @property
    def chart(self) -> Path:
        return self.root / "helm" / "raftkv"


def _ready(conditions: Any) -> bool | None:
    for cond in conditions or []:
        if isinstance(cond, dict) and cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return None


# Taints the node lifecycle controller puts on a node that is not (yet) Ready: they go away by
# themselves once it is, so they do not make a node unusable for good.
_LIFECYCLE_TAINTS = frozenset({"node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"})


def _placeable(node: dict[str, Any], *, when_ready: bool) -> bool:
    spec = node.get("spec", {})
    if spec.get("unschedulable"):
        return False
    for taint in spec.get("taints") or []:
        if taint.get("effect") not in ("NoSchedule", "NoExecute"):
            continue
        if when_ready and taint.get("key") in _LIFECYCLE_TAINTS:
            continue
        return False
    return when_ready or _ready(node.get("status", {}).get("conditions")) is True


def schedulable_nodes(nodes: Sequence[dict[str, Any]]) -> list[str]:
    """Names of the nodes a raftkv pod can land on: Ready, not cordoned, no hard taint."""
    return sorted(n["metadata"]["name"] for n in nodes if _placeable(n, when_ready=False))


def starting_nodes(nodes: Sequence[dict[str, Any]]) -> list[str]:
    """Nodes that are not Ready yet but would be schedulable once they are (a new worker)."""
    ready = set(schedulable_nodes(nodes))
    return sorted(
        n["metadata"]["name"]
        for n in nodes
        if _placeable(n, when_ready=True) and n["metadata"]["name"] not in ready
    )


class KindBackend(Closing):
    """raftkv as a Helm release on a kind cluster."""

    target = "kind"

    def __init__(self, settings: KindSettings, runner: Runner) -> None:
        self.s = settings
        self.runner = runner
        self.forwards = PortForwards(runner, self.kubectl())
        self.last_signal: float | None = None

    # -- command builders ------------------------------------------------------------------
    def kubectl(self, *args: str) -> list[str]:
        return ["kubectl", "--context", self.s.context, "--namespace", self.s.namespace, *args]

    def helm(self, *args: str) -> list[str]:
        return ["helm", *args, "--kube-context", self.s.context, "--namespace", self.s.namespace]

    def _run(self, argv: Sequence[str], **kw: Any) -> str:
        return self.runner.run(argv, **kw).stdout

    def _json(self, argv: Sequence[str]) -> list[dict[str, Any]]:
        out = self._run(argv)
        try:
            items = json.loads(out).get("items", [])
        except (ValueError, AttributeError) as err:
            raise RaftctlError(f"`{' '.join(argv[:6])}` returned unreadable JSON: {err}") from err
        return [i for i in items if isinstance(i, dict)]

    def _selector(self) -> str:
        return f"app.kubernetes.io/instance={self.s.release},app.kubernetes.io/component=node"

    # -- image and chart ---------------------------------------------------------------------
    def build(self, reporter: Reporter) -> str:
        require(self.runner, ["docker"], "build the image")
        script = self.s.root / "images" / "build.sh"
        if not script.exists():
            raise RaftctlError(f"{script} not found: run raftctl from a raftkv checkout")
        reporter.step(f"building image {self.s.ref} (images/build.sh)")
        # build.sh downloads wheels with pip: raftctl's own interpreter has it (the venv's python3
        # on a PEP 668 system has none).
        argv = [str(script), "--python", sys.executable]
        if self.s.base:
            argv += ["--base", self.s.base]
        self._run([*argv, self.s.ref], cwd=str(self.s.root), timeout=1800)
        return self.s.ref

    def push(self, reporter: Reporter) -> str | None:
        """Push the image; returns the digest the registry stored (None if not learned)."""
        require(self.runner, ["docker"], "push the image")
        reporter.step(f"pushing {self.s.ref}")
        out = self._run(["docker", "push", self.s.ref], timeout=600)
        match = _DIGEST.search(out)
        return match.group(1) if match else self.pushed_digest()

    def pushed_digest(self) -> str | None:
        """The registry digest of the local image (docker's RepoDigests), if it was pushed."""
        res = self.runner.run(
            ["docker", "image", "inspect", "--format", "{{json .RepoDigests}}", self.s.ref],
            check=False,
        )
        if res.returncode != 0:
            return None
        try:
            digests = json.loads(res.stdout or "null") or []
        except ValueError:
            return None
        for item in digests:
            repo, _, digest = str(item).partition("@")
            if repo == self.s.image and digest.startswith("sha256:"):
                return digest
        return None

    def nodes(self) -> list[dict[str, Any]]:
        return self._json(self.kubectl("get", "nodes", "-o", "json"))

    def check_workers(self, replicas: int | None, reporter: Reporter | None = None) -> None:
        """Fail before installing when the hard anti-affinity cannot place every replica.

        Workers that are only not Ready yet (a cluster just created) are waited for, up to
        ``NODE_WAIT_S``.
        """
        want = replicas or DEFAULT_REPLICAS
        if self.s.anti_affinity != "hard" or want <= 1:
            return
        deadline = time.monotonic() + NODE_WAIT_S
        while True:
            nodes = self.nodes()
            usable, starting = schedulable_nodes(nodes), starting_nodes(nodes)
            if len(usable) >= want:
                return
            if len(usable) + len(starting) < want or time.monotonic() >= deadline:
                break
            if reporter is not None:
                reporter.step(f"waiting for worker node(s) {', '.join(starting)} to be Ready")
                reporter = None  # say it once
            time.sleep(NODE_POLL_S)
        waited = (
            f" ({len(starting)} more not Ready after {NODE_WAIT_S:g}s: {', '.join(starting)})"
            if starting
            else ""
        )
        raise RaftctlError(
            f"kind cluster {self.s.cluster!r} has {len(usable)} schedulable worker node(s)"
            f"{waited} for {want} replicas, and the chart's hard anti-affinity puts each replica "
            f"on its own node: use a cluster with at least {want} workers (`--kind-cluster "
            f"NAME`; ./kind-with-registry.sh --name NAME makes 4), or `--anti-affinity soft`"
        )

    def install(
        self,
        replicas: int | None,
        reporter: Reporter,
        *,
        digest: str | None = None,
        extra_sets: Sequence[str] = (),
    ) -> str | None:
        """helm upgrade --install (by digest when known); returns the digest deployed.
        ``extra_sets``: more ``key=value`` for ``--set`` (e.g. a restore's ``restore.*``)."""
        require(self.runner, ["helm", "kubectl"], "install the chart")
        if not self.s.chart.is_dir():
            raise RaftctlError(
                f"chart not found at {self.s.chart}: run raftctl from a raftkv checkout"
            )
        self.check_workers(replicas, reporter)
        digest = digest or self.pushed_digest()
        args = [
            "upgrade", "--install", self.s.release, str(self.s.chart),
            "--create-namespace",
            "--set", f"image.repository={self.s.image}",
            "--set", f"image.tag={self.s.tag}",
            "--set", f"image.digest={digest or ''}",
            "--set", "image.pullPolicy=Always",
            "--set", "client.kind=Job",  # a bare Pod would never satisfy --wait (Helm 3)
            "--set", f"antiAffinity={self.s.anti_affinity}",
        ]  # fmt: skip
        if replicas is not None:
            args += ["--set", f"replicaCount={replicas}"]
        for item in extra_sets:
            args += ["--set", item]
        args += ["--wait", "--timeout", "10m"]
        if digest is None:
            reporter.step(
                f"no pushed digest known for {self.s.ref}: deploying by tag "
                "(pods already running this tag are not restarted)"
            )
        reporter.step(
            f"helm upgrade --install {self.s.release} "
            f"({self.s.image}@{digest[:19]}…, waiting for the pods)"
            if digest
            else f"helm upgrade --install {self.s.release} (waiting for the pods)"
        )
        self._run(self.helm(*args), timeout=900)
        return digest

    # -- Backend ------------------------------------------------------------------------------
    def up(self, replicas: int | None, reporter: Reporter) -> bool:
        require(self.runner, TOOLS, "run raftkv on kind")
        script = self.s.root / "kind-with-registry.sh"
        reporter.step(
            f"kind cluster {self.s.cluster} with a registry on :5001 "
            "(./kind-with-registry.sh: creates or repairs)"
        )
        self._run([str(script), "--name", self.s.cluster], cwd=str(self.s.root), timeout=900)
        self.check_workers(replicas, reporter)  # before a long build
        self.build(reporter)
        digest = self.push(reporter)
        self.install(replicas, reporter, digest=digest)
        reporter.step("waiting for the StatefulSet rollout")
        self._run(
            self.kubectl("rollout", "status", f"statefulset/{STATEFULSET}", "--timeout=300s"),
            timeout=330,
        )
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
        reporter.step("waiting for the pods to be gone")
        start = time.monotonic()
        left = self._release_pods()
        while left and time.monotonic() - start < self.s.wait_s:
            time.sleep(DOWN_POLL_S)
            left = self._release_pods()
        if left:
            raise RaftctlError(
                f"release {self.s.release} uninstalled, but after {self.s.wait_s:g}s these pods "
                f"are still there: {', '.join(left)}; a pod on a stopped node goes once the node "
                "is back (`raftctl chaos restore --target kind`) or with `kubectl delete pod "
                "--force --grace-period=0`" + ("; the PVCs were not deleted" if purge else "")
            )
        done.append(f"pods gone after {time.monotonic() - start:.1f}s")
        if purge:
            reporter.step("deleting PersistentVolumeClaims and the token Secret")
            self._run(
                self.kubectl(
                    "delete",
                    "pvc",
                    "-l",
                    f"app.kubernetes.io/instance={self.s.release}",
                    "--ignore-not-found",
                )
            )
            self._run(
                self.kubectl("delete", "secret", f"{self.s.release}-token", "--ignore-not-found")
            )
            done.append("deleted PVCs and token Secret")
        return done

    def _release_pods(self) -> list[str]:
        pods = self._json(
            self.kubectl(
                "get", "pods", "-l", f"app.kubernetes.io/instance={self.s.release}", "-o", "json"
            )
        )
        out = []
        for pod in pods:
            what = (
                "Terminating"
                if pod["metadata"].get("deletionTimestamp")
                else str(pod.get("status", {}).get("phase", "?"))
            )
            node = pod.get("spec", {}).get("nodeName")
            out.append(f"{pod['metadata']['name']} ({what}" + (f" on {node})" if node else ")"))
        return out

    def pods(self) -> list[dict[str, Any]]:
        require(self.runner, ["kubectl"], "read the pods")
        items = self._json(self.kubectl("get", "pods", "-l", self._selector(), "-o", "json"))
        return sorted(items, key=lambda p: _ordinal(p["metadata"]["name"]))

    def node_containers(self) -> dict[str, str]:
        """kind node container name → docker state (running, paused, exited, ...)."""
        if self.runner.which("docker") is None:
            return {}
        res = self.runner.run([
            "docker", "ps", "-a",
            "--filter", f"label=io.x-k8s.kind.cluster={self.s.cluster}",
            "--format", "{{.Names}} {{.State}}",
        ], check=False)  # fmt: skip
        out: dict[str, str] = {}
        for line in res.stdout.splitlines():
            name, _, state = line.strip().partition(" ")
            if name:
                out[name] = state.strip().lower()
        return out

    def replicas(self) -> list[Replica]:
        pods = self.pods()
        if not pods:
            raise ClusterNotRunning(
                f"no raftkv pods for release {self.s.release} in namespace {self.s.namespace} "
                f"(context {self.s.context}); start it with `raftctl up --target kind`"
            )
        node_ready = {
            n["metadata"]["name"]: _ready(n.get("status", {}).get("conditions"))
            for n in self.nodes()
        }
        hosts = self.node_containers()
        out: list[Replica] = []
        for pod in pods:
            meta, spec, status = pod["metadata"], pod.get("spec", {}), pod.get("status", {})
            name, node = meta["name"], spec.get("nodeName")
            host = hosts.get(node or "", "")
            if host == "paused":
                state = "frozen"
            elif host == "exited":
                state = "down"
            elif meta.get("deletionTimestamp"):
                state = "terminating"
            elif status.get("phase") == "Running":
                state = "running" if _running(_container(pod)) else "restarting"
            else:
                state = str(status.get("phase", "pending")).lower()
            replica = Replica(
                id=name,
                url=NO_ROUTE,
                state=state,
                pod=name,
                node=node,
                pod_ip=status.get("podIP"),
                pod_ready=_ready(status.get("conditions")) is True,
                node_ready=node_ready.get(node or ""),
            )  # fmt: skip
            out.append(replica)
        self.forwards.ensure(r.id for r in out if _reachable(r))
        # after ensure: a port kubectl could not listen on has been replaced
        return [
            dataclasses.replace(r, url=self.forwards.url(r.id)) if _reachable(r) else r for r in out
        ]

    def _find(self, replica_id: str) -> Replica:
        for r in self.replicas():
            if r.id == replica_id:
                return r
        raise UnknownReplica(f"unknown replica {replica_id!r}")

    def _pod(self, name: str) -> dict[str, Any]:
        for pod in self.pods():
            if pod["metadata"]["name"] == name:
                return pod
        raise UnknownReplica(f"unknown replica {name!r}")

    def kill(self, replica: Replica) -> str:
        """SIGKILL the replica's container process; the kubelet restarts it in the same pod."""
        require(self.runner, ["docker", "kubectl"], "kill a container on a kind node")
        pod_name = replica.pod or replica.id
        pod = self._pod(pod_name)
        node = pod.get("spec", {}).get("nodeName")
        container = _container(pod)
        cid = str(container.get("containerID", "")).partition("://")[2]
        if not node or not cid or not _running(container):
            raise RaftctlError(
                f"pod {pod_name} has no running {CONTAINER} container to kill "
                "(see `kubectl get pods`)"
            )
        out = self._run(
            [
                "docker",
                "exec",
                node,
                "crictl",
                "inspect",
                "--output",
                "go-template",
                "--template",
                "{{.info.pid}}",
                cid,
            ]
        ).strip()
        if not out.isdigit() or int(out) <= 1:
            raise RaftctlError(
                f"could not find the process of {pod_name}'s container on {node} "
                f"(crictl said {out[:80]!r})"
            )
        self.last_signal = time.monotonic()
        # the shell's builtin kill: present in every node image (out is digits only)
        self._run(["docker", "exec", node, "sh", "-c", f"kill -9 {out}"])
        return (
            f"SIGKILL to {pod_name}'s {CONTAINER} process (pid {out} on {node}); "
            "the kubelet restarts it in the same pod"
        )

    def delete_pod(self, replica: Replica, *, force: bool = False) -> str:
        """Delete the pod (graceful: SIGTERM and a leadership handover; or forced)."""
        require(self.runner, ["kubectl"], "delete a pod")
        pod = replica.pod or replica.id
        argv = self.kubectl("delete", "pod", pod, "--wait=false")
        if force:
            argv += ["--force", "--grace-period=0"]
        self.last_signal = time.monotonic()
        self._run(argv)
        return (
            f"force-deleted pod {pod} (grace period 0)"
            if force
            else f"deleted pod {pod} (SIGTERM, then the StatefulSet re-creates it)"
        )

    def stop(self, replica: Replica) -> str:
        require(self.runner, ["docker", "kubectl"], "pause a kind node")
        node = replica.node or self._find(replica.id).node
        if not node:
            raise RaftctlError(f"pod {replica.id} is not scheduled on any node")
        self.last_signal = time.monotonic()
        self._run(["docker", "pause", node])
        return f"docker pause {node} (hosts {replica.id}): the whole node is frozen"

    def restore(self) -> list[str]:
        require(self.runner, ["docker"], "resume kind nodes")
        names = []
        for name, state in sorted(self.node_containers().items()):
            if state == "paused":
                self._run(["docker", "unpause", name])
            elif state == "exited":  # stopped by raftctl < 0.2 (docker stop)
                self._run(["docker", "start", name])
            else:
                continue
            names.append(name)
        return names

    # -- running raftctl inside the cluster -------------------------------------------------
    def in_cluster_endpoints(self) -> tuple[str, list[str]]:
        """(the node image, every replica's pod DNS URL), read from the StatefulSet."""
        sts = json.loads(self._run(self.kubectl("get", "statefulset", STATEFULSET, "-o", "json")))
        spec = sts.get("spec", {})
        containers = spec.get("template", {}).get("spec", {}).get("containers", [])
        image = next((c.get("image") for c in containers if c.get("name") == CONTAINER), None)
        if not image:
            raise RaftctlError(f"statefulset/{STATEFULSET} has no {CONTAINER} container")
        service = spec.get("serviceName") or "raft-service"
        count = int(spec.get("replicas") or DEFAULT_REPLICAS)
        return image, [f"http://{STATEFULSET}-{i}.{service}:{NODE_PORT}" for i in range(count)]

    def run_pod(
        self, name: str, image: str, command: Sequence[str], *, timeout: float, reporter: Reporter
    ) -> str:
        """Run ``command`` once in a Pod of ``image``; its log once it succeeded (deleted after)."""
        require(self.runner, ["kubectl"], "run a pod")
        self._run(self.kubectl(
            "run", name, f"--image={image}", "--restart=Never", "--image-pull-policy=IfNotPresent",
            f"--labels=app.kubernetes.io/instance={self.s.release},"
            "app.kubernetes.io/component=bench",
            "--command", "--", *command))  # fmt: skip
        try:
            reporter.step(f"pod {name} running `{' '.join(command[:2])}` in the cluster")
            deadline = time.monotonic() + timeout
            phase = ""
            while time.monotonic() < deadline:
                phase = self._run(
                    self.kubectl("get", "pod", name, "-o", "jsonpath={.status.phase}")
                ).strip()
                if phase in ("Succeeded", "Failed"):
                    break
                time.sleep(POD_POLL_S)
            else:
                raise RaftctlError(
                    f"pod {name} did not finish within {timeout:.0f}s (phase {phase or 'unknown'})"
                )
            log = self._run(self.kubectl("logs", name))
            if phase == "Failed":
                last = log.strip().splitlines()[-1] if log.strip() else "no output"
                raise RaftctlError(f"pod {name} failed: {last}")
            return log
        finally:
            self.runner.run(
                self.kubectl("delete", "pod", name, "--wait=false", "--ignore-not-found"),
                check=False,
            )

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

    def close(self) -> None:
        self.forwards.close()


def _container(pod: dict[str, Any]) -> dict[str, Any]:
    for c in pod.get("status", {}).get("containerStatuses") or []:
        if isinstance(c, dict) and c.get("name") == CONTAINER:
            return c
    return {}


def _running(container: dict[str, Any]) -> bool:
    return "running" in (container.get("state") or {})


def _reachable(r: Replica) -> bool:
    """Worth a port-forward: its process runs and its node is not known to be down."""
    return r.state == "running" and r.node_ready is not False


def _ordinal(name: str) -> tuple[str, int]:
    head, _, tail = name.rpartition("-")
    return (head, int(tail)) if tail.isdigit() else (name, -1)

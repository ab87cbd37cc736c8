"""docker_cluster — the chart's StatefulSet, re-enacted with plain Docker (no Kubernetes can run
here).

Each node is a container of the real image, started with exactly the environment the rendered
chart gives pod ``raft-N`` (fieldRefs resolved to the pod name and namespace, the token from the
rendered Secret) and the chart's securityContext (uid 10001, read-only root filesystem with a
tmpfs /tmp, all capabilities dropped, no privilege escalation). The private ``--internal``
network gives every node the pod-style DNS aliases ``raft-N.raft-service`` and ``raft-N.raft-
service.default.svc.cluster.local`` (Docker's embedded DNS plays the headless Service) and the
alias ``raftkv`` (the client Service). A named volume per node plays the PVC: ``docker kill`` +
``docker start`` keeps the data.

Everything created carries a per-run prefix and is removed by ``close()``: containers, volumes,
network. Nothing else on the engine is touched. The host talks to the nodes by their fixed IPs
(published ports do not work on an internal network).
"""

from __future__ import annotations

import functools
import json
import os
import random
import secrets
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from tests.support import waiting

DOCKER = "docker"
# The container tier builds on the OFFLINE base (images/base/mkbase.sh, debootstrap as root): CI has
# no registry to pull build.sh's default public base from. BASE overrides it where pulls work.
BASE_IMAGE = os.environ.get("BASE", "local/python:3.11-bookworm")


# `docker run` flags every container shares, nodes and client alike: a short DNS timeout (Docker's
# embedded DNS on an --internal network), and the chart's securityContext (uid 10001, read-only root
# with a tmpfs /tmp, all capabilities dropped, no privilege escalation).
_POD_RUN_FLAGS: tuple[str, ...] = (
    "--dns-opt",
    "timeout:1",
    "--dns-opt",
    "attempts:1",
    "--user",
    "10001:10001",
    "--read-only",
    "--tmpfs",
    "/tmp:rw,size=64m",
    "--cap-drop",
    "ALL",
    "--security-opt",
    "no-new-privileges",
)


class DockerError(RuntimeError):
    pass


def docker(
    *args: str, check: bool = True, timeout: float = 120.0, input_text: str | None = None
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [DOCKER, *args], capture_output=True, text=True, timeout=timeout, input=input_text
    )
    if check and proc.returncode != 0:
        raise DockerError(
            f"docker {' '.join(args[:3])}... failed ({proc.returncode}): "
            f"{proc.stderr.strip()[-800:]}"
        )
    return proc


# The container tier polls more slowly (each probe is a docker exec or a request into a
# container) and counts any error as "not yet": a container mid-restart fails in many ways.
wait_until = functools.partial(waiting.wait_until, interval=0.2, retry_on=(Exception,))


@dataclass
class HttpReply:
    status: int
    body: Any
    headers: dict[str, str]


def http(
    method: str,
    url: str,
    body: bytes | None = None,
    timeout: float = 5.0,
    headers: dict[str, str] | None = None,
) -> HttpReply:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            status, hdrs = resp.status, dict(resp.headers)
    except urllib.error.HTTPError as err:
        raw, status, hdrs = err.read(), err.code, dict(err.headers)
    try:
        parsed: Any = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw.decode(errors="replace")
    return HttpReply(status, parsed, hdrs)


@dataclass
class Node:
    index: int
    pod: str  # raft-N: the node id and the hostname
    container: str  # <prefix>-raft-N
    volume: str
    ip: str

    @property
    def url(self) -> str:
        return f"http://{self.ip}:8000"


@dataclass
class DockerCluster:
    image: str
    node_env: list[dict[str, Any]]  # the StatefulSet container's env, as rendered
    secrets: dict[tuple[str, str], str]  # (secret name, key) -> value, as rendered
    replicas: int = 3
    statefulset: str = "raft"
    headless: str = "raft-service"
    client_service: str = "raftkv"
    namespace: str = "default"
    prefix: str = field(default_factory=lambda: f"rkvt-{secrets.token_hex(3)}")
    network: str = ""
    subnet: str = ""
    nodes: list[Node] = field(default_factory=list)
    extra_run_args: list[str] = field(default_factory=list)  # e.g. a bind mount of /tls
    _created_containers: list[str] = field(default_factory=list)
    _created_volumes: list[str] = field(default_factory=list)

    # ------------------------------------------------------------------ lifecycle

    def create_network(self) -> None:
        name = f"{self.prefix}-net"
        rng = random.Random()
        for _ in range(20):  # a free /24 in 10.192.0.0/11, away from Docker's default pools
            a, b = rng.randint(192, 223), rng.randint(0, 255)
            subnet = f"10.{a}.{b}"
            proc = docker(
                "network",
                "create",
                "--internal",
                "--subnet",
                f"{subnet}.0/24",
                "--gateway",
                f"{subnet}.1",
                "--label",
                "raftkv-test=1",
                name,
                check=False,
            )
            if proc.returncode == 0:
                self.network, self.subnet = name, subnet
                return
            if "overlap" not in proc.stderr.lower():
                raise DockerError(f"docker network create failed: {proc.stderr.strip()}")
        raise DockerError("no free /24 subnet found for the test network")

    def dns_aliases(self, pod: str) -> list[str]:
        return [
            f"{pod}.{self.headless}",
            f"{pod}.{self.headless}.{self.namespace}.svc.cluster.local",
            self.headless,  # like the headless Service's own name: every pod's A record
            self.client_service,  # like the client Service (Docker round-robins between nodes)
        ]

    def container_env(self, pod: str) -> dict[str, str]:
        from tests.chart.chart_render import resolve_env

        return resolve_env(
            self.node_env, pod_name=pod, namespace=self.namespace, secrets=self.secrets
        )

    def start_node(self, i: int) -> Node:
        pod = f"{self.statefulset}-{i}"
        node = Node(
            i, pod, f"{self.prefix}-{pod}", f"{self.prefix}-data-{pod}", f"{self.subnet}.{10 + i}"
        )
        docker("volume", "create", "--label", "raftkv-test=1", node.volume)
        self._created_volumes.append(node.volume)
        self.run_node(node, self.container_env(pod))
        self.nodes.append(node)
        return node

    def run_node(self, node: Node, env: dict[str, str]) -> None:
        """`docker run` of ``node`` (its volume kept): a start, or a rolling update's new pod."""
        pod = node.pod
        args = [
            "run",
            "-d",
            "--name",
            node.container,
            "--hostname",
            pod,
            "--label",
            "raftkv-test=1",
            "--network",
            self.network,
            "--ip",
            node.ip,
            *_POD_RUN_FLAGS,
            "-v",
            f"{node.volume}:/data",
            "--stop-timeout",
            "30",
        ]
        for alias in self.dns_aliases(pod):
            args += ["--network-alias", alias]
        args += self.extra_run_args
        for key, value in env.items():
            args += ["-e", f"{key}={value}"]
        docker(*args, self.image)
        if node.container not in self._created_containers:
            self._created_containers.append(node.container)

    def replace_node(self, node: Node, env: dict[str, str], stop_timeout: int = 30) -> None:
        """What a StatefulSet rolling update does to one pod: SIGTERM, wait, remove, and run the
        new pod spec (``env``) on the same volume, name and address."""
        self.stop(node, stop_timeout)
        docker("rm", node.container)
        self.run_node(node, env)

    def start(self) -> None:
        self.create_network()
        for i in range(self.replicas):
            self.start_node(i)

    def run_client(
        self, command: list[str], env: dict[str, str], timeout: float = 180.0
    ) -> subprocess.CompletedProcess[str]:
        """A one-shot container like the chart's client Pod (same securityContext)."""
        name = f"{self.prefix}-client-{secrets.token_hex(2)}"
        args = [
            "run",
            "--name",
            name,
            "--label",
            "raftkv-test=1",
            "--network",
            self.network,
            *_POD_RUN_FLAGS,
            *self.extra_run_args,
            "--entrypoint",
            command[0],
        ]
        for key, value in env.items():
            args += ["-e", f"{key}={value}"]
        self._created_containers.append(name)
        try:
            return docker(*args, self.image, *command[1:], check=False, timeout=timeout)
        finally:
            docker("rm", "-f", "-v", name, check=False)  # -v: the image's anonymous /data volume
            self._created_containers.remove(name)

    def close(self) -> None:
        if self._created_containers:
            docker("rm", "-f", "-v", *self._created_containers, check=False)
        if self._created_volumes:
            docker("volume", "rm", "-f", *self._created_volumes, check=False)
        if self.network:
            docker("network", "rm", self.network, check=False)
        self._created_containers.clear()
        self._created_volumes.clear()
        self.network = ""

    # ------------------------------------------------------------------ faults

    def kill(self, node: Node) -> None:
        docker("kill", node.container)

    def stop(self, node: Node, timeout: int = 30) -> float:
        """`docker stop` (SIGTERM, then SIGKILL after ``timeout``): returns the seconds it took."""
        began = time.monotonic()
        docker("stop", "-t", str(timeout), node.container, timeout=timeout + 30)
        return time.monotonic() - began

    def start_again(self, node: Node) -> None:
        docker("start", node.container)

    def exit_code(self, node: Node) -> int:
        out = docker("inspect", "-f", "{{.State.ExitCode}}", node.container).stdout
        return int(out.strip())

    def running(self, node: Node) -> bool:
        out = docker("inspect", "-f", "{{.State.Running}}", node.container).stdout
        return out.strip() == "true"

    def logs(self, node: Node, tail: int = 60) -> str:
        proc = docker("logs", "--tail", str(tail), node.container, check=False)
        return proc.stdout + proc.stderr

    # ------------------------------------------------------------------ observation

    def status(self, node: Node, timeout: float = 2.0) -> dict[str, Any] | None:
        try:
            reply = http("GET", f"{node.url}/v1/status", timeout=timeout)
        except OSError:
            return None
        return reply.body if reply.status == 200 and isinstance(reply.body, dict) else None

    def leader(self, among: list[Node] | None = None) -> tuple[Node, int] | None:
        """The node every live node agrees is the leader (and says so itself), with its term."""
        nodes = among if among is not None else self.nodes
        statuses = {n.pod: self.status(n) for n in nodes}
        live = {pod: s for pod, s in statuses.items() if s is not None}
        if not live:
            return None
        leaders = {s.get("leader") for s in live.values()}
        if len(leaders) != 1:
            return None
        (leader_id,) = leaders
        own = live.get(str(leader_id))
        if own is None or own.get("role") != "leader":
            return None
        node = next(n for n in self.nodes if n.pod == leader_id)
        return node, int(own["term"])

    def node(self, pod: str) -> Node:
        return next(n for n in self.nodes if n.pod == pod)

"""cluster.py — a local cluster of real ``raftkv serve`` processes for integration tests.

``LocalCluster(tmp_path, size=3)`` reserves a port on 127.0.0.1 per node for the cluster's whole
life (``tests.support.ports``: no other process can take it, not even between a node's stop and
its restart), gives each node a data dir under ``tmp_path`` and short election timeouts, and
starts each node as ``python -m raftkv serve`` in its own session (process group = gunicorn
master + worker), so ``kill``/``pause``/``resume`` act on exactly the processes it started (by
PGID). ``close()`` kills every group it started and releases the ports; use it in a fixture
finalizer. Logs go to ``tmp_path/node-<i>.log``; ``logs()`` returns their tails for assertion
messages.

Polling only, through ``tests.support.waiting.wait_until`` (which names what did not happen, with
the node logs) — no blind sleeps.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from tests.support.ports import ReservedPort
from tests.support.waiting import wait_until

__all__ = ["REPO_ROOT", "LocalCluster", "Reply", "free_port", "subprocess_env"]

REPO_ROOT = Path(__file__).resolve().parents[2]


def subprocess_env() -> dict[str, str]:
    """The environment for a node process: no RAFTKV_* leaking in from the caller, and this
    checkout first on the import path, so the node runs the code under test even when another
    checkout is the one ``pip install -e`` registered."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAFTKV_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    return env


def free_port() -> int:
    """A port that was free a moment ago. Racy (anything may take it before it is used): for a
    server the test starts, use ``tests.support.ports.ReservedPort``; kept for callers not yet
    moved."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Reply:
    """An HTTP answer: status, headers (case-insensitive get), raw body and parsed JSON."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"Reply({self.status}, {self.body[:300]!r})"


class LocalCluster:
    def __init__(
        self,
        root: Path,
        size: int = 3,
        *,
        election_ms: int = 500,
        heartbeat_ms: int = 50,
        snapshot_every: int = 10_000,
        token: str | None = None,
        request_timeout_ms: int = 5_000,
        threads: int = 16,
        extra_args: list[str] | None = None,
        env: dict[str, str] | None = None,
        ssl_context: ssl.SSLContext | None = None,
        node_args: Callable[[int], list[str]] | None = None,
    ) -> None:
        self.root = Path(root)
        self.size = size
        self.ids = [f"raft-{i}" for i in range(size)]
        self.reserved = [ReservedPort() for _ in range(size)]
        self.token = token
        self.common = [
            "--election-ms",
            str(election_ms),
            "--heartbeat-ms",
            str(heartbeat_ms),
            "--snapshot-every",
            str(snapshot_every),
            "--request-timeout-ms",
            str(request_timeout_ms),
            "--threads",
            str(threads),
        ]
        if token:
            self.common += ["--token", token]
        self.common += extra_args or []
        self.extra_env = dict(env or {})
        self.ssl_context = ssl_context  # set: the nodes serve HTTPS (tests/integration/tls)
        self.node_args = node_args  # per-node extra flags (e.g. each node's own certificate)
        self.peers = ",".join(
            f"{nid}=http://127.0.0.1:{port}" for nid, port in zip(self.ids, self.ports, strict=True)
        )
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self._started_pgids: set[int] = set()
        self._logs: dict[int, Any] = {}

    # ------------------------------------------------------------------ processes
    def url(self, i: int) -> str:
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://127.0.0.1:{self.ports[i]}"

    def data_dir(self, i: int) -> Path:
        return self.root / f"data-{i}"

    def log_path(self, i: int) -> Path:
        return self.root / f"node-{i}.log"

    @property
    def ports(self) -> list[int]:
        return [r.port for r in self.reserved]

    def add_port(self) -> int:
        """Reserve one more port (for a node added later); returns its index."""
        self.reserved.append(ReservedPort())
        return len(self.reserved) - 1

    def use_ports_of(self, other: LocalCluster) -> None:
        """Run on ``other``'s ports (and ``--peers``) instead of this cluster's own: a second
        cluster on reused addresses. The reservations are shared: closing either releases them."""
        for port in self.reserved:
            port.close()
        self.reserved = other.reserved
        self.peers = other.peers

    def start_node(self, i: int) -> None:
        assert i not in self.procs or self.procs[i].poll() is not None, f"node {i} is running"
        log = open(self.log_path(i), "ab")  # noqa: SIM115 - closed in _reap/close
        self._logs[i] = log
        cmd = [
            sys.executable,
            "-m",
            "raftkv",
            "serve",
            "--id",
            self.ids[i],
            "--host",
            "127.0.0.1",
            "--port",
            str(self.ports[i]),
            "--data-dir",
            str(self.data_dir(i)),
            "--peers",
            self.peers,
            *self.common,
            *(self.node_args(i) if self.node_args else []),
        ]
        env = {**subprocess_env(), **self.extra_env}
        proc = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            cwd=self.root,
        )
        self.procs[i] = proc
        self._started_pgids.add(proc.pid)

    def start(self) -> LocalCluster:
        for i in range(self.size):
            self.start_node(i)
        for i in range(self.size):
            self.wait_serving(i)
        return self

    def wait_serving(self, i: int, timeout: float = 30) -> None:
        def up() -> bool:
            proc = self.procs[i]
            if proc.poll() is not None:
                raise AssertionError(f"node {i} exited with {proc.returncode}\n{self.logs()}")
            return self.get(i, "/healthz", timeout=1).status == 200

        wait_until(up, timeout, f"node {i} serving", self.logs)

    def _signal(self, i: int, sig: int) -> None:
        proc = self.procs[i]
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)

    def kill(self, i: int) -> None:
        """SIGKILL the node's master and worker (a crash)."""
        self._signal(i, signal.SIGKILL)
        self.procs[i].wait(10)

    def pause(self, i: int) -> None:
        self._signal(i, signal.SIGSTOP)

    def resume(self, i: int) -> None:
        self._signal(i, signal.SIGCONT)

    def terminate(self, i: int, timeout: float = 30) -> int:
        """SIGTERM to the gunicorn master only (what Kubernetes does); wait for the exit code."""
        proc = self.procs[i]
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        return proc.wait(timeout)

    def close(self) -> None:
        for pgid in self._started_pgids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGCONT)
                os.killpg(pgid, signal.SIGKILL)
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)
        for log in self._logs.values():
            log.close()
        for port in self.reserved:
            port.close()

    def logs(self, lines: int = 25) -> str:
        out = []
        for i in range(self.size):
            p = self.log_path(i)
            if p.exists():
                tail = p.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"--- node {i} ({self.ids[i]}) ---\n" + "\n".join(tail))
        return "\n".join(out)

    def alive(self) -> list[int]:
        return [i for i, p in self.procs.items() if p.poll() is None]

    # ------------------------------------------------------------------ HTTP
    def request(
        self,
        i: int,
        method: str,
        path: str,
        body: bytes | str | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 10,
    ) -> Reply:
        conn: http.client.HTTPConnection
        if self.ssl_context is not None:
            conn = http.client.HTTPSConnection(
                "127.0.0.1", self.ports[i], timeout=timeout, context=self.ssl_context
            )
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.ports[i], timeout=timeout)
        try:
            data = body.encode() if isinstance(body, str) else body
            conn.request(method, path, body=data, headers=headers or {})
            resp = conn.getresponse()
            raw = resp.read()
            return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, raw)
        finally:
            conn.close()

    def get(self, i: int, path: str, timeout: float = 10) -> Reply:
        return self.request(i, "GET", path, timeout=timeout)

    def put(
        self, i: int, key: str, value: str, headers: dict[str, str] | None = None, query: str = ""
    ) -> Reply:
        return self.request(i, "PUT", f"/v1/kv/{key}{query}", value, headers)

    def status(self, i: int) -> dict[str, Any]:
        r = self.get(i, "/v1/status", timeout=2)
        assert r.status == 200, r
        return dict(r.json)

    def wait_for_leader(
        self, among: Iterable[int] | None = None, timeout: float = 30, min_term: int = 0
    ) -> int:
        """Wait until all of ``among`` (default: running nodes) agree on one leader in ``among``
        with term >= ``min_term``; return its index."""
        nodes = list(among) if among is not None else self.alive()

        def agreed() -> int | None:
            statuses = [self.status(i) for i in nodes]
            leaders = {s["leader"] for s in statuses}
            if len(leaders) != 1 or None in leaders:
                return None
            (leader,) = leaders
            idx = self.ids.index(leader)
            if idx not in nodes:
                return None
            st = statuses[nodes.index(idx)]
            if st["role"] != "leader" or st["term"] < min_term:
                return None
            return idx + 1  # truthy even for node 0

        return wait_until(agreed, timeout, f"one leader among {nodes}", self.logs) - 1

    def put_ok(self, i: int, key: str, value: str, timeout: float = 20, **kw: Any) -> Reply:
        """PUT, retrying 503/504 (no leader yet) until 200 or ``timeout``."""

        def attempt() -> Reply | None:
            r = self.put(i, key, value, **kw)
            if r.status == 200:
                return r
            if r.status in (503, 504):
                return None
            raise AssertionError(f"PUT {key} on node {i}: {r}")

        return wait_until(attempt, timeout, f"PUT {key} acknowledged via node {i}", self.logs)

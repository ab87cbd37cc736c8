"""etcd_cluster.py — 3 etcd members on 127.0.0.1 for bench_node.py's comparison row (Debian's
``etcd-server``), started and stopped by PID; the same load through etcd's v3 JSON gateway."""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import signal
import subprocess
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tests.integration.cluster import free_port, wait_until

__all__ = ["EtcdCluster", "etcd_available"]


def etcd_available() -> bool:
    return shutil.which("etcd") is not None


def _post(url: str, path: str, obj: dict[str, Any], timeout: float = 5) -> dict[str, Any]:
    req = urllib.request.Request(
        url + path,
        data=json.dumps(obj).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        out: dict[str, Any] = json.loads(resp.read())
        return out


class EtcdCluster:
    def __init__(self, root: Path, size: int = 3) -> None:
        self.root = root
        self.names = [f"etcd-{i}" for i in range(size)]
        self.client_ports = [free_port() for _ in range(size)]
        self.peer_ports = [free_port() for _ in range(size)]
        self.procs: list[subprocess.Popen[bytes]] = []

    def url(self, i: int) -> str:
        return f"http://127.0.0.1:{self.client_ports[i]}"

    def start(self) -> EtcdCluster:
        initial = ",".join(
            f"{n}=http://127.0.0.1:{p}" for n, p in zip(self.names, self.peer_ports, strict=True)
        )
        for i, name in enumerate(self.names):
            peer = f"http://127.0.0.1:{self.peer_ports[i]}"
            cmd = [
                "etcd",
                "--name",
                name,
                "--data-dir",
                str(self.root / name),
                "--listen-client-urls",
                self.url(i),
                "--advertise-client-urls",
                self.url(i),
                "--listen-peer-urls",
                peer,
                "--initial-advertise-peer-urls",
                peer,
                "--initial-cluster",
                initial,
                "--initial-cluster-state",
                "new",
                "--initial-cluster-token",
                "raftkv-bench",
                "--log-level",
                "warn",
            ]
            log = open(self.root / f"{name}.log", "wb")  # noqa: SIM115 - lives with the process
            self.procs.append(
                subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            )
        wait_until(lambda: self.leader() is not None, 60, "etcd leader")
        return self

    def leader(self) -> int | None:
        """Index of the member that is the leader, or None."""
        try:
            st = [_post(self.url(i), "/v3/maintenance/status", {}, 2) for i in range(3)]
        except OSError:
            return None
        for i, s in enumerate(st):
            if s.get("leader") and s["leader"] == s.get("header", {}).get("member_id"):
                return i
        return None

    def prefill(self, i: int, threads: int, keys_per_thread: int) -> None:
        """The keys etcd_load.lua's GET mode reads: bench-<t>-<k>."""
        url = self.url(i)
        value = base64.b64encode(b"v" * 100).decode()

        def put(key: str) -> None:
            k = base64.b64encode(key.encode()).decode()
            _post(url, "/v3/kv/put", {"key": k, "value": value})

        keys = [f"bench-{t}-{k}" for t in range(1, threads + 1) for k in range(keys_per_thread)]
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(put, keys))

    def close(self) -> None:
        for p in self.procs:
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(signal.SIGKILL)
        for p in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(10)

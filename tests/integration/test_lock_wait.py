"""A node whose data directory is still locked by another process waits for the lock (up to
``--lock-timeout``) instead of exiting at once — the Kubernetes case where a replaced pod's new
container starts on the same volume while the old process is still in its grace period.

Real processes: a child process holds ``DATA_DIR/LOCK`` with ``flock`` (as an old node would),
and a real ``raftkv serve`` starts on the same directory."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from raftkv.config import load_config
from raftkv.errors import ConfigError
from raftkv.server.gunicorn_app import settings
from tests.integration.cluster import subprocess_env
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

HOLDER = r"""
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.read()  # hold the lock until the test closes our stdin (or kills us)
"""


class Procs:
    """Every process the test starts, each in its own session; all killed at the end."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.started: list[subprocess.Popen[bytes]] = []

    def hold_lock(self, data_dir: Path) -> subprocess.Popen[bytes]:
        data_dir.mkdir(parents=True, exist_ok=True)
        proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(data_dir / "LOCK")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True,
        )  # fmt: skip
        self.started.append(proc)
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"locked\n"
        return proc

    def node(self, data_dir: Path, port: int, *extra: str) -> subprocess.Popen[bytes]:
        log = open(self.root / "node.log", "ab")  # noqa: SIM115 - closed right after Popen
        with log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "raftkv", "serve", "--id", "raft-0",
                 "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir),
                 "--election-ms", "300", "--heartbeat-ms", "50", "--threads", "8", *extra],
                stdout=log, stderr=subprocess.STDOUT, env=subprocess_env(),
                start_new_session=True, cwd=self.root,
            )  # fmt: skip
        self.started.append(proc)
        return proc

    def log(self) -> str:
        path = self.root / "node.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        for proc in self.started:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    stream.close()


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    p = Procs(tmp_path)
    try:
        yield p
    finally:
        p.close()


def http_get(port: int, path: str, timeout: float = 1.0) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    finally:
        conn.close()


def http_put(port: int, key: str, value: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("PUT", f"/v1/kv/{key}", body=value.encode())
        return conn.getresponse().status
    finally:
        conn.close()


def serves(port: int) -> bool:
    try:
        return http_get(port, "/healthz") == 200
    except OSError:
        return False


def test_node_waits_for_the_lock_then_starts_when_it_is_released(
    procs: Procs, tmp_path: Path, reserved_port: int
) -> None:
    data = tmp_path / "data"
    holder = procs.hold_lock(data)
    port = reserved_port
    node = procs.node(data, port, "--lock-timeout", "60")
    wait_until(
        lambda: "storage waiting for the lock" in procs.log(),
        30,
        "the node to log that it waits for the lock",
        on_fail=procs.log,
    )
    # It waits: still running, not serving, no error.
    time.sleep(1.0)
    assert node.poll() is None, procs.log()
    assert not serves(port)
    assert "StorageLocked" not in procs.log()

    assert holder.stdin is not None
    holder.stdin.close()  # the old process exits: the kernel drops its lock
    assert holder.wait(10) == 0
    wait_until(
        lambda: serves(port), 30, "the node to serve after the lock was released", on_fail=procs.log
    )
    wait_until(lambda: http_put(port, "k", "v") == 200, 30, "a committed write", on_fail=procs.log)
    assert "storage lock acquired" in procs.log()
    assert node.poll() is None


def test_lock_still_held_after_the_timeout_is_a_clear_error(
    procs: Procs, tmp_path: Path, reserved_port: int
) -> None:
    data = tmp_path / "data"
    procs.hold_lock(data)
    began = time.monotonic()
    node = procs.node(data, reserved_port, "--lock-timeout", "2")
    code = node.wait(60)
    took = time.monotonic() - began
    log = procs.log()
    assert code != 0, log
    assert took >= 2.0, log
    assert "storage waiting for the lock" in log
    assert "event=start-failed error=StorageLocked" in log
    assert "is in use by another process (waited 2." in log
    assert "raise --lock-timeout/RAFTKV_LOCK_TIMEOUT" in log
    assert "Traceback" not in log


def test_lock_timeout_zero_fails_at_once(procs: Procs, tmp_path: Path, reserved_port: int) -> None:
    data = tmp_path / "data"
    procs.hold_lock(data)
    node = procs.node(data, reserved_port, "--lock-timeout", "0")
    assert node.wait(60) != 0
    log = procs.log()
    assert "StorageLocked" in log and "is in use by another process" in log
    assert "storage waiting for the lock" not in log


def test_lock_timeout_option() -> None:
    def cfg(raw: str | None, env: dict[str, str] | None = None) -> int:
        flags = {"lock_timeout": raw}
        return load_config(flags, env or {}, "raft-0").lock_timeout_s

    assert cfg(None) == 30  # Kubernetes' default grace period
    assert cfg(None, {"RAFTKV_LOCK_TIMEOUT": "45"}) == 45
    assert cfg("5", {"RAFTKV_LOCK_TIMEOUT": "45"}) == 5  # the flag wins
    assert cfg("0") == 0
    for bad, why in (("x", "must be an integer, got 'x'"), ("-1", "must be in 0..3600, got -1")):
        with pytest.raises(ConfigError) as err:
            cfg(bad)
        assert str(err.value) == f"--lock-timeout/RAFTKV_LOCK_TIMEOUT: {why}"
    # gunicorn's master must not kill the worker while it waits for the lock
    assert settings(load_config({"lock_timeout": "120"}, {}, "raft-0"))["timeout"] > 120

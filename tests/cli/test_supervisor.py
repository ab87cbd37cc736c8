"""The local target's supervisor on its own, with tiny stand-in programs instead of raftkv:
restart with the same identity, crash-loop backoff, frozen replicas left alone, clean stop."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from raftctl.backends.local.procs import proc_state, same_process
from raftctl.backends.local.state import ClusterPaths, ReplicaSpec, Runtime, Spec, write_json
from tests.support.waiting import wait_until

SLEEPER = (
    sys.executable,
    "-c",
    "import sys, time; print('up', sys.argv[1:7], flush=True); time.sleep(300)",
)
CRASHER = (sys.executable, "-c", "import sys; sys.exit(3)")


def make_spec(root: Path, command: tuple[str, ...], n: int = 2) -> ClusterPaths:
    paths = ClusterPaths(root)
    paths.logs.mkdir(parents=True)
    spec = Spec(
        name="sup",
        replicas=tuple(
            ReplicaSpec(
                id=f"raft-{i}",
                port=20000 + i,
                data_dir=str(paths.data / f"raft-{i}"),
                log_file=str(paths.logs / f"raft-{i}.log"),
            )
            for i in range(n)
        ),
        command=command,
        election_ms=500,
        heartbeat_ms=100,
    )
    write_json(paths.spec, spec.to_json())
    return paths


@pytest.fixture
def start(tmp_path: Path) -> Iterator[object]:
    procs: list[tuple[subprocess.Popen[bytes], ClusterPaths]] = []

    def _start(
        command: tuple[str, ...], n: int = 2
    ) -> tuple[subprocess.Popen[bytes], ClusterPaths]:
        paths = make_spec(tmp_path / f"c{len(procs)}", command, n)
        with open(paths.supervisor_log, "ab") as log:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "raftctl.backends.local.supervisor",
                    str(paths.root),
                    "--foreground",
                ],
                stderr=log,
            )
        procs.append((proc, paths))
        return proc, paths

    try:
        yield _start
    finally:
        for proc, paths in procs:
            rt = Runtime.load(paths.runtime)
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            for ident in rt.replicas.values():
                if same_process(ident):
                    os.killpg(ident.pid, signal.SIGKILL)


def test_restarts_a_killed_replica_with_the_same_identity(start) -> None:  # type: ignore[no-untyped-def]
    sup, paths = start(SLEEPER)
    wait_until(lambda: len(Runtime.load(paths.runtime).replicas) == 2, 20, "replicas started")
    first = Runtime.load(paths.runtime).replicas["raft-1"]
    log_file = paths.logs / "raft-1.log"
    wait_until(lambda: "up [" in log_file.read_text(), 20, "raft-1 running")
    os.killpg(first.pid, signal.SIGKILL)
    wait_until(
        lambda: Runtime.load(paths.runtime).replicas.get("raft-1") not in (None, first),
        20,
        "raft-1 restarted",
    )
    rt = Runtime.load(paths.runtime)
    assert rt.restarts == {"raft-0": 0, "raft-1": 1}
    wait_until(lambda: log_file.read_text().count("up [") == 2, 20, "raft-1 running again")
    log = log_file.read_text()
    # same id and port on both runs, and the restart is marked in the replica's log
    run = "up ['serve', '--id', 'raft-1', '--host', '127.0.0.1', '--port']"
    assert log.count(run) == 2
    assert "raftctl-supervisor: starting raft-1 (restart 1)" in log
    assert "event=replica-exited replica=raft-1 code=-9" in paths.supervisor_log.read_text()
    sup.send_signal(signal.SIGTERM)
    assert sup.wait(timeout=20) == 0
    assert not paths.runtime.exists()
    assert not any(same_process(i) for i in rt.replicas.values())


def test_leaves_a_frozen_replica_frozen(start) -> None:  # type: ignore[no-untyped-def]
    sup, paths = start(SLEEPER, n=2)
    wait_until(lambda: len(Runtime.load(paths.runtime).replicas) == 2, 20, "replicas started")
    ident = Runtime.load(paths.runtime).replicas["raft-0"]
    other = Runtime.load(paths.runtime).replicas["raft-1"]
    os.killpg(ident.pid, signal.SIGSTOP)
    wait_until(lambda: proc_state(ident.pid) == "T", 10, "replica stopped")
    # Evidence that the supervisor has looked again since the freeze: it restarts raft-1.
    os.killpg(other.pid, signal.SIGKILL)
    wait_until(
        lambda: Runtime.load(paths.runtime).restarts.get("raft-1") == 1, 20, "raft-1 restarted"
    )
    rt = Runtime.load(paths.runtime)
    assert rt.replicas["raft-0"] == ident and rt.restarts["raft-0"] == 0
    assert proc_state(ident.pid) == "T"
    sup.send_signal(signal.SIGTERM)  # stopping works on a frozen replica too (SIGCONT first)
    assert sup.wait(timeout=20) == 0
    assert not same_process(ident)


def test_crash_loop_backs_off(start) -> None:  # type: ignore[no-untyped-def]
    sup, paths = start(CRASHER, n=1)
    wait_until(
        lambda: Runtime.load(paths.runtime).restarts.get("raft-0", 0) >= 3, 30, "three restarts"
    )
    sup.send_signal(signal.SIGTERM)
    assert sup.wait(timeout=20) == 0
    delays = [
        float(x)
        for x in re.findall(
            r"replica=raft-0 code=3 restart_in=([\d.]+)s", paths.supervisor_log.read_text()
        )
    ]
    assert len(delays) >= 3
    assert delays == sorted(delays) and delays[-1] > delays[0]


def test_exits_when_the_cluster_spec_is_deleted(start) -> None:  # type: ignore[no-untyped-def]
    sup, paths = start(SLEEPER, n=1)
    wait_until(lambda: "raft-0" in Runtime.load(paths.runtime).replicas, 20, "replica started")
    ident = Runtime.load(paths.runtime).replicas["raft-0"]
    paths.spec.unlink()
    assert sup.wait(timeout=20) == 0
    assert not same_process(ident)

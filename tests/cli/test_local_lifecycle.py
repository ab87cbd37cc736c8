"""The local target's lifecycle on real processes: no cluster, down keeps data, down --purge,
and state left by a crash (supervisor killed, PIDs that are not ours) detected and cleaned."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from raftctl.backends.local.procs import ProcId, same_process
from raftctl.backends.local.state import write_json
from tests.cli.localcluster import Local
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def local(tmp_path: Path) -> Iterator[Local]:
    cluster = Local.new(tmp_path / "state")
    try:
        yield cluster
    finally:
        cluster.teardown()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def test_no_cluster_running_is_one_clear_line(local: Local) -> None:
    for args in (("status",), ("get", "k"), ("chaos", "kill-leader"), ("logs", "raft-0")):
        res = local.sh(*args)
        assert res.returncode == 1, args
        assert res.stderr.strip() == (
            f"error: no local cluster named {local.name} (state: {local.root / local.name}); "
            "start one with `raftctl up`"
        )
    res = local.cli("down")
    assert res.exit_code == 0 and f"no local cluster named {local.name}" in res.stdout


def test_down_keeps_data_then_purge_deletes_it(local: Local) -> None:
    assert local.sh("up", "--timeout", "90").returncode == 0
    assert local.cli("put", "kept", "across-down").exit_code == 0
    pids = local.pids()
    res = local.cli("down")
    assert res.exit_code == 0 and "stopped 3 replicas" in res.stdout
    assert not any(_alive(p) for p in pids.values())
    res = local.sh("status")
    assert res.returncode == 1 and "is not running" in res.stderr
    assert (local.root / local.name / "data" / "raft-0").is_dir()

    up = local.cli("up", "-o", "json")
    assert up.exit_code == 0, up.stderr
    assert json.loads(up.stdout)["started"] is True
    assert local.cli("get", "kept").stdout == "across-down\n"

    pids = local.pids()
    assert local.cli("down").exit_code == 0
    res = local.cli("up", "--replicas", "5")  # would orphan the 3 replicas' data: refused
    assert res.exit_code == 2 and "down --purge" in res.stderr
    assert (local.root / local.name / "data" / "raft-2").is_dir()
    res = local.cli("down", "--purge", "-o", "json")
    assert res.exit_code == 0 and json.loads(res.stdout)["purged"] is True
    assert not (local.root / local.name).exists()
    assert not any(_alive(p) for p in pids.values())


def test_crashed_supervisor_leftovers_are_cleaned_by_up(local: Local) -> None:
    assert local.sh("up", "--timeout", "90").returncode == 0
    assert local.cli("put", "k", "v").exit_code == 0
    rt = local.backend.runtime()
    assert rt.supervisor is not None
    os.kill(rt.supervisor.pid, signal.SIGKILL)  # the supervisor we started crashes
    wait_until(lambda: not same_process(rt.supervisor), 10, "supervisor gone")
    orphans = [ident.pid for ident in rt.replicas.values()]
    assert all(_alive(p) for p in orphans)  # its replicas are orphaned, still serving

    res = local.sh("status")
    assert res.returncode == 1 and "is not running" in res.stderr

    res = local.sh("up", "--timeout", "90")
    assert res.returncode == 0, res.stderr
    assert "did not stop cleanly: cleaning it up" in res.stderr
    assert not any(_alive(p) for p in orphans)
    assert local.cli("get", "k").stdout == "v\n"  # same data dirs, same ports


def test_pids_of_other_programs_are_never_trusted(local: Local) -> None:
    """A state file naming a PID that now belongs to another program: ignored, not signalled."""
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        ident = ProcId.of(stranger.pid)
        assert ident is not None
        state = local.root / local.name
        state.mkdir(parents=True)
        # same PID as the stranger, but the start time of some earlier process
        fake = {"pid": stranger.pid, "start": ident.start - 1}
        write_json(
            state / "supervisor.json",
            {"supervisor": fake, "replicas": {"raft-0": fake, "raft-1": fake}},
        )
        # and the stranger's true identity as a "supervisor": right PID and start, wrong program
        res = local.sh("status")
        assert res.returncode == 1
        write_json(
            state / "supervisor.json", {"supervisor": {"pid": ident.pid, "start": ident.start}}
        )
        res = local.sh("up", "--timeout", "90")
        assert res.returncode == 0, res.stderr
        assert stranger.poll() is None  # still alive: never signalled
        assert local.cli("status").exit_code == 0
    finally:
        stranger.kill()
        stranger.wait()


def test_supervisor_restarts_a_replica_that_dies(local: Local) -> None:
    assert local.sh("up", "--replicas", "3", "--timeout", "90").returncode == 0
    rt = local.backend.runtime()
    victim = rt.replicas["raft-1"]
    os.killpg(victim.pid, signal.SIGKILL)  # our own replica's process group
    wait_until(
        lambda: local.backend.runtime().replicas.get("raft-1") not in (None, victim),
        20,
        "raft-1 restarted by the supervisor",
    )
    wait_until(lambda: local.sh("status").returncode == 0, 30, "cluster healthy again")
    assert local.backend.runtime().restarts["raft-1"] == 1


def test_base_port_and_a_busy_port(local: Local) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        res = local.sh("up", "--base-port", str(port))
        assert res.returncode == 1
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1, lines
        # the busy port is named; a neighbour the cluster also needs may happen to be busy too
        # (an ephemeral port of some other connection), and is then listed beside it
        busy_list = re.match(r"error: port ([\d, ]+) already in use by another program", lines[0])
        assert busy_list, lines[0]
        assert str(port) in busy_list.group(1).split(", "), lines[0]
    res = local.sh("down", "--purge")
    assert res.returncode == 0
    # Three consecutive ports for --base-port: another process may take one between our probe and
    # raftctl's bind, so a "port in use" answer (which raftctl gives before starting anything)
    # means: pick another base and try again.
    for _attempt in range(5):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base > 65000:
            base = 42000 + _attempt * 97
        res = local.sh("up", "--base-port", str(base), "--timeout", "90")
        if not (res.returncode != 0 and "already in use" in res.stderr):
            break
    assert res.returncode == 0, res.stderr
    urls = [r["url"] for r in local.json("status")["replicas"]]
    assert urls == [f"http://127.0.0.1:{base + i}" for i in range(3)]
    proc = subprocess.run(
        [sys.executable, "-m", "raftctl", "put", "piped", "-"],
        input="from stdin",
        text=True,
        capture_output=True,
        env={**os.environ, **local.env},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert local.cli("get", "piped").stdout == "from stdin\n"

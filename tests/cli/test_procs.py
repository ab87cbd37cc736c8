"""Process identity: a PID is trusted only with its start time (and a command-line marker)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from raftctl.backends.local.procs import (
    ProcId,
    cmdline,
    group_members,
    proc_state,
    same_process,
    signal_group,
    start_time,
)
from tests.support.waiting import wait_until


def test_identity_of_this_process() -> None:
    me = ProcId.of(os.getpid())
    assert me is not None and me.start == start_time(os.getpid())
    assert same_process(me)
    assert same_process(me, "python") or same_process(me, "pytest")
    assert not same_process(me, "definitely-not-in-my-cmdline")
    assert not same_process(ProcId(os.getpid(), me.start + 1))
    assert not same_process(None)
    assert not same_process(ProcId(1, 0))


def test_dead_and_zombie_processes_are_not_alive() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    ident = ProcId.of(child.pid)
    wait_until(lambda: proc_state(child.pid) in (None, "Z"), 10, "child exited")
    assert ident is None or not same_process(ident)  # a zombie is not alive
    child.wait()
    assert proc_state(child.pid) is None and cmdline(child.pid) == ""


def test_signal_group_reaches_the_group_and_only_ours() -> None:
    leader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess,sys,time; "
            "subprocess.Popen([sys.executable,'-c','import time; time.sleep(60)  # raftkv-test']); "
            "time.sleep(60)  # raftkv-test",
        ],
        process_group=0,
    )
    try:
        ident = ProcId.of(leader.pid)
        assert ident is not None
        wait_until(
            lambda: len(group_members(leader.pid, ident.start, "raftkv-test")) == 2,
            10,
            "child in the group",
        )
        # wrong start time + a leader that is alive: nothing is signalled
        assert not signal_group(
            ProcId(leader.pid, ident.start + 10_000), signal.SIGKILL, marker="no-such-marker"
        )
        assert leader.poll() is None
        assert signal_group(ident, signal.SIGKILL)
        leader.wait(timeout=10)
        wait_until(
            lambda: not group_members(leader.pid, ident.start, "raftkv-test"),
            10,
            "the whole group is gone",
        )
    finally:
        if leader.poll() is None:
            leader.kill()
            leader.wait()

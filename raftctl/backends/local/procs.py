"""procs.py — process identity on Linux, so raftctl never signals a process it did not start.

A PID alone is not an identity: after a crash the number may belong to another program. raftctl
records ``(pid, start)`` where ``start`` is the kernel's start time of the process
(``/proc/<pid>/stat`` field 22, clock ticks since boot). ``same_process`` is true only if that
PID is alive (not a zombie) AND started at that moment AND its ``/proc/<pid>/cmdline`` contains
an expected marker. Every signal raftctl sends goes through ``signal_group``, which checks that.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ProcId",
    "cmdline",
    "group_members",
    "proc_state",
    "same_process",
    "signal_group",
    "start_time",
]

_PROC = Path("/proc")


@dataclass(frozen=True)
class ProcId:
    """A process identity that survives PID reuse: pid + kernel start time."""

    pid: int
    start: int

    @classmethod
    def of(cls, pid: int) -> ProcId | None:
        start = start_time(pid)
        return None if start is None else cls(pid, start)


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ppid ..." — comm may contain spaces and parentheses.
    return raw[raw.rfind(")") + 2 :].split()


def start_time(pid: int) -> int | None:
    """Kernel start time of ``pid`` in clock ticks since boot, or None if it does not exist."""
    fields = _stat_fields(pid)
    if fields is None or len(fields) < 20:
        return None
    return int(fields[19])  # field 22 overall; fields here start at field 3 (state)


def proc_state(pid: int) -> str | None:
    """One-letter state (R, S, T, Z, ...) or None if the PID does not exist."""
    fields = _stat_fields(pid)
    return fields[0] if fields else None


def _pgid(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[2]) if fields and len(fields) > 2 else None


def cmdline(pid: int) -> str:
    """The process's command line joined by spaces ('' if unreadable)."""
    try:
        raw = (_PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode("utf-8", "replace").strip()


def same_process(ident: ProcId | None, marker: str | None = None) -> bool:
    """True if ``ident`` is still the live (non-zombie) process raftctl started."""
    if ident is None or ident.pid <= 1:
        return False
    state = proc_state(ident.pid)
    if state is None or state in ("Z", "X"):
        return False
    if start_time(ident.pid) != ident.start:
        return False
    return marker is None or marker in cmdline(ident.pid)


def group_members(pgid: int, not_before: int, marker: str = "raftkv") -> list[int]:
    """Live PIDs in process group ``pgid`` started no earlier than ``not_before``, whose
    command line contains ``marker``.

    Linux never reuses a PID while a process group of that number exists, so members of the
    group our replica led (even after the leader itself died) are the replica's own children.
    The start-time and marker checks guard the rare case where the whole group died and the
    number now leads an unrelated group.
    """
    found: list[int] = []
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        if _pgid(pid) != pgid or proc_state(pid) in (None, "Z", "X"):
            continue
        start = start_time(pid)
        if start is not None and start >= not_before and marker in cmdline(pid):
            found.append(pid)
    return found


def signal_group(ident: ProcId, sig: signal.Signals, marker: str | None = None) -> bool:
    """Send ``sig`` to the process group led by ``ident`` (or its surviving members).

    Returns False (and sends nothing) when neither the leader nor any member is ours any more.
    """
    if same_process(ident, marker):
        try:
            os.killpg(ident.pid, sig)
            return True
        except ProcessLookupError:
            return False
    members = group_members(ident.pid, ident.start, marker or "raftkv")
    for pid in members:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            continue
    return bool(members)

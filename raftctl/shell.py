"""shell.py — the only way raftctl runs external programs (docker, kind, kubectl, helm, scripts).

Contract: every external command goes through a ``Runner``. ``SubprocessRunner`` runs it for real;
tests pass a recording fake and assert the exact argv lists. ``run`` never raises
``FileNotFoundError``/``CalledProcessError``: a missing program becomes ``ToolMissing`` (naming the
tool), a non-zero exit becomes ``CommandFailed`` (with the tail of stderr) unless ``check=False``.
Long-lived helpers (``kubectl port-forward``) are started with ``spawn`` (stdout and stderr on one
pipe) and stopped by their handle; on Linux they also get SIGTERM if raftctl itself dies.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, Protocol

from raftctl.errors import CommandFailed, RaftctlError, ToolMissing

__all__ = ["Completed", "Process", "Runner", "SubprocessRunner", "require"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Completed:
    """What a finished command produced."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


class Process(Protocol):
    """A long-lived helper process started by ``Runner.spawn``."""

    @property
    def pid(self) -> int: ...

    @property
    def stdout(self) -> IO[str] | None: ...

    def poll(self) -> int | None: ...

    def terminate(self) -> None: ...

    def kill(self) -> None: ...

    def wait(self, timeout: float | None = None) -> int: ...


class Runner(Protocol):
    """Runs external commands; faked in tests."""

    def which(self, tool: str) -> str | None: ...

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        stream: bool = False,
        timeout: float | None = None,
        cwd: str | None = None,
    ) -> Completed: ...

    def spawn(self, argv: Sequence[str]) -> Process: ...


def require(runner: Runner, tools: Sequence[str], why: str) -> None:
    """Fail with ``ToolMissing`` naming the first of ``tools`` that is not installed."""
    for tool in tools:
        if runner.which(tool) is None:
            raise ToolMissing(tool, why)


class SubprocessRunner:
    """The real runner: ``subprocess`` with captured text output."""

    def which(self, tool: str) -> str | None:
        return shutil.which(tool)

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        stream: bool = False,
        timeout: float | None = None,
        cwd: str | None = None,
    ) -> Completed:
        args = list(argv)
        log.debug("run argv=%s", args)
        try:
            proc = subprocess.run(
                args,
                check=False,
                text=True,
                capture_output=not stream,
                timeout=timeout,
                cwd=cwd,
            )
        except FileNotFoundError as err:
            raise ToolMissing(args[0], "run " + " ".join(args[:2])) from err
        except subprocess.TimeoutExpired as err:
            raise RaftctlError(f"`{' '.join(args)}` did not finish within {timeout:.0f}s") from err
        done = Completed(tuple(args), proc.returncode, proc.stdout or "", proc.stderr or "")
        if check and proc.returncode != 0:
            raise CommandFailed(args, proc.returncode, done.stderr or done.stdout)
        return done

    def spawn(self, argv: Sequence[str]) -> Process:
        args = list(argv)
        log.debug("spawn argv=%s", args)
        try:
            return subprocess.Popen(
                args,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                text=True,
                preexec_fn=_die_with_parent if _can_die_with_parent() else None,
            )
        except FileNotFoundError as err:
            raise ToolMissing(args[0], "run " + " ".join(args[:2])) from err


def _can_die_with_parent() -> bool:
    # Linux only; and only from the main thread: the kernel signals the child when the THREAD
    # that forked it exits, and raftctl's main thread lives as long as raftctl.
    main = threading.current_thread() is threading.main_thread()
    return sys.platform.startswith("linux") and main


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when raftctl dies, even by SIGKILL (atexit, which
    stops helpers on a normal exit or Ctrl-C, does not run then)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


_PR_SET_PDEATHSIG = 1

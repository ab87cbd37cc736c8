"""supervisor.py — keeps a local cluster's replicas running, like a StatefulSet controller.

Run as ``python -m raftctl.backends.local.supervisor STATE_DIR`` (``raftctl up`` does it,
detached: the process double-forks into its own session so ``raftctl`` returns and no zombie is
left behind).

Contract:
- Starts every replica of ``STATE_DIR/cluster.json`` at once (Parallel pod management), each in
  its own process group (so a gunicorn master and its worker are signalled together), output
  appended to its log file, ``RAFTKV_TOKEN`` in the environment when the spec has a token.
- A replica that exits (SIGKILL by `chaos kill-leader`, a crash) is restarted with the SAME id,
  port and data directory after a short delay; a replica that keeps crashing within 5 s of its
  start backs off exponentially up to 10 s. A replica frozen by SIGSTOP has not exited, so it is
  left frozen until `raftctl chaos restore` sends SIGCONT.
- It alone writes ``supervisor.json`` (its own and each replica's (pid, start)), after each change.
- On SIGTERM/SIGINT, or when ``cluster.json`` disappears (``down --purge``, a deleted temp dir), it
  stops every replica (SIGCONT + SIGTERM to the group, SIGKILL after a grace period), removes
  ``supervisor.json`` and exits 0.
Logs are key=value lines in ``logs/supervisor.log``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from raftctl.backends.local.procs import ProcId, signal_group
from raftctl.backends.local.state import ClusterPaths, ReplicaSpec, Runtime, Spec, write_json

__all__ = ["Supervisor", "main"]

log = logging.getLogger("raftctl.backends.local.supervisor")

RESTART_DELAY = 0.3
MAX_BACKOFF = 10.0
CRASH_WINDOW = 5.0
STOP_GRACE = 8.0
TICK = 0.1


@dataclass
class _Child:
    spec: ReplicaSpec
    proc: subprocess.Popen[bytes] | None = None
    ident: ProcId | None = None
    started_at: float = 0.0
    restart_at: float | None = 0.0
    backoff: float = RESTART_DELAY
    restarts: int = 0


class Supervisor:
    """Starts, watches and restarts the replicas of one local cluster."""

    def __init__(self, paths: ClusterPaths, spec: Spec) -> None:
        self.paths = paths
        self.spec = spec
        self.children = {r.id: _Child(r) for r in spec.replicas}
        self.stopping = False
        self.me = ProcId.of(os.getpid())

    # -- lifecycle ---------------------------------------------------------------------------
    def request_stop(self, signum: int, frame: object) -> None:
        del frame
        log.info("event=signal signal=%s action=stop-all", signal.Signals(signum).name)
        self.stopping = True

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        log.info("event=start pid=%d replicas=%d", os.getpid(), len(self.children))
        self._publish()
        next_check = 0.0
        while not self.stopping:
            now = time.monotonic()
            changed = self._reap(now)
            changed |= self._start_due(now)
            if changed:
                self._publish()
            if now >= next_check:
                next_check = now + 0.5
                if not self.paths.spec.exists():
                    log.info("event=spec-gone action=stop-all")
                    break
                if self._reload():
                    self._publish()
            time.sleep(TICK)
        self._stop_all()
        with contextlib.suppress(FileNotFoundError):
            self.paths.runtime.unlink()
        log.info("event=exit")
        return 0

    def _reload(self) -> bool:
        """`raftctl scale` rewrote cluster.json: start added replicas, stop removed ones."""
        spec = Spec.load(self.paths.spec)
        if spec is None or spec == self.spec:
            return False
        self.spec = spec
        wanted = {r.id: r for r in spec.replicas}
        for rid in [rid for rid in self.children if rid not in wanted]:
            child = self.children.pop(rid)
            if child.proc is not None and child.proc.poll() is None:
                self._kill_group(child, signal.SIGCONT)
                self._kill_group(child, signal.SIGTERM)
                try:
                    child.proc.wait(timeout=STOP_GRACE)
                except subprocess.TimeoutExpired:
                    self._kill_group(child, signal.SIGKILL)
                    child.proc.wait(timeout=5)
            log.info("event=replica-removed replica=%s", rid)
        for rid, r in wanted.items():
            if rid not in self.children:
                self.children[rid] = _Child(r)  # restart_at=0: started by _start_due
                log.info("event=replica-added replica=%s port=%d", rid, r.port)
            else:
                self.children[rid].spec = r
        return True

    # -- replicas ----------------------------------------------------------------------------
    def _spawn(self, child: _Child) -> None:
        spec = child.spec
        Path(spec.data_dir).mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        if self.spec.token:
            env["RAFTKV_TOKEN"] = self.spec.token
        argv = self.spec.argv(spec)
        with open(spec.log_file, "ab") as out:
            note = f"--- raftctl-supervisor: starting {spec.id} (restart {child.restarts}) ---\n"
            out.write(note.encode())
            out.flush()
            child.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                process_group=0,
                close_fds=True,
            )
        child.ident = ProcId.of(child.proc.pid)
        child.started_at = time.monotonic()
        child.restart_at = None
        log.info(
            "event=replica-started replica=%s pid=%d port=%d restarts=%d",
            spec.id,
            child.proc.pid,
            spec.port,
            child.restarts,
        )

    def _reap(self, now: float) -> bool:
        changed = False
        for child in self.children.values():
            if child.proc is None or child.restart_at is not None:
                continue
            code = child.proc.poll()
            if code is None:
                continue
            # The group leader is gone; make sure no member of its group (a gunicorn worker)
            # lingers holding the port before the replacement starts.
            self._kill_group(child, signal.SIGKILL)
            if now - child.started_at < CRASH_WINDOW:
                child.backoff = min(child.backoff * 2, MAX_BACKOFF)
            else:
                child.backoff = RESTART_DELAY
            child.restart_at = now + child.backoff
            child.restarts += 1
            child.ident = None
            log.warning(
                "event=replica-exited replica=%s code=%s restart_in=%.1fs",
                child.spec.id,
                code,
                child.backoff,
            )
            changed = True
        return changed

    def _start_due(self, now: float) -> bool:
        changed = False
        for child in self.children.values():
            if child.restart_at is not None and now >= child.restart_at:
                try:
                    self._spawn(child)
                except OSError as err:
                    child.backoff = min(child.backoff * 2, MAX_BACKOFF)
                    child.restart_at = now + child.backoff
                    log.error("event=spawn-failed replica=%s error=%r", child.spec.id, str(err))
                changed = True
        return changed

    def _kill_group(self, child: _Child, sig: signal.Signals) -> None:
        """Signal the child's process group, checked by (pid, start time): a reaped child's
        number may already belong to someone else, its surviving group members may not."""
        if child.ident is not None:
            with contextlib.suppress(PermissionError):
                signal_group(child.ident, sig)

    def _stop_all(self) -> None:
        live = [c for c in self.children.values() if c.proc is not None and c.proc.poll() is None]
        for child in live:
            self._kill_group(child, signal.SIGCONT)
            self._kill_group(child, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        while time.monotonic() < deadline and any(c.proc and c.proc.poll() is None for c in live):
            time.sleep(TICK)
        for child in self.children.values():
            self._kill_group(child, signal.SIGKILL)
            if child.proc is not None:
                try:
                    child.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    log.error(
                        "event=replica-unkillable replica=%s pid=%d", child.spec.id, child.proc.pid
                    )
        log.info("event=stopped-all replicas=%d", len(live))

    def _publish(self) -> None:
        rt = Runtime(
            supervisor=self.me,
            replicas={rid: c.ident for rid, c in self.children.items() if c.ident is not None},
            restarts={rid: c.restarts for rid, c in self.children.items()},
        )
        if self.paths.root.exists():
            write_json(self.paths.runtime, rt.to_json())


def _daemonize(log_path: Path) -> None:
    """Detach: fork, new session, fork again; stdio to the log file."""
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    os.close(null)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print(
            "usage: python -m raftctl.backends.local.supervisor STATE_DIR [--foreground]",
            file=sys.stderr,
        )
        return 2
    paths = ClusterPaths(Path(args[0]).resolve())
    spec = Spec.load(paths.spec)
    if spec is None:
        print(f"supervisor: no readable cluster spec at {paths.spec}", file=sys.stderr)
        return 1
    paths.logs.mkdir(parents=True, exist_ok=True)
    if "--foreground" not in args:
        _daemonize(paths.supervisor_log)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s level=%(levelname)s cluster=" + spec.name + " %(message)s",
    )
    return Supervisor(paths, spec).run()


if __name__ == "__main__":
    sys.exit(main())

"""local/backend.py — the local target: real ``raftkv serve`` processes on 127.0.0.1.

Contract:
- ``up`` writes the spec (ids ``raft-0..N-1``, free ports or ``--base-port``, data and log files
  under the state directory, see ``state``) and starts the supervisor detached; it returns
  once the supervisor has published its PIDs. Running it again on a healthy cluster changes
  nothing. State left by a crashed run (supervisor gone) is detected, its surviving processes —
  and only those, checked by (pid, start time) — are killed, and the cluster is started again
  with the same ports and data.
- ``kill`` = SIGKILL to the replica's process group (the supervisor restarts it, same id and data);
  ``stop`` = SIGSTOP to it (recorded in frozen.json; the supervisor leaves it frozen);
  ``restore`` = SIGCONT to every frozen replica.
- ``down`` asks the supervisor to stop everything (SIGTERM), waits, kills leftovers, and keeps
  data for the next ``up``; ``down --purge`` also deletes the state directory.
- Every signal goes through ``procs.signal_group``: never to a PID we cannot prove is ours.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from raftctl.backends.base import Closing, Replica, Reporter
from raftctl.backends.local.procs import (
    ProcId,
    group_members,
    proc_state,
    same_process,
    signal_group,
)
from raftctl.backends.local.state import (
    SUPERVISOR_MARKER,
    SUPERVISOR_MODULE,
    ClusterPaths,
    ReplicaSpec,
    Runtime,
    Spec,
    default_state_root,
    read_json,
    write_json,
)
from raftctl.certs import make_ca, make_cert
from raftctl.client import cacert_in_use, use_cacert
from raftctl.errors import ClusterNotRunning, RaftctlError, UnknownReplica, UsageError

__all__ = ["LocalBackend", "raftkv_command"]

SUPERVISOR_START_TIMEOUT = 15.0
SUPERVISOR_STOP_TIMEOUT = 30.0


def raftkv_command() -> tuple[str, ...]:
    """The argv prefix that runs ``raftkv`` from this very environment."""
    if importlib.util.find_spec("raftkv.__main__") is not None:
        return (sys.executable, "-m", "raftkv")
    script = Path(sys.executable).with_name("raftkv")
    if script.exists():
        return (str(script),)
    found = shutil.which("raftkv")
    if found:
        return (found,)
    raise RaftctlError("cannot find the raftkv node program: install raftkv (pip install -e .)")


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_ports(count: int) -> list[int]:
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        return [s.getsockname()[1] for s in socks]
    finally:
        for sock in socks:
            sock.close()


class LocalBackend(Closing):
    """A cluster of ``raftkv serve`` processes on this machine, kept alive by a supervisor."""

    target = "local"
    last_signal: float | None = None  # os.kill is immediate: chaos times from its call

    def __init__(
        self,
        name: str,
        *,
        state_root: Path | None = None,
        base_port: int | None = None,
        election_ms: int = 500,
        heartbeat_ms: int = 100,
        token: str | None = None,
        tls: bool = False,
    ) -> None:
        if not name or "/" in name or name.startswith("."):
            raise UsageError(f"invalid cluster name {name!r}: use letters, digits, '-' or '_'")
        self.name = name
        self.paths = ClusterPaths((state_root or default_state_root()) / name)
        self.base_port = base_port
        self.election_ms = election_ms
        self.heartbeat_ms = heartbeat_ms
        self.token = token
        self.tls = tls

    # -- state --------------------------------------------------------------------------------
    def spec(self) -> Spec | None:
        return Spec.load(self.paths.spec)

    def runtime(self) -> Runtime:
        return Runtime.load(self.paths.runtime)

    def supervisor_alive(self, rt: Runtime | None = None) -> bool:
        rt = rt or self.runtime()
        return same_process(rt.supervisor, SUPERVISOR_MARKER)

    def _frozen(self) -> set[str]:
        raw = read_json(self.paths.frozen)
        return {str(x) for x in raw} if isinstance(raw, list) else set()

    def _set_frozen(self, ids: set[str]) -> None:
        if ids:
            write_json(self.paths.frozen, sorted(ids))
        else:
            with contextlib.suppress(FileNotFoundError):
                self.paths.frozen.unlink()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.paths.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.paths.root, 0o700)  # cluster.json may hold the cluster token
        with open(self.paths.lock, "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _new_spec(self, replicas: int) -> Spec:
        if self.base_port is not None:
            ports = list(range(self.base_port, self.base_port + replicas))
        else:
            ports = _free_ports(replicas)
        members = tuple(
            ReplicaSpec(
                id=f"raft-{i}",
                port=port,
                data_dir=str(self.paths.data / f"raft-{i}"),
                log_file=str(self.paths.logs / f"raft-{i}.log"),
            )
            for i, port in enumerate(ports)
        )
        tls_dir = None
        if self.tls:
            tls_dir = self.paths.root / "tls"
            ca = make_ca(tls_dir, f"raftkv {self.name} throwaway CA")
            for r in members:
                make_cert(ca, tls_dir, r.id, ["127.0.0.1", "localhost"])
        return Spec(
            name=self.name,
            replicas=members,
            command=raftkv_command(),
            election_ms=self.election_ms,
            heartbeat_ms=self.heartbeat_ms,
            token=self.token,
            tls_dir=str(tls_dir) if tls_dir else None,
        )

    def _clean_stale(self, rt: Runtime, reporter: Reporter) -> list[str]:
        """Kill what a crashed run left behind (only processes proven ours)."""
        done: list[str] = []
        if rt.supervisor and same_process(rt.supervisor, SUPERVISOR_MARKER):
            signal_group(rt.supervisor, signal.SIGKILL, SUPERVISOR_MARKER)
            done.append(f"killed supervisor pid {rt.supervisor.pid}")
        killed: list[ProcId] = []
        for rid, ident in sorted(rt.replicas.items()):
            signal_group(ident, signal.SIGCONT)
            if signal_group(ident, signal.SIGKILL):
                killed.append(ident)
                reporter.step(f"killed leftover {rid} (pid {ident.pid})")
                done.append(f"killed leftover {rid} pid {ident.pid}")
        # SIGKILL is asynchronous: wait until they are really gone (and their ports free).
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(
            same_process(i) or group_members(i.pid, i.start) for i in killed
        ):
            time.sleep(0.05)
        for path in (self.paths.runtime, self.paths.frozen):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        return done

    # -- Backend --------------------------------------------------------------------------------
    def up(self, replicas: int | None, reporter: Reporter) -> bool:
        with self._locked():
            spec = self.spec()
            rt = self.runtime()
            if spec is not None and self.supervisor_alive(rt):
                if replicas is not None and replicas != len(spec.replicas):
                    raise UsageError(
                        f"cluster {self.name} already runs {len(spec.replicas)} replicas; "
                        f"run `raftctl down --name {self.name}` first to change that"
                    )
                reporter.step(f"cluster {self.name} is already running")
                return False
            if rt.supervisor is not None or rt.replicas:
                reporter.step("found state from a run that did not stop cleanly: cleaning it up")
                self._clean_stale(rt, reporter)
            if spec is not None and replicas is not None and replicas != len(spec.replicas):
                raise UsageError(
                    f"cluster {self.name} has {len(spec.replicas)} replicas and keeps their data;"
                    f" run `raftctl down --purge --name {self.name}` first to start over with "
                    f"{replicas}"
                )
            if spec is None:
                spec = self._new_spec(replicas if replicas is not None else 3)
            else:
                spec = dataclasses.replace(
                    spec, command=raftkv_command(), token=self.token or spec.token
                )
            busy = [r for r in spec.replicas if not _port_free(r.port)]
            if busy:
                ports = ", ".join(str(r.port) for r in busy)
                raise RaftctlError(
                    f"port {ports} already in use by another program: free it, or run "
                    f"`raftctl down --purge --name {self.name}` and `raftctl up --base-port PORT`"
                )
            self.paths.logs.mkdir(parents=True, exist_ok=True)
            self.paths.data.mkdir(parents=True, exist_ok=True)
            write_json(self.paths.spec, spec.to_json())
            reporter.step(f"starting supervisor and {len(spec.replicas)} replicas")
            self._start_supervisor(len(spec.replicas))
            return True

    def _start_supervisor(self, replicas: int) -> None:
        argv = [sys.executable, "-m", SUPERVISOR_MODULE, str(self.paths.root)]
        proc = subprocess.run(
            argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False, timeout=30
        )
        if proc.returncode != 0:
            raise RaftctlError(f"supervisor failed to start: {proc.stderr.strip() or proc.stdout}")
        deadline = time.monotonic() + SUPERVISOR_START_TIMEOUT
        while time.monotonic() < deadline:
            rt = self.runtime()
            if self.supervisor_alive(rt) and len(rt.replicas) == replicas:
                return
            time.sleep(0.05)
        raise RaftctlError(
            f"supervisor did not start its replicas within {SUPERVISOR_START_TIMEOUT:.0f}s; "
            f"see {self.paths.supervisor_log}"
        )

    def down(self, purge: bool, reporter: Reporter) -> list[str]:
        done: list[str] = []
        if not self.paths.root.exists():
            return [f"no local cluster named {self.name}"]
        with self._locked():
            rt = self.runtime()
            sup = rt.supervisor
            if sup is not None and same_process(sup, SUPERVISOR_MARKER):
                reporter.step(f"stopping {len(rt.replicas)} replicas")
                os.kill(sup.pid, signal.SIGTERM)
                deadline = time.monotonic() + SUPERVISOR_STOP_TIMEOUT
                while same_process(sup, SUPERVISOR_MARKER) and time.monotonic() < deadline:
                    time.sleep(0.05)
                done.append(f"stopped {len(rt.replicas)} replicas")
            done += self._clean_stale(rt, reporter)
            if purge:
                reporter.step(f"deleting {self.paths.root}")
                shutil.rmtree(self.paths.root, ignore_errors=True)
                done.append(f"deleted {self.paths.root}")
        return done or ["nothing was running"]

    def replicas(self) -> list[Replica]:
        spec = self.spec()
        if spec is None:
            raise self._no_cluster()
        rt = self.runtime()
        if not self.supervisor_alive(rt):
            raise ClusterNotRunning(
                f"local cluster {self.name} is not running; start it with `raftctl up`"
                f" (state: {self.paths.root})"
            )
        frozen = self._frozen()
        out: list[Replica] = []
        for r in spec.replicas:
            ident = rt.replicas.get(r.id)
            if ident is None or not same_process(ident):
                state = "down"
            elif r.id in frozen or proc_state(ident.pid) == "T":
                state = "frozen"
            else:
                state = "running"
            out.append(
                Replica(id=r.id, url=spec.url(r), state=state, pid=ident.pid if ident else None)
            )
        if spec.tls_dir and not cacert_in_use():  # `up --tls`: trust the cluster's own CA
            use_cacert(str(Path(spec.tls_dir) / "ca.pem"))
        return out

    def _no_cluster(self) -> ClusterNotRunning:
        return ClusterNotRunning(
            f"no local cluster named {self.name} (state: {self.paths.root}); "
            "start one with `raftctl up`"
        )

    def _ident(self, replica_id: str) -> ProcId:
        spec = self.spec()
        if spec is None or spec.replica(replica_id) is None:
            known = ", ".join(r.id for r in spec.replicas) if spec else "none"
            raise UnknownReplica(f"unknown replica {replica_id!r} (replicas: {known})")
        ident = self.runtime().replicas.get(replica_id)
        if ident is None or not same_process(ident):
            raise RaftctlError(f"replica {replica_id} is not running right now")
        return ident

    def kill(self, replica: Replica) -> str:
        ident = self._ident(replica.id)
        if not signal_group(ident, signal.SIGKILL):
            raise RaftctlError(f"replica {replica.id} exited before it could be killed")
        self._set_frozen(self._frozen() - {replica.id})
        return f"SIGKILL to {replica.id} (pid {ident.pid})"

    def stop(self, replica: Replica) -> str:
        ident = self._ident(replica.id)
        self._set_frozen(self._frozen() | {replica.id})
        if not signal_group(ident, signal.SIGSTOP):
            raise RaftctlError(f"replica {replica.id} exited before it could be stopped")
        return f"SIGSTOP to {replica.id} (pid {ident.pid})"

    def restore(self) -> list[str]:
        rt = self.runtime()
        restored: list[str] = []
        for rid in sorted(self._frozen()):
            ident = rt.replicas.get(rid)
            if ident is not None and signal_group(ident, signal.SIGCONT):
                restored.append(rid)
        # A replica can also be stopped by hand (kill -STOP): resume those too.
        for rid, ident in sorted(rt.replicas.items()):
            if rid not in restored and same_process(ident) and proc_state(ident.pid) == "T":
                signal_group(ident, signal.SIGCONT)
                restored.append(rid)
        self._set_frozen(set())
        return restored

    def log_file(self, replica_id: str) -> Path:
        spec = self.spec()
        if spec is None:
            raise self._no_cluster()
        if replica_id == "supervisor":
            return self.paths.supervisor_log
        r = spec.replica(replica_id)
        if r is None:
            known = ", ".join(x.id for x in spec.replicas)
            raise UnknownReplica(f"unknown replica {replica_id!r} (replicas: {known}, supervisor)")
        return Path(r.log_file)

    def logs(self, replica_id: str, *, tail: int | None, follow: bool) -> Iterator[str]:
        path = self.log_file(replica_id)
        if not path.exists():
            return
        with open(path, encoding="utf-8", errors="replace") as fh:
            lines = fh.readlines()
            yield from (lines[-tail:] if tail else lines)
            while follow:
                line = fh.readline()
                if line:
                    yield line
                else:
                    time.sleep(0.2)

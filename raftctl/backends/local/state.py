"""local/state.py — the on-disk state of a local cluster, shared by raftctl and its supervisor.

Layout of ``<state root>/<name>/`` (state root: ``--state-dir`` / ``RAFTCTL_STATE_DIR``, else
``$XDG_STATE_HOME/raftkv``, else ``~/.local/state/raftkv``)::

    cluster.json      the spec, written by `raftctl up`: replica ids, ports, data dirs, log files,
                      timings and the command that starts a node. Kept by `down` (so the next `up`
                      restarts the same cluster with its data), deleted by `down --purge`.
    supervisor.json   written ONLY by the supervisor: its own (pid, start) and each replica's.
    frozen.json       written ONLY by raftctl: replicas frozen by `chaos stop-node`.
    data/<id>/        each replica's data directory.
    logs/<id>.log     each replica's stdout+stderr (appended across restarts).
    logs/supervisor.log
    .lock             flock held by `up`/`down` so two of them never race.

Files are replaced atomically (write tmp, fsync, rename). Readers treat a missing or unreadable
file as absent, never crash on it, and never trust a PID in it without ``procs.same_process``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from raftctl.backends.local.procs import ProcId

__all__ = [
    "ClusterPaths",
    "ReplicaSpec",
    "Runtime",
    "Spec",
    "default_state_root",
    "read_json",
    "write_json",
]

SUPERVISOR_MODULE = "raftctl.backends.local.supervisor"  # run as `python -m SUPERVISOR_MODULE`
# what its command line contains; also matches `python -m raftctl.supervisor` (raftctl before the
# local backend became one package), so a cluster started by an older raftctl is still recognized
SUPERVISOR_MARKER = "supervisor"


def default_state_root() -> Path:
    """``$XDG_STATE_HOME/raftkv`` or ``~/.local/state/raftkv``."""
    xdg = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "state"
    return base / "raftkv"


@dataclass(frozen=True)
class ClusterPaths:
    """Where one local cluster keeps its files."""

    root: Path

    @property
    def spec(self) -> Path:
        return self.root / "cluster.json"

    @property
    def runtime(self) -> Path:
        return self.root / "supervisor.json"

    @property
    def frozen(self) -> Path:
        return self.root / "frozen.json"

    @property
    def lock(self) -> Path:
        return self.root / ".lock"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def supervisor_log(self) -> Path:
        return self.logs / "supervisor.log"


def write_json(path: Path, obj: Any) -> None:
    """Replace ``path`` atomically with ``obj`` as JSON."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=2, sort_keys=True)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    """The JSON in ``path``, or None if it is missing or unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class ReplicaSpec:
    """One replica's fixed identity: like a StatefulSet pod, it keeps these across restarts."""

    id: str
    port: int
    data_dir: str
    log_file: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass(frozen=True)
class Spec:
    """cluster.json."""

    name: str
    replicas: tuple[ReplicaSpec, ...]
    command: tuple[str, ...]  # argv prefix that runs `raftkv`
    election_ms: int
    heartbeat_ms: int
    token: str | None = None
    tls_dir: str | None = None  # `raftctl up --tls`: throwaway CA + node certificates here
    version: int = 1
    # the replicas that formed the cluster at its first start (empty: all of them). Only they get
    # themselves in --peers; a replica added later by `raftctl scale` starts as a joining node
    # (its id is not among its --peers) and becomes a member through the log.
    bootstrap: tuple[str, ...] = ()

    def peers(self, replica: ReplicaSpec | None = None) -> str:
        founders = set(self.bootstrap) or {r.id for r in self.replicas}
        if replica is not None and replica.id not in founders:
            chosen = [r for r in self.replicas if r.id != replica.id]
        else:
            chosen = [r for r in self.replicas if r.id in founders]
        return ",".join(f"{r.id}={r.url}" for r in chosen)

    def url(self, replica: ReplicaSpec) -> str:
        return replica.url.replace("http://", "https://", 1) if self.tls_dir else replica.url

    def tls_args(self, replica: ReplicaSpec) -> list[str]:
        if not self.tls_dir:
            return []
        d = Path(self.tls_dir)
        return [
            "--tls-cert",
            str(d / f"{replica.id}.pem"),
            "--tls-key",
            str(d / f"{replica.id}-key.pem"),
            "--tls-ca",
            str(d / "ca.pem"),
            "--peer-mtls",
        ]

    def argv(self, replica: ReplicaSpec) -> list[str]:
        """The command line that runs ``replica`` (the token goes in the environment)."""
        return [
            *self.command,
            "serve",
            "--id", replica.id,
            "--host", "127.0.0.1",
            "--port", str(replica.port),
            "--data-dir", replica.data_dir,
            "--peers", self.peers(replica),
            "--election-ms", str(self.election_ms),
            "--heartbeat-ms", str(self.heartbeat_ms),
            *self.tls_args(replica),
        ]  # fmt: skip

    def replica(self, replica_id: str) -> ReplicaSpec | None:
        return next((r for r in self.replicas if r.id == replica_id), None)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def load(cls, path: Path) -> Spec | None:
        raw = read_json(path)
        if not isinstance(raw, dict):
            return None
        try:
            return cls(
                name=str(raw["name"]),
                replicas=tuple(ReplicaSpec(**r) for r in raw["replicas"]),
                command=tuple(str(c) for c in raw["command"]),
                election_ms=int(raw["election_ms"]),
                heartbeat_ms=int(raw["heartbeat_ms"]),
                token=raw.get("token"),
                tls_dir=raw.get("tls_dir"),
                version=int(raw.get("version", 1)),
                bootstrap=tuple(str(x) for x in raw.get("bootstrap", ())),
            )
        except (KeyError, TypeError, ValueError):
            return None


@dataclass
class Runtime:
    """supervisor.json: who is running right now (written by the supervisor only)."""

    supervisor: ProcId | None = None
    replicas: dict[str, ProcId] = field(default_factory=dict)
    restarts: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "supervisor": asdict(self.supervisor) if self.supervisor else None,
            "replicas": {k: asdict(v) for k, v in self.replicas.items()},
            "restarts": dict(self.restarts),
        }

    @classmethod
    def load(cls, path: Path) -> Runtime:
        raw = read_json(path)
        rt = cls()
        if not isinstance(raw, dict):
            return rt
        try:
            if isinstance(raw.get("supervisor"), dict):
                rt.supervisor = ProcId(**raw["supervisor"])
            for rid, ident in (raw.get("replicas") or {}).items():
                rt.replicas[str(rid)] = ProcId(**ident)
            rt.restarts = {str(k): int(v) for k, v in (raw.get("restarts") or {}).items()}
        except (TypeError, ValueError):
            return cls()
        return rt

"""local/scale.py — `raftctl scale` on the local target: add and retire replicas of a cluster.

Implements ``membership.ReplicaPool`` over the local state directory: ``start_replica`` writes
the new replica (new id, free port, empty data dir) into cluster.json and waits until the
supervisor started it; ``stop_replica`` takes it out of cluster.json, waits until the supervisor
stopped it, and deletes its data unless asked to keep it. The first time the cluster grows, the
founding replicas are recorded (``Spec.bootstrap``): only they list themselves in ``--peers``, so
a replica added later starts as a joining node and becomes a member only through the log.
"""

from __future__ import annotations

import dataclasses
import shutil
import time

from raftctl.backends.local.backend import LocalBackend, _free_ports
from raftctl.backends.local.state import ReplicaSpec, Spec, write_json
from raftctl.errors import ClusterNotRunning, RaftctlError
from raftctl.membership import Config, next_replica_id

__all__ = ["LocalPool"]

WAIT_S = 20.0


class LocalPool:
    def __init__(self, backend: LocalBackend) -> None:
        self.backend = backend

    def _spec(self) -> Spec:
        spec = self.backend.spec()
        if spec is None:
            raise ClusterNotRunning(f"no local cluster named {self.backend.name}")
        return spec

    def ids(self) -> list[str]:
        return [r.id for r in self._spec().replicas]

    def next_id(self, conf: Config) -> str:
        return next_replica_id(conf, self.ids())

    def start_replica(self, replica_id: str) -> tuple[str, str]:
        b = self.backend
        with b._locked():
            spec = self._spec()
            if spec.replica(replica_id) is not None:
                raise RaftctlError(f"replica {replica_id} already exists")
            (port,) = _free_ports(1)
            new = ReplicaSpec(
                id=replica_id,
                port=port,
                data_dir=str(b.paths.data / replica_id),
                log_file=str(b.paths.logs / f"{replica_id}.log"),
            )
            shutil.rmtree(new.data_dir, ignore_errors=True)  # a new member starts empty
            bootstrap = spec.bootstrap or tuple(r.id for r in spec.replicas)
            spec = dataclasses.replace(spec, replicas=(*spec.replicas, new), bootstrap=bootstrap)
            write_json(b.paths.spec, spec.to_json())
        self._wait(
            lambda: replica_id in b.runtime().replicas, f"the supervisor to start {replica_id}"
        )
        return new.url, new.url

    def stop_replicas(self, replica_ids: list[str], *, keep_data: bool) -> list[str]:
        return [f"{rid}: {self.stop_replica(rid, keep_data=keep_data)}" for rid in replica_ids]

    def stop_replica(self, replica_id: str, *, keep_data: bool) -> str:
        b = self.backend
        with b._locked():
            spec = self._spec()
            r = spec.replica(replica_id)
            if r is None:
                return f"no local replica {replica_id}"
            spec = dataclasses.replace(
                spec, replicas=tuple(x for x in spec.replicas if x.id != replica_id)
            )
            write_json(b.paths.spec, spec.to_json())
        self._wait(
            lambda: replica_id not in b.runtime().replicas, f"the supervisor to stop {replica_id}"
        )
        if keep_data:
            return f"stopped (data kept in {r.data_dir})"
        shutil.rmtree(r.data_dir, ignore_errors=True)
        return "stopped, data deleted"

    @staticmethod
    def _wait(pred: object, what: str) -> None:
        assert callable(pred)
        deadline = time.monotonic() + WAIT_S
        while not pred():
            if time.monotonic() >= deadline:
                raise RaftctlError(f"timed out after {WAIT_S:.0f}s waiting for {what}")
            time.sleep(0.1)

"""kindscale.py — `raftctl scale --target kind`: the StatefulSet's side of membership changes.

Implements ``membership.ReplicaPool`` with kubectl (through the kind backend's runner, so tests
record the exact command lines). A StatefulSet names its pods by ordinal, so the next replica is
``raft-<replicas>`` and scale-down frees the highest ordinals. ``start_replica`` scales the
StatefulSet up by one and waits for the pod; the pod template still says the release's
``replicaCount``, so the new pod starts as a joining node until it is added through the log.
``stop_replicas`` scales down to free exactly the removed members' ordinals and deletes their
PVCs unless asked to keep them. An ordinal removed before may only come back with an empty disk:
if its PVC still exists, the step is refused.
"""

from __future__ import annotations

import json
import time

from raftctl.backends.kind import NODE_PORT, STATEFULSET, KindBackend
from raftctl.errors import RaftctlError
from raftctl.membership import Config

__all__ = ["KindPool"]

HEADLESS_SERVICE = "raft-service"
WAIT_S = 300.0


class KindPool:
    def __init__(self, backend: KindBackend, *, wait_s: float = WAIT_S) -> None:
        self.b = backend
        self.wait_s = wait_s
        self._removed: tuple[str, ...] = ()

    def _run(self, *args: str) -> str:
        return self.b.runner.run(self.b.kubectl(*args)).stdout

    def count(self) -> int:
        out = self._run("get", "statefulset", STATEFULSET, "-o", "json")
        try:
            return int(json.loads(out)["spec"]["replicas"])
        except (ValueError, KeyError, TypeError) as err:
            raise RaftctlError(f"cannot read statefulset/{STATEFULSET}: {err}") from err

    def _pvc(self, replica_id: str) -> str:
        return f"data-{replica_id}"

    def _pvc_exists(self, replica_id: str) -> bool:
        out = self._run("get", "pvc", self._pvc(replica_id), "--ignore-not-found", "-o", "name")
        return bool(out.strip())

    def _wait(self, pred: object, what: str) -> None:
        assert callable(pred)
        deadline = time.monotonic() + self.wait_s
        while not pred():
            if time.monotonic() >= deadline:
                raise RaftctlError(f"timed out after {self.wait_s:.0f}s waiting for {what}")
            time.sleep(1.0)

    def _pod_names(self, running_only: bool = False) -> set[str]:
        return {
            p["metadata"]["name"]
            for p in self.b.pods()
            if not running_only or p.get("status", {}).get("phase") == "Running"
        }

    def next_id(self, conf: Config) -> str:
        self._removed = conf.removed
        return f"{STATEFULSET}-{self.count()}"

    def start_replica(self, replica_id: str) -> tuple[str, str]:
        n = self.count()
        if replica_id != f"{STATEFULSET}-{n}":
            raise RaftctlError(f"the StatefulSet's next pod is {STATEFULSET}-{n}, not {replica_id}")
        if replica_id in self._removed and self._pvc_exists(replica_id):
            raise RaftctlError(
                f"{replica_id} was removed from the cluster and PVC {self._pvc(replica_id)} still "
                f"holds its old data: delete it (kubectl delete pvc {self._pvc(replica_id)}) "
                "before scaling up again"
            )
        self._run("scale", "statefulset", STATEFULSET, f"--replicas={n + 1}")
        self._wait(
            lambda: replica_id in self._pod_names(running_only=True), f"pod {replica_id} to run"
        )
        ns = self.b.s.namespace
        member = f"http://{replica_id}.{HEADLESS_SERVICE}.{ns}.svc.cluster.local:{NODE_PORT}"
        # raftctl reaches pods through its own kubectl port-forward (never the API server's
        # proxy, whose path rules would rewrite keys): one for the new pod too
        probe = self.b.forwards.url(replica_id)
        self.b.forwards.ensure([replica_id])
        return member, probe

    def stop_replicas(self, replica_ids: list[str], *, keep_data: bool) -> list[str]:
        if not replica_ids:
            return []
        n = self.count()
        keep = n - len(replica_ids)
        top = {f"{STATEFULSET}-{i}" for i in range(keep, n)}
        if set(replica_ids) != top:
            raise RaftctlError(
                f"a StatefulSet frees its highest ordinals ({', '.join(sorted(top))}), not "
                f"{', '.join(sorted(replica_ids))}: they were removed from the cluster, but "
                "their pods keep running; remove the highest ordinals instead"
            )
        self._run("scale", "statefulset", STATEFULSET, f"--replicas={keep}")
        self._wait(lambda: not (top & self._pod_names()), f"pods {', '.join(sorted(top))} to go")
        done = [f"statefulset/{STATEFULSET} scaled to {keep}"]
        if not keep_data:
            pvcs = [self._pvc(r) for r in sorted(top)]
            self._run("delete", "pvc", *pvcs, "--ignore-not-found")
            done.append(f"deleted PVC {', '.join(pvcs)}")
        else:
            done.append("PVCs kept (a later scale-up needs them deleted first)")
        return done

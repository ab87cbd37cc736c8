"""`raftctl scale --target kind`'s StatefulSet side (raftctl/backends/kindscale.py): the exact
kubectl command lines, recorded by a fake runner that plays the StatefulSet (no Kubernetes here).
The membership side (learner, catch-up, promote, remove) is the same code as the local target's,
tested on real processes in tests/cli/test_local_scale.py."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from raftctl.backends.kind import KindBackend, KindSettings
from raftctl.backends.kindscale import KindPool
from raftctl.errors import RaftctlError
from raftctl.membership import Config
from raftctl.shell import Completed

CTX = ["kubectl", "--context", "kind-kind", "--namespace", "default"]


@dataclass
class FakeStatefulSet:
    """Answers kubectl like a StatefulSet with ``replicas`` pods and their PVCs would."""

    replicas: int = 3
    pvcs: set[str] = field(default_factory=lambda: {f"data-raft-{i}" for i in range(3)})
    calls: list[list[str]] = field(default_factory=list)

    def which(self, tool: str) -> str | None:
        return f"/usr/bin/{tool}"

    def run(self, argv: Sequence[str], **kw: Any) -> Completed:
        argv = list(argv)
        self.calls.append(argv)
        args = argv[len(CTX) :]
        out = ""
        if args[:3] == ["get", "statefulset", "raft"]:
            out = json.dumps({"spec": {"replicas": self.replicas}})
        elif args[:2] == ["get", "pods"]:
            pods = [
                {"metadata": {"name": f"raft-{i}"}, "status": {"phase": "Running"}}
                for i in range(self.replicas)
            ]
            out = json.dumps({"items": pods})
        elif args[:2] == ["get", "pvc"]:
            out = f"persistentvolumeclaim/{args[2]}\n" if args[2] in self.pvcs else ""
        elif args[:3] == ["scale", "statefulset", "raft"]:
            self.replicas = int(args[3].split("=")[1])
            self.pvcs |= {f"data-raft-{i}" for i in range(self.replicas)}
        elif args[:2] == ["delete", "pvc"]:
            self.pvcs -= set(args[2:])
        return Completed(tuple(argv), 0, out, "")


def _pool(sts: FakeStatefulSet) -> KindPool:
    backend = KindBackend(
        KindSettings(release="raftkv", namespace="default", cluster="kind", tag="dev"), sts
    )  # type: ignore[arg-type]
    backend.forwards = _Forwards()  # type: ignore[assignment]
    return KindPool(backend, wait_s=5)


class _Forwards:
    """Stands in for raftctl's kubectl port-forwards (tested in test_kind_target.py)."""

    def __init__(self) -> None:
        self.ensured: list[str] = []

    def url(self, pod: str) -> str:
        return f"http://127.0.0.1:4{pod[-1]}000"

    def ensure(self, pods: list[str]) -> None:
        self.ensured += pods


def _conf(removed: tuple[str, ...] = ()) -> Config:
    return Config(
        members=tuple({"id": f"raft-{i}", "role": "voter"} for i in range(3)),
        config_index=5,
        removed=removed,
    )


def test_scale_up_adds_the_next_ordinal_and_reaches_it_through_a_port_forward() -> None:
    sts = FakeStatefulSet()
    pool = _pool(sts)
    assert pool.next_id(_conf()) == "raft-3"
    member, probe = pool.start_replica("raft-3")
    assert member == "http://raft-3.raft-service.default.svc.cluster.local:8000"
    assert probe == "http://127.0.0.1:43000"
    assert pool.b.forwards.ensured == ["raft-3"]  # type: ignore[attr-defined]
    assert [*CTX, "scale", "statefulset", "raft", "--replicas=4"] in sts.calls
    assert sts.replicas == 4


def test_scale_down_frees_the_highest_ordinals_and_their_pvcs() -> None:
    sts = FakeStatefulSet(replicas=5, pvcs={f"data-raft-{i}" for i in range(5)})
    pool = _pool(sts)
    with pytest.raises(RaftctlError, match="highest ordinals"):
        pool.stop_replicas(["raft-1", "raft-4"], keep_data=False)
    done = pool.stop_replicas(["raft-4", "raft-3"], keep_data=False)
    assert [*CTX, "scale", "statefulset", "raft", "--replicas=3"] in sts.calls
    assert [*CTX, "delete", "pvc", "data-raft-3", "data-raft-4", "--ignore-not-found"] in sts.calls
    assert sts.pvcs == {"data-raft-0", "data-raft-1", "data-raft-2"}
    assert done[0] == "statefulset/raft scaled to 3"
    sts2 = FakeStatefulSet(replicas=4, pvcs={f"data-raft-{i}" for i in range(4)})
    _pool(sts2).stop_replicas(["raft-3"], keep_data=True)  # --keep-pvcs
    assert "data-raft-3" in sts2.pvcs and not any("delete" in c for c in sts2.calls)


def test_a_removed_ordinal_comes_back_only_on_an_empty_disk() -> None:
    sts = FakeStatefulSet(pvcs={f"data-raft-{i}" for i in range(4)})  # raft-3's PVC was kept
    pool = _pool(sts)
    assert pool.next_id(_conf(removed=("raft-3",))) == "raft-3"
    with pytest.raises(RaftctlError, match="kubectl delete pvc data-raft-3"):
        pool.start_replica("raft-3")
    assert sts.replicas == 3  # nothing was scaled
    sts.pvcs.discard("data-raft-3")
    pool.start_replica("raft-3")
    assert sts.replicas == 4

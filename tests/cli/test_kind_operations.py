"""`raftctl snapshot restore` and `raftctl recover` on the kind target: the exact kubectl/helm
command lines (recorded by a fake runner; no Kubernetes here), real nodes for the leader wait."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from raftctl import options
from raftctl.backends import kind as kind_module
from raftctl.kind_ops import SECRET_LIMIT
from raftctl.shell import Completed
from raftkv.backup import build_header, iter_backup
from raftkv.kv import Command, KVStateMachine, Op, encode_command
from tests.cli.realnodes import RealCluster
from tests.cli.test_kind_target import CTX, SELECTOR, RecordingRunner, helm_install, invoke


def _backup(path: Path, pad: int = 0) -> Path:
    """A valid backup; ``pad``: hold a value of that many bytes (a big file that decodes)."""
    sm = KVStateMachine()
    keys = 0
    if pad:
        with sm.lock:
            sm.apply(1, 1, encode_command(Command(op=Op.PUT, key="big", value="v" * pad)))
        keys = 1
    blob = sm.snapshot()
    header = build_header(
        index=9,
        term=2,
        keys=keys,
        data_bytes=len(blob),
        cluster_id="old",
        node="raft-0",
        created="",
    )
    path.write_bytes(b"".join(iter_backup(header, blob)))
    return path


@dataclass
class OpsRunner(RecordingRunner):
    pvcs: list[str] = field(default_factory=list)
    logs: dict[str, str] = field(default_factory=dict)
    copy_from: Path | None = None

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
        if args[0] == "kubectl" and args[5:7] == ["get", "pvc"]:
            self.calls.append(args)
            return Completed(tuple(args), 0, "\n".join(self.pvcs) + "\n", "")
        if args[0] == "kubectl" and args[5] == "logs":
            self.calls.append(args)
            return Completed(tuple(args), 0, self.logs.get(args[6], "ok\n"), "")
        if args[0] == "kubectl" and args[5] == "cp":
            self.calls.append(args)
            assert self.copy_from is not None
            Path(args[7]).write_bytes(self.copy_from.read_bytes())
            return Completed(tuple(args), 0, "", "")
        if args[0] == "kubectl" and args[5:7] == ["delete", "pod"]:
            self.calls.append(args)  # one-off pods: not a fault on a node
            return Completed(tuple(args), 0, "", "")
        return super().run(argv, check=check, stream=stream, timeout=timeout, cwd=cwd)


@pytest.fixture
def kind(
    nodes: RealCluster, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[OpsRunner]:
    rec = OpsRunner(nodes)
    monkeypatch.setattr(options, "runner_factory", lambda: rec)
    monkeypatch.setattr(kind_module, "DOWN_POLL_S", 0.01)
    monkeypatch.delenv("RAFTCTL_ENDPOINTS", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    try:
        yield rec
    finally:
        for proc in rec.spawned:
            proc.terminate()


def _helm_restore(cluster_id: str, replicas: int = 3) -> list[str]:
    return helm_install(
        "dev",
        "--set",
        f"replicaCount={replicas}",
        "--set",
        "restore.enabled=true",
        "--set",
        "restore.secretName=raftkv-restore",
        "--set",
        f"restore.clusterId={cluster_id}",
    )


def test_restore_puts_the_file_in_a_secret_and_installs_with_restore_values(
    kind: OpsRunner,
    tmp_path: Path,
) -> None:
    backup = _backup(tmp_path / "b.snap")
    code, out, err = invoke("snapshot", "restore", str(backup), "-o", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["index"] == 9 and doc["cluster_id"] != "old" and doc["leader"] == "raft-0"
    ops = [
        c
        for c in kind.calls
        if c[:3] != ["docker", "image", "inspect"] and c[5:7] != ["get", "nodes"]
    ]
    assert ops[:5] == [
        ["kubectl", *CTX, "get", "pvc", "-l", "app.kubernetes.io/instance=raftkv", "-o", "name"],
        ["kubectl", *CTX, "get", "namespace", "default"],
        ["kubectl", *CTX, "delete", "secret", "raftkv-restore", "--ignore-not-found"],
        [
            "kubectl",
            *CTX,
            "create",
            "secret",
            "generic",
            "raftkv-restore",
            f"--from-file=snapshot={backup}",
        ],
        _helm_restore(doc["cluster_id"]),
    ]


def test_restore_refuses_a_release_with_data_a_big_file_and_a_damaged_one(
    kind: OpsRunner,
    tmp_path: Path,
) -> None:
    kind.pvcs = ["persistentvolumeclaim/data-raft-0"]
    code, _, err = invoke("snapshot", "restore", str(_backup(tmp_path / "b.snap")))
    assert code == 2 and "already has data volumes" in err
    kind.pvcs = []
    code, _, err = invoke("snapshot", "restore", str(_backup(tmp_path / "big", SECRET_LIMIT)))
    assert code == 2 and "Secret" in err and err.count("\n") == 1
    bad = tmp_path / "bad"
    bad.write_bytes(_backup(tmp_path / "b2").read_bytes()[:-1])
    code, _, err = invoke("snapshot", "restore", str(bad))
    assert code == 1 and "truncated" in err
    assert not any("helm" in c[0] for c in kind.calls)


def _one_off_spec(call: list[str]) -> dict[str, object]:
    override = next(a for a in call if a.startswith("--overrides="))
    return dict(json.loads(override.split("=", 1)[1]))


def test_recover_runs_raftkv_recover_on_the_survivors_volume_then_scales_to_one(
    kind: OpsRunner,
) -> None:
    kind.pvcs = [f"persistentvolumeclaim/data-raft-{i}" for i in range(3)]
    code, out, err = invoke("recover", "--from", "raft-0", "--yes", "-o", "json")
    assert code == 0, err
    assert json.loads(out)["replicas"] == ["raft-0"]
    cmds = [c[5:] for c in kind.calls if c[0] == "kubectl" and c[5] != "get"]
    assert cmds[:2] == [
        ["scale", "statefulset/raft", "--replicas=0"],
        ["wait", "--for=delete", "pod", "-l", SELECTOR, "--timeout=180s"],
    ]
    run = next(c for c in kind.calls if c[5] == "run")
    spec = _one_off_spec(run)["spec"]
    assert isinstance(spec, dict)
    assert spec["containers"][0]["args"] == ["recover", "--data-dir", "/data", "--id", "raft-0"]
    assert spec["volumes"][0]["persistentVolumeClaim"] == {"claimName": "data-raft-0"}
    assert cmds[-2:] == [
        ["scale", "statefulset/raft", "--replicas=1"],
        ["rollout", "status", "statefulset/raft", "--timeout=300s"],
    ]


def test_recover_grow_copies_a_verified_backup_out_before_deleting_volumes(
    kind: OpsRunner,
    tmp_path: Path,
) -> None:
    kind.pvcs = ["persistentvolumeclaim/data-raft-0"]
    kind.logs["raft-0-check"] = "data-dir: /data\ncluster-id: abc123\nstatus: OK\n"
    kind.copy_from = _backup(tmp_path / "from-pod.snap")
    code, out, err = invoke("recover", "--from", "raft-0", "--replicas", "3", "--yes", "-o", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["cluster_id"] == "abc123" and doc["index"] == 9
    verbs = [c[5] for c in kind.calls if c[0] == "kubectl"]
    assert verbs.index("cp") < verbs.index("create")
    delete_pvc = [
        "kubectl",
        *CTX,
        "delete",
        "pvc",
        "-l",
        "app.kubernetes.io/instance=raftkv",
        "--wait=true",
    ]
    assert kind.calls.index(delete_pvc) > next(
        i for i, c in enumerate(kind.calls) if c[0] == "kubectl" and c[5] == "cp"
    )
    uninstall = next(i for i, c in enumerate(kind.calls) if c[:2] == ["helm", "uninstall"])
    assert uninstall < kind.calls.index(delete_pvc) < kind.calls.index(_helm_restore("abc123"))
    assert Path(doc["seeded_from"]).read_bytes() == kind.copy_from.read_bytes()


def test_recover_grow_keeps_the_volumes_when_the_copied_backup_is_damaged(
    kind: OpsRunner,
    tmp_path: Path,
) -> None:
    kind.pvcs = ["persistentvolumeclaim/data-raft-0"]
    kind.logs["raft-0-check"] = "cluster-id: abc123\n"
    damaged = tmp_path / "damaged"
    damaged.write_bytes(_backup(tmp_path / "x").read_bytes()[:-3])
    kind.copy_from = damaged
    code, _, err = invoke("recover", "--from", "raft-0", "--replicas", "3", "--yes")
    assert code == 1 and "truncated" in err
    assert not any(c[5:7] == ["delete", "pvc"] for c in kind.calls if c[0] == "kubectl")

"""restore.* and node.clusterId (templates/_restore.tpl): the init container that seeds empty
volumes from a backup Secret, fed to the node's own restore command exactly as the pod runs it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from raftkv.backup import build_header, iter_backup
from raftkv.cli import main
from raftkv.config import load_config
from raftkv.kv import KVStateMachine
from raftkv.storage import Storage
from raftkv.storage.identity import read_cluster_id
from tests.chart.chart_render import Rendered, render, resolve_env

RESTORE = {"restore": {"enabled": True, "secretName": "raftkv-restore"}}


def _init(r: Rendered) -> dict[str, Any]:
    spec = r.statefulset()["spec"]["template"]["spec"]
    (init,) = spec["initContainers"]
    return dict(init)


def test_no_init_container_and_no_cluster_id_env_by_default(chart: Any) -> None:
    r = render(chart)
    spec = r.statefulset()["spec"]["template"]["spec"]
    assert "initContainers" not in spec
    assert "RAFTKV_CLUSTER_ID" not in r.node_env()
    assert [v["name"] for v in spec["volumes"]] == ["tmp"]


def test_cluster_id_value_reaches_the_node(chart: Any) -> None:
    env = render(chart, {"node": {"clusterId": "prod-kv"}}).node_env()
    assert env["RAFTKV_CLUSTER_ID"]["value"] == "prod-kv"


def test_restore_init_container_mounts_the_secret_and_the_volume(chart: Any) -> None:
    r = render(chart, {**RESTORE, "restore": {**RESTORE["restore"], "clusterId": "new-1"}})
    init = _init(r)
    assert init["command"] == ["raftkv"]
    assert init["args"] == [
        "restore",
        "--if-empty",
        "--snapshot",
        "/restore/snapshot",
        "--cluster-id",
        "new-1",
    ]
    mounts = {m["name"]: m for m in init["volumeMounts"]}
    assert mounts["data"]["mountPath"] == "/data" and mounts["restore"]["readOnly"] is True
    vols = {v["name"]: v for v in r.statefulset()["spec"]["template"]["spec"]["volumes"]}
    assert vols["restore"]["secret"] == {
        "secretName": "raftkv-restore",
        "items": [{"key": "snapshot", "path": "snapshot"}],
    }
    assert init["image"] == r.node_container()["image"]
    assert init["securityContext"] == r.node_container()["securityContext"]


@pytest.mark.parametrize(
    "values,error",
    [
        ({"restore": {"enabled": True}}, "restore.secretName"),
        ({**RESTORE, "persistence": {"enabled": False}}, "persistence.enabled"),
    ],
)
def test_restore_values_are_validated(chart: Any, values: dict[str, Any], error: str) -> None:
    with pytest.raises(Exception) as err:
        render(chart, values)
    assert error in str(err.value)


def test_schema_rejects_a_bad_cluster_id(chart: Any) -> None:
    with pytest.raises(Exception) as err:
        render(chart, {"node": {"clusterId": "has spaces"}})
    assert "clusterId" in str(err.value)


def test_the_init_container_seeds_the_voter_set_the_node_runs_with(
    chart: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    r = render(chart, RESTORE, namespace="kv")
    sm = KVStateMachine()
    blob = sm.snapshot()
    header = build_header(
        index=7, term=3, keys=0, data_bytes=len(blob), cluster_id="old", node="raft-0", created=""
    )
    backup = tmp_path / "snapshot"
    backup.write_bytes(b"".join(iter_backup(header, blob)))
    ids = set()
    for i in range(3):
        pod = f"raft-{i}"
        env = resolve_env(_init(r)["env"], pod_name=pod, namespace="kv", secrets={})
        env["RAFTKV_DATA_DIR"] = str(tmp_path / pod)
        for k in [k for k in os.environ if k.startswith("RAFTKV_")]:
            monkeypatch.delenv(k)
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        args = [str(backup) if a == "/restore/snapshot" else a for a in _init(r)["args"]]
        assert main(args) == 0, capsys.readouterr().err
        node_env = resolve_env(
            r.node_container()["env"],
            pod_name=pod,
            namespace="kv",
            secrets={("raftkv-token", "token"): "t"},
        )
        cfg = load_config({}, {**node_env, "RAFTKV_PORT": "8000"}, hostname=pod)
        with Storage.open(str(tmp_path / pod)) as st:
            snap = st.recovered.snapshot
            assert snap is not None and snap.meta.index == 7
            assert snap.meta.members == cfg.peer_ids
        ids.add(read_cluster_id(str(tmp_path / pod)))
    assert len(ids) == 1 and "old" not in ids  # one NEW id, agreed by every pod

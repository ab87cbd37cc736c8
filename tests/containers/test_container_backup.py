"""Backup and restore with the real image, run as the chart runs it (docker_cluster.py).

Cluster A (three node containers, the rendered StatefulSet's environment and securityContext)
takes writes; a backup is streamed from it with ``GET /v1/admin/snapshot`` (cluster token). A new
cluster B is then created the way ``restore.enabled`` does it on Kubernetes: for every pod, the
rendered init container (``raftkv restore --if-empty``, its env, the backup file mounted read-only
at /restore/snapshot) runs on the pod's fresh volume before the node starts. B must hold exactly
A's data, under a new cluster id, and the init container must leave a volume with data alone.
"""

from __future__ import annotations

import base64
import io
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from raftkv.backup import verify_backup
from tests.chart.chart_render import Rendered, load_chart, render
from tests.containers.docker_cluster import (
    _POD_RUN_FLAGS,
    DockerCluster,
    Node,
    docker,
    http,
    wait_until,
)
from tests.containers.test_container_cluster import ELECTION_S, image  # noqa: F401 - the built image fixture

pytestmark = pytest.mark.containers

TOKEN = f"backup-test-{secrets.token_hex(12)}"


def _render(values: dict[str, Any]) -> Rendered:
    chart = load_chart()
    try:
        return render(chart, {"auth": {"token": TOKEN}, **values})
    finally:
        chart.close()


def _secrets(r: Rendered) -> dict[tuple[str, str], str]:
    return {
        (s["metadata"]["name"], key): base64.b64decode(value).decode()
        for s in r.find("Secret")
        for key, value in s["data"].items()
    }


class SeededCluster(DockerCluster):
    """A DockerCluster whose volumes are seeded by the chart's restore init container first."""

    init: dict[str, Any]
    backup: Path
    init_logs: dict[str, str]

    def start_node(self, i: int) -> Node:
        from tests.chart.chart_render import resolve_env

        pod = f"{self.statefulset}-{i}"
        volume = f"{self.prefix}-data-{pod}"
        docker("volume", "create", "--label", "raftkv-test=1", volume)
        self._created_volumes.append(volume)
        env = resolve_env(
            self.init["env"], pod_name=pod, namespace=self.namespace, secrets=self.secrets
        )
        args = [
            "run",
            "--rm",
            "--network",
            "none",
            "--hostname",
            pod,
            *_POD_RUN_FLAGS,
            "-v",
            f"{volume}:/data",
            "-v",
            f"{self.backup}:/restore/snapshot:ro",
            "--entrypoint",
            self.init["command"][0],
        ]
        for key, value in env.items():
            args += ["-e", f"{key}={value}"]
        out = docker(*args, self.image, *self.init["args"], timeout=120)
        self.init_logs[pod] = out.stdout + out.stderr
        return super().start_node(i)


def _leader(c: DockerCluster) -> Node:
    found = wait_until(lambda: c.leader(), ELECTION_S, "a leader")
    return found[0]


def _items(node: Node) -> dict[str, str]:
    reply = http("GET", f"{node.url}/v1/kv?prefix=&limit=10000&consistency=stale", timeout=10)
    assert reply.status == 200, reply
    return {it["key"]: it["value"] for it in reply.body["items"]}


@pytest.fixture
def clusters() -> Iterator[list[DockerCluster]]:
    made: list[DockerCluster] = []
    try:
        yield made
    finally:
        for c in made:
            c.close()


def test_backup_from_containers_restores_into_new_volumes_via_the_init_container(
    image: dict[str, Any],  # noqa: F811 - the built image fixture
    clusters: list[DockerCluster],
    tmp_path: Path,
) -> None:
    plain = _render({})
    a = DockerCluster(
        image=image["tag"], node_env=plain.node_container()["env"], secrets=_secrets(plain)
    )
    clusters.append(a)
    a.start()
    leader = _leader(a)
    for n in range(30):
        wait_until(
            lambda n=n: (
                http("PUT", f"{leader.url}/v1/kv/b/{n}", f"v{n}".encode(), timeout=6).status == 200
            ),
            30,
            f"PUT b/{n}",
        )
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert http("GET", f"{leader.url}/v1/admin/snapshot", timeout=10).status == 401
    follower = next(n for n in a.nodes if n is not leader)
    import urllib.request

    req = urllib.request.Request(f"{follower.url}/v1/admin/snapshot", headers=auth)
    with urllib.request.urlopen(req, timeout=30) as resp:
        blob = resp.read()
        assert resp.headers["X-Raftkv-Snapshot-Keys"] == "30"
    info, _ = verify_backup(io.BytesIO(blob))
    a_id = a.status(leader)["cluster_id"]  # type: ignore[index]
    assert info.keys == 30 and info.cluster_id == a_id
    backup = tmp_path / "backup.snapshot"
    backup.write_bytes(blob)
    backup.chmod(0o644)
    expected = _items(leader)

    restored = _render({"restore": {"enabled": True, "secretName": "raftkv-restore"}})
    sts = restored.statefulset()["spec"]["template"]["spec"]
    b = SeededCluster(
        image=image["tag"], node_env=restored.node_container()["env"], secrets=_secrets(restored)
    )
    b.init = sts["initContainers"][0]
    b.backup = backup
    b.init_logs = {}
    clusters.append(b)
    b.start()
    assert all("restored" in out for out in b.init_logs.values()), b.init_logs
    _leader(b)
    for node in b.nodes:
        wait_until(lambda node=node: _items(node) == expected, 30, f"{node.pod} has A's data")
    ids = {b.status(n)["cluster_id"] for n in b.nodes}  # type: ignore[index]
    assert len(ids) == 1 and a_id not in ids

    # the init container runs before every start: on a volume with data it must do nothing
    node = b.nodes[0]
    b.stop(node)
    env_init = b.init
    out = docker(
        "run",
        "--rm",
        "--network",
        "none",
        *_POD_RUN_FLAGS,
        "-v",
        f"{b.prefix}-data-{node.pod}:/data",
        "-v",
        f"{backup}:/restore/snapshot:ro",
        "-e",
        f"RAFTKV_ID={node.pod}",
        "-e",
        "RAFTKV_DATA_DIR=/data",
        "-e",
        "RAFTKV_REPLICAS=3",
        "--entrypoint",
        "raftkv",
        b.image,
        *env_init["args"],
    ).stdout
    assert out.startswith("skipped")
    b.start_again(node)
    wait_until(lambda: b.status(node) is not None, 60, "restarted node serving")
    leader_b = _leader(b)
    assert http("PUT", f"{leader_b.url}/v1/kv/after", b"restore", timeout=10).status == 200

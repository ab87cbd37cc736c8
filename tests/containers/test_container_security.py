"""Container tier, issue 15: the chart's TLS + mutual-TLS pods as real containers, the chart's
client Pod verifying over HTTPS, and the cluster token rotated through two rolling updates of the
rendered pod spec (each step: pods replaced highest ordinal first, each Ready before the next)."""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import secrets
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from raftctl.certs import make_ca, make_cert
from tests.chart.chart_render import Rendered, load_chart, render, resolve_env
from tests.containers.docker_cluster import BASE_IMAGE, DockerCluster, Node, docker, wait_until

ROOT = Path(__file__).resolve().parents[2]
OLD = f"old-token-{secrets.token_hex(8)}"
NEW = f"new-token-{secrets.token_hex(8)}"
pytestmark = pytest.mark.containers


def _render(tokens: list[str]) -> Rendered:
    chart = load_chart()
    try:
        return render(
            chart,
            {"auth": {"tokens": tokens}, "tls": {"enabled": True, "existingSecret": "raftkv-tls"}},
        )
    finally:
        chart.close()


def _secrets(r: Rendered) -> dict[tuple[str, str], str]:
    return {
        (s["metadata"]["name"], k): base64.b64decode(v).decode()
        for s in r.find("Secret")
        for k, v in s["data"].items()
    }


@pytest.fixture(scope="module")
def image(container_tier: None) -> Iterator[str]:
    tag = f"raftkv-test:{secrets.token_hex(4)}"
    # explicit: the offline base (CI has no registry) and this interpreter (it has pip)
    proc = subprocess.run(
        [str(ROOT / "images" / "build.sh"), "--base", BASE_IMAGE, "--python", sys.executable, tag],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ},
    )
    assert proc.returncode == 0, f"images/build.sh failed:\n{proc.stdout}\n{proc.stderr[-3000:]}"
    try:
        yield tag
    finally:
        docker("rmi", "-f", tag, check=False)


@pytest.fixture(scope="module")
def tls_cluster(image: str) -> Iterator[tuple[DockerCluster, ssl.SSLContext, ssl.SSLContext]]:
    rendered = _render([OLD])
    certs = Path(tempfile.mkdtemp(prefix="raftkv-tls-"))
    c = DockerCluster(
        image=image, node_env=rendered.node_container()["env"], secrets=_secrets(rendered)
    )
    try:
        c.create_network()
        ca = make_ca(certs / "ca")
        hosts = ["localhost", "127.0.0.1", "raftkv", "raft-service"]
        for i in range(c.replicas):
            hosts += [
                f"raft-{i}.raft-service",
                f"raft-{i}.raft-service.default.svc.cluster.local",
                f"{c.subnet}.{10 + i}",
            ]
        cert, key = make_cert(ca, certs / "node", "node", hosts)
        mount = certs / "mount"  # what the kubelet mounts from Secret raftkv-tls
        mount.mkdir()
        shutil.copy(cert, mount / "tls.crt")
        shutil.copy(key, mount / "tls.key")
        shutil.copy(ca.cert_path, mount / "ca.crt")
        for f in mount.iterdir():
            f.chmod(0o644)  # the container's uid 10001 reads them (the chart: fsGroup + 0440)
        mount.chmod(0o755)
        certs.chmod(0o755)
        c.extra_run_args = ["-v", f"{mount}:/tls:ro"]
        for i in range(c.replicas):
            c.start_node(i)
        operator = ssl.create_default_context(cafile=str(ca.cert_path))  # mTLS: admin needs a cert
        operator.load_cert_chain(*make_cert(ca, certs / "operator", "operator", ["operator"]))
        yield c, ssl.create_default_context(cafile=str(ca.cert_path)), operator
    finally:
        c.close()
        shutil.rmtree(certs, ignore_errors=True)


def _https(
    ctx: ssl.SSLContext,
    node: Node,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    conn = http.client.HTTPSConnection(node.ip, 8000, timeout=5, context=ctx)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, json.loads(raw) if raw else None
    finally:
        conn.close()


def _leader(c: DockerCluster, ctx: ssl.SSLContext) -> Node | None:
    try:
        statuses = {n.pod: _https(ctx, n, "GET", "/v1/status")[1] for n in c.nodes}
    except (OSError, ValueError):
        return None
    leaders = {s["leader"] for s in statuses.values()}
    if len(leaders) != 1 or None in leaders:
        return None
    (lid,) = leaders
    return c.node(lid) if statuses[lid]["role"] == "leader" else None


def _ready(c: DockerCluster, ctx: ssl.SSLContext, node: Node) -> bool:
    try:
        return _https(ctx, node, "GET", "/readyz")[0] == 200
    except (OSError, ValueError):
        return False


def _put_everywhere(c: DockerCluster, ctx: ssl.SSLContext, key: str) -> None:
    def put() -> bool:
        leader = _leader(c, ctx)
        return bool(leader) and _https(ctx, leader, "PUT", f"/v1/kv/{key}", b"v")[0] == 200

    wait_until(put, 60, f"PUT {key}")
    for n in c.nodes:
        wait_until(
            lambda n=n: _https(ctx, n, "GET", f"/v1/kv/{key}?consistency=stale")[0] == 200,
            30,
            f"{n.pod} has {key}",
        )


def test_tls_and_mtls_cluster_serves_the_client_pod(
    tls_cluster: tuple[DockerCluster, ssl.SSLContext, ssl.SSLContext],
) -> None:
    c, ctx, _ = tls_cluster
    wait_until(lambda: _leader(c, ctx), 90, "a leader over mutual TLS")
    _put_everywhere(c, ctx, "tls-first")
    # the Raft RPC refuses a caller without a client certificate (peers present theirs)
    status, body = _https(ctx, c.nodes[0], "POST", "/raft/v1/messages", b'{"messages": []}')
    assert status == 401 and "certificate" in body["error"]
    # the chart's client Pod: wait-ready over HTTPS, then raftctl verify with the CA
    r = _render([OLD])
    spec = r.client_pod()["spec"]
    (init,) = spec["initContainers"]
    (main,) = spec["containers"]
    wait = c.run_client(init["command"], {}, timeout=120)
    assert wait.returncode == 0, wait.stdout + wait.stderr
    env = resolve_env(main["env"], pod_name="client", namespace="default", secrets=_secrets(r))
    verify = c.run_client(main["command"], env, timeout=240)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert re.search(r"https://raft-0\.raft-service:8000", " ".join(main["command"]))


def test_token_rotation_during_rolling_updates(
    tls_cluster: tuple[DockerCluster, ssl.SSLContext, ssl.SSLContext],
) -> None:
    c, ctx, operator = tls_cluster
    wait_until(lambda: _leader(c, ctx), 90, "a leader before the rotation")
    for step, tokens in (("accept-new", [OLD, NEW]), ("send-new", [NEW, OLD])):
        r = _render(tokens)
        sec = _secrets(r)
        assert sec[("raftkv-token", "token")] == ",".join(tokens)
        began = time.monotonic()
        for node in reversed(c.nodes):  # StatefulSet order: highest ordinal first
            env = resolve_env(
                r.node_container()["env"], pod_name=node.pod, namespace="default", secrets=sec
            )
            c.replace_node(node, env)
            wait_until(
                lambda node=node: _ready(c, ctx, node), 90, f"{node.pod} Ready in step {step}"
            )
        _put_everywhere(c, ctx, f"rotation-{step}")
        print(
            f"\nstep {step}: rolling update of {c.replicas} pods in "
            f"{time.monotonic() - began:.1f}s, every pod Ready in turn"
        )
    leader = _leader(c, ctx)
    assert leader is not None
    # operators use the new token now; the old one still works until the cleanup step
    for token, expect in ((NEW, 200), (OLD, 200), ("never-issued-token", 401)):
        status, body = _https(
            operator,
            leader,
            "POST",
            "/v1/admin/snapshot",
            b"",
            {"Authorization": f"Bearer {token}"},
        )
        assert status == expect, (token, status, body)
    logs = "".join(c.logs(n, tail=400) for n in c.nodes)
    assert "send-rejected status=401" not in logs, "a pod sent a token another pod refused"

"""`raftctl up --tls` on the local target: a throwaway CA, HTTPS + mutual TLS between real nodes,
and raftctl trusting the cluster's CA (automatically for the local target, `--cacert` for
`--endpoints`)."""

from __future__ import annotations

import json
import ssl
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.localcluster import Local

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Local]:
    cluster = Local.new(tmp_path_factory.mktemp("raftctl-tls"))
    try:
        res = cluster.sh("up", "--tls", "--timeout", "90")
        assert res.returncode == 0, res.stderr + res.stdout
        yield cluster
    finally:
        cluster.teardown()


def test_up_tls_serves_https_with_mutual_tls(local: Local) -> None:
    status = local.json("status")
    assert status["healthy"], status
    urls = [r["url"] for r in status["replicas"]]
    assert len(urls) == 3
    spec = local.backend.spec()
    assert spec is not None and spec.tls_dir
    ca = Path(spec.tls_dir) / "ca.pem"
    assert ca.exists() and (Path(spec.tls_dir) / "raft-0-key.pem").stat().st_mode & 0o077 == 0
    assert all(u.startswith("https://") for u in urls), urls
    assert local.sh("put", "greeting", "hello").returncode == 0
    res = local.sh("get", "greeting")
    assert res.returncode == 0 and "hello" in res.stdout, res.stderr
    # what a user does with curl --cacert: HTTPS works with the CA, Raft RPC needs a client cert
    replica = spec.replicas[0]
    ctx = ssl.create_default_context(cafile=str(ca))
    with urllib.request.urlopen(f"https://127.0.0.1:{replica.port}/v1/status", context=ctx) as r:
        assert json.load(r)["id"] == "raft-0"
    req = urllib.request.Request(
        f"https://127.0.0.1:{replica.port}/raft/v1/messages",
        data=b'{"messages": []}',
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as ei:
        urllib.request.urlopen(req, context=ctx)
    assert ei.value.code == 401
    # --endpoints mode: --cacert makes raftctl trust the CA; without it, a one-line error
    endpoints = ",".join(f"https://127.0.0.1:{r.port}" for r in spec.replicas)
    ok = local.sh("--endpoints", endpoints, "--cacert", str(ca), "get", "greeting")
    assert ok.returncode == 0 and "hello" in ok.stdout, ok.stderr
    bad = local.sh("--endpoints", endpoints, "get", "greeting")
    assert bad.returncode != 0 and "Traceback" not in bad.stderr


def test_streaming_commands_trust_the_ca_too(local: Local, tmp_path: Path) -> None:
    """`watch` and `snapshot save` stream their bodies (requests, stream=True) with the same
    trust as every other request: the cluster's CA (local target), --cacert (endpoints)."""
    spec = local.backend.spec()
    assert spec is not None and spec.tls_dir
    ca = Path(spec.tls_dir) / "ca.pem"
    assert local.sh("put", "tls/a", "1").returncode == 0
    watched = local.sh(
        "watch", "tls/", "--from-index", "0", "--max-changes", "1", "--output", "json"
    )
    assert watched.returncode == 0, watched.stderr
    change = json.loads(watched.stdout.splitlines()[0])
    assert (change["key"], change["value"]) == ("tls/a", "1")
    saved = local.sh("snapshot", "save", str(tmp_path / "b.snap"), "--output", "json")
    assert saved.returncode == 0, saved.stderr
    assert json.loads(saved.stdout)["keys"] >= 1
    endpoints = ",".join(f"https://127.0.0.1:{r.port}" for r in spec.replicas)
    ok = local.sh(
        "--endpoints", endpoints, "--cacert", str(ca), "snapshot", "save", str(tmp_path / "c.snap")
    )
    assert ok.returncode == 0 and (tmp_path / "c.snap").stat().st_size > 0, ok.stderr
    bad = local.sh("--endpoints", endpoints, "snapshot", "save", str(tmp_path / "d.snap"))
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and not (tmp_path / "d.snap").exists()

"""`raftctl snapshot save|status|restore` and `raftctl recover` on the local target, against
real processes (two clusters per test, each torn down by its recorded identity)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.localcluster import Local

pytestmark = pytest.mark.integration


@pytest.fixture
def locals_(tmp_path: Path) -> Iterator[list[Local]]:
    made: list[Local] = []
    try:
        yield made
    finally:
        for c in made:
            c.teardown()


def _items(local: Local, *extra: str) -> dict[str, str]:
    out = local.json("list", "--limit", "10000", *extra)
    rows = out["items"] if isinstance(out, dict) else out
    return {r["key"]: r["value"] for r in rows}


def _node_items(local: Local) -> list[dict[str, str]]:
    """Each replica's own copy (stale reads straight from it)."""
    import http.client

    out = []
    for r in local.backend.replicas():
        host, port = r.url.rsplit(":", 1)
        conn = http.client.HTTPConnection(host.split("//")[1], int(port), timeout=5)
        conn.request("GET", "/v1/kv?prefix=&limit=10000&consistency=stale")
        body = json.loads(conn.getresponse().read())
        conn.close()
        out.append({it["key"]: it["value"] for it in body["items"]})
    return out


def test_save_status_restore_into_a_new_cluster(tmp_path: Path, locals_: list[Local]) -> None:
    a = Local.new(tmp_path / "state")
    locals_.append(a)
    assert a.sh("up", "--timeout", "90").returncode == 0
    for n in range(25):
        assert a.cli("put", f"k{n:02d}", f"v{n}").exit_code == 0
    backup = tmp_path / "b.snap"
    saved = a.json("snapshot", "save", str(backup))
    assert saved["keys"] == 25 and backup.stat().st_size == saved["size"]
    status = a.json("snapshot", "status", str(backup))
    assert status["checksum"] == saved["checksum"] and status["verified"] is True
    table = a.sh("snapshot", "status", str(backup))
    assert table.returncode == 0 and "checksum" in table.stdout and "25" in table.stdout

    bad = tmp_path / "bad.snap"
    bad.write_bytes(backup.read_bytes()[:-7])
    res = a.sh("snapshot", "status", str(bad))
    assert res.returncode == 1 and res.stderr.count("\n") == 1 and "truncated" in res.stderr

    b = Local.new(tmp_path / "state")
    locals_.append(b)
    res = b.sh("snapshot", "restore", str(bad))
    assert res.returncode == 1 and "truncated" in res.stderr and not (b.root / b.name).exists()
    res = b.sh("snapshot", "restore", str(backup), "-o", "json", timeout=180)
    assert res.returncode == 0, res.stderr
    restored = json.loads(res.stdout)
    assert restored["keys"] == 25 and restored["leader"]
    assert _items(b) == _items(a)
    assert all(n == _items(a) for n in _node_items(b))
    assert status["cluster_id"] and restored["cluster_id"] != status["cluster_id"]
    again = b.sh("snapshot", "restore", str(backup))
    assert again.returncode == 2 and "already exists" in again.stderr


def test_recover_from_one_replica_then_grow_back(tmp_path: Path, locals_: list[Local]) -> None:
    c = Local.new(tmp_path / "state")
    locals_.append(c)
    assert c.sh("up", "--timeout", "90").returncode == 0
    for n in range(30):
        assert c.cli("put", f"k{n:02d}", f"v{n}").exit_code == 0
    written = _items(c)
    assert c.cli("down").exit_code == 0
    data = c.root / c.name / "data"
    shutil.rmtree(data / "raft-1")  # two replicas gone for good
    shutil.rmtree(data / "raft-2")

    res = c.sh("recover", "--from", "raft-0", "--yes", "-o", "json", timeout=180)
    assert res.returncode == 0, res.stderr
    done = json.loads(res.stdout)
    assert done["replicas"] == ["raft-0"] and done["leader"] == "raft-0"
    assert _items(c) == written  # every write the survivor had applied
    assert c.cli("put", "after", "recover").exit_code == 0

    # grow back through the log: the lost ids were removed, the new members take new ids and
    # learn the cluster id from the leader
    res = c.sh("scale", "3", timeout=240)
    assert res.returncode == 0, res.stderr
    assert sorted(r.id for r in c.backend.replicas()) == ["raft-0", "raft-3", "raft-4"]
    want = {**written, "after": "recover"}
    assert _items(c) == want
    assert all(n == want for n in _node_items(c))

    # or rebuild raft-0..2, every member seeded from raft-0's whole log
    res = c.sh("recover", "--from", "raft-0", "--replicas", "3", "--yes", "-o", "json", timeout=240)
    assert res.returncode == 0, res.stderr
    grown = json.loads(res.stdout)
    assert grown["replicas"] == ["raft-0", "raft-1", "raft-2"]
    assert _items(c) == want
    assert all(n == want for n in _node_items(c))
    assert any(".before-grow-" in p for p in grown["moved_aside"])  # never deleted
    st = c.json("status")
    assert st["healthy"] is True and len(st["replicas"]) == 3

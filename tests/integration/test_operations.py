"""Day-2 operations on real ``raftkv serve`` processes: backup → restore into a new cluster,
cluster identity (two clusters on reused ports never talk), recovery from quorum loss."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from raftkv.backup import verify_backup
from tests.integration.cluster import LocalCluster, subprocess_env
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def clusters() -> Iterator[list[LocalCluster]]:
    made: list[LocalCluster] = []
    try:
        yield made
    finally:
        for c in made:
            c.close()


def raftkv(*args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "raftkv", *args],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def items(c: LocalCluster, i: int, *, stale: bool = True) -> dict[str, str]:
    q = "&consistency=stale" if stale else ""
    r = c.get(i, f"/v1/kv?prefix=&limit=10000{q}")
    assert r.status == 200, r
    return {it["key"]: it["value"] for it in r.json["items"]}


def save_backup(c: LocalCluster, i: int, path: Path) -> None:
    r = c.get(i, "/v1/admin/snapshot", timeout=30)
    assert r.status == 200, r
    path.write_bytes(r.body)


def restore_into(c: LocalCluster, backup: Path, *extra: str) -> None:
    for i in range(c.size):
        raftkv(
            "restore",
            "--data-dir",
            str(c.data_dir(i)),
            "--id",
            c.ids[i],
            "--snapshot",
            str(backup),
            "--peers",
            c.peers,
            *extra,
        )


def test_backup_restores_the_same_data_into_a_new_cluster_with_a_new_id(
    tmp_path: Path, clusters: list[LocalCluster]
) -> None:
    a = LocalCluster(tmp_path / "a", snapshot_every=20)
    clusters.append(a)
    (tmp_path / "a").mkdir()
    a.start()
    leader = a.wait_for_leader()
    for n in range(45):  # crosses two storage snapshots
        a.put_ok(n % 3, f"k{n:02d}", f"v{n}")
    assert a.request(leader, "DELETE", "/v1/kv/k00").status == 200
    follower = next(i for i in range(3) if i != leader)
    backup = tmp_path / "backup.snapshot"
    save_backup(a, follower, backup)  # relayed to the leader: linearizable
    info, _ = verify_backup(io.BytesIO(backup.read_bytes()))
    assert info.keys == 44 and info.cluster_id == a.status(0)["cluster_id"]
    expected = items(a, leader, stale=False)
    assert len(expected) == 44

    b = LocalCluster(tmp_path / "b")
    clusters.append(b)
    (tmp_path / "b").mkdir()
    restore_into(b, backup)
    b.start()
    b.wait_for_leader()
    ids = {b.status(i)["cluster_id"] for i in range(3)}
    assert len(ids) == 1 and info.cluster_id not in ids
    for i in range(3):
        wait_until(lambda i=i: items(b, i) == expected, 20, f"restored data on node {i}", b.logs)
    assert items(b, 0, stale=False) == expected
    r = b.put_ok(1, "after", "restore")
    assert r.json["index"] > info.index  # the new cluster continues after the backup's index


def test_two_clusters_on_reused_ports_never_talk(
    tmp_path: Path, clusters: list[LocalCluster]
) -> None:
    a = LocalCluster(tmp_path / "a")
    clusters.append(a)
    (tmp_path / "a").mkdir()
    a.start()
    a.wait_for_leader()
    a.put_ok(0, "x", "old")
    backup = tmp_path / "backup.snapshot"
    save_backup(a, 0, backup)
    a_id = a.status(0)["cluster_id"]
    wait_until(lambda: items(a, 0) == {"x": "old"}, 10, "node 0 of A applied x", a.logs)
    # A's nodes 1 and 2 die; its node 0 keeps running (and keeps calling ports 1 and 2)
    a.kill(1)
    a.kill(2)
    term_a0 = a.status(0)["term"]

    b = LocalCluster(tmp_path / "b")  # a restored cluster on the SAME ports
    clusters.append(b)
    (tmp_path / "b").mkdir()
    b.use_ports_of(a)
    restore_into(b, backup)
    for i in (1, 2):
        b.start_node(i)
        b.wait_serving(i)
    b.wait_for_leader(among=[1, 2])
    b.put_ok(1, "x", "new")
    b.put_ok(2, "y", "b-only")
    b_id = b.status(1)["cluster_id"]
    assert b_id != a_id

    def refused(i: int) -> int:
        """Batches A's survivor failed to deliver to B's node i (each one a 409 by now)."""
        text = a.get(0, "/metrics").body.decode()
        m = re.search(rf'raftkv_peer_send_failures_total{{peer="raft-{i}"}} (\d+)', text)
        return int(float(m.group(1))) if m else 0

    def refused_both_ways() -> bool:
        a_log = a.log_path(0).read_text(errors="replace")
        b_logs = [b.log_path(i).read_text(errors="replace") for i in (1, 2)]
        return (
            "event=cluster-id-mismatch" in a_log
            and all("event=cluster-id-mismatch" in t for t in b_logs)
            and refused(1) >= 3
            and refused(2) >= 3
        )

    wait_until(
        refused_both_ways,
        30,
        "both sides refuse, repeatedly, and log it",
        lambda: a.logs() + b.logs(),
    )
    for i in (1, 2):  # refused many times, logged once per sender
        b_log = b.log_path(i).read_text(errors="replace")
        assert b_log.count("sender=raft-0 sender_cluster_id=" + a_id) == 1
    s0 = a.status(0)
    assert s0["leader"] != b.ids[1] and s0["leader"] != b.ids[2]
    assert s0["cluster_id"] == a_id and s0["last_applied"] <= a.status(0)["commit_index"]
    assert items(a, 0) == {"x": "old"}  # A's survivor never took B's log
    assert s0["term"] >= term_a0
    assert items(b, 1, stale=False) == {"x": "new", "y": "b-only"}


def test_recover_from_quorum_loss_then_grow_back_to_three(
    tmp_path: Path, clusters: list[LocalCluster]
) -> None:
    c = LocalCluster(tmp_path / "c", snapshot_every=15)
    clusters.append(c)
    (tmp_path / "c").mkdir()
    c.start()
    c.wait_for_leader()
    for n in range(40):
        c.put_ok(n % 3, f"k{n:02d}", f"v{n}")
    wait_until(lambda: len(items(c, 0)) == 40, 20, "node 0 applied every write", c.logs)
    cluster_id = c.status(0)["cluster_id"]
    # two replicas are gone for good
    c.kill(1)
    c.kill(2)
    shutil.rmtree(c.data_dir(1))
    shutil.rmtree(c.data_dir(2))
    applied = items(c, 0)
    assert c.get(0, "/v1/kv/k01", timeout=3).status in (503, 504)  # no quorum: no linearizable
    c.terminate(0)

    out = raftkv("recover", "--data-dir", str(c.data_dir(0)), "--id", "raft-0")
    assert "voters=raft-0" in out
    c.start_node(0)  # same flags (three peers): MEMBERS.json makes it the only voter
    c.wait_serving(0)
    c.wait_for_leader(among=[0])
    assert c.status(0)["members"] == ["raft-0"] and c.status(0)["cluster_id"] == cluster_id
    assert items(c, 0, stale=False) == applied  # every write the survivor had applied
    c.put_ok(0, "after", "recover")

    # grow back to three: stop the survivor, seed every member from its whole log, start all
    c.terminate(0)
    grown = tmp_path / "survivor.snapshot"
    raftkv("backup", "--data-dir", str(c.data_dir(0)), "--out", str(grown))
    c.data_dir(0).rename(tmp_path / "c" / "data-0.before-grow")
    restore_into(c, grown, "--cluster-id", cluster_id)
    for i in range(3):
        c.start_node(i)
    for i in range(3):
        c.wait_serving(i)
    c.wait_for_leader()
    want = {**applied, "after": "recover"}
    for i in range(3):
        assert c.status(i)["members"] == c.ids and c.status(i)["cluster_id"] == cluster_id
        wait_until(lambda i=i: items(c, i) == want, 20, f"every write on node {i}", c.logs)
    c.put_ok(2, "grown", "yes")
    for i in range(3):
        wait_until(
            lambda i=i: c.get(i, "/v1/kv/grown?consistency=stale").status == 200,
            20,
            f"new write on node {i}",
            c.logs,
        )


def test_a_node_joining_a_restored_cluster_adopts_its_id(
    tmp_path: Path, clusters: list[LocalCluster]
) -> None:
    from raftkv.storage.identity import read_cluster_id
    from tests.integration.test_membership import TOKEN, GrowingCluster, grow

    a = LocalCluster(tmp_path / "a", token=TOKEN)
    clusters.append(a)
    (tmp_path / "a").mkdir()
    a.start()
    a.wait_for_leader()
    a.put_ok(0, "k", "v")
    backup = tmp_path / "backup.snapshot"
    r = a.request(
        0, "GET", "/v1/admin/snapshot", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
    )
    assert r.status == 200, r
    backup.write_bytes(r.body)

    b = GrowingCluster(tmp_path / "b", token=TOKEN)
    clusters.append(b)
    (tmp_path / "b").mkdir()
    restore_into(b, backup, "--cluster-id", "restored-b")
    b.start()
    leader = b.wait_for_leader()
    nid = grow(b, via=leader)  # a new node, empty disk, its id not in its --peers: joining
    i = b.idx(nid)
    assert b.status(i)["cluster_id"] == "restored-b"
    assert read_cluster_id(str(b.data_dir(i))) == "restored-b"
    assert "event=cluster-id-adopted cluster_id=restored-b" in b.log_path(i).read_text()
    wait_until(lambda: items(b, i) == {"k": "v"}, 20, "the new member has the data", b.logs)

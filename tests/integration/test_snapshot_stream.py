"""InstallSnapshot in chunks (issue 14 item 3) on real processes: a follower whose data dir was
wiped catches up from a snapshot streamed in many small chunks while the leader keeps taking
writes; the transfer resumes where the follower stands; the replicas agree afterwards.

The leader takes no snapshot after the wipe (the --snapshot-every floor is out of reach): it
notices from the follower's rejection that the follower lost the entries it had acknowledged, and
sends the snapshot it already holds (it used to wait for its NEXT snapshot, docs/scale.md)."""

from __future__ import annotations

import re
import shutil
import threading
import time
from pathlib import Path

import pytest

from raftkv.raft.types import Snapshot, SnapshotMeta
from raftkv.storage.snapshot import encode_snapshot
from tests.integration.cluster import LocalCluster
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

CHUNK = 4096


def test_wiped_follower_catches_up_from_a_chunked_snapshot_under_writes(tmp_path: Path) -> None:
    c = LocalCluster(tmp_path, snapshot_every=1_000_000)
    c.common += ["--snapshot-chunk-bytes", str(CHUNK)]
    try:
        c.start()
        leader = c.wait_for_leader()
        for n in range(400):
            c.put_ok(leader, f"key-{n:04d}", "v" * 200)
        c.request(leader, "POST", "/v1/admin/snapshot")
        snap_bytes = float(
            re.search(
                r"^raftkv_snapshot_bytes (\S+)$", c.get(leader, "/metrics").body.decode(), re.M
            ).group(1)
        )  # type: ignore[union-attr]
        assert snap_bytes > 10 * CHUNK  # many chunks
        snap_index = c.status(leader)["snapshot_index"]
        assert snap_index > 0

        follower = next(i for i in range(3) if i != leader)
        assert c.terminate(follower) == 0
        shutil.rmtree(c.data_dir(follower))

        stop = threading.Event()
        acked: list[int] = []

        def writer() -> None:  # the leader keeps serving while the follower catches up
            n = 0
            while not stop.is_set():
                r = c.put(leader, f"during-{n}", "w")
                if r.status == 200:
                    acked.append(n)
                n += 1
                time.sleep(0.01)

        t = threading.Thread(target=writer)
        t.start()
        try:
            c.start_node(follower)
            c.wait_serving(follower)

            def caught_up() -> bool:
                st = c.status(follower)
                return (
                    st["snapshot_index"] > 0
                    and st["last_applied"] >= c.status(leader)["commit_index"] - 5
                )

            wait_until(caught_up, 90, "wiped follower catches up", c.logs)
        finally:
            stop.set()
            t.join()
        assert len(acked) > 10
        # the snapshot installed is the one the leader held before the wipe: no new one was taken
        assert c.status(follower)["snapshot_index"] == snap_index
        assert c.status(leader)["snapshot_index"] == snap_index
        flog = c.log_path(follower).read_text()
        llog = c.log_path(leader).read_text()
        assert "event=snapshot-received" in flog and "event=snapshot-installed" in flog
        sent = [int(m) for m in re.findall(r"event=snapshot-sent .* chunks=(\d+)", llog)]
        assert sent and max(sent) > 10, llog[-3000:]

        # every replica holds the same data at the same index
        last = f"during-{acked[-1]}"
        for i in range(3):
            wait_until(
                lambda i=i: c.get(i, f"/v1/kv/{last}?consistency=stale").status == 200,
                30,
                f"node {i} has {last}",
            )
        c.put_ok(leader, "fence", "x")

        def hashes() -> set[tuple[int, str]] | None:
            got = {
                (r.json["applied_index"], r.json["hash"])
                for r in (c.get(i, "/v1/admin/hash") for i in range(3))
            }
            return got if len(got) == 1 else None

        wait_until(hashes, 30, "replicas agree", c.logs)
        assert c.get(follower, "/v1/kv/key-0399?consistency=stale").json["value"] == "v" * 200
    finally:
        c.close()


def test_snapshot_chunk_route_resumes_and_refuses_bad_input(tmp_path: Path) -> None:
    c = LocalCluster(tmp_path, size=1)
    try:
        c.start()
        c.wait_for_leader()
        h = {
            "X-Raftkv-From": "raft-9",
            "X-Raftkv-Term": "9",
            "X-Raftkv-Snapshot-Index": "50",
            "X-Raftkv-Snapshot-Term": "9",
            "X-Raftkv-Snapshot-Size": "100000",
        }
        r = c.request(
            0, "POST", "/raft/v1/snapshot", b"x" * 10, {**h, "X-Raftkv-Snapshot-Offset": "20"}
        )
        assert r.status == 409 and r.json["received"] == 0  # nothing under way: start at 0
        r = c.request(0, "POST", "/raft/v1/snapshot", b"x", {"X-Raftkv-From": "a"})
        assert r.status == 400 and "error" in r.json
        r = c.request(
            0,
            "POST",
            "/raft/v1/snapshot",
            b"NOT A SNAPSHOT HEADER" * 4,
            {**h, "X-Raftkv-Snapshot-Offset": "0"},
        )
        assert r.status == 400 and "error" in r.json
        # a real snapshot stream: two chunks, then the sender starts over (a lost answer, a new
        # sender thread): 409 tells it where to resume, and it goes on from there
        blob = encode_snapshot(
            Snapshot(meta=SnapshotMeta(index=50, term=9, members=("raft-9",)), data=b"d" * 50_000)
        )
        h["X-Raftkv-Snapshot-Size"] = str(len(blob))
        for off in (0, CHUNK):
            r = c.request(
                0,
                "POST",
                "/raft/v1/snapshot",
                blob[off : off + CHUNK],
                {**h, "X-Raftkv-Snapshot-Offset": str(off)},
            )
            assert r.status == 200 and r.json == {"received": off + CHUNK, "complete": False}
        r = c.request(
            0, "POST", "/raft/v1/snapshot", blob[:CHUNK], {**h, "X-Raftkv-Snapshot-Offset": "0"}
        )
        assert r.status == 409 and r.json["received"] == 2 * CHUNK
        r = c.request(
            0,
            "POST",
            "/raft/v1/snapshot",
            blob[2 * CHUNK : 3 * CHUNK],
            {**h, "X-Raftkv-Snapshot-Offset": str(2 * CHUNK)},
        )
        assert r.status == 200 and r.json["received"] == 3 * CHUNK
        assert c.get(0, "/healthz").status == 200
    finally:
        c.close()

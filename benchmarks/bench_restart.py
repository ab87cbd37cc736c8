#!/usr/bin/env python3
"""bench_restart.py — 3 local nodes restarting with N keys each (default 1M x 100-byte values):
time until each serves again and RSS per node holding them (issue 14 items 1 and 4).

    python3 benchmarks/bench_restart.py [--keys 1000000] [--value-bytes 100]

Loading a million keys through HTTP takes this shared 2-core machine 20-30 minutes, so the data
dirs are seeded instead: one state machine is filled in this process (the same apply path), its
snapshot written with the node's own snapshot writer and adopted by Storage into three data dirs
(snapshot at index N, term 1, hard state term 1) — exactly what a node finds after a snapshot
and a restart. Then the three ``raftkv serve`` processes start together and it measures:
time to ``/healthz`` per node (storage opened, snapshot verified and restored), time until a
write through the leader is acknowledged, RSS of each node's worker then and after a short
write load (wrk, 10 s, overwrites); then a follower is stopped, its data dir deleted and it is
restarted under writes: the leader's snapshot time, the catch-up time (the snapshot streamed in
chunks), the write rate meanwhile, and the leader's longest driver pass. Every process it starts
is stopped by PID at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_scale import (  # noqa: E402
    BackgroundWrk,
    metric,
    mib,
    node_rss,
    run_wrk,
    wait_applied,
    wrk_env,
)
from raftkv.kv import Command, KVStateMachine, Op, encode_command  # noqa: E402
from raftkv.raft.types import HardState, SnapshotMeta  # noqa: E402
from raftkv.storage import Storage  # noqa: E402
from raftkv.storage.snapshot import write_snapshot_stream  # noqa: E402
from tests.integration.cluster import LocalCluster, wait_until  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--value-bytes", type=int, default=100)
    ap.add_argument("--threads", type=int, default=96)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="raftkv-restart-"))
    cluster: LocalCluster | None = None
    try:
        per_thread = args.keys // 2
        sm = KVStateMachine()
        value = "v" * args.value_bytes
        with sm.lock:  # the keys bench_scale's wrk script writes: scale-<1|2>-<i>
            n = 0
            for t in (1, 2):
                for i in range(per_thread):
                    n += 1
                    sm.apply(
                        n, 1, encode_command(Command(op=Op.PUT, key=f"scale-{t}-{i}", value=value))
                    )
        cluster = LocalCluster(
            tmp / "cluster", election_ms=600, heartbeat_ms=100, threads=args.threads
        )
        (tmp / "cluster").mkdir()
        meta = SnapshotMeta(index=n, term=1, members=tuple(cluster.ids))
        for i in range(3):
            st = Storage.open(str(cluster.data_dir(i)))
            st.save(HardState(term=1, voted_for=None, commit=n), [])
            path, size = write_snapshot_stream(st.snap_dir, meta, sm.snapshot_view().write)
            st.adopt_snapshot_file(path, meta)
            st.close()
        del sm
        print(f"seeded 3 data dirs: {n} keys, snapshot data {mib(size):.1f} MiB", flush=True)

        t0 = time.monotonic()
        for i in range(3):
            cluster.start_node(i)
        serving = []
        for i in range(3):
            cluster.wait_serving(i, timeout=600)
            serving.append(time.monotonic() - t0)
        leader = cluster.wait_for_leader(timeout=120)
        cluster.put_ok(leader, "after-restart", "x", timeout=120)
        first_write = time.monotonic() - t0
        keys = cluster.get(leader, "/metrics").body.decode()
        rss_idle = [mib(node_rss(cluster, i)[0]) for i in range(3)]
        load = run_wrk(cluster.url(leader), 16, 10, wrk_env(per_thread, args.value_bytes))
        wait_until(
            lambda: all(
                cluster.status(i)["last_applied"]  # type: ignore[union-attr]
                >= cluster.status(leader)["commit_index"]  # type: ignore[union-attr]
                for i in range(3)
            ),
            120,
            "followers applied",
        )
        rss_load = [mib(node_rss(cluster, i)[0]) for i in range(3)]

        # a wiped follower catches up from the 1M-key snapshot (1 MiB chunks) under writes; the
        # leader also takes a snapshot meanwhile (a figure: snapshot time at 1M keys under writes)
        c = cluster
        follower = next(i for i in range(3) if i != leader)
        c.terminate(follower)
        shutil.rmtree(c.data_dir(follower))
        bg = BackgroundWrk(c.url(leader), 16, wrk_env(per_thread, args.value_bytes))
        try:
            time.sleep(2)
            target = int(c.status(leader)["commit_index"])
            t1 = time.monotonic()
            c.start_node(follower)
            c.wait_serving(follower, timeout=120)
            ts = time.monotonic()
            r = c.request(leader, "POST", "/v1/admin/snapshot", timeout=600)
            snap_s = time.monotonic() - ts
            if r.status != 200:
                raise RuntimeError(f"snapshot on the leader: {r}")
            wait_applied(c, follower, target, 1200)
            catchup = time.monotonic() - t1
        finally:
            during = bg.stop()
        stall = 1000 * metric(c, leader, "raftkv_driver_pass_max_seconds")
        print(
            f"keys: {n} x {args.value_bytes} B; raftkv_keys line: "
            f"{next(x for x in keys.splitlines() if x.startswith('raftkv_keys '))}"
        )
        print(
            f"serving again (/healthz) after start, per node: "
            f"{', '.join(f'{s:.1f} s' for s in serving)}"
        )
        print(f"first write acknowledged after start: {first_write:.1f} s")
        print(f"RSS per node (worker) after restart: {', '.join(f'{r:.0f}' for r in rss_idle)} MiB")
        print(
            f"RSS per node after 10 s of writes ({load['rps']:.0f}/s): "
            f"{', '.join(f'{r:.0f}' for r in rss_load)} MiB "
            f"({max(rss_load) * (1 << 20) / n:.0f} bytes/key)"
        )
        print(
            f"leader snapshot of ~{n} keys under writes (POST /v1/admin/snapshot): {snap_s:.1f} s"
        )
        print(
            f"wiped follower caught up (snapshot streamed in chunks): {catchup:.1f} s; writes "
            f"meanwhile {during['rps']:.0f}/s = {during['rps'] / max(load['rps'], 1e-9):.2f}x "
            f"the rate before (p99 {during['p99_ms']:.0f} ms, max {during['max_ms']:.0f} ms)"
        )
        print(f"leader's longest driver pass since its start: {stall:.0f} ms")
        print(f"loadavg {os.getloadavg()} on {os.cpu_count()} CPUs")
    finally:
        if cluster is not None:
            cluster.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

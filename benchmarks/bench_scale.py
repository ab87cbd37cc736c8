#!/usr/bin/env python3
"""bench_scale.py — a local 3-node raftkv cluster holding N keys: memory, disk, snapshots,
stalls, follower catch-up from a snapshot and restart time (issue 14).

    python3 benchmarks/bench_scale.py                    # 1,000,000 keys x 100-byte values
    python3 benchmarks/bench_scale.py --keys 200000 --out scale.json
    python3 benchmarks/bench_scale.py --keys 2000 --phase-seconds 2     # CI: proves it works

What it does (everything on 127.0.0.1; every process it starts is stopped by PID at the end):
1. starts 3 ``raftkv serve`` nodes (fsync on) and reads each node's idle RSS;
2. loads N distinct keys through the leader with wrk (benchmarks/scale_load.lua, ``--conns``
   keep-alive connections) until the leader's ``raftkv_keys`` reaches N (then SIGINT: wrk
   prints its summary), then waits until every node applied the last write;
3. reads RSS per node (the gunicorn worker that holds the node; the master is listed apart),
   bytes of RSS per key (above idle), bytes on disk per key (every file of the data dir);
4. snapshots: writes (overwrites, so N stays) for ``--phase-seconds`` without a forced snapshot,
   then again while every node takes a snapshot (POST /v1/admin/snapshot): snapshot time and
   size, write p99/max in both phases, and the longest driver pass (``raftkv_driver_pass_max_
   seconds``: the longest time heartbeats and commits waited behind the driver; since start, so
   it includes the snapshots the load itself triggered);
5. catch-up: stops a follower, wipes its data dir, restarts it while writes go on, and times
   until the follower has applied the leader's commit index of the moment it restarted (it must
   install the snapshot the leader holds, streamed in chunks); the write rate meanwhile is
   reported as a fraction of the rate before;
6. restart: stops a follower (data kept), starts it, and times until it serves (/healthz) and
   until it has applied the leader's commit index.
It prints every figure as ``figure <name>: <value>`` (CI checks them) and the whole set as JSON
with ``--out``. The machine's load (other processes) changes every figure: it prints loadavg.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.cluster import LocalCluster, wait_until  # noqa: E402

LUA = ROOT / "benchmarks" / "scale_load.lua"
WRK_THREADS = 2
FIGURES = (
    "keys",
    "load_seconds",
    "load_writes_per_s",
    "load_p99_ms",
    "load_max_ms",
    "idle_rss_mib",
    "rss_mib",
    "rss_bytes_per_key",
    "disk_bytes_per_key",
    "snapshot_seconds",
    "snapshot_mib",
    "write_p99_ms_no_snapshot",
    "write_max_ms_no_snapshot",
    "write_p99_ms_during_snapshot",
    "write_max_ms_during_snapshot",
    "driver_stall_max_ms",
    "catchup_seconds",
    "catchup_write_rate_ratio",
    "restart_serving_seconds",
    "restart_caught_up_seconds",
)


def wrk_cmd(url: str, conns: int, duration: float) -> list[str]:
    return [
        "wrk",
        f"-t{WRK_THREADS}",
        f"-c{max(conns, WRK_THREADS)}",
        f"-d{duration:g}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        url,
    ]


def wrk_env(keys_per_thread: int, value_bytes: int) -> dict[str, str]:
    return dict(
        os.environ,
        BENCH_KEYS_PER_THREAD=str(keys_per_thread),
        BENCH_VALUE_BYTES=str(value_bytes),
        BENCH_KEY_PREFIX="scale",
    )


def parse_wrk(out: str, err: str, code: int | None) -> dict[str, Any]:
    for line in out.splitlines():
        if line.startswith("BENCH_RESULT "):
            result: dict[str, Any] = json.loads(line.split(" ", 1)[1])
            return result
    raise RuntimeError(f"wrk printed no result (exit {code}): {err[-500:]}")


def run_wrk(url: str, conns: int, duration: float, env: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run(
        wrk_cmd(url, conns, duration),
        env=env,
        capture_output=True,
        text=True,
        timeout=duration + 120,
        check=False,
    )
    return parse_wrk(out.stdout, out.stderr, out.returncode)


class BackgroundWrk:
    """wrk running until ``stop()`` (SIGINT: wrk stops and prints its summary)."""

    def __init__(self, url: str, conns: int, env: dict[str, str]) -> None:
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            wrk_cmd(url, conns, 3600),
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def stop(self) -> dict[str, Any]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        out, err = self.proc.communicate(timeout=60)
        return parse_wrk(out, err, self.proc.returncode)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def worker_pids(master: int) -> list[int]:
    try:
        text = Path(f"/proc/{master}/task/{master}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def node_rss(c: LocalCluster, i: int) -> tuple[int, int]:
    """(worker RSS, master RSS) in bytes of node ``i``."""
    master = c.procs[i].pid
    workers = worker_pids(master)
    if not workers:
        raise RuntimeError(f"node {i}: no gunicorn worker under pid {master}")
    return sum(rss_bytes(p) for p in workers), rss_bytes(master)


def disk_bytes(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            with contextlib.suppress(FileNotFoundError):  # pruned while walking
                total += os.stat(os.path.join(dirpath, f)).st_size
    return total


def metric(c: LocalCluster, i: int, name: str) -> float:
    text = c.get(i, "/metrics", timeout=10).body.decode()
    m = re.search(rf"^{re.escape(name)} ([0-9.eE+-]+)$", text, re.M)
    if m is None:
        raise RuntimeError(f"node {i}: no metric {name}")
    return float(m.group(1))


def wait_applied(c: LocalCluster, i: int, index: int, timeout: float) -> float:
    """Seconds until node ``i`` has applied ``index``."""
    t0 = time.monotonic()

    def done() -> bool:
        try:
            return int(c.status(i)["last_applied"]) >= index
        except (OSError, AssertionError):
            return False

    wait_until(done, timeout, f"node {i} applied index {index}", c.logs)
    return time.monotonic() - t0


def mib(n: float) -> float:
    return n / (1 << 20)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--keys", type=int, default=1_000_000, help="distinct keys to load")
    ap.add_argument("--value-bytes", type=int, default=100)
    ap.add_argument("--conns", type=int, default=64, help="wrk connections while loading")
    ap.add_argument(
        "--phase-seconds", type=float, default=10.0, help="length of each measured write phase"
    )
    ap.add_argument("--threads", type=int, default=96, help="gunicorn threads per node")
    ap.add_argument(
        "--node-arg",
        action="append",
        default=[],
        help="extra 'raftkv serve' argument (repeatable), e.g. --node-arg=--x=1",
    )
    ap.add_argument("--out", help="also write the figures as JSON here")
    ap.add_argument("--keep", action="store_true", help="keep the data directories")
    args = ap.parse_args()
    # SIGTERM (and SIGINT, even when inherited as ignored) stop the run through the cleanup below
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(130))
    if shutil.which("wrk") is None:
        print("bench_scale: error: wrk not found (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    if args.keys < WRK_THREADS:
        print("bench_scale: error: --keys must be >= 2", file=sys.stderr)
        return 2
    per_thread = args.keys // WRK_THREADS
    n_keys = per_thread * WRK_THREADS
    fig: dict[str, Any] = {"loadavg_start": os.getloadavg(), "cpus": os.cpu_count()}
    tmp = Path(tempfile.mkdtemp(prefix="raftkv-scale-"))
    print(
        f"raftkv scale benchmark: {n_keys} keys x {args.value_bytes} B, {args.conns} conns; "
        f"loadavg {os.getloadavg()}",
        flush=True,
    )
    cluster: LocalCluster | None = None
    bg: BackgroundWrk | None = None
    try:
        cluster = LocalCluster(
            tmp / "cluster", election_ms=600, heartbeat_ms=100, threads=args.threads
        )
        cluster.common += args.node_arg
        (tmp / "cluster").mkdir()
        c = cluster.start()
        leader = c.wait_for_leader(timeout=60)
        time.sleep(1.0)
        fig["idle_rss_mib"] = max(mib(node_rss(c, i)[0]) for i in range(3))

        # 1. load --------------------------------------------------------------------------
        t0 = time.monotonic()
        env = wrk_env(per_thread, args.value_bytes)
        bg = BackgroundWrk(c.url(leader), args.conns, env)
        while metric(c, leader, "raftkv_keys") < n_keys:
            if bg.proc.poll() is not None:
                raise RuntimeError(f"wrk exited early: {bg.stop()}")
            time.sleep(0.5)
        load = bg.stop()
        bg = None
        commit = int(c.status(leader)["commit_index"])
        for i in range(3):
            wait_applied(c, i, commit, 300)
        fig["load_seconds"] = time.monotonic() - t0
        fig["load_writes_per_s"] = load["rps"]
        fig["load_p99_ms"], fig["load_max_ms"] = load["p99_ms"], load["max_ms"]
        fig["load_errors"] = load["errors_status"] + load["errors_socket"] + load["timeouts"]
        fig["keys"] = int(metric(c, leader, "raftkv_keys"))
        print(
            f"  loaded {fig['keys']} keys in {fig['load_seconds']:.1f} s "
            f"({load['rps']:.0f} writes/s)",
            flush=True,
        )

        # 2. memory and disk ----------------------------------------------------------------
        rss = [node_rss(c, i) for i in range(3)]
        fig["rss_mib_per_node"] = [round(mib(w), 1) for w, _m in rss]
        fig["master_rss_mib_per_node"] = [round(mib(m), 1) for _w, m in rss]
        fig["rss_mib"] = max(mib(w) for w, _m in rss)
        fig["rss_bytes_per_key"] = (max(w for w, _m in rss) - fig["idle_rss_mib"] * (1 << 20)) / (
            max(fig["keys"], 1)
        )
        disks = [disk_bytes(c.data_dir(i)) for i in range(3)]
        fig["disk_bytes_per_key"] = max(disks) / max(fig["keys"], 1)

        # 3. snapshots under write load ------------------------------------------------------
        over = env  # the same keys again: overwrites, the key count stays
        quiet = run_wrk(c.url(leader), 16, args.phase_seconds, over)
        fig["write_p99_ms_no_snapshot"] = quiet["p99_ms"]
        fig["write_max_ms_no_snapshot"] = quiet["max_ms"]
        fig["write_rate_no_snapshot"] = quiet["rps"]
        bg = BackgroundWrk(c.url(leader), 16, over)
        time.sleep(args.phase_seconds / 4)
        snap_times: list[float] = [0.0] * 3
        errors: list[str] = []

        def snap(i: int) -> None:
            t = time.monotonic()
            while True:  # a node busy with the write load answers 503 overloaded: retry
                r = c.request(i, "POST", "/v1/admin/snapshot", timeout=300)
                busy = r.status == 503 and b'"overloaded"' in r.body
                if not busy or time.monotonic() - t > 120:
                    break
                time.sleep(0.1)
            if r.status != 200:
                errors.append(f"snapshot on node {i}: {r}")
            snap_times[i] = time.monotonic() - t

        threads = [threading.Thread(target=snap, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise RuntimeError("; ".join(errors))
        rest = args.phase_seconds - (time.monotonic() - bg.started)
        if rest > 0:
            time.sleep(rest)
        during = bg.stop()
        bg = None
        fig["snapshot_seconds"] = max(snap_times)
        fig["snapshot_mib"] = max(mib(metric(c, i, "raftkv_snapshot_bytes")) for i in range(3))
        fig["write_p99_ms_during_snapshot"] = during["p99_ms"]
        fig["write_max_ms_during_snapshot"] = during["max_ms"]
        fig["driver_stall_max_ms"] = 1000 * max(
            metric(c, i, "raftkv_driver_pass_max_seconds") for i in range(3)
        )

        # 4. follower catch-up from a snapshot (wiped data dir) -------------------------------
        leader = c.wait_for_leader(timeout=60)
        follower = next(i for i in range(3) if i != leader)
        c.terminate(follower)
        shutil.rmtree(c.data_dir(follower))
        bg = BackgroundWrk(c.url(leader), 16, over)
        time.sleep(min(2.0, args.phase_seconds / 4))
        target = int(c.status(leader)["commit_index"])
        t0 = time.monotonic()
        c.start_node(follower)
        c.wait_serving(follower, timeout=120)
        # no snapshot is forced: the leader sees from the follower's rejection that it lost what
        # it acknowledged and sends the snapshot it holds (docs/scale.md, "A wiped follower")
        wait_applied(c, follower, target, 1200)
        fig["catchup_seconds"] = time.monotonic() - t0
        during_catchup = bg.stop()
        bg = None
        fig["catchup_write_rate"] = during_catchup["rps"]
        fig["catchup_write_rate_ratio"] = during_catchup["rps"] / max(quiet["rps"], 1e-9)

        # 5. restart (data kept) ----------------------------------------------------------------
        leader = c.wait_for_leader(timeout=60)
        follower = next(i for i in range(3) if i != leader)
        c.terminate(follower)
        target = int(c.status(leader)["commit_index"])
        t0 = time.monotonic()
        c.start_node(follower)
        c.wait_serving(follower, timeout=300)
        fig["restart_serving_seconds"] = time.monotonic() - t0
        wait_applied(c, follower, target, 300)
        fig["restart_caught_up_seconds"] = time.monotonic() - t0
    finally:
        if bg is not None:
            bg.kill()
        if cluster is not None:
            cluster.close()
        if args.keep:
            print(f"data kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    fig["loadavg_end"] = os.getloadavg()

    print()
    for name in FIGURES:
        value = fig[name]
        print(
            f"figure {name}: {value:.3f}" if isinstance(value, float) else f"figure {name}: {value}"
        )
    print(
        f"RSS per node (worker) MiB: {fig['rss_mib_per_node']}, gunicorn master MiB: "
        f"{fig['master_rss_mib_per_node']}"
    )
    print(
        f"loadavg at start {fig['loadavg_start']}, at end {fig['loadavg_end']} on "
        f"{fig['cpus']} CPUs (other load on this machine changes every figure)"
    )
    if args.out:
        Path(args.out).write_text(json.dumps(fig, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""bench_node.py — throughput, latency and failover of a local 3-node raftkv cluster, side by side
with the HTTP stack's ceiling (a trivial unreplicated Flask dict app under the same gunicorn
settings), all in one run on this machine.

    python3 benchmarks/bench_node.py                       # 10 s per point, 5 failover trials
    python3 benchmarks/bench_node.py --duration 5 --conns 1,16,64 --trials 3 --out result.json

What it does (everything on 127.0.0.1, every process it starts is stopped by PID at the end):
1. ceiling: ``gunicorn -w 1 -k gthread --threads T 'benchmarks.dict_app:create_app()'``, and
   raftkv: 3 ``raftkv serve`` nodes (fsync on, default timings, T threads), both running.
2. For each connection count, PUT with wrk (benchmarks/kv_load.lua) on the ceiling and then on
   raftkv's leader, back to back (``--reps`` times, median kept); then the same for GETs of keys
   written beforehand (linearizable on raftkv: ReadIndex), and stale GETs at the top count.
3. etcd (when the ``etcd`` binary is installed: Debian ``etcd-server``; ``--no-etcd`` skips it):
   3 members on 127.0.0.1, the same wrk load through etcd's v3 JSON gateway
   (benchmarks/etcd_load.lua: POST /v3/kv/put with a fresh key, linearizable POST /v3/kv/range)
   on its leader, in the same run, so the table shows raftkv, the ceiling and etcd side by side.
4. failover: one client writes sequentially through a follower; the leader's process group is
   SIGKILLed between two writes; the window is the time from the kill to the next acknowledged
   write. The killed node is restarted and allowed to catch up between trials.
It prints requests/s, p50 and p99 for every point, each raftkv figure as a ratio of the ceiling,
and the issue's targets with the measured value next to them.

Needs ``wrk`` (Debian package ``wrk``). Load is bounded: ``--duration`` seconds per point.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.etcd_cluster import EtcdCluster, etcd_available  # noqa: E402
from tests.integration.cluster import LocalCluster, free_port, wait_until  # noqa: E402

LUA = ROOT / "benchmarks" / "kv_load.lua"
ETCD_LUA = ROOT / "benchmarks" / "etcd_load.lua"
KEYS_PER_THREAD = 1000


def run_wrk(
    url: str, mode: str, conns: int, duration: float, query: str = "", lua: Path = LUA
) -> dict[str, Any]:
    threads = min(2, conns)
    env = dict(
        os.environ,
        BENCH_MODE=mode,
        BENCH_KEYS=str(KEYS_PER_THREAD),
        BENCH_QUERY=query,
        BENCH_KEY_PREFIX="bench",
    )
    cmd = [
        "wrk",
        f"-t{threads}",
        f"-c{conns}",
        f"-d{duration:g}s",
        "--timeout",
        "5s",
        "-s",
        str(lua),
        url,
    ]
    out = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=duration + 60, check=False
    )
    for line in out.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            result: dict[str, Any] = json.loads(line.split(" ", 1)[1])
            return result
    raise RuntimeError(f"wrk printed no result (exit {out.returncode}): {out.stderr[-500:]}")


def prefill(host: str, port: int, threads: int = 2) -> None:
    """Write the keys the GET series reads (bench-<t>-<i>, t=1..threads, i<KEYS_PER_THREAD)."""
    keys = [f"bench-{t}-{i}" for t in range(1, threads + 1) for i in range(KEYS_PER_THREAD)]
    local = threading.local()

    def put(key: str) -> None:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection(host, port, timeout=10)
        for _ in range(20):
            try:
                conn.request("PUT", f"/v1/kv/{key}", body=b"v" * 100)
                resp = conn.getresponse()
                resp.read()
                if resp.status == 200:
                    return
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = local.conn = http.client.HTTPConnection(host, port, timeout=10)
        raise RuntimeError(f"prefill of {key} failed")

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, keys))


def start_ceiling(threads: int, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "gunicorn",
        "-w",
        "1",
        "-k",
        "gthread",
        "--threads",
        str(threads),
        "-b",
        f"127.0.0.1:{port}",
        "--no-control-socket",
        "benchmarks.dict_app:create_app()",
    ]
    fh = open(log, "wb")  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True
    )

    def up() -> bool:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        try:
            c.request("GET", "/healthz")
            return c.getresponse().status == 200
        finally:
            c.close()

    wait_until(up, 30, "dict app serving")
    return proc, port


def failover_trials(c: LocalCluster, trials: int) -> list[float]:
    windows = []
    for trial in range(trials):
        leader = c.wait_for_leader(timeout=60)
        follower = next(i for i in range(c.size) if i != leader)
        conn = http.client.HTTPConnection("127.0.0.1", c.ports[follower], timeout=2)

        def put(n: int, conn: http.client.HTTPConnection = conn, trial: int = trial) -> bool:
            try:
                conn.request("PUT", f"/v1/kv/failover-{trial}-{n}", body=b"x" * 100)
                resp = conn.getresponse()
                resp.read()
                return resp.status == 200
            except (OSError, http.client.HTTPException):
                conn.close()
                return False

        for n in range(20):  # warm: a few acknowledged writes through the follower
            put(n)
        killed_at = time.monotonic()
        c.kill(leader)
        n = 100
        while True:
            ok = put(n)
            n += 1
            if ok:
                window = time.monotonic() - killed_at
                break
            if time.monotonic() - killed_at > 30:
                raise RuntimeError("no acknowledged write within 30 s of the leader kill")
            time.sleep(0.005)
        conn.close()
        windows.append(window)
        print(f"  failover trial {trial + 1}: {window:.3f} s ({n - 100} attempts)", flush=True)
        c.start_node(leader)
        c.wait_serving(leader)
        wait_until(
            lambda leader=leader: c.status(leader)["leader"] is not None,
            30,
            "restarted node knows the leader",
        )
    return windows


def fmt_row(label: str, conns: int, r: dict[str, Any], ceiling: dict[str, Any] | None) -> str:
    ratio = f"{r['rps'] / ceiling['rps']:.2f}" if ceiling and ceiling["rps"] else "-"
    errors = r["errors_status"] + r["errors_socket"] + r["timeouts"]
    return (
        f"| {label:<22} | {conns:>5} | {r['rps']:>8.0f} | {r['p50_ms']:>7.2f} | "
        f"{r['p99_ms']:>7.2f} | {ratio:>5} | {errors:>6} |"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per load point")
    ap.add_argument("--conns", default="1,16,64", help="connection counts")
    ap.add_argument("--trials", type=int, default=5, help="failover trials (0 = skip)")
    ap.add_argument("--reps", type=int, default=1, help="runs per point (median kept)")
    ap.add_argument("--threads", type=int, default=96, help="gunicorn threads (both servers)")
    ap.add_argument("--out", help="also write the results as JSON here")
    ap.add_argument(
        "--no-etcd",
        action="store_true",
        help="skip the etcd row (measured when the etcd binary is installed)",
    )
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        print("bench_node: error: wrk not found (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    conns = [int(x) for x in args.conns.split(",")]
    results: dict[str, Any] = {
        "conns": conns,
        "duration_s": args.duration,
        "threads": args.threads,
        "loadavg_start": os.getloadavg(),
    }
    tmp = Path(tempfile.mkdtemp(prefix="raftkv-bench-"))
    print(
        f"raftkv benchmark: {args.duration:g} s per point, connections {conns}, "
        f"gunicorn 1 worker gthread {args.threads} threads; loadavg {os.getloadavg()}",
        flush=True,
    )
    ceiling_proc = None
    cluster = None
    etcd: EtcdCluster | None = None
    etcd_put: dict[int, dict[str, Any]] = {}
    etcd_get: dict[int, dict[str, Any]] = {}
    try:
        # Both servers run side by side and each point is measured on the ceiling and on raftkv
        # back to back (--reps times, median kept), so a change of the machine's load during
        # the run hits both sides of a ratio alike.
        ceiling_proc, cport = start_ceiling(args.threads, tmp / "dict.log")
        curl = f"http://127.0.0.1:{cport}"
        prefill("127.0.0.1", cport)
        cluster = LocalCluster(
            tmp / "cluster",
            election_ms=600,
            heartbeat_ms=100,
            threads=args.threads,
            snapshot_every=10_000,
        )
        (tmp / "cluster").mkdir()
        cluster.start()
        leader = cluster.wait_for_leader(timeout=60)
        lurl = cluster.url(leader)

        def pair(mode: str, c: int, query: str = "") -> tuple[dict[str, Any], dict[str, Any]]:
            ceil_runs, kv_runs = [], []
            for _ in range(args.reps):
                ceil_runs.append(run_wrk(curl, mode, c, args.duration))
                kv_runs.append(run_wrk(lurl, mode, c, args.duration, query))
            med = len(kv_runs) // 2
            return (
                sorted(ceil_runs, key=lambda r: r["rps"])[med],
                sorted(kv_runs, key=lambda r: r["rps"])[med],
            )

        ceil_put, kv_put = {}, {}
        for c in conns:
            ceil_put[c], kv_put[c] = pair("put", c)
            print(
                f"  PUT c={c}: ceiling {ceil_put[c]['rps']:.0f}/s, raftkv {kv_put[c]['rps']:.0f}/s",
                flush=True,
            )
        prefill("127.0.0.1", cluster.ports[leader])
        leader = cluster.wait_for_leader(timeout=60)  # (normally unchanged)
        lurl = cluster.url(leader)
        ceil_get, kv_get = {}, {}
        for c in conns:
            ceil_get[c], kv_get[c] = pair("get", c)
            print(
                f"  GET c={c}: ceiling {ceil_get[c]['rps']:.0f}/s, raftkv {kv_get[c]['rps']:.0f}/s",
                flush=True,
            )
        kv_stale = {
            c: run_wrk(lurl, "get", c, args.duration, "?consistency=stale") for c in conns[-1:]
        }
        if etcd_available() and not args.no_etcd:
            # etcd 3 members on loopback, the same wrk load through its v3 JSON gateway, on its
            # leader, right after raftkv's points (the ceiling is still running beside it)
            (tmp / "etcd").mkdir()
            etcd = EtcdCluster(tmp / "etcd").start()
            eleader = etcd.leader()
            assert eleader is not None
            eurl = etcd.url(eleader)
            for c in conns:
                etcd_put[c] = run_wrk(eurl, "put", c, args.duration, lua=ETCD_LUA)
                print(f"  etcd PUT c={c}: {etcd_put[c]['rps']:.0f}/s", flush=True)
            etcd.prefill(eleader, 2, KEYS_PER_THREAD)
            for c in conns:
                etcd_get[c] = run_wrk(eurl, "get", c, args.duration, lua=ETCD_LUA)
                print(f"  etcd GET c={c}: {etcd_get[c]['rps']:.0f}/s", flush=True)
            etcd.close()
            etcd = None
        os.killpg(ceiling_proc.pid, signal.SIGTERM)
        ceiling_proc.wait(30)
        ceiling_proc = None

        # failover ---------------------------------------------------------------------------
        windows = failover_trials(cluster, args.trials) if args.trials > 0 else []
    finally:
        if ceiling_proc is not None and ceiling_proc.poll() is None:
            os.killpg(ceiling_proc.pid, signal.SIGKILL)
        if cluster is not None:
            cluster.close()
        if etcd is not None:
            etcd.close()
    results.update(etcd_put=etcd_put, etcd_get=etcd_get)
    results.update(
        ceiling_put=ceil_put,
        ceiling_get=ceil_get,
        raftkv_put=kv_put,
        raftkv_get=kv_get,
        raftkv_get_stale=kv_stale,
        failover_s=windows,
        loadavg_end=os.getloadavg(),
    )

    print()
    print("| target                 | conns |    req/s | p50 ms  | p99 ms  | ratio | errors |")
    print("|------------------------|------:|---------:|--------:|--------:|------:|-------:|")
    for c in conns:
        print(fmt_row("ceiling PUT (dict)", c, ceil_put[c], None))
    for c in conns:
        print(fmt_row("ceiling GET (dict)", c, ceil_get[c], None))
    for c in conns:
        print(fmt_row("raftkv PUT", c, kv_put[c], ceil_put[c]))
    for c in conns:
        print(fmt_row("raftkv GET linearizable", c, kv_get[c], ceil_get[c]))
    for c, r in kv_stale.items():
        print(fmt_row("raftkv GET stale", c, r, ceil_get[c]))
    for c, r in etcd_put.items():
        print(fmt_row("etcd PUT", c, r, ceil_put[c]))
    for c, r in etcd_get.items():
        print(fmt_row("etcd GET linearizable", c, r, ceil_get[c]))
    print("(ratio = the row's req/s / ceiling req/s at the same connection count)")
    if windows:
        print(
            f"\nfailover window (leader SIGKILL -> next acknowledged write), {len(windows)} "
            f"trials: median {statistics.median(windows):.3f} s, min {min(windows):.3f} s, "
            f"max {max(windows):.3f} s"
        )
    top = conns[-1]
    checks = [
        (
            f"writes/s at {top} conns >= 0.5 x ceiling",
            kv_put[top]["rps"] / ceil_put[top]["rps"],
            0.5,
            True,
        ),
        (
            f"linearizable reads/s at {top} conns >= 0.7 x ceiling",
            kv_get[top]["rps"] / ceil_get[top]["rps"],
            0.7,
            True,
        ),
    ]
    if 16 in kv_put:
        checks.append(("p99 write latency at 16 conns <= 50 ms", kv_put[16]["p99_ms"], 50, False))
    # issue 14's targets (CPU per write)
    checks += [
        (
            f"issue 14: writes/s at {top} conns >= 0.8 x ceiling",
            kv_put[top]["rps"] / ceil_put[top]["rps"],
            0.8,
            True,
        ),
        (
            f"issue 14: linearizable reads/s at {top} conns >= 0.9 x ceiling",
            kv_get[top]["rps"] / ceil_get[top]["rps"],
            0.9,
            True,
        ),
    ]
    if 16 in kv_put:
        checks.append(
            ("issue 14: p99 write latency at 16 conns <= 25 ms", kv_put[16]["p99_ms"], 25, False)
        )
    if windows:
        checks.append(("median failover window <= 1.5 s", statistics.median(windows), 1.5, False))
    print("\ntargets (docs/node.md):")
    for text, value, bound, at_least in checks:
        ok = value >= bound if at_least else value <= bound
        print(f"  {'MET ' if ok else 'MISS'} {text}: measured {value:.3f}")
    print(
        f"loadavg at start {results['loadavg_start']}, at end {results['loadavg_end']} "
        "(other load on this machine lowers every figure; compare the ratios)"
    )
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

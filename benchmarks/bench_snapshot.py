#!/usr/bin/env python3
"""bench_snapshot.py — the KV state machine alone at N keys (default 1M x 100-byte values), in one
process: RSS of the state, the driver's pause to copy it (``snapshot_view``), the time to stream it
to a snapshot file (``write_snapshot_stream``, what the background thread does), the cost of the
writes that follow (the first write into each frozen shard copies it), the file size, and the
time to verify + restore it (what a restart and a snapshot install do).

    python3 benchmarks/bench_snapshot.py [--keys 1000000] [--value-bytes 100] [--dir DIR]

It complements bench_scale.py (a real cluster, smaller N on this machine): no HTTP, no Raft.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from raftkv.kv import Command, KVStateMachine, Op, encode_command  # noqa: E402
from raftkv.kv.statemachine import SHARDS  # noqa: E402
from raftkv.raft.types import SnapshotMeta  # noqa: E402
from raftkv.storage.snapshot import open_snapshot_data, write_snapshot_stream  # noqa: E402


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--value-bytes", type=int, default=100)
    ap.add_argument("--dir", help="where to write the snapshot (default: a temp dir)")
    args = ap.parse_args()
    tmp = Path(args.dir or tempfile.mkdtemp(prefix="raftkv-snapbench-"))
    tmp.mkdir(parents=True, exist_ok=True)
    base = rss_mib()
    sm = KVStateMachine()
    value = "v" * args.value_bytes
    t0 = time.perf_counter()
    with sm.lock:
        for i in range(1, args.keys + 1):
            sm.apply(
                i, 1, encode_command(Command(op=Op.PUT, key=f"scale-{i % 2 + 1}-{i}", value=value))
            )
    apply_s = time.perf_counter() - t0
    gc.collect()
    state = rss_mib() - base
    t0 = time.perf_counter()
    with sm.lock:
        view = sm.snapshot_view()
    copy_s = time.perf_counter() - t0
    meta = SnapshotMeta(index=args.keys, term=1, members=("a", "b", "c"))
    t0 = time.perf_counter()
    path, size = write_snapshot_stream(str(tmp), meta, view.write)
    write_s = time.perf_counter() - t0
    # writes after the view: the first one into each frozen shard copies that shard
    worst = total = 0.0
    index = args.keys
    with sm.lock:
        for i in range(SHARDS * 8):
            index += 1
            data = encode_command(Command(op=Op.PUT, key=f"scale-1-{i}", value=value))
            t = time.perf_counter()
            sm.apply(index, 1, data)
            took = time.perf_counter() - t
            worst, total = max(worst, took), total + took
    del view
    other = KVStateMachine()
    final = str(tmp / os.path.basename(path).removesuffix(".stream.tmp"))
    os.rename(path, final)
    t0 = time.perf_counter()
    layout, f = open_snapshot_data(final)
    with f:
        other.restore_stream(f, layout.data_len)
    restore_s = time.perf_counter() - t0
    assert len(other) == args.keys  # the view: before the writes above
    print(f"keys: {args.keys} x {args.value_bytes} B values")
    print(f"apply: {apply_s:.2f} s ({args.keys / apply_s:,.0f} commands/s, one thread)")
    print(f"state RSS: {state:.1f} MiB ({state * (1 << 20) / args.keys:.0f} bytes/key)")
    print(f"snapshot copy under the lock (the driver's pause): {copy_s * 1000:.1f} ms")
    print(f"snapshot stream to file (background thread) incl. fsync: {write_s:.2f} s")
    print(
        f"{SHARDS * 8} writes after the view (each frozen shard copied once): longest "
        f"{worst * 1000:.1f} ms, all {total * 1000:.0f} ms"
    )
    print(f"snapshot file: {size / (1 << 20):.1f} MiB data ({size / args.keys:.0f} bytes/key)")
    print(f"verify + restore from the file: {restore_s:.2f} s")
    print(f"loadavg {os.getloadavg()} on {os.cpu_count()} CPUs")
    if not args.dir:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""storage_bench.py — group-commit throughput of raftkv.storage against the disk's fsync rate.

Not a test: it measures and prints. For each batch size (1, 16, 64, 256 entries per
``Storage.save``, i.e. one writev + one fsync per call) it reports entries/s next to the raw
rate of "append one entry-sized record + fsync" on a plain file in the same directory: the
physical limit of a store that fsyncs per entry. Target: >= 20x that rate at batch 64.

A shared disk's fsync latency drifts by several x within seconds, so each row alternates short
slices of the raw loop and the save loop (``--slices`` rounds of each) and compares the two
totals: both see the same disk conditions.

    python benchmarks/storage_bench.py [--dir DIR] [--seconds 4] [--entry-bytes 128]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

from raftkv.raft.types import Entry, HardState
from raftkv.storage import Storage

BATCHES = (1, 16, 64, 256)
TARGET = 20.0


class RawFsync:
    """Appends one entry-sized record to a plain file and fsyncs it, again and again."""

    def __init__(self, d: str, entry_bytes: int) -> None:
        self.path = os.path.join(d, "raw-fsync.bin")
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.payload = b"r" * (entry_bytes + 37)  # ~ one entry's framed size in the WAL
        self.ops = 0
        self.elapsed = 0.0

    def run(self, seconds: float) -> None:
        start = time.perf_counter()
        deadline = start + seconds
        now = start
        while now < deadline:
            os.write(self.fd, self.payload)
            os.fsync(self.fd)
            self.ops += 1
            now = time.perf_counter()
        self.elapsed += now - start

    def close(self) -> None:
        os.close(self.fd)
        os.unlink(self.path)


class SaveLoop:
    """``Storage.save(hard_state, batch)`` in a loop on a fresh data directory."""

    def __init__(self, d: str, batch: int, entry_bytes: int) -> None:
        self.dir = os.path.join(d, f"batch-{batch}")
        self.st = Storage.open(self.dir)
        self.batch = batch
        self.data = b"v" * entry_bytes
        self.index = 1
        self.saves = 0
        self.elapsed = 0.0

    def run(self, seconds: float) -> None:
        start = time.perf_counter()
        deadline = start + seconds
        now = start
        while now < deadline:
            i = self.index
            entries = [Entry(index=i + k, term=1, data=self.data) for k in range(self.batch)]
            self.st.save(HardState(term=1, voted_for="raft-0", commit=i - 1), entries)
            self.index += self.batch
            self.saves += 1
            now = time.perf_counter()
        self.elapsed += now - start

    def close(self) -> None:
        self.st.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="raftkv storage group-commit benchmark")
    p.add_argument("--dir", default=None, help="directory on the disk to measure (default: tmp)")
    p.add_argument("--seconds", type=float, default=4.0, help="save-loop time per batch size")
    p.add_argument("--slices", type=int, default=8, help="alternating raw/save rounds per row")
    p.add_argument("--entry-bytes", type=int, default=128, help="payload bytes per entry")
    args = p.parse_args(argv)
    base = tempfile.mkdtemp(prefix="raftkv-storage-bench-", dir=args.dir)
    slice_s = args.seconds / args.slices
    try:
        print(f"disk: {base}")
        print(
            f"entry payload: {args.entry_bytes} bytes; per row {args.seconds:g} s of saves "
            f"and {args.seconds:g} s of raw fsyncs, alternating in {args.slices} slices"
        )
        print()
        print(
            f"{'batch':>6} {'entries/s':>12} {'saves/s':>9} {'ms/save':>8} "
            f"{'raw fsync/s':>12} {'x raw':>7}"
        )
        ratios = {}
        for batch in BATCHES:
            raw = RawFsync(base, args.entry_bytes)
            loop = SaveLoop(base, batch, args.entry_bytes)
            try:
                for _ in range(args.slices):
                    raw.run(slice_s)
                    loop.run(slice_s)
            finally:
                raw.close()
                loop.close()
            raw_rate = raw.ops / raw.elapsed
            sps = loop.saves / loop.elapsed
            eps = sps * batch
            ratios[batch] = eps / raw_rate
            print(
                f"{batch:>6} {eps:>12,.0f} {sps:>9,.0f} {1000 / sps:>8.3f} "
                f"{raw_rate:>12,.0f} {ratios[batch]:>7.1f}"
            )
        print()
        verdict = "meets" if ratios[64] >= TARGET else "MISSES"
        print(
            f"batch 64: {ratios[64]:.1f}x the per-entry-fsync rate "
            f"({verdict} the {TARGET:g}x target)"
        )
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""soak.py — run the randomized simulation over new seeds until stopped (or a seed fails).

    python -m tests.unit.sim.soak                 # random start, forever, stop at the first failure
    python -m tests.unit.sim.soak --start 1000 --count 5000 -j 2 --keep-going

Progress goes to stdout every few seconds. A failing seed prints its report, which starts with
``RAFTKV_SIM_SEED=<n>``; replay it exactly with

    RAFTKV_SIM_SEED=<n> pytest tests/unit/sim -k replay
    RAFTKV_SIM_SEED=<n> RAFTKV_SIM_TRACE=/tmp/t.txt pytest tests/unit/sim -k replay  # full trace

Exit status: 0 if every seed run passed (``--count``, or Ctrl-C), 1 if any failed.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import sys
import time
from collections.abc import Iterator
from multiprocessing import Pool

from tests.unit.sim.cluster import SimFailure
from tests.unit.sim.runner import run_seed

__all__ = ["main"]


def _one(seed: int) -> tuple[int, str | None, str]:
    """Run one seed; (seed, failure text or None, summary)."""
    try:
        report = run_seed(seed)
    except SimFailure as err:
        return seed, str(err), ""
    except Exception as err:  # a harness bug: report it with its seed too
        return seed, f"RAFTKV_SIM_SEED={seed} harness error: {type(err).__name__}: {err}", ""
    return seed, None, report.summary()


def _init_worker() -> None:
    logging.disable(logging.CRITICAL)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m tests.unit.sim.soak", description="Soak the Raft simulation over new seeds."
    )
    ap.add_argument("--start", type=int, default=None, help="first seed (default: random)")
    ap.add_argument("--count", type=int, default=0, help="number of seeds (default: unbounded)")
    ap.add_argument("-j", "--jobs", type=int, default=1, help="worker processes (default 1)")
    ap.add_argument("--keep-going", action="store_true", help="do not stop at the first failure")
    ap.add_argument("--every", type=float, default=5.0, help="seconds between progress lines")
    args = ap.parse_args(argv)
    if args.jobs < 1 or args.count < 0:
        ap.error("--jobs must be >= 1 and --count >= 0")
    start = args.start if args.start is not None else int.from_bytes(os.urandom(4), "big")
    seeds: Iterator[int] = (
        iter(range(start, start + args.count)) if args.count else itertools.count(start)
    )
    previous_disable = logging.root.manager.disable
    _init_worker()  # the simulated nodes log every step: silence them here too
    try:
        return _soak(args, start, seeds)
    finally:
        logging.disable(previous_disable)  # main() may run inside a test process: restore


def _soak(args: argparse.Namespace, start: int, seeds: Iterator[int]) -> int:
    print(f"soak: seeds from {start}, {args.jobs} job(s); Ctrl-C to stop", flush=True)
    done = 0
    failed: list[int] = []
    t0 = last = time.monotonic()
    pool = Pool(args.jobs, initializer=_init_worker) if args.jobs > 1 else None
    results = pool.imap(_one, seeds, chunksize=4) if pool is not None else map(_one, seeds)
    try:
        for seed, failure, summary in results:
            done += 1
            if failure is not None:
                failed.append(seed)
                print(f"\nFAILED seed {seed}:\n{failure}\n", flush=True)
                print(f"replay: RAFTKV_SIM_SEED={seed} pytest tests/unit/sim -k replay", flush=True)
                if not args.keep_going:
                    break
            now = time.monotonic()
            if now - last >= args.every:
                last = now
                rate = done / (now - t0)
                print(
                    f"soak: {done} seeds ({rate:.1f}/s), {len(failed)} failed; last: {summary}",
                    flush=True,
                )
    except KeyboardInterrupt:
        print("\nsoak: interrupted", flush=True)
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
    elapsed = time.monotonic() - t0
    print(f"soak: {done} seeds in {elapsed:.0f}s, {len(failed)} failed {failed[:20]}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

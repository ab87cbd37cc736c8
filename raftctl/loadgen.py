"""loadgen.py — a closed-loop load generator for ``raftctl bench``.

Contract: ``run_bench`` starts ``clients`` threads; each owns one keep-alive connection and
loops for ``duration`` seconds, choosing a linearizable read with probability ``read_ratio``
(of a key from a shared key space: a 404 is still a served read) or else a write of
``value_size`` bytes (with a request id, as real clients send). It sends to the leader (the
node that would forward anyway) and fails over to the other replicas on connection errors.
Every ``interval`` it hands a ``BenchSnapshot`` to ``on_tick`` for a live display. The result
holds what was measured: ops, ops/s per kind, errors, latency percentiles (ms).
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from raftctl.client import NodeUnreachable, Transport
from raftkv.keycodec import key_path

__all__ = ["BenchResult", "BenchSnapshot", "percentile", "run_bench"]


def percentile(sorted_values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile of already-sorted values (None if empty)."""
    if not sorted_values:
        return None
    rank = max(1, min(len(sorted_values), round(pct / 100.0 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


@dataclass
class _Stats:
    write_lat: list[float] = field(default_factory=list)
    read_lat: list[float] = field(default_factory=list)
    errors: int = 0
    last_error: str | None = None


@dataclass(frozen=True)
class BenchSnapshot:
    """Progress so far."""

    elapsed: float
    duration: float
    writes: int
    reads: int
    errors: int

    @property
    def ops_per_s(self) -> float:
        return (self.writes + self.reads) / self.elapsed if self.elapsed > 0 else 0.0


@dataclass(frozen=True)
class BenchResult:
    """What the benchmark measured."""

    clients: int
    duration_s: float
    read_ratio: float
    value_size: int
    writes: int
    reads: int
    errors: int
    last_error: str | None
    write_latency_ms: dict[str, float | None]
    read_latency_ms: dict[str, float | None]

    @property
    def ops(self) -> int:
        return self.writes + self.reads

    def to_json(self) -> dict[str, Any]:
        d = self.duration_s or 1.0
        return {
            "clients": self.clients,
            "duration_s": round(self.duration_s, 3),
            "read_ratio": self.read_ratio,
            "value_size": self.value_size,
            "ops": self.ops,
            "ops_per_s": round(self.ops / d, 1),
            "writes": self.writes,
            "writes_per_s": round(self.writes / d, 1),
            "reads": self.reads,
            "reads_per_s": round(self.reads / d, 1),
            "errors": self.errors,
            "last_error": self.last_error,
            "write_latency_ms": self.write_latency_ms,
            "read_latency_ms": self.read_latency_ms,
        }


def _summary(lat: list[float]) -> dict[str, float | None]:
    data = sorted(lat)
    out: dict[str, float | None] = {}
    for name, pct in (("p50", 50.0), ("p90", 90.0), ("p99", 99.0)):
        v = percentile(data, pct)
        out[name] = None if v is None else round(v * 1000, 2)
    out["max"] = round(data[-1] * 1000, 2) if data else None
    return out


def run_bench(
    urls: Sequence[str],
    *,
    clients: int,
    duration: float,
    read_ratio: float,
    value_size: int = 64,
    keys: int = 1000,
    token: str | None = None,
    interval: float = 0.5,
    on_tick: Callable[[BenchSnapshot], None] = lambda _: None,
) -> BenchResult:
    """Drive the cluster for ``duration`` seconds and measure."""
    run = uuid.uuid4().hex[:8]
    stop_at = time.monotonic() + duration
    stats = [_Stats() for _ in range(clients)]
    value = b"x" * value_size

    def worker(n: int) -> None:
        st = stats[n]
        rng = random.Random(n)
        transport = Transport(timeout=5.0, token=token)
        order = list(urls)  # the leader first; the others are fail-over targets
        seq = 0
        try:
            while time.monotonic() < stop_at:
                key = key_path(f"bench/{run}/{rng.randrange(keys)}")
                is_read = rng.random() < read_ratio
                start = time.monotonic()
                try:
                    if is_read:
                        reply = transport.request(order[0], "GET", key)
                        ok = reply.status in (200, 404)
                    else:
                        seq += 1
                        reply = transport.request(
                            order[0], "PUT", key, body=value,
                            headers={"X-Request-Id": f"bench-{run}-{n}:{seq}"},
                        )  # fmt: skip
                        ok = reply.status == 200
                except NodeUnreachable as err:
                    st.errors += 1
                    st.last_error = str(err)
                    order.append(order.pop(0))
                    continue
                took = time.monotonic() - start
                if ok:
                    (st.read_lat if is_read else st.write_lat).append(took)
                else:
                    st.errors += 1
                    st.last_error = f"{reply.status} {reply.error}"
        finally:
            transport.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        next(t for t in threads if t.is_alive()).join(timeout=interval)
        on_tick(BenchSnapshot(
            elapsed=time.monotonic() - t0,
            duration=duration,
            writes=sum(len(s.write_lat) for s in stats),
            reads=sum(len(s.read_lat) for s in stats),
            errors=sum(s.errors for s in stats),
        ))  # fmt: skip
    elapsed = time.monotonic() - t0
    write_lat = [x for s in stats for x in s.write_lat]
    read_lat = [x for s in stats for x in s.read_lat]
    errs = [s.last_error for s in stats if s.last_error]
    return BenchResult(
        clients=clients,
        duration_s=elapsed,
        read_ratio=read_ratio,
        value_size=value_size,
        writes=len(write_lat),
        reads=len(read_lat),
        errors=sum(s.errors for s in stats),
        last_error=errs[-1] if errs else None,
        write_latency_ms=_summary(write_lat),
        read_latency_ms=_summary(read_lat),
    )

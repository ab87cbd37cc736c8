"""metrics.py — the node's Prometheus metrics, in a registry of its own (not the global one).

Gauges that mirror Raft state (role, term, indexes) are read at scrape time from a status
callback, so the hot path never updates them. Counters and histograms are updated where the
event happens: proposals and elections by the driver, fsync latency around ``storage.save``,
request latency once per HTTP request. The storage counters (``Storage.stats()``) are read at
scrape time too, through ``watch_storage`` (a collector; no series until storage is open).
Metric names are a contract: the chart's Grafana dashboard and PrometheusRule query them, and a
chart test checks every name they use against a real node's ``/metrics``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["ROLES", "NodeMetrics"]

ROLES = ("follower", "pre-candidate", "candidate", "leader")

_LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.005,
    0.01,
    0.02,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
_FSYNC_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0)


class NodeMetrics:
    def __init__(self, node_id: str, status: Callable[[], Any]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._status = status
        self._storage_collector: _StorageCollector | None = None
        info = Gauge("raftkv_node_info", "Constant 1, labelled by node id", ["id"], registry=r)
        info.labels(id=node_id).set(1)
        role = Gauge("raftkv_role", "1 for the node's current Raft role", ["role"], registry=r)
        for name in ROLES:
            role.labels(role=name).set_function(self._role_is(name))
        Gauge("raftkv_is_leader", "1 when this node is the leader", registry=r).set_function(
            self._role_is("leader")
        )
        Gauge("raftkv_term", "Current Raft term", registry=r).set_function(
            lambda: float(self._status().term)
        )
        Gauge("raftkv_commit_index", "Highest log index known committed", registry=r).set_function(
            lambda: float(self._status().commit_index)
        )
        Gauge("raftkv_applied_index", "Highest log index applied", registry=r).set_function(
            lambda: float(self._status().last_applied)
        )
        Gauge("raftkv_last_log_index", "Last index in the log", registry=r).set_function(
            lambda: float(self._status().last_log_index)
        )
        Gauge("raftkv_snapshot_index", "Index of the latest snapshot", registry=r).set_function(
            lambda: float(self._status().snapshot_index)
        )
        self.proposals = Counter(
            "raftkv_proposals", "Client proposals by outcome", ["result"], registry=r
        )
        self.reads = Counter(
            "raftkv_linearizable_reads", "ReadIndex reads by outcome", ["result"], registry=r
        )
        self.elections = Counter(
            "raftkv_elections",
            "Times this node started an election (became candidate)",
            registry=r,
        )
        self.leader_changes = Counter(
            "raftkv_leader_changes", "Times the known leader changed", registry=r
        )
        self.snapshots = Counter("raftkv_snapshots", "Snapshots taken locally", registry=r)
        self.forwarded = Counter(
            "raftkv_forwarded_requests", "Requests forwarded to the leader", registry=r
        )
        self.peer_send_failures = Counter(
            "raftkv_peer_send_failures", "Failed message batches to a peer", ["peer"], registry=r
        )
        self.fsync_seconds = Histogram(
            "raftkv_fsync_seconds",
            "Duration of one durable log save (write + fsync)",
            buckets=_FSYNC_BUCKETS,
            registry=r,
        )
        self.batch_entries = Histogram(
            "raftkv_ready_entries",
            "Entries persisted per Ready (group commit size)",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
            registry=r,
        )
        self.request_seconds = Histogram(
            "raftkv_http_request_seconds",
            "HTTP request latency",
            ["method", "route", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )

        self.snapshot_bytes = Gauge(
            "raftkv_snapshot_bytes", "Size of the latest snapshot this node took", registry=r
        )
        self.snapshot_seconds = Histogram(
            "raftkv_snapshot_seconds",
            "Duration of saving one snapshot (write + fsync) and compacting the log",
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=r,
        )

        self.snapshot_transfers = Counter(
            "raftkv_snapshot_transfers",
            "Snapshots streamed to followers, by result",
            ["result"],
            registry=r,
        )
        self.pass_seconds = Histogram(
            "raftkv_driver_pass_seconds",
            "Duration of one pass of the driver loop (ticks, messages, persist, apply, snapshot): "
            "the time heartbeats and commits wait behind it",
            buckets=(
                0.0005,
                0.001,
                0.0025,
                0.005,
                0.01,
                0.025,
                0.05,
                0.1,
                0.25,
                0.5,
                1.0,
                2.5,
                5.0,
                10.0,
            ),
            registry=r,
        )
        self.pass_max = 0.0
        Gauge(
            "raftkv_driver_pass_max_seconds",
            "Longest driver loop pass since the node started",
            registry=r,
        ).set_function(lambda: self.pass_max)

    def watch_keys(self, count: Callable[[], int]) -> None:
        """Export ``count()`` (the state machine's key count) at every scrape."""
        Gauge("raftkv_keys", "Keys in the state machine", registry=self.registry).set_function(
            lambda: float(count())
        )

    def observe_pass(self, seconds: float) -> None:
        """One driver loop pass took ``seconds`` (driver thread only)."""
        self.pass_seconds.observe(seconds)
        if seconds > self.pass_max:
            self.pass_max = seconds

    def watch_storage(self, stats: Callable[[], Any]) -> None:
        """Export ``stats()`` (a ``StorageStats`` or None while closed) at every scrape."""
        if self._storage_collector is None:
            self._storage_collector = _StorageCollector(stats)
            self.registry.register(self._storage_collector)
        else:
            self._storage_collector.stats = stats

    def _role_is(self, name: str) -> Callable[[], float]:
        return lambda: 1.0 if self._status().role == name else 0.0

    def render(self) -> bytes:
        return generate_latest(self.registry)


# (name, help, attribute, counter?) — one row per StorageStats field.
_STORAGE = (
    ("raftkv_storage_saves", "Storage save() calls that wrote a WAL record", "saves", True),
    ("raftkv_storage_syncs", "fsyncs of WAL records", "syncs", True),
    ("raftkv_storage_bytes_written", "WAL bytes appended", "bytes_written", True),
    (
        "raftkv_storage_snapshots_saved",
        "Snapshots saved to disk (taken or installed)",
        "snapshots_saved",
        True,
    ),
    ("raftkv_storage_segments", "WAL segment files on disk", "segments", False),
    ("raftkv_storage_snapshot_index", "Index of the snapshot on disk", "snapshot_index", False),
    ("raftkv_storage_last_index", "Last log index on disk", "last_index", False),
)


class _StorageCollector(Collector):
    """Reads ``Storage.stats()`` when scraped (cheap: counters, no I/O)."""

    def __init__(self, stats: Callable[[], Any]) -> None:
        self.stats = stats

    def describe(self) -> list[Metric]:
        return []  # unchecked collector: the series exist only while storage is open

    def collect(self) -> list[Metric]:
        st = self.stats()
        if st is None:
            return []
        out: list[Metric] = []
        for name, text, attr, counter in _STORAGE:
            value = float(getattr(st, attr))
            family = CounterMetricFamily if counter else GaugeMetricFamily
            out.append(family(name, text, value=value))
        return out

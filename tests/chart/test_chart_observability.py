"""The chart's observability objects: the Grafana dashboard ConfigMap (grafana_dashboard: "1") and
the PrometheusRule (only where monitoring.coreos.com/v1 is served). The dashboard JSON parses, and
every raftkv metric the dashboard or the alerts query exists in a real node's /metrics."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.chart_render import CHART_DIR, Rendered, render
from tests.integration.cluster import LocalCluster

MONITORING = "monitoring.coreos.com/v1"
ON = {"metrics": {"grafanaDashboard": {"enabled": True}, "prometheusRule": {"enabled": True}}}
_METRIC = re.compile(r"\b(raftkv_[a-z0-9_]+)")


def render_with_apis(
    chart: Any, values: dict[str, Any], api_versions: list[str], namespace: str = "kv"
) -> Rendered:
    """Render as `helm install` does on a cluster that serves ``api_versions`` (helm-python-sdk's
    Chart.render has no parameter for it; its native call takes Helm's ``api_versions``)."""
    from helm_python import _native

    opts = {"name": "raftkv", "namespace": namespace, "api_versions": api_versions}
    manifests: dict[str, str] = json.loads(
        _native.call_string("helm_render", chart._raw(), json.dumps(values), json.dumps(opts))
    )
    objects = [
        d
        for name, text in sorted(manifests.items())
        if not name.endswith("NOTES.txt")
        for d in yaml.safe_load_all(text)
        if d
    ]
    return Rendered(objects=objects, notes="")


def dashboard_exprs() -> list[str]:
    doc = json.loads((CHART_DIR / "files" / "grafana-dashboard.json").read_text())
    return [t["expr"] for p in doc["panels"] for t in p.get("targets", [])]


def rule_exprs(rendered: Rendered) -> list[str]:
    rule = rendered.one("PrometheusRule")
    return [r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]]


def test_both_are_off_by_default(chart: Any) -> None:
    r = render_with_apis(chart, {}, [MONITORING])
    assert not r.find("PrometheusRule")
    assert not [c for c in r.find("ConfigMap") if "grafana_dashboard" in c["metadata"]["labels"]]


def test_dashboard_configmap_has_the_sidecar_label_and_valid_json(chart: Any) -> None:
    values = {
        "metrics": {
            "grafanaDashboard": {
                "enabled": True,
                "namespace": "monitoring",
                "labels": {"team": "kv"},
                "annotations": {"grafana_folder": "Databases"},
            }
        }
    }
    cm = render(chart, values).one("ConfigMap", "raftkv-dashboard")
    meta = cm["metadata"]
    assert meta["labels"]["grafana_dashboard"] == "1" and meta["labels"]["team"] == "kv"
    assert meta["namespace"] == "monitoring"
    assert meta["annotations"]["grafana_folder"] == "Databases"
    doc = json.loads(cm["data"]["raftkv.json"])
    assert doc["uid"] == "raftkv-overview" and doc["title"] == "raftkv"
    titles = " | ".join(p["title"] for p in doc["panels"])
    for wanted in (
        "Leader",
        "Term",
        "Commit lag per replica",
        "Apply lag per replica",
        "Proposals by result",
        "HTTP requests by route and status",
        "Request latency p50 / p99",
        "fsync latency p50 / p99",
        "Snapshot size",
        "Snapshot duration",
    ):
        assert wanted in titles, wanted
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids))
    for p in doc["panels"]:
        assert p["gridPos"]["x"] >= 0 and p["gridPos"]["x"] + p["gridPos"]["w"] <= 24
        for t in p.get("targets", []):
            assert t["expr"].count("(") == t["expr"].count(")"), t["expr"]
    assert {v["name"] for v in doc["templating"]["list"]} == {"datasource", "namespace", "job"}


def test_prometheus_rule_needs_the_operator_api(chart: Any) -> None:
    assert not render_with_apis(chart, ON, []).find("PrometheusRule")
    assert not render(chart, ON).find("PrometheusRule")
    rule = render_with_apis(chart, ON, [MONITORING]).one("PrometheusRule")
    assert rule["apiVersion"] == MONITORING and rule["metadata"]["namespace"] == "kv"


def test_alerts_select_this_release_and_use_the_thresholds(chart: Any) -> None:
    values = {
        "metrics": {
            "prometheusRule": {
                "enabled": True,
                "labels": {"release": "prom"},
                "followerLagEntries": 250,
                "fsyncP99Seconds": 0.05,
                "volumeFreeRatio": 0.2,
                "leaderChangesPer15m": 5,
                "noLeaderFor": "2m",
            }
        }
    }
    rule = render_with_apis(chart, values, [MONITORING]).one("PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "prom"
    rules = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    assert set(rules) == {
        "RaftkvNoLeader",
        "RaftkvFrequentLeaderChanges",
        "RaftkvFollowerLagging",
        "RaftkvSlowFsync",
        "RaftkvDataVolumeNearlyFull",
    }
    sel = 'namespace="kv", job="raft-service"'
    assert rules["RaftkvNoLeader"]["expr"] == f"sum(raftkv_is_leader{{{sel}}}) < 1"
    assert rules["RaftkvNoLeader"]["for"] == "2m"
    assert rules["RaftkvFollowerLagging"]["expr"].endswith("> 250")
    assert rules["RaftkvSlowFsync"]["expr"].endswith("> 0.05")
    assert rules["RaftkvFrequentLeaderChanges"]["expr"].endswith("> 5")
    vol = rules["RaftkvDataVolumeNearlyFull"]["expr"]
    assert 'persistentvolumeclaim=~"data-raft-[0-9]+"' in vol and vol.endswith("< 0.2")
    assert "kubelet_volume_stats_available_bytes" in vol
    # Prometheus templates survive Helm's: the annotation keeps {{ $labels.pod }}
    assert "{{ $labels.pod }}" in rules["RaftkvFollowerLagging"]["annotations"]["summary"]
    for r in rules.values():
        assert r["labels"]["severity"] in ("warning", "critical")
        assert r["expr"].count("(") == r["expr"].count(")")


def test_schema_rejects_bad_thresholds(chart: Any) -> None:
    from helm_python.errors import HelmError

    for bad in (
        {"volumeFreeRatio": 1.5},
        {"followerLagEntries": 0},
        {"noLeaderFor": "soon"},
        {"unknown": 1},
    ):
        with pytest.raises(HelmError):
            render(chart, {"metrics": {"prometheusRule": {"enabled": True, **bad}}})


# ---------------------------------------------------------------- against a real node's /metrics
@pytest.fixture(scope="module")
def node_metrics(tmp_path_factory: pytest.TempPathFactory) -> Iterator[set[str]]:
    cluster = LocalCluster(Path(tmp_path_factory.mktemp("metrics-node")), size=1)
    try:
        cluster.start()
        cluster.wait_for_leader()
        cluster.put_ok(0, "k", "v")
        assert cluster.get(0, "/v1/kv/k").status == 200  # a linearizable read
        assert cluster.request(0, "POST", "/v1/admin/snapshot").status == 200
        text = cluster.get(0, "/metrics").body.decode()
        yield {
            line.split("{")[0].split(" ")[0]
            for line in text.splitlines()
            if line and not line.startswith("#")
        }
    finally:
        cluster.close()


@pytest.mark.integration
def test_every_metric_the_dashboard_and_alerts_query_exists(
    chart: Any, node_metrics: set[str]
) -> None:
    used = {
        m
        for e in dashboard_exprs() + rule_exprs(render_with_apis(chart, ON, [MONITORING]))
        for m in _METRIC.findall(e)
    }
    assert len(used) >= 15
    assert sorted(used - node_metrics) == []


@pytest.mark.integration
def test_metrics_export_the_storage_counters(node_metrics: set[str]) -> None:
    for name in (
        "raftkv_storage_saves_total",
        "raftkv_storage_syncs_total",
        "raftkv_storage_bytes_written_total",
        "raftkv_storage_snapshots_saved_total",
        "raftkv_storage_segments",
        "raftkv_storage_snapshot_index",
        "raftkv_storage_last_index",
        "raftkv_snapshot_bytes",
        "raftkv_snapshot_seconds_count",
    ):
        assert name in node_metrics, name

"""The chart's pod environment, fed to the node's own configuration code
(``raftkv.config.load_config``) exactly as `raftkv serve` reads it in pod ``raft-N``: every pod
gets the same voter set, made of the headless Service's per-pod DNS names on port 8000, itself
included, with its own id from the pod name — in both peer discovery modes, under renamed
objects and another namespace and cluster domain."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest

from raftkv.config import NodeConfig, load_config
from tests.chart.chart_render import Rendered, render, resolve_env


def _node_configs(r: Rendered, namespace: str) -> list[NodeConfig]:
    sts = r.statefulset()
    secrets = {
        (s["metadata"]["name"], key): base64.b64decode(value).decode()
        for s in r.find("Secret")
        for key, value in s["data"].items()
    }
    env_spec = r.node_container()["env"]
    configs = []
    for i in range(sts["spec"]["replicas"]):
        pod = f"{sts['metadata']['name']}-{i}"
        env = resolve_env(env_spec, pod_name=pod, namespace=namespace, secrets=secrets)
        # the image's own ENV (images/raftkv/Dockerfile) sits under the pod's env
        env = {"RAFTKV_DATA_DIR": "/data", "RAFTKV_PORT": "8000", **env}
        configs.append(load_config({}, env, hostname=pod))
    return configs


CASES: dict[str, tuple[dict[str, Any], str, str, str, str]] = {
    # name: (values, namespace, statefulset, headless service, cluster domain)
    "template-3": ({}, "default", "raft", "raft-service", "cluster.local"),
    "template-5-renamed": (
        {
            "replicaCount": 5,
            "statefulset": {"name": "kv"},
            "headlessService": {"name": "kv-peers"},
            "clusterDomain": "corp.internal",
        },
        "prod",
        "kv",
        "kv-peers",
        "corp.internal",
    ),
    "template-7-renamed": (
        {
            "replicaCount": 7,
            "statefulset": {"name": "kv"},
            "headlessService": {"name": "kv-peers"},
            "clusterDomain": "corp.internal",
        },
        "prod",
        "kv",
        "kv-peers",
        "corp.internal",
    ),
    "single": ({"replicaCount": 1}, "default", "raft", "raft-service", "cluster.local"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_pod_derives_the_same_dns_voter_set(chart: Any, case: str) -> None:
    values, namespace, sts, headless, domain = CASES[case]
    r = render(chart, copy.deepcopy(values), name="raftkv", namespace=namespace)
    configs = _node_configs(r, namespace)
    replicas = values.get("replicaCount", 3)
    expected = tuple(
        (f"{sts}-{i}", f"http://{sts}-{i}.{headless}.{namespace}.svc.{domain}:8000")
        for i in range(replicas)
    )
    assert len(configs) == replicas
    for i, cfg in enumerate(configs):
        assert cfg.id == f"{sts}-{i}"
        assert tuple((p.id, p.url) for p in cfg.peers) == expected
        assert cfg.port == 8000 and cfg.host == "0.0.0.0"
        assert cfg.data_dir == "/data"


def test_token_from_the_secret_reaches_every_node(chart: Any) -> None:
    r = render(chart, {"auth": {"token": "a-very-long-cluster-token"}})
    assert {c.token for c in _node_configs(r, "default")} == {"a-very-long-cluster-token"}
    generated = render(chart, {})
    tokens = {c.token for c in _node_configs(generated, "default")}
    assert len(tokens) == 1 and len(tokens.pop() or "") == 48
    no_auth = render(chart, {"auth": {"enabled": False}})
    assert {c.token for c in _node_configs(no_auth, "default")} == {None}


def test_timing_values_reach_the_node(chart: Any) -> None:
    r = render(chart, {"node": {"electionMs": 1500, "heartbeatMs": 150, "snapshotEvery": 777}})
    cfg = _node_configs(r, "default")[0]
    assert (cfg.election_ms, cfg.heartbeat_ms, cfg.snapshot_every) == (1500, 150, 777)
    defaults = _node_configs(render(chart, {}), "default")[0]
    plain = load_config({"id": "raft-0", "replicas": "3"}, {}, hostname="raft-0")
    assert (defaults.election_ms, defaults.heartbeat_ms, defaults.snapshot_every) == (
        plain.election_ms,
        plain.heartbeat_ms,
        plain.snapshot_every,
    )

"""Chart security values (issue 15), rendered by Helm's engine: cluster-token rotation lists,
client tokens, TLS from an existing Secret or cert-manager (probes, peers and the client Pod on
HTTPS), and the NetworkPolicy of each case. The node environment the chart gives a pod is fed
to the node's real config loader, so a value the node would refuse fails here."""

from __future__ import annotations

import base64
import fnmatch
from typing import Any
from urllib.parse import urlsplit

import pytest

from raftkv.config import load_config
from tests.chart.chart_render import Rendered, iter_containers, pod_specs, render, resolve_env

ROTATION = ["new-cluster-token-0123456", "old-cluster-token-0123456"]


def _secret_data(r: Rendered) -> dict[tuple[str, str], str]:
    out = {}
    for s in r.find("Secret"):
        for k, v in (s.get("data") or {}).items():
            out[(s["metadata"]["name"], k)] = base64.b64decode(v).decode()
    return out


def _node_config(r: Rendered, pod: str = "raft-1", ns: str = "default") -> Any:
    env = resolve_env(
        r.node_container()["env"], pod_name=pod, namespace=ns, secrets=_secret_data(r)
    )
    return load_config({}, env, pod)


def _client_container(r: Rendered) -> dict[str, Any]:
    spec = r.client_pod()["spec"]
    return next(c for c in spec["containers"] if c["name"] == "raftctl")


def test_token_rotation_list_is_one_secret_value_and_rolls_the_pods(chart: Any) -> None:
    r = render(chart, {"auth": {"tokens": ROTATION}})
    secret = r.one("Secret", "raftkv-token")
    assert base64.b64decode(secret["data"]["token"]).decode() == ",".join(ROTATION)
    cfg = _node_config(r)
    assert cfg.cluster_tokens == tuple(ROTATION) and cfg.token == ROTATION[0]
    ann = r.statefulset()["spec"]["template"]["metadata"]["annotations"]
    swapped = render(chart, {"auth": {"tokens": ROTATION[::-1]}})
    ann2 = swapped.statefulset()["spec"]["template"]["metadata"]["annotations"]
    assert ann["checksum/auth-token"] != ann2["checksum/auth-token"]  # each step rolls the pods
    env = {e["name"]: e for e in _client_container(r)["env"]}
    assert env["RAFTCTL_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "raftkv-token"


def test_token_and_tokens_together_are_refused(chart: Any) -> None:
    import helm_python

    with pytest.raises(helm_python.HelmError, match=r"auth\.token and auth\.tokens"):
        render(chart, {"auth": {"token": ROTATION[0], "tokens": ROTATION}})


def test_client_tokens_secret_and_node_env(chart: Any) -> None:
    ro = ["ro-token-0123456789ab", "ro2-token-01234567"]
    r = render(
        chart,
        {"clientAuth": {"enabled": True, "tokens": ["rw-token-0123456789ab"], "readTokens": ro}},
    )
    data = _secret_data(r)
    assert data[("raftkv-client-tokens", "tokens")] == "rw-token-0123456789ab"
    assert data[("raftkv-client-tokens", "readTokens")] == ",".join(ro)
    cfg = _node_config(r)
    assert cfg.client_tokens == ("rw-token-0123456789ab",)
    assert cfg.client_read_tokens == ("ro-token-0123456789ab", "ro2-token-01234567")
    # generated when not given; the client Pod uses it when there is no cluster token
    gen = render(chart, {"auth": {"enabled": False}, "clientAuth": {"enabled": True}})
    token = _secret_data(gen)[("raftkv-client-tokens", "tokens")]
    assert len(token) == 48
    env = {e["name"]: e for e in _client_container(gen)["env"]}
    assert env["RAFTCTL_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "raftkv-client-tokens",
        "key": "tokens",
    }
    cfg = _node_config(gen)  # readTokens absent: the optional variable stays unset
    assert cfg.client_tokens == (token,) and cfg.client_read_tokens == ()
    assert "RAFTKV_CLIENT_TOKENS" not in render(chart, {}).node_env()


def _hosts_covered(names: list[str], host: str) -> bool:
    return any(fnmatch.fnmatchcase(host, n) and n.count(".") == host.count(".") for n in names)


@pytest.mark.parametrize("replicas", [3, 5])
def test_cert_manager_certificate_covers_every_name_the_chart_uses(
    chart: Any, replicas: int
) -> None:
    r = render(
        chart,
        {
            "replicaCount": replicas,
            "tls": {
                "enabled": True,
                "certManager": {"issuer": "ca-issuer", "issuerKind": "ClusterIssuer"},
            },
        },
        namespace="kv",
    )
    cert = r.one("Certificate")
    spec = cert["spec"]
    assert spec["secretName"] == "raftkv-tls"
    assert spec["issuerRef"] == {
        "name": "ca-issuer",
        "kind": "ClusterIssuer",
        "group": "cert-manager.io",
    }
    assert {"server auth", "client auth"} <= set(spec["usages"])  # peers use it both ways
    cfg = _node_config(r, "raft-2", "kv")
    hosts = {urlsplit(u).hostname for u in cfg.peer_urls.values()}
    client = _client_container(r)
    endpoints = client["command"][client["command"].index("--endpoints") + 1]
    hosts |= {urlsplit(u).hostname for u in endpoints.split(",")}
    hosts |= {"raftkv", "raftkv.kv.svc.cluster.local", "localhost"}
    assert len(hosts) >= 2 * replicas
    for h in hosts:
        assert h is not None and _hosts_covered(spec["dnsNames"], h), (h, spec["dnsNames"])


def test_tls_wires_the_secret_probes_peers_and_client(chart: Any) -> None:
    r = render(chart, {"tls": {"enabled": True, "existingSecret": "my-tls"}})
    assert not r.find("Certificate")
    pod = r.statefulset()["spec"]["template"]["spec"]
    vol = next(v for v in pod["volumes"] if v["name"] == "tls")
    assert vol["secret"]["secretName"] == "my-tls" and "items" not in vol["secret"]  # no subPath
    node = r.node_container()
    assert {"name": "tls", "mountPath": "/tls", "readOnly": True} in node["volumeMounts"]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert node[probe]["httpGet"]["scheme"] == "HTTPS", probe
    cfg = _node_config(r)
    assert cfg.tls and cfg.peer_mtls and cfg.tls_ca == "/tls/ca.crt"
    assert all(u.startswith("https://") for u in cfg.peer_urls.values())
    template = r.node_env().get("RAFTKV_PEER_TEMPLATE")
    if template is not None:
        assert template["value"].startswith("https://")
    # the client Pod: https endpoints, trusts ca.crt (and only gets ca.crt), waits over HTTPS
    for where, spec in pod_specs(r):
        if where.startswith("StatefulSet"):
            continue
        tls_vols = [v for v in spec.get("volumes", []) if v["name"] == "tls"]
        assert tls_vols and tls_vols[0]["secret"]["items"] == [
            {"key": "ca.crt", "path": "ca.crt"}
        ], where
        for c in iter_containers(spec):
            text = " ".join(c["command"])
            assert "http://" not in text, (where, text)
            if c["name"] == "wait-ready":
                assert "--cacert /tls/ca.crt https://raftkv:8000/readyz" in text
            else:
                env = {e["name"]: e.get("value") for e in c["env"]}
                assert env["RAFTCTL_CACERT"] == "/tls/ca.crt"
    plain = render(chart, {"tls": {"enabled": True, "peerMtls": False}})
    assert not _node_config(plain).peer_mtls


def _rule_sources(r: Rendered) -> list[dict[str, Any]]:
    (rule,) = r.one("NetworkPolicy")["spec"]["ingress"]
    assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]
    sources: list[dict[str, Any]] = rule["from"]
    return sources


@pytest.mark.parametrize("case", ["plain", "tls", "client-job", "cidrs", "extra"])
def test_network_policy_admits_what_each_case_needs(chart: Any, case: str) -> None:
    values: dict[str, Any] = {"networkPolicy": {"enabled": True}}
    if case == "tls":
        values["tls"] = {"enabled": True}
    if case == "client-job":
        values["client"] = {"kind": "Job"}
    if case == "cidrs":  # kind: raftctl through the API server proxy comes from the node subnet
        values["networkPolicy"]["allowCIDRs"] = ["172.18.0.0/16", "fc00:f853:ccd:e793::/64"]
    if case == "extra":
        values["networkPolicy"]["extraIngress"] = [{"podSelector": {"matchLabels": {"a": "b"}}}]
    r = render(chart, values)
    sources = _rule_sources(r)
    pod_labels = r.statefulset()["spec"]["template"]["metadata"]["labels"]
    selectors = [s["podSelector"]["matchLabels"] for s in sources if "podSelector" in s]

    def admitted(labels: dict[str, str]) -> bool:
        return any(all(labels.get(k) == v for k, v in sel.items()) for sel in selectors)

    assert admitted(pod_labels)  # peers
    for where, _spec in pod_specs(r):  # the client Pod/Job pod and the helm test pod
        if where.startswith("StatefulSet"):
            continue
        owner = next(
            o
            for o in r.objects
            if o["kind"] in ("Pod", "Job") and where.endswith(o["metadata"]["name"])
        )
        labels = (
            owner["spec"]["template"]["metadata"]["labels"]
            if owner["kind"] == "Job"
            else owner["metadata"]["labels"]
        )
        assert admitted(labels), where
    blocks = [s["ipBlock"]["cidr"] for s in sources if "ipBlock" in s]
    assert blocks == (values["networkPolicy"].get("allowCIDRs") or [])
    if case == "extra":
        assert {"podSelector": {"matchLabels": {"a": "b"}}} in sources
    # nothing else is open: no empty source (which would admit everyone)
    assert all(s for s in sources)

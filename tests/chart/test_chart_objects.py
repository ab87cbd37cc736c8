"""The chart, rendered by Helm's real engine for several values sets: every object is valid
Kubernetes (kubernetes-validate, strict) and lint is clean, and the properties the issue asks
for hold on the rendered objects — Parallel StatefulSet with pod-DNS peers, headless Service
publishing not-ready addresses, PVCs, hard/soft anti-affinity, probes, PDB keeping a majority,
token Secret wiring, restrictive securityContext, the client (a bare Pod by default, or a Job with
client.kind=Job) and helm test running `raftctl verify`, ServiceMonitor and NetworkPolicy."""

from __future__ import annotations

import base64
import copy
import re
from typing import Any

import kubernetes_validate
import pytest

import raftkv
from raftkv.config import load_config
from tests.chart.chart_render import (
    CHART_DIR,
    Obj,
    Rendered,
    iter_containers,
    load_values_yaml,
    pod_specs,
    render,
)

KUBE_VERSIONS = ("1.25", kubernetes_validate.latest_version())

# name -> (values, release name, namespace)
VALUE_SETS: dict[str, tuple[dict[str, Any], str, str]] = {
    "defaults": ({}, "raftkv", "default"),
    "no-persistence": ({"persistence": {"enabled": False}}, "raftkv", "default"),
    "soft-anti-affinity": ({"antiAffinity": "soft"}, "raftkv", "kv"),
    "replicas-5": ({"replicaCount": 5}, "raftkv", "default"),
    "renamed": (
        {
            "statefulset": {"name": "kv"},
            "headlessService": {"name": "kv-peers"},
            "service": {"name": "kv-client", "type": "NodePort"},
            "clusterDomain": "corp.internal",
            "persistence": {"storageClass": "-", "retainOnDelete": False},
        },
        "store",
        "prod",
    ),
    "minimal": (
        {
            "auth": {"enabled": False},
            "client": {"enabled": False},
            "tests": {"enabled": False},
            "pdb": {"enabled": False},
            "livenessProbe": {"enabled": False},
            "startupProbe": {"enabled": False},
        },
        "raftkv",
        "default",
    ),
    "existing-secret": (
        {"auth": {"existingSecret": "my-token", "existingSecretKey": "cluster-token"}},
        "raftkv",
        "default",
    ),
    "everything-on": (
        {
            "replicaCount": 7,
            "image": {"tag": "dev", "pullSecrets": ["regcred"], "pullPolicy": "Always"},
            "commonLabels": {"team": "storage"},
            "commonAnnotations": {"owner": "kv@example.com"},
            "node": {
                "electionMs": 1500,
                "heartbeatMs": 150,
                "snapshotEvery": 5000,
                "extraEnv": [{"name": "TZ", "value": "UTC"}],
            },
            "auth": {"token": "s3cret-token-for-the-cluster"},
            "persistence": {"storageClass": "standard", "size": "10Gi"},
            "statefulset": {"priorityClassName": "high", "podAnnotations": {"a": "b"}},
            "metrics": {
                "serviceMonitor": {"enabled": True, "labels": {"release": "prom"}},
                "grafanaDashboard": {"enabled": True},
                "prometheusRule": {"enabled": True},
            },
            "networkPolicy": {
                "enabled": True,
                "extraIngress": [
                    {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "mon"}}}
                ],
            },
            "client": {"extraArgs": ["--output", "json"]},
            "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "kv"}],
            "nodeSelector": {"disk": "ssd"},
        },
        "raftkv",
        "default",
    ),
    "single-node": ({"replicaCount": 1}, "raftkv", "default"),
    # issue 15: token rotation list, client tokens, TLS with cert-manager / an existing Secret
    "security-cert-manager": (
        {
            "auth": {"tokens": ["new-cluster-token-0123456", "old-cluster-token-0123456"]},
            "clientAuth": {"enabled": True, "readTokens": ["read-only-token-0123456"]},
            "tls": {
                "enabled": True,
                "certManager": {"issuer": "ca-issuer", "issuerKind": "ClusterIssuer"},
            },
            "networkPolicy": {"enabled": True, "allowCIDRs": ["172.18.0.0/16"]},
        },
        "raftkv",
        "default",
    ),
    "security-existing-secrets": (
        {
            "auth": {"enabled": False},
            "clientAuth": {"enabled": True, "existingSecret": "my-client-tokens"},
            "tls": {"enabled": True, "existingSecret": "my-tls", "peerMtls": False},
            "client": {"kind": "Job"},
        },
        "store",
        "prod",
    ),
    "client-job": ({"client": {"kind": "Job"}}, "raftkv", "default"),
    "restore": (
        {
            "restore": {"enabled": True, "secretName": "raftkv-restore", "clusterId": "c0ffee"},
            "node": {"clusterId": "c0ffee"},
        },
        "raftkv",
        "restored",
    ),
}


# value set -> APIs its pretend cluster serves beyond the built-in ones
API_VERSIONS: dict[str, tuple[str, ...]] = {"everything-on": ("monitoring.coreos.com/v1",)}


@pytest.fixture(scope="module")
def renders(chart: Any) -> dict[str, Rendered]:
    return {
        key: render(
            chart,
            copy.deepcopy(values),
            name=release,
            namespace=ns,
            api_versions=API_VERSIONS.get(key, ()),
        )
        for key, (values, release, ns) in VALUE_SETS.items()
    }


@pytest.fixture(scope="module")
def default(renders: dict[str, Rendered]) -> Rendered:
    return renders["defaults"]


def _labels(obj: Obj) -> dict[str, str]:
    labels: dict[str, str] = obj["metadata"].get("labels") or {}
    return labels


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


# ---------------------------------------------------------------- validity of every rendered object


@pytest.mark.parametrize("key", sorted(VALUE_SETS))
def test_every_object_is_valid_kubernetes(renders: dict[str, Rendered], key: str) -> None:
    rendered = renders[key]
    assert rendered.objects, "nothing rendered"
    for obj in rendered.objects:
        if obj["kind"] in ("ServiceMonitor", "PrometheusRule"):  # CRDs: not in the Kubernetes
            assert obj["apiVersion"] == "monitoring.coreos.com/v1"  # schemas; checked elsewhere
            continue
        if obj["kind"] == "Certificate":  # cert-manager's CRD: test_chart_security.py
            assert obj["apiVersion"] == "cert-manager.io/v1"
            continue
        if obj["kind"] == "PrometheusRule":  # a CRD: test_chart_observability.py checks it
            assert obj["apiVersion"] == "monitoring.coreos.com/v1"
            continue
        for version in KUBE_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as err:
                path = "/".join(str(p) for p in err.path)
                pytest.fail(
                    f"{key}: {obj['kind']}/{obj['metadata']['name']} (k8s {version}) "
                    f"at {path}: {err.message}"
                )


@pytest.mark.parametrize("key", sorted(VALUE_SETS))
def test_lint_is_clean(key: str) -> None:
    import helm_python

    values, _, namespace = VALUE_SETS[key]
    report = helm_python.lint(str(CHART_DIR), copy.deepcopy(values), namespace=namespace)
    problems = [m for m in report["messages"] if m["severity"] >= 2]  # 2 = warning, 3 = error
    assert not problems, problems
    assert not report["errors"]


@pytest.mark.parametrize("key", sorted(VALUE_SETS))
def test_every_object_carries_the_standard_labels(renders: dict[str, Rendered], key: str) -> None:
    _, release, namespace = VALUE_SETS[key]
    for obj in renders[key].objects:
        labels = _labels(obj)
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        assert labels.get("app.kubernetes.io/name") == "raftkv", where
        assert labels.get("app.kubernetes.io/instance") == release, where
        assert labels.get("app.kubernetes.io/managed-by") == "Helm", where
        assert labels.get("helm.sh/chart", "").startswith("raftkv-"), where
        if obj["kind"] != "ServiceMonitor":
            assert obj["metadata"]["namespace"] == namespace, where


# ---------------------------------------------------------------- names (docs/contracts.md §6)


def test_default_names_follow_the_contract(default: Rendered) -> None:
    assert default.kinds() == sorted(
        [
            "PodDisruptionBudget/raftkv",
            "Pod/" + default.client_pod()["metadata"]["name"],
            "Pod/raftkv-test-verify",
            "Secret/raftkv-token",
            "Service/raft-service",
            "Service/raftkv",
            "StatefulSet/raft",
        ]
    )
    assert default.client_pod()["metadata"]["name"].startswith("raftkv-client-")
    port = default.node_container()["ports"]
    assert port == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    assert default.node_container()["image"] == f"localhost:5001/raftkv:{raftkv.__version__}"


def test_renamed_objects_use_the_values(renders: dict[str, Rendered]) -> None:
    r = renders["renamed"]
    assert r.statefulset()["metadata"]["name"] == "kv"
    assert r.statefulset()["spec"]["serviceName"] == "kv-peers"
    assert r.one("Service", "kv-peers")["spec"]["clusterIP"] == "None"
    assert r.one("Service", "kv-client")["spec"]["type"] == "NodePort"
    assert r.find("Secret", "store-token")
    verify = r.client_pod()["spec"]["containers"][0]["command"]
    assert "http://kv-0.kv-peers:8000,http://kv-1.kv-peers:8000,http://kv-2.kv-peers:8000" in verify


# ---------------------------------------------------------------- StatefulSet and Services


@pytest.mark.parametrize("key", sorted(VALUE_SETS))
def test_statefulset_is_parallel_and_selects_its_pods(
    renders: dict[str, Rendered], key: str
) -> None:
    values, _, _ = VALUE_SETS[key]
    sts = renders[key].statefulset()
    spec = sts["spec"]
    assert spec["podManagementPolicy"] == "Parallel"
    assert spec["replicas"] == values.get("replicaCount", 3)
    selector = spec["selector"]["matchLabels"]
    assert selector["app.kubernetes.io/component"] == "node"
    assert _matches(selector, spec["template"]["metadata"]["labels"])


@pytest.mark.parametrize("key", sorted(VALUE_SETS))
def test_headless_service_publishes_not_ready_pods(renders: dict[str, Rendered], key: str) -> None:
    r = renders[key]
    sts = r.statefulset()
    headless = r.one("Service", sts["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["publishNotReadyAddresses"] is True
    assert headless["spec"]["ports"] == [
        {"name": "http", "port": 8000, "targetPort": "http", "protocol": "TCP"}
    ]
    pod_labels = sts["spec"]["template"]["metadata"]["labels"]
    assert _matches(headless["spec"]["selector"], pod_labels)
    clients = [s for s in r.find("Service") if s is not headless]
    assert len(clients) == 1
    assert clients[0]["spec"].get("clusterIP") != "None"
    assert "publishNotReadyAddresses" not in clients[0]["spec"]  # clients only reach Ready nodes
    assert _matches(clients[0]["spec"]["selector"], pod_labels)
    assert clients[0]["spec"]["ports"][0]["targetPort"] == "http"


def test_hard_anti_affinity_by_default(default: Rendered) -> None:
    spec = default.statefulset()["spec"]["template"]["spec"]
    terms = spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert len(terms) == 1
    assert terms[0]["topologyKey"] == "kubernetes.io/hostname"
    assert _matches(
        terms[0]["labelSelector"]["matchLabels"],
        default.statefulset()["spec"]["template"]["metadata"]["labels"],
    )
    assert (
        "preferredDuringSchedulingIgnoredDuringExecution" not in spec["affinity"]["podAntiAffinity"]
    )


def test_soft_anti_affinity_is_only_preferred(renders: dict[str, Rendered]) -> None:
    r = renders["soft-anti-affinity"]
    anti = r.statefulset()["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    assert "requiredDuringSchedulingIgnoredDuringExecution" not in anti
    (term,) = anti["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert "two replicas may share a Kubernetes node" in r.notes


def test_explicit_affinity_replaces_the_preset(chart: Any) -> None:
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}
                ]
            }
        }
    }
    r = render(chart, {"affinity": affinity})
    assert r.statefulset()["spec"]["template"]["spec"]["affinity"] == affinity


@pytest.mark.parametrize("key", sorted(VALUE_SETS))
def test_probes_hit_healthz_and_readyz_on_the_http_port(
    renders: dict[str, Rendered], key: str
) -> None:
    values, _, _ = VALUE_SETS[key]
    c = renders[key].node_container()
    expected = {
        "readinessProbe": "/readyz",
        "livenessProbe": "/healthz",
        "startupProbe": "/healthz",
    }
    for probe, path in expected.items():
        if values.get(probe, {}).get("enabled", True) is False:
            assert probe not in c
            continue
        expect = {"path": path, "port": "http"}
        if values.get("tls", {}).get("enabled"):
            expect["scheme"] = "HTTPS"
        assert c[probe]["httpGet"] == expect, probe
        assert c[probe]["timeoutSeconds"] >= 1
    port_names = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert port_names["http"] == 8000
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"  # never optional


def test_startup_budget_and_grace_period(default: Rendered) -> None:
    c = default.node_container()
    startup = c["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120  # log replay on a big PVC
    spec = default.statefulset()["spec"]["template"]["spec"]
    # SIGTERM -> stop writes, transfer leadership (one election timeout), flush: well within 30 s.
    assert spec["terminationGracePeriodSeconds"] >= 20


@pytest.mark.parametrize("key", sorted(VALUE_SETS))
def test_no_service_link_env_in_the_node_namespace(renders: dict[str, Rendered], key: str) -> None:
    """With service links, a Service named `raftkv` would inject RAFTKV_PORT=tcp://<ip>:8000,
    RAFTKV_SERVICE_HOST... into every pod: the node's own RAFTKV_* namespace."""
    for where, spec in pod_specs(renders[key]):
        assert spec["enableServiceLinks"] is False, where


def test_resources_are_set(default: Rendered) -> None:
    res = default.node_container()["resources"]
    assert res["requests"]["cpu"] and res["requests"]["memory"] and res["limits"]["memory"]
    assert "cpu" not in res["limits"]  # CPU throttling would delay heartbeats


# ---------------------------------------------------------------- persistence


def test_data_dir_is_a_pvc_by_default(default: Rendered) -> None:
    sts = default.statefulset()["spec"]
    (claim,) = sts["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    # `raftctl down --purge` deletes the PVCs by this label
    assert claim["metadata"]["labels"]["app.kubernetes.io/instance"] == "raftkv"
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
    assert "storageClassName" not in claim["spec"]  # the cluster's default class
    mounts = {m["name"]: m["mountPath"] for m in default.node_container()["volumeMounts"]}
    assert mounts["data"] == "/data"
    assert default.node_env()["RAFTKV_DATA_DIR"]["value"] == "/data"
    volumes = {v["name"] for v in sts["template"]["spec"]["volumes"]}
    assert "data" not in volumes
    assert sts["persistentVolumeClaimRetentionPolicy"] == {
        "whenDeleted": "Retain",
        "whenScaled": "Retain",
    }
    assert "WARNING: persistence.enabled=false" not in default.notes


def test_immutable_statefulset_fields_do_not_change_with_the_chart_version(chart: Any) -> None:
    """Kubernetes forbids updating a StatefulSet's selector, serviceName, podManagementPolicy and
    volumeClaimTemplates: none of them may carry the chart or image version, or every
    `helm upgrade` to a new version would be refused."""
    old = render(chart, {"image": {"tag": "1.0.0"}}).statefulset()["spec"]
    new = render(chart, {"image": {"tag": "2.0.0"}}).statefulset()["spec"]
    for field in ("selector", "serviceName", "podManagementPolicy", "volumeClaimTemplates"):
        assert old[field] == new[field], field
    assert old["template"] != new["template"]  # the pod template is what rolls


def test_storage_class_and_size(renders: dict[str, Rendered]) -> None:
    claim = renders["everything-on"].statefulset()["spec"]["volumeClaimTemplates"][0]["spec"]
    assert claim["storageClassName"] == "standard"
    assert claim["resources"]["requests"]["storage"] == "10Gi"
    renamed = renders["renamed"].statefulset()["spec"]
    assert renamed["volumeClaimTemplates"][0]["spec"]["storageClassName"] == ""
    assert renamed["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Delete"


def test_no_persistence_uses_emptydir_and_warns_loudly(renders: dict[str, Rendered]) -> None:
    r = renders["no-persistence"]
    sts = r.statefulset()["spec"]
    assert "volumeClaimTemplates" not in sts
    volumes = {v["name"]: v for v in sts["template"]["spec"]["volumes"]}
    assert volumes["data"] == {"name": "data", "emptyDir": {}}
    assert "WARNING: persistence.enabled=false" in r.notes
    assert "acknowledged writes can be LOST" in r.notes


# ---------------------------------------------------------------- PodDisruptionBudget


@pytest.mark.parametrize(("replicas", "max_unavailable"), [(1, 0), (3, 1), (5, 2), (7, 3), (9, 4)])
def test_pdb_never_lets_a_majority_go(chart: Any, replicas: int, max_unavailable: int) -> None:
    r = render(chart, {"replicaCount": replicas})
    pdb = r.one("PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == max_unavailable
    assert replicas - max_unavailable > replicas // 2  # what stays is a majority
    assert _matches(
        pdb["spec"]["selector"]["matchLabels"],
        r.statefulset()["spec"]["template"]["metadata"]["labels"],
    )


def test_pdb_can_be_disabled(renders: dict[str, Rendered]) -> None:
    assert not renders["minimal"].find("PodDisruptionBudget")


# ---------------------------------------------------------------- security


@pytest.mark.parametrize("key", sorted(VALUE_SETS))
def test_every_container_is_locked_down(renders: dict[str, Rendered], key: str) -> None:
    for where, spec in pod_specs(renders[key]):
        psc = spec["securityContext"]
        assert psc["runAsNonRoot"] is True, where
        assert psc["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert spec["automountServiceAccountToken"] is False, where
        tmp_volumes = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
        for c in iter_containers(spec):
            sc = c["securityContext"]
            what = f"{where} container {c['name']}"
            assert sc["runAsNonRoot"] is True and sc["runAsUser"] != 0, what
            assert sc["readOnlyRootFilesystem"] is True, what
            assert sc["allowPrivilegeEscalation"] is False, what
            assert sc["privileged"] is False, what
            assert sc["capabilities"] == {"drop": ["ALL"]}, what
            tmp = [m for m in c.get("volumeMounts", []) if m["mountPath"] == "/tmp"]
            assert tmp and tmp[0]["name"] in tmp_volumes, f"{what}: no writable /tmp"


# ---------------------------------------------------------------- token Secret


def _secret_token(r: Rendered, name: str) -> str:
    secret = r.one("Secret", name)
    return base64.b64decode(secret["data"]["token"]).decode()


def _token_refs(r: Rendered, var: str) -> list[Obj]:
    refs = []
    for _, spec in pod_specs(r):
        for c in iter_containers(spec):
            for e in c.get("env", []):
                if e["name"] == var:
                    refs.append(e["valueFrom"]["secretKeyRef"])
    return refs


def test_generated_token_is_wired_into_nodes_and_clients(default: Rendered, chart: Any) -> None:
    token = _secret_token(default, "raftkv-token")
    assert len(token) == 48 and token.isalnum()
    node_refs = _token_refs(default, "RAFTKV_TOKEN")
    client_refs = _token_refs(default, "RAFTCTL_TOKEN")
    assert node_refs == [{"name": "raftkv-token", "key": "token"}]
    assert client_refs == [{"name": "raftkv-token", "key": "token"}] * 2  # client Pod + helm test
    # Offline rendering has no existing Secret to look up, so each render generates a new token;
    # against a cluster, `lookup` returns the stored one (secret.yaml) and upgrades keep it.
    assert _secret_token(render(chart, {}), "raftkv-token") != token
    assert (
        "checksum/auth-token"
        not in default.statefulset()["spec"]["template"]["metadata"]["annotations"]
    )


def test_secret_template_reuses_the_stored_token() -> None:
    source = (CHART_DIR / "templates" / "secret.yaml").read_text()
    assert 'lookup "v1" "Secret" .Release.Namespace $name' in source
    assert 'index $existing.data "token" | b64dec' in source


def test_supplied_token_is_used_and_rolls_pods(renders: dict[str, Rendered]) -> None:
    r = renders["everything-on"]
    assert _secret_token(r, "raftkv-token") == "s3cret-token-for-the-cluster"
    annotations = r.statefulset()["spec"]["template"]["metadata"]["annotations"]
    assert len(annotations["checksum/auth-token"]) == 64


def test_existing_secret_is_referenced_not_created(renders: dict[str, Rendered]) -> None:
    r = renders["existing-secret"]
    assert not r.find("Secret")
    assert _token_refs(r, "RAFTKV_TOKEN") == [{"name": "my-token", "key": "cluster-token"}]
    assert {ref["name"] for ref in _token_refs(r, "RAFTCTL_TOKEN")} == {"my-token"}


def test_auth_disabled_means_no_token_anywhere(renders: dict[str, Rendered]) -> None:
    r = renders["minimal"]
    assert not r.find("Secret")
    assert not _token_refs(r, "RAFTKV_TOKEN")
    assert "RAFTKV_TOKEN" not in r.node_env()


# ---------------------------------------------------------------- node configuration


def test_node_env_identity_and_dns_peers(default: Rendered) -> None:
    env = default.node_env()
    assert env["RAFTKV_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["RAFTKV_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert env["RAFTKV_SERVICE"]["value"] == "raft-service"
    assert env["RAFTKV_REPLICAS"]["value"] == "3"
    assert env["RAFTKV_PEER_TEMPLATE"]["value"] == (
        "http://{name}-{i}.{service}.{namespace}.svc.cluster.local:{port}"
    )
    assert env["RAFTKV_PORT"]["value"] == "8000"
    assert env["RAFTKV_HOST"]["value"] == "0.0.0.0"
    assert "RAFTKV_PEERS" not in env
    for optional in ("RAFTKV_ELECTION_MS", "RAFTKV_HEARTBEAT_MS", "RAFTKV_SNAPSHOT_EVERY"):
        assert optional not in env  # null: the node's own default


def test_deprecated_peer_discovery_value_still_installs_with_the_one_mode(chart: Any) -> None:
    # peers.discovery=list (earlier releases) rendered RAFTKV_PEERS; it is accepted and ignored
    listed = render(chart, {"peers": {"discovery": "list"}}).node_env()
    assert "RAFTKV_PEERS" not in listed
    assert listed["RAFTKV_REPLICAS"]["value"] == "3"
    assert "{name}-{i}" in listed["RAFTKV_PEER_TEMPLATE"]["value"]


def test_five_replicas_expand_to_every_pod_dns_name(renders: dict[str, Rendered]) -> None:
    env = renders["replicas-5"].node_env()
    assert "RAFTKV_PEERS" not in env and env["RAFTKV_REPLICAS"]["value"] == "5"
    node_env = {
        "RAFTKV_ID": "raft-0",
        "RAFTKV_NAMESPACE": "default",
        "RAFTKV_DATA_DIR": "/data",
        **{
            k: env[k]["value"]
            for k in ("RAFTKV_SERVICE", "RAFTKV_REPLICAS", "RAFTKV_PEER_TEMPLATE", "RAFTKV_PORT")
        },
    }
    peers = load_config({}, node_env, hostname="raft-0").peers
    assert ",".join(f"{p.id}={p.url}" for p in peers) == ",".join(
        f"raft-{i}=http://raft-{i}.raft-service.default.svc.cluster.local:8000" for i in range(5)
    )


def test_node_tuning_values_reach_the_env(renders: dict[str, Rendered]) -> None:
    env = renders["everything-on"].node_env()
    assert env["RAFTKV_ELECTION_MS"]["value"] == "1500"
    assert env["RAFTKV_HEARTBEAT_MS"]["value"] == "150"
    assert env["RAFTKV_SNAPSHOT_EVERY"]["value"] == "5000"
    assert env["TZ"]["value"] == "UTC"


# ---------------------------------------------------------------- client Pod and helm test


def test_client_is_a_bare_pod_by_default(default: Rendered) -> None:
    assert load_values_yaml()["client"]["kind"] == "Pod"
    assert not default.find("Job")
    (pod,) = default.bare_client_pods()
    assert (pod["apiVersion"], pod["kind"]) == ("v1", "Pod")
    assert re.fullmatch(r"raftkv-client-[0-9a-f]{8}", pod["metadata"]["name"])
    assert pod["metadata"]["namespace"] == "default"
    assert pod["metadata"]["labels"]["app.kubernetes.io/component"] == "client"
    assert "helm.sh/hook" not in (pod["metadata"].get("annotations") or {})  # part of the release
    assert pod["spec"]["restartPolicy"] == "Never"  # runs once, like the original client Pod
    name = pod["metadata"]["name"]
    assert f"kubectl -n default logs pod/{name}" in default.notes
    assert "with --wait, set client.kind=Job" in default.notes


def test_client_job_owns_the_same_pod(default: Rendered, renders: dict[str, Rendered]) -> None:
    r = renders["client-job"]
    assert not r.bare_client_pods()
    job = r.client_job()
    assert (job["apiVersion"], job["kind"]) == ("batch/v1", "Job")
    assert job["spec"]["backoffLimit"] == 0  # runs once, like the original client Pod
    assert job["metadata"]["labels"]["app.kubernetes.io/component"] == "client"
    pod = r.client_pod()
    assert pod["metadata"]["labels"] == default.client_pod()["metadata"]["labels"]
    assert pod["spec"] == default.client_pod()["spec"]
    assert f"kubectl -n default logs job/{job['metadata']['name']}" in r.notes
    assert "client.kind=Job" not in r.notes


@pytest.mark.parametrize("key", ["defaults", "client-job"])
def test_client_pod_runs_verify_against_every_replica(
    renders: dict[str, Rendered], key: str
) -> None:
    r = renders[key]
    pod = r.client_pod()
    assert pod["metadata"]["labels"]["app.kubernetes.io/component"] == "client"
    spec = pod["spec"]
    assert spec["restartPolicy"] == "Never"
    (main,) = spec["containers"]
    assert main["command"] == [
        "raftctl",
        "verify",
        "--sequential",
        "--endpoints",
        "http://raft-0.raft-service:8000,http://raft-1.raft-service:8000,"
        "http://raft-2.raft-service:8000",
    ]
    (wait,) = spec["initContainers"]
    assert wait["command"] == ["raftkv-wait-ready", "--timeout", "300", "http://raftkv:8000/readyz"]
    assert main["image"] == wait["image"] == r.node_container()["image"]
    token = {"name": "raftkv-token", "key": "token"}
    assert [e["valueFrom"]["secretKeyRef"] for e in main["env"] if "valueFrom" in e] == [token]
    assert {e["name"] for e in main["env"]} == {"HOME", "RAFTCTL_TOKEN"}


@pytest.mark.parametrize("kind", ["Pod", "Job"])
def test_client_verifies_every_replica_of_a_bigger_cluster(chart: Any, kind: str) -> None:
    r = render(chart, {"replicaCount": 5, "client": {"kind": kind}})
    (main,) = r.client_pod()["spec"]["containers"]
    assert main["command"][-1] == ",".join(f"http://raft-{i}.raft-service:8000" for i in range(5))


@pytest.mark.parametrize("key", ["defaults", "client-job"])
def test_helm_test_hook_runs_the_same_workload(renders: dict[str, Rendered], key: str) -> None:
    r = renders[key]
    (hook,) = r.hook_pods()
    assert hook["metadata"]["annotations"]["helm.sh/hook"] == "test"
    # helm uninstall never deletes hooks: a passing test's Pod is deleted by its policy
    assert hook["metadata"]["annotations"]["helm.sh/hook-delete-policy"] == (
        "before-hook-creation,hook-succeeded"
    )
    assert hook["spec"] == r.client_pod()["spec"]


def test_client_job_name_changes_only_with_its_template(
    chart: Any, renders: dict[str, Rendered]
) -> None:
    job = {"kind": "Job"}
    name = renders["client-job"].client_pod()["metadata"]["name"]
    assert render(chart, {"client": job}).client_pod()["metadata"]["name"] == name  # random token
    tagged = render(chart, {"client": job, "image": {"tag": "v2"}}).client_pod()["metadata"]["name"]
    assert tagged != name  # an immutable Job template changed: Helm replaces the Job on upgrade
    relabelled = render(chart, {"client": job, "commonLabels": {"team": "x"}}).client_pod()
    assert relabelled["metadata"]["name"] != name  # labels are in the Job's template too
    assert name in renders["client-job"].notes


def test_client_pod_name_changes_only_with_its_spec(chart: Any, default: Rendered) -> None:
    name = default.client_pod()["metadata"]["name"]
    assert render(chart, {}).client_pod()["metadata"]["name"] == name  # random token: same name
    tagged = render(chart, {"image": {"tag": "v2"}}).client_pod()["metadata"]["name"]
    assert tagged != name  # an immutable Pod spec changed: Helm replaces the Pod on upgrade
    more = render(chart, {"client": {"extraArgs": ["--writes", "9"]}}).client_pod()
    assert more["metadata"]["name"] != name
    relabelled = render(chart, {"commonLabels": {"team": "x"}}).client_pod()
    assert relabelled["metadata"]["name"] == name  # a Pod's labels are mutable: patched in place
    assert relabelled["metadata"]["labels"]["team"] == "x"
    assert name != render(chart, {"client": {"kind": "Job"}}).client_pod()["metadata"]["name"]


@pytest.mark.parametrize("kind", ["Pod", "Job"])
def test_client_name_fits_a_label_value(chart: Any, kind: str) -> None:
    """A Job's name becomes its pods' job-name label (63 characters at most); the Pod's too."""
    r = render(chart, {"fullnameOverride": "f" * 63, "client": {"kind": kind}})
    name = r.client_pod()["metadata"]["name"]
    assert re.fullmatch(r"f{47}-client-[0-9a-f]{8}", name) and len(name) == 63


@pytest.mark.parametrize("key", sorted(VALUE_SETS))
def test_only_the_client_pod_is_a_bare_pod(renders: dict[str, Rendered], key: str) -> None:
    """Helm 3's `--wait` waits for every bare Pod to be Ready, which a finished one never is: the
    only bare Pod is the client of client.kind=Pod; with client.kind=Job (what raftctl's kind
    target installs with `--wait`) there is none, and the helm test Pod is a hook (not part of
    the release)."""
    values, _, _ = VALUE_SETS[key]
    client = {"enabled": True, "kind": "Pod", **values.get("client", {})}
    kind = client["kind"] if client["enabled"] else None
    assert len(renders[key].bare_client_pods()) == (1 if kind == "Pod" else 0)
    assert len(renders[key].find("Job")) == (1 if kind == "Job" else 0)
    for pod in renders[key].hook_pods():
        assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"


def test_client_and_tests_can_be_disabled(chart: Any, renders: dict[str, Rendered]) -> None:
    assert not renders["minimal"].find("Pod")
    assert not renders["minimal"].find("Job")
    off = render(chart, {"client": {"enabled": False, "kind": "Job"}, "tests": {"enabled": False}})
    assert not off.find("Pod") and not off.find("Job")
    assert "The client" not in off.notes
    assert renders["everything-on"].client_pod()["spec"]["containers"][0]["command"][-2:] == [
        "--output",
        "json",
    ]


# ---------------------------------------------------------------- optional objects


def test_service_monitor_scrapes_every_node_through_the_headless_service(
    renders: dict[str, Rendered],
) -> None:
    r = renders["everything-on"]
    sm = r.one("ServiceMonitor")
    assert sm["metadata"]["labels"]["release"] == "prom"
    selected = [
        s for s in r.find("Service") if _matches(sm["spec"]["selector"]["matchLabels"], _labels(s))
    ]
    assert [s["metadata"]["name"] for s in selected] == ["raft-service"]
    assert sm["spec"]["endpoints"] == [
        {"port": "http", "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s"}
    ]
    assert sm["spec"]["namespaceSelector"] == {"matchNames": ["default"]}
    assert not renders["defaults"].find("ServiceMonitor")


def test_network_policy_admits_only_peers_clients_and_extras(renders: dict[str, Rendered]) -> None:
    r = renders["everything-on"]
    np = r.one("NetworkPolicy")
    pod_labels = r.statefulset()["spec"]["template"]["metadata"]["labels"]
    assert (
        np["spec"]["podSelector"]["matchLabels"]
        == r.statefulset()["spec"]["selector"]["matchLabels"]
    )
    assert np["spec"]["policyTypes"] == ["Ingress"]
    (rule,) = np["spec"]["ingress"]
    assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]
    peers, clients, extra = rule["from"]
    assert _matches(peers["podSelector"]["matchLabels"], pod_labels)
    client_labels = _labels(r.client_pod())
    assert _matches(clients["podSelector"]["matchLabels"], client_labels)
    assert not _matches(clients["podSelector"]["matchLabels"], pod_labels)
    assert extra == {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "mon"}}}
    assert not renders["defaults"].find("NetworkPolicy")


# ---------------------------------------------------------------- NOTES.txt


def test_notes_tell_how_to_reach_the_cluster(default: Rendered) -> None:
    notes = default.notes
    assert "raft-0.raft-service.default.svc.cluster.local:8000" in notes
    assert "curl http://raft-1.raft-service.default.svc.cluster.local:8000/v1/kv/greeting" in notes
    assert "raftctl status --target kind --namespace default --name raftkv" in notes
    assert "kubectl -n default port-forward pod/raft-0 8000:8000" in notes
    assert "helm test raftkv" in notes


def test_single_node_warns(renders: dict[str, Rendered]) -> None:
    assert "replicaCount=1 tolerates no failure" in renders["single-node"].notes

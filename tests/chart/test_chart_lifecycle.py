"""Day-2 behaviour of the chart, rendered by Helm's real engine: the preStop sleep that lets
kube-proxy stop routing before SIGTERM (within the grace period), the data-dir lock wait tied to
the grace period, the ServiceMonitor only where its CRD exists, the test hook's delete policy,
and NOTES.txt commands that work outside namespace `default` (FQDNs, --namespace/--name,
--tail=-1, the image's `raftkv http`, --wait-for-jobs)."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from tests.chart.chart_render import render

MONITORING = ("monitoring.coreos.com/v1",)


def test_prestop_sleep_keeps_serving_before_sigterm_within_the_grace_period(chart: Any) -> None:
    r = render(chart)
    container = r.node_container()
    assert container["lifecycle"] == {"preStop": {"exec": {"command": ["sleep", "5"]}}}
    spec = r.statefulset()["spec"]["template"]["spec"]
    assert spec["terminationGracePeriodSeconds"] - 5 >= 20  # room left for the handover
    longer = render(
        chart, {"statefulset": {"terminationGracePeriodSeconds": 60, "preStopSleepSeconds": 15}}
    )
    assert longer.node_container()["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "15"]
    for obj in longer.objects:
        kubernetes_validate.validate(obj, kubernetes_validate.latest_version(), strict=True)


def test_prestop_sleep_zero_means_no_prestop(chart: Any) -> None:
    r = render(chart, {"statefulset": {"preStopSleepSeconds": 0}})
    assert "lifecycle" not in r.node_container()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"statefulset": {"preStopSleepSeconds": 11}},
            "statefulset.preStopSleepSeconds (11) must leave 20 s of "
            "statefulset.terminationGracePeriodSeconds (30) for the leadership handover after "
            "SIGTERM: lower it to 10 or raise the grace period to 31",
        ),
        (
            {"statefulset": {"terminationGracePeriodSeconds": 10, "preStopSleepSeconds": 0}},
            "lower it to 0 or raise the grace period to 20",
        ),
    ],
)
def test_prestop_sleep_that_eats_the_grace_period_is_refused(
    chart: Any, values: dict[str, Any], message: str
) -> None:
    import helm_python

    with pytest.raises(helm_python.HelmError) as err:
        render(chart, values)
    assert message in str(err.value)


def test_schema_bounds_the_new_values(chart: Any) -> None:
    import helm_python

    for bad in (
        {"statefulset": {"preStopSleepSeconds": -1}},
        {"statefulset": {"preStopSleepSeconds": "5"}},
        {"tests": {"hookDeletePolicy": "always"}},
        {"tests": {"hookDeletePolicy": "hook-succeeded,"}},
    ):
        with pytest.raises(helm_python.HelmValuesError):
            chart.validate_schema(bad)


@pytest.mark.parametrize(("grace", "expected"), [(None, "30"), (90, "90")])
def test_nodes_wait_for_the_data_dir_lock_as_long_as_the_grace_period(
    chart: Any, grace: int | None, expected: str
) -> None:
    values = {} if grace is None else {"statefulset": {"terminationGracePeriodSeconds": grace}}
    r = render(chart, values)
    assert r.node_env()["RAFTKV_LOCK_TIMEOUT"] == {"name": "RAFTKV_LOCK_TIMEOUT", "value": expected}
    spec = r.statefulset()["spec"]["template"]["spec"]
    assert str(spec["terminationGracePeriodSeconds"]) == expected


def test_service_monitor_only_where_the_prometheus_operator_api_exists(chart: Any) -> None:
    values = {"metrics": {"serviceMonitor": {"enabled": True}}}
    without = render(chart, values)
    assert not without.find("ServiceMonitor")  # the install would fail on a missing CRD
    assert "no ServiceMonitor was created" in without.notes
    with_crd = render(chart, values, api_versions=MONITORING)
    assert with_crd.one("ServiceMonitor")["apiVersion"] == "monitoring.coreos.com/v1"
    assert "no ServiceMonitor was created" not in with_crd.notes
    off = render(chart, {}, api_versions=MONITORING)
    assert not off.find("ServiceMonitor") and "ServiceMonitor" not in off.notes


def test_test_hook_delete_policy_is_configurable(chart: Any) -> None:
    kept = render(chart, {"tests": {"hookDeletePolicy": "before-hook-creation"}})
    (hook,) = kept.hook_pods()
    assert hook["metadata"]["annotations"]["helm.sh/hook-delete-policy"] == "before-hook-creation"
    assert "helm test raftkv -n default --logs" in kept.notes
    assert "helm test raftkv -n default --logs" not in render(chart).notes


def test_notes_work_outside_the_default_namespace(chart: Any) -> None:
    notes = render(
        chart,
        {"clusterDomain": "corp.internal", "client": {"kind": "Job"}},
        name="store",
        namespace="prod",
    ).notes
    assert "raftctl status --target kind --namespace prod --name store" in notes
    assert (
        "raftkv http GET http://raft-0.raft-service.prod.svc.corp.internal:8000/v1/status" in notes
    )
    assert "curl http://raft-1.raft-service.prod.svc.corp.internal:8000/v1/kv/greeting" in notes
    assert "http://store-raftkv.prod.svc.corp.internal:8000/v1/kv/greeting" in notes
    assert "kubectl -n prod logs pod/store-raftkv-test-verify" in notes
    assert (
        "kubectl -n prod logs -l app.kubernetes.io/instance=store,"
        "app.kubernetes.io/component=node --prefix --tail=-1" in notes
    )
    assert "add --wait-for-jobs" in notes
    # no short pod DNS name offered without saying it only works inside the namespace
    assert "raft-0.raft-service:8000" not in notes
    assert 'only from pods in "prod"' in notes

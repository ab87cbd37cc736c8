"""The chart's membership guard (docs/membership.md): replicaCount defines the voters only when the
cluster is created; on a live release a different replicaCount is refused (``lookup`` of the
StatefulSet + ``fail``), pointing to `raftctl scale`.

Helm's engine renders offline here, where ``lookup`` always returns nothing: so the guard's logic
(``raftkv.replicaGuard``) is exercised through a scratch chart that includes the real
``_helpers.tpl`` and hands the guard a fake live StatefulSet, and the real chart is checked to
render on install and on upgrade when nothing is live. The lookup call itself is only exercised
against a real cluster (tests/containers / kind).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.chart_render import CHART_DIR, render

GUARD_TEMPLATE = """\
{{- include "raftkv.replicaGuard" (dict "root" . "live" .Values.fakeLive) -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: guard-passed
"""


@pytest.fixture(scope="module")
def guard_chart(tmp_path_factory: pytest.TempPathFactory) -> Any:
    try:
        import helm_python
    except (ImportError, OSError) as err:
        pytest.skip(f"helm-python-sdk (Helm's Go engine) is not importable here: {err}")
    root: Path = tmp_path_factory.mktemp("guardchart")
    (root / "templates").mkdir()
    shutil.copy(CHART_DIR / "Chart.yaml", root / "Chart.yaml")
    shutil.copy(CHART_DIR / "values.yaml", root / "values.yaml")
    shutil.copy(CHART_DIR / "templates" / "_helpers.tpl", root / "templates" / "_helpers.tpl")
    (root / "templates" / "guard.yaml").write_text(GUARD_TEMPLATE)
    handle = helm_python.Chart.load(str(root))
    try:
        yield handle
    finally:
        handle.close()


def _render(chart: Any, values: dict[str, Any]) -> list[dict[str, Any]]:
    out = chart.render(values, name="raftkv", namespace="default", is_upgrade=True)
    return [d for text in out.values() for d in yaml.safe_load_all(text) if d]


def test_a_new_replica_count_on_a_live_release_is_refused(guard_chart: Any) -> None:
    import helm_python

    live = {"spec": {"replicas": 3}}
    with pytest.raises(helm_python.HelmError) as info:
        _render(guard_chart, {"replicaCount": 5, "fakeLive": live})
    text = str(info.value)
    assert "replicaCount cannot change on a live release" in text
    assert "StatefulSet runs 3 replicas, replicaCount=5" in text and "raftctl scale" in text
    with pytest.raises(helm_python.HelmError, match="cannot change on a live release"):
        _render(guard_chart, {"replicaCount": 1, "fakeLive": live})


@pytest.mark.parametrize(
    ("count", "live"),
    [(3, {"spec": {"replicas": 3}}), (5, {"spec": {"replicas": 5}}), (5, {}), (3, None)],
)
def test_same_count_or_nothing_live_renders(guard_chart: Any, count: int, live: Any) -> None:
    docs = _render(guard_chart, {"replicaCount": count, "fakeLive": live})
    assert [d["metadata"]["name"] for d in docs] == ["guard-passed"]


def test_the_real_chart_installs_and_upgrades_when_nothing_is_live(chart: Any) -> None:
    for flags in ({"is_install": True}, {"is_upgrade": True}):
        out = chart.render({"replicaCount": 5}, name="raftkv", namespace="default", **flags)
        assert any("kind: StatefulSet" in text for text in out.values())
    assert render(chart, {"replicaCount": 3}).statefulset()["spec"]["replicas"] == 3


def test_the_guard_runs_on_every_render_of_the_statefulset() -> None:
    helpers = (CHART_DIR / "templates" / "_helpers.tpl").read_text()
    sts = (CHART_DIR / "templates" / "statefulset.yaml").read_text()
    assert 'include "raftkv.validateValues"' in sts
    validate = helpers.split('define "raftkv.validateValues"')[1].split("{{- end -}}\n\n")[0]
    assert 'lookup "apps/v1" "StatefulSet"' in validate and "raftkv.replicaGuard" in validate

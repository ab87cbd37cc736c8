"""values.schema.json rejects bad values before anything is created (checked through Helm's own
engine, as `helm install` does), the template guard catches the same mistakes when the schema is
skipped, and values.yaml is documented line by line (@param; the generated table and schema
descriptions: test_values_doc.py)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.chart.chart_render import CHART_DIR, load_values_yaml

BAD_VALUES: list[tuple[dict[str, Any], str]] = [
    ({"replicaCount": 0}, "at '/replicaCount': value must be one of 1, 3, 5, 7, 9"),
    ({"replicaCount": 2}, "at '/replicaCount': value must be one of 1, 3, 5, 7, 9"),
    ({"replicaCount": 4}, "at '/replicaCount': value must be one of 1, 3, 5, 7, 9"),
    ({"replicaCount": -3}, "at '/replicaCount': value must be one of 1, 3, 5, 7, 9"),
    ({"replicaCount": "3"}, "at '/replicaCount'"),
    ({"persistence": {"size": "-1Gi"}}, "at '/persistence/size'"),
    ({"persistence": {"size": "0"}}, "at '/persistence/size'"),
    ({"persistence": {"size": "lots"}}, "at '/persistence/size'"),
    ({"persistence": {"accessModes": []}}, "at '/persistence/accessModes'"),
    ({"replicas": 3}, "additional properties 'replicas' not allowed"),
    ({"persistence": {"sizee": "1Gi"}}, "additional properties 'sizee' not allowed"),
    ({"antiAffinity": "sometimes"}, "at '/antiAffinity'"),
    ({"peers": {"discovery": "dns"}}, "at '/peers/discovery'"),
    ({"service": {"port": 0}}, "at '/service/port'"),
    ({"service": {"port": 70000}}, "at '/service/port'"),
    ({"service": {"type": "ExternalName"}}, "at '/service/type'"),
    ({"image": {"pullPolicy": "Sometimes"}}, "at '/image/pullPolicy'"),
    ({"image": {"tag": "has space"}}, "at '/image/tag'"),
    ({"auth": {"token": "short"}}, "at '/auth/token'"),
    ({"node": {"electionMs": 0}}, "at '/node/electionMs'"),
    ({"node": {"heartbeatMs": -100}}, "at '/node/heartbeatMs'"),
    ({"livenessProbe": {"periodSeconds": 0}}, "at '/livenessProbe/periodSeconds'"),
    ({"statefulset": {"name": "Raft_Set"}}, "at '/statefulset/name'"),
    (
        {"statefulset": {"terminationGracePeriodSeconds": 1}},
        "at '/statefulset/terminationGracePeriodSeconds'",
    ),
    ({"headlessService": {"name": ""}}, "at '/headlessService/name'"),
    (
        {"metrics": {"serviceMonitor": {"interval": "often"}}},
        "at '/metrics/serviceMonitor/interval'",
    ),
    ({"client": {"waitTimeoutSeconds": 0}}, "at '/client/waitTimeoutSeconds'"),
    ({"client": {"kind": "Deployment"}}, "at '/client/kind': value must be one of 'Pod', 'Job'"),
    ({"client": {"kind": "pod"}}, "at '/client/kind': value must be one of 'Pod', 'Job'"),
    ({"client": {"kind": None}}, "missing property 'kind'"),
]


@pytest.mark.parametrize(
    ("values", "message"), BAD_VALUES, ids=[json.dumps(v) for v, _ in BAD_VALUES]
)
def test_schema_rejects_bad_values(chart: Any, values: dict[str, Any], message: str) -> None:
    import helm_python

    with pytest.raises(helm_python.HelmValuesError) as err:
        chart.validate_schema(values)
    assert message in str(err.value)
    with pytest.raises(helm_python.HelmValuesError):  # `helm install/template` refuses too
        chart.render(values, name="raftkv", namespace="default")


@pytest.mark.parametrize("replicas", [1, 3, 5, 7, 9])
def test_schema_accepts_odd_replica_counts(chart: Any, replicas: int) -> None:
    chart.validate_schema({"replicaCount": replicas})


def test_schema_is_valid_draft7_and_accepts_the_defaults() -> None:
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.Draft7Validator(schema).validate(load_values_yaml())


def _copy_without_schema(tmp_path: Path) -> Path:
    copy = tmp_path / "raftkv"
    shutil.copytree(CHART_DIR, copy)
    (copy / "values.schema.json").unlink()
    return copy


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"replicaCount": 4}, "replicaCount must be odd and at least 1 (1, 3, 5, 7 or 9), got 4"),
        ({"replicaCount": 0}, "replicaCount must be odd and at least 1 (1, 3, 5, 7 or 9), got 0"),
        (
            {"auth": {"token": "abcdefghijklmnopq", "existingSecret": "x"}},
            "auth.token and auth.existingSecret are mutually exclusive",
        ),
        ({"client": {"kind": "CronJob"}}, "client.kind must be Pod or Job, got CronJob"),
    ],
)
def test_template_guard_without_schema(
    tmp_path: Path, values: dict[str, Any], message: str
) -> None:
    """`--skip-schema-validation` still stops at the template guard, with a clear line."""
    import helm_python

    with (
        helm_python.Chart.load(str(_copy_without_schema(tmp_path))) as unchecked,
        pytest.raises(helm_python.HelmError) as err,
    ):
        unchecked.render(values, name="raftkv", namespace="default")
    assert message in str(err.value)


def test_schema_is_strict_everywhere_it_owns_the_structure() -> None:
    """Every object the chart defines (not Kubernetes pass-through objects) forbids unknown keys."""
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    passthrough = {
        "affinity",
        "resources",
        "podSecurityContext",
        "containerSecurityContext",
        "global",
        "client.resources",
    }

    def walk(node: dict[str, Any], path: str) -> None:
        if node.get("type") != "object" or path in passthrough:
            return
        if "properties" in node:
            assert node.get("additionalProperties") is False, f"{path or '<root>'} is not strict"
            for key, sub in node["properties"].items():
                walk(sub, f"{path}.{key}" if path else key)

    walk(schema, "")
    defaults = load_values_yaml()
    assert set(defaults) <= set(schema["properties"])


# ---------------------------------------------------------------- documentation of every value

_PARAM = re.compile(r"^\s*## @param (\S+) (.+)$")


def _params() -> dict[str, str]:
    lines = (CHART_DIR / "values.yaml").read_text().splitlines()
    return {m.group(1): m.group(2) for line in lines if (m := _PARAM.match(line))}


def _undocumented(values: dict[str, Any], documented: set[str], prefix: str = "") -> list[str]:
    missing = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        if path in documented:
            continue
        if isinstance(value, dict) and value:
            missing += _undocumented(value, documented, path + ".")
        else:
            missing.append(path)
    return missing


def _exists(values: dict[str, Any], path: str) -> bool:
    node: Any = values
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def test_every_value_has_a_param_line() -> None:
    params = _params()
    values = load_values_yaml()
    assert not _undocumented(values, set(params)), "values without a ## @param line"
    assert [p for p in params if not _exists(values, p)] == [], "@param lines for unknown values"

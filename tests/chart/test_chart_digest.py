"""image.digest: the chart deploys `repository@sha256:...` when it is set (raftctl sets it after
pushing), so rebuilding the same tag changes every pod template and rolls out; bad digests are
refused by the schema."""

from __future__ import annotations

from typing import Any

import pytest

from tests.chart.chart_render import iter_containers, pod_specs, render

DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64


def _images(values: dict[str, Any], chart: Any) -> dict[str, str]:
    out = {}
    for where, spec in pod_specs(render(chart, values)):
        for c in iter_containers(spec):
            out[f"{where}/{c['name']}"] = c["image"]
    return out


def test_a_digest_pins_every_container_and_wins_over_the_tag(chart: Any) -> None:
    images = _images({"image": {"tag": "dev", "digest": DIGEST_A}}, chart)
    assert len(images) >= 4  # node, client + its wait container, helm test hook
    assert set(images.values()) == {f"localhost:5001/raftkv@{DIGEST_A}"}


def test_without_a_digest_the_tag_is_used(chart: Any) -> None:
    assert set(_images({"image": {"tag": "dev"}}, chart).values()) == {"localhost:5001/raftkv:dev"}


def test_a_new_digest_of_the_same_tag_changes_the_pod_template(chart: Any) -> None:
    """What makes `helm upgrade` roll the StatefulSet: its pod template differs."""
    old = render(chart, {"image": {"tag": "dev", "digest": DIGEST_A}}).statefulset()
    new = render(chart, {"image": {"tag": "dev", "digest": DIGEST_B}}).statefulset()
    assert old["spec"]["template"] != new["spec"]["template"]
    same = render(chart, {"image": {"tag": "dev", "digest": DIGEST_A}}).statefulset()
    assert old["spec"]["template"] == same["spec"]["template"]
    assert old["spec"]["selector"] == new["spec"]["selector"]  # immutable: unchanged


@pytest.mark.parametrize("bad", ["sha256:abc", "md5:" + "a" * 64, "sha256:" + "A" * 64, "latest"])
def test_the_schema_refuses_a_malformed_digest(chart: Any, bad: str) -> None:
    import helm_python

    with pytest.raises(helm_python.HelmValuesError, match="/image/digest"):
        chart.validate_schema({"image": {"digest": bad}})

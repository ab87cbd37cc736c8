"""chart_render — render helm/raftkv with the real Helm engine and index the objects it produces.

The engine is Helm's own Go SDK, loaded in-process by PyPI ``helm-python-sdk`` (import name
``helm_python``): ``Chart.load(dir)``, ``chart.render(values, name=, namespace=)`` (offline:
``lookup`` returns nothing, values are checked against values.schema.json first),
``helm_python.lint(dir, values)``. Also used by tests/containers/ to run containers with exactly
the environment the chart gives the pods.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = ROOT / "helm" / "raftkv"

Obj = dict[str, Any]


@dataclass
class Rendered:
    """All objects of one render, plus NOTES.txt."""

    objects: list[Obj]
    notes: str
    by_template: dict[str, list[Obj]] = field(default_factory=dict)

    def find(self, kind: str, name: str | None = None) -> list[Obj]:
        return [
            o
            for o in self.objects
            if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
        ]

    def one(self, kind: str, name: str | None = None) -> Obj:
        found = self.find(kind, name)
        assert len(found) == 1, (
            f"expected one {kind} {name or ''}, got {len(found)}: {self.kinds()}"
        )
        return found[0]

    def kinds(self) -> list[str]:
        return sorted(f"{o['kind']}/{o['metadata']['name']}" for o in self.objects)

    def statefulset(self) -> Obj:
        return self.one("StatefulSet")

    def node_container(self) -> Obj:
        containers = self.statefulset()["spec"]["template"]["spec"]["containers"]
        return next(c for c in containers if c["name"] == "raftkv")

    def node_env(self) -> dict[str, Obj]:
        return {e["name"]: e for e in self.node_container()["env"]}

    def hook_pods(self) -> list[Obj]:
        return [
            o
            for o in self.find("Pod")
            if "helm.sh/hook" in (o["metadata"].get("annotations") or {})
        ]

    def bare_client_pods(self) -> list[Obj]:
        """Pods that are part of the release (not helm hooks): the client Pod of client.kind=Pod."""
        return [p for p in self.find("Pod") if p not in self.hook_pods()]

    def client_job(self) -> Obj:
        """The client Job (client.kind=Job)."""
        return self.one("Job")

    def client_pod(self) -> Obj:
        """The client's Pod for either client.kind: the bare Pod (``Pod``, the default), or the
        Job's Pod (``Job``: the Job's name with the template's labels and spec)."""
        bare = self.bare_client_pods()
        if bare:
            assert len(bare) == 1 and not self.find("Job"), self.kinds()
            return bare[0]
        job = self.client_job()
        template = job["spec"]["template"]
        return {
            "metadata": {"name": job["metadata"]["name"], **template["metadata"]},
            "spec": template["spec"],
        }


def load_chart() -> Any:
    """The loaded chart handle (close it when done)."""
    import helm_python

    return helm_python.Chart.load(str(CHART_DIR))


def render(
    chart: Any,
    values: dict[str, Any] | None = None,
    *,
    name: str = "raftkv",
    namespace: str = "default",
    api_versions: Sequence[str] = (),
) -> Rendered:
    """``api_versions``: extra APIs the pretend cluster serves (``.Capabilities.APIVersions``,
    like ``helm template --api-versions``), e.g. ``monitoring.coreos.com/v1``."""
    if api_versions:
        # Chart.render() does not expose the option; Helm's C binding accepts it as "api_versions".
        import json

        from helm_python import _native

        opts = {"name": name, "namespace": namespace, "api_versions": list(api_versions)}
        manifests: dict[str, str] = json.loads(
            _native.call_string(
                "helm_render", chart._raw(), json.dumps(values or {}), json.dumps(opts)
            )
        )
    else:
        manifests = chart.render(values or {}, name=name, namespace=namespace)
    objects: list[Obj] = []
    by_template: dict[str, list[Obj]] = {}
    notes = ""
    for template, text in sorted(manifests.items()):
        if template.endswith("NOTES.txt"):
            notes = text
            continue
        docs = [d for d in yaml.safe_load_all(text) if d]
        by_template[template] = docs
        objects.extend(docs)
    return Rendered(objects=objects, notes=notes, by_template=by_template)


def iter_containers(pod_spec: Obj) -> Iterator[Obj]:
    yield from pod_spec.get("initContainers") or []
    yield from pod_spec.get("containers") or []


def pod_specs(rendered: Rendered) -> Iterator[tuple[str, Obj]]:
    """(description, pod spec) for the StatefulSet's and the Job's templates and every Pod."""
    sts = rendered.find("StatefulSet")
    for s in sts:
        yield f"StatefulSet/{s['metadata']['name']}", s["spec"]["template"]["spec"]
    for job in rendered.find("Job"):
        yield f"Job/{job['metadata']['name']}", job["spec"]["template"]["spec"]
    for p in rendered.find("Pod"):
        yield f"Pod/{p['metadata']['name']}", p["spec"]


def resolve_env(
    env: list[Obj], *, pod_name: str, namespace: str, secrets: dict[tuple[str, str], str]
) -> dict[str, str]:
    """The environment a container gets, resolving the chart's fieldRefs and secretKeyRefs."""
    out: dict[str, str] = {}
    for e in env:
        if "value" in e:
            out[e["name"]] = str(e["value"])
            continue
        source = e["valueFrom"]
        if "fieldRef" in source:
            path = source["fieldRef"]["fieldPath"]
            out[e["name"]] = {"metadata.name": pod_name, "metadata.namespace": namespace}[path]
        elif "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            out[e["name"]] = secrets[(ref["name"], ref["key"])]
        else:  # pragma: no cover - the chart uses no other source
            raise AssertionError(f"unsupported env source {source}")
    return out


def load_values_yaml() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    return loaded

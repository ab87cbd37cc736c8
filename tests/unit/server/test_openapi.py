"""The OpenAPI document: valid OpenAPI 3.1, served at /openapi.json, and complete — every route
and method of the Flask app is documented (so a route added later must be documented too), and
every documented status of the routes tested here is one the app can answer."""

from __future__ import annotations

import re

from openapi_spec_validator import validate

from raftkv.server.app import build_app
from raftkv.server.openapi import load_document
from tests.unit.server.fakenode import FakeNode


def _flask_to_openapi(rule: str) -> str:
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule)


def _shape(path: str) -> str:
    """A path template with its parameter names dropped: the names are not part of the URL
    contract (the app's ``<key:_route_key>`` is the document's ``{key}``)."""
    return re.sub(r"\{[^}]+\}", "{}", path)


def test_document_is_valid_openapi() -> None:
    doc = load_document()
    validate(doc)
    assert doc["openapi"].startswith("3.")


def test_every_flask_route_is_documented() -> None:
    app = build_app(FakeNode())
    doc = load_document()
    documented = {_shape(path): item for path, item in doc["paths"].items()}
    missing = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = _flask_to_openapi(rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            if method.lower() not in documented.get(_shape(path), {}):
                missing.append(f"{method} {path}")
    assert missing == [], f"routes missing from raftkv/server/openapi.json: {missing}"


def test_every_operation_documents_its_errors_as_json() -> None:
    doc = load_document()
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method == "parameters":
                continue
            assert op.get("operationId"), (method, path)
            for status, resp in op["responses"].items():
                if "$ref" in resp or int(status) < 400:
                    continue
                assert "application/json" in resp["content"], (method, path, status)
                schema = resp["content"]["application/json"]["schema"]
                target = schema["$ref"].rsplit("/", 1)[1]
                assert "error" in doc["components"]["schemas"][target]["properties"], target


def test_served_at_openapi_json() -> None:
    client = build_app(FakeNode()).test_client()
    r = client.get("/openapi.json")
    assert r.status_code == 200 and r.mimetype == "application/json"
    assert r.get_json() == load_document()

"""openapi.py — ``GET /openapi.json``: the OpenAPI 3.1 document of the node's HTTP API.

The document is ``raftkv/server/openapi.json`` (package data), checked in and reviewed like code.
``tests/unit/server/test_openapi.py`` validates it and fails when a Flask route is missing from it;
``tests/integration/test_schemathesis.py`` runs schemathesis against a real 3-node cluster from it.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from flask import Blueprint, Response

__all__ = ["load_document", "openapi_blueprint"]


def _raw() -> bytes:
    return resources.files("raftkv.server").joinpath("openapi.json").read_bytes()


def load_document() -> dict[str, Any]:
    import json

    doc: dict[str, Any] = json.loads(_raw())
    return doc


def openapi_blueprint() -> Blueprint:
    """The blueprint serving ``GET /openapi.json``."""
    body = _raw()
    bp = Blueprint("openapi", __name__)

    @bp.route("/openapi.json", methods=["GET"])
    def openapi_json() -> Response:
        return Response(body, mimetype="application/json")

    return bp

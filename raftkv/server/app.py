"""app.py — the HTTP edge: builds the Flask app serving one node (KV API, Raft RPC, admin,
status/health/metrics on one port) from blueprints, and nothing else.

Contract (README's API table, docs/contracts.md §3, docs/node.md "Code layout"):
- The routes live in blueprints, one module per area: routes_kv.py (``/v1/kv``), watch.py
  (``/v1/watch``), routes_raft.py and routes_snapshot.py (``/raft/v1/*``, peers only),
  routes_admin.py, routes_hash.py, routes_backup.py and routes_members.py (``/v1/admin/*``,
  ``/v1/members``), routes_health.py (``/v1/status``, ``/healthz``, ``/readyz``, ``/metrics``) and
  openapi.py (``/openapi.json``).
- They reach the node only through ``EdgeNode`` (edge_node.py), the narrow node API, and relay
  to the leader through ``Relay`` (relay.py, over forward.py).
- Every response is JSON except ``/metrics`` and a backup download; every error has an ``error``
  field: ONE mapping (http_errors.error_parts) serves Flask's single errorhandler, registered
  here, and the WSGI fast paths (wsgi_edge.py: access checks, X-Raft-* headers, latency, the
  Raft RPC hot path). OPTIONS answers JSON too.
- ``build_app(node)`` builds the app around a ``NodeAPI``; it starts no thread (gunicorn's
  ``post_worker_init`` hook starts the node inside the worker, see gunicorn_conf.py).
"""

from __future__ import annotations

from flask import Flask, Response, request
from werkzeug.routing import PathConverter

from raftkv.keycodec import validate_key
from raftkv.server.api import NodeAPI
from raftkv.server.edge_node import EdgeNode
from raftkv.server.http_errors import error_parts, json_response
from raftkv.server.openapi import openapi_blueprint
from raftkv.server.relay import Relay
from raftkv.server.requestid import parse_request_id
from raftkv.server.routes_admin import admin_blueprint
from raftkv.server.routes_backup import backup_blueprint
from raftkv.server.routes_hash import hash_blueprint
from raftkv.server.routes_health import health_blueprint
from raftkv.server.routes_kv import KeyConverter, kv_blueprint
from raftkv.server.routes_members import members_blueprint
from raftkv.server.routes_raft import raft_blueprint
from raftkv.server.routes_snapshot import snapshot_blueprint
from raftkv.server.watch import WatchSlots, watch_blueprint
from raftkv.server.wsgi_edge import WsgiEdge

__all__ = ["EXTENSION_KEY", "build_app", "parse_request_id", "validate_key"]

EXTENSION_KEY = "raftkv.node"
RELAY_KEY = "raftkv.ctx"  # the app's Relay (its ``forwarder`` may be replaced, e.g. by tests)


class AnyPathConverter(PathConverter):
    """``<path:key>`` for keys: any characters, a leading '/' and newlines included (werkzeug's
    own stops at a newline and refuses a leading '/', so such keys were a 404 "no such route"
    instead of the key's own answer: found by schemathesis). validate_key judges the key."""

    regex = "(?s:.+)"
    part_isolating = False  # spans '/' (werkzeug infers True from a regex without a '/')


def build_app(node: NodeAPI) -> Flask:
    """The Flask app serving ``node`` (see module docstring)."""
    app = Flask("raftkv")
    app.url_map.converters["path"] = AnyPathConverter  # before any route is added
    app.url_map.merge_slashes = False
    app.url_map.strict_slashes = False
    app.url_map.converters["key"] = KeyConverter
    edge = EdgeNode(node)
    relay = Relay(edge)
    app.extensions[EXTENSION_KEY] = node
    app.extensions[RELAY_KEY] = relay
    app.wsgi_app = WsgiEdge(app.wsgi_app, edge)  # type: ignore[method-assign]

    default_options = app.make_default_options_response

    def options_response() -> Response:
        """OPTIONS answers JSON too (Flask's automatic answer is an empty text/html page)."""
        allowed = sorted(default_options().allow)
        return json_response({"allow": allowed}, 200, {"Allow": ", ".join(allowed)})

    app.make_default_options_response = options_response  # type: ignore[method-assign]

    @app.errorhandler(Exception)
    def _error(err: Exception) -> Response:
        status, body, headers = error_parts(err, request.method, request.path)
        return json_response(body, status, headers)

    watch_slots = WatchSlots(node.config.max_watchers, edge.slots)
    for bp in (
        kv_blueprint(edge, relay, watch_slots),
        watch_blueprint(edge, watch_slots),
        health_blueprint(edge),
        admin_blueprint(edge, relay),
        hash_blueprint(edge),
        backup_blueprint(edge, relay),  # GET /v1/admin/snapshot (backups)
        members_blueprint(edge, relay),
        snapshot_blueprint(edge),  # POST /raft/v1/snapshot (chunks from the leader)
        raft_blueprint(edge),  # POST /raft/v1/messages (served by WsgiEdge in front)
        openapi_blueprint(),  # GET /openapi.json
    ):
        app.register_blueprint(bp)
    return app

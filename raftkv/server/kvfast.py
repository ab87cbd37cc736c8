"""kvfast.py — the KV hot path (``PUT`` / ``GET /v1/kv/<key>``) answered at raw-WSGI cost.

The profile of the leader under a write load (docs/scale.md, "CPU per write") spent about a fifth
of its GIL time in Flask's own machinery per request: request context, URL map matching, the
``Request``/``Response`` objects, hooks. The two requests that carry the load are served here
from the WSGI environ instead (``WsgiEdge`` calls ``FastKV.handle`` before Flask). What they
answer is decided by the KV routes' own pieces (routes_kv.py: ``result_body``, ``value_body``,
``decode_value``, ``reads_here``) and mapped to HTTP by the one error mapping
(http_errors.error_parts); only the WSGI plumbing is this module's.

Only the common shape is taken: a PUT with a ``Content-Length`` and no query string, on the
leader; a GET with no query string or ``consistency=linearizable|stale``, on a node that serves
linearizable reads itself (``reads_here``: the leader, or a follower that knows its leader).
Anything else — relaying to the leader, ``prev_value``, long polls, chunked bodies, oversized
values, the empty key, a node that is draining — returns ``None`` before any side effect and goes
to the Flask routes, which stay the one full implementation. A write refused with ``NotLeader``
(nothing was proposed) also goes there, its body put back, and is relayed like any other.
"""

from __future__ import annotations

import io
from typing import Any

from raftkv.errors import BadRequest, NotLeader
from raftkv.keycodec import KEY_PATH_PREFIX
from raftkv.kv import Command, Op, Outcome
from raftkv.server.edge_node import EdgeNode
from raftkv.server.keypath import request_key
from raftkv.server.requestid import parse_request_id
from raftkv.server.routes_kv import decode_value, reads_here, result_body, value_body

__all__ = ["FastKV"]

_LINEARIZABLE_QUERIES = ("", "consistency=linearizable")
_STALE_QUERY = "consistency=stale"


class FastKV:
    """``handle(environ, method, path)`` -> ``(status, body)`` or ``None`` (use the Flask route).
    Errors are raised (``RaftkvError`` and the like) for the caller's ``error_parts``."""

    def __init__(self, node: EdgeNode) -> None:
        self.node = node
        self.max_value = node.config.max_value_bytes
        self.proposals_ok = node.metrics.proposals.labels("ok")

    def handle(
        self, environ: dict[str, Any], method: str, path: str
    ) -> tuple[int, dict[str, Any]] | None:
        if len(path) <= len(KEY_PATH_PREFIX) or path == "/v1/kv//":
            return None  # the empty key and key "/" have their own route
        if method == "PUT":
            return self._put(environ)
        if method == "GET":
            return self._get(environ)
        return None

    def _put(self, environ: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
        node = self.node
        raw_length = environ.get("CONTENT_LENGTH")
        if (
            environ.get("QUERY_STRING")
            or not raw_length
            or not (raw_length.isascii() and raw_length.isdigit())
            or node.status().role != "leader"
            or node.draining
        ):
            return None
        length = int(raw_length)
        if length > self.max_value:
            return None  # the route answers 413 (and reads nothing)
        key = request_key(environ)
        client, seq = parse_request_id(environ.get("HTTP_X_REQUEST_ID"))
        raw = environ["wsgi.input"].read(length)
        if len(raw) != length:  # the client went away mid-body
            raise BadRequest(f"request body truncated: got {len(raw)} of {length} bytes")
        cmd = Command(op=Op.PUT, key=key, value=decode_value(raw), client_id=client, seq=seq)
        recorded = node.recorded_result(cmd)
        if recorded is not None:
            return 200, result_body(node, recorded)
        with node.slot():
            try:
                res = node.propose(cmd)
            except NotLeader:
                environ["wsgi.input"] = io.BytesIO(raw)  # the route relays it to the leader
                return None
        if res.outcome is Outcome.OK:
            self.proposals_ok.inc()
        return 200, result_body(node, res)

    def _get(self, environ: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
        query = environ.get("QUERY_STRING", "")
        node = self.node
        if query in _LINEARIZABLE_QUERIES:
            if not reads_here(node.status()):
                return None  # relayed by the route (or 503 there)
            key = request_key(environ)
            with node.slot():
                try:
                    node.read_barrier()
                except NotLeader:
                    return None
        elif query == _STALE_QUERY:
            key = request_key(environ)
        else:
            return None
        return 200, value_body(node, key)

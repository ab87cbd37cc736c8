"""kvfast.py — the KV hot path (``PUT`` / ``GET /v1/kv/<key>``) answered at raw-WSGI cost.

The profile of the leader under a write load (docs/scale.md, "CPU per write") spent about a fifth
of its GIL time in Flask's own machinery per request: request context, URL map matching, the
``Request``/``Response`` objects, hooks. The two requests that carry the load are served here
from the WSGI environ instead (``_Edge`` calls ``FastKV.handle`` before Flask), with the same
checks, the same answers and the same error mapping (``app.error_parts``) as the Flask routes.

Only the common shape is taken: a PUT with a ``Content-Length`` and no query string, on the
leader; a GET with no query string or ``consistency=linearizable|stale``, on the leader or (for a
linearizable read) on a follower that knows its leader (thesis §6.4 follower reads). Anything
else — relaying to the leader, ``prev_value``, long polls, chunked bodies, oversized values, the
empty key, a node that is draining — returns ``None`` before any side effect and goes to the Flask
routes, which stay the one full implementation. A write refused with ``NotLeader`` (nothing was
proposed) also goes there, its body put back, and is relayed like any other.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from raftkv.errors import BadRequest, InvalidValue, KeyNotFound, NotLeader
from raftkv.keycodec import KEY_PATH_PREFIX
from raftkv.kv import Command, Op, Outcome, Result, fingerprint
from raftkv.server.api import NodeAPI
from raftkv.server.keypath import request_key
from raftkv.server.requestid import parse_request_id

__all__ = ["FastKV"]

_LINEARIZABLE_QUERIES = ("", "consistency=linearizable")
_STALE_QUERY = "consistency=stale"


class FastKV:
    """``handle(environ, method, path)`` -> ``(status, body)`` or ``None`` (use the Flask route).
    Errors are raised (``RaftkvError`` and the like) for the caller's ``error_parts``."""

    def __init__(
        self,
        node: NodeAPI,
        slot: Callable[[], AbstractContextManager[None]],
        result_body: Callable[[Result], dict[str, Any]],
        on_ok: Callable[[], None],
    ) -> None:
        self.node = node
        self.slot = slot
        self.result_body = result_body
        self.on_ok = on_ok
        self.max_value = node.config.max_value_bytes
        self.timeout = node.config.request_timeout

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
        try:
            value = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidValue("value must be UTF-8 text") from None
        cmd = Command(op=Op.PUT, key=key, value=value, client_id=client, seq=seq)
        if client is not None and seq is not None:
            recorded = node.sm.lookup_session(client, seq, fingerprint(cmd))
            if recorded is not None:
                return 200, self.result_body(recorded)
        with self.slot():
            try:
                res = node.propose(cmd, self.timeout)
            except NotLeader:
                environ["wsgi.input"] = io.BytesIO(raw)  # the route relays it to the leader
                return None
        if res.outcome is Outcome.OK:
            self.on_ok()
        return 200, self.result_body(res)

    def _get(self, environ: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
        query = environ.get("QUERY_STRING", "")
        node = self.node
        if query in _LINEARIZABLE_QUERIES:
            st = node.status()
            if not (st.role == "leader" or (st.role == "follower" and st.leader)):
                return None  # relayed by the route (or 503 there)
            key = request_key(environ)
            with self.slot():
                try:
                    node.read_barrier(self.timeout)
                except NotLeader:
                    return None
        elif query == _STALE_QUERY:
            key = request_key(environ)
        else:
            return None
        found = node.sm.get(key)
        if found is None:
            raise KeyNotFound(key)
        return 200, {"key": key, "value": found[0], "index": found[1]}

"""http_errors.py — THE mapping of an exception to an HTTP answer, and the JSON response helper.

Every response is JSON except ``/metrics`` and a backup download; every error has an ``error``
field. ``error_parts`` is the one place that decides an error's status, JSON body and headers; it
is used by the Flask errorhandler (app.py) and by the WSGI fast paths (wsgi_edge.py) alike:

- the ``raftkv.errors`` tree carries its own status, payload and headers;
- the state machine's domain refusals (raftkv/kv/errors.py) have no status: ``refusal_error``
  gives the node's error for one (409 with the refusal's code);
- werkzeug's HTTP errors (404, 405, 413, ...) become JSON (405 with ``Allow``);
- a client that stalled mid-body is 408 (worker.py);
- anything else is logged and answered 500 without internals (never an HTML page or a traceback).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Response
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from raftkv.errors import RaftkvError, RequestIdConflict, refusal_error
from raftkv.server.worker import ClientTooSlow

__all__ = ["JSON", "error_parts", "json_response"]

log = logging.getLogger("raftkv.server.app")

JSON = "application/json"


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(obj, separators=(",", ":"), ensure_ascii=False),
        status=status,
        headers=headers,
        mimetype=JSON,
    )


def error_parts(
    err: BaseException, method: str, path: str
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """(HTTP status, JSON body with ``error`` and ``code``, headers) for ``err``."""
    if isinstance(err, RequestIdConflict):  # a kv session refusal
        err = refusal_error(err)
    if isinstance(err, RaftkvError):
        return err.status, err.payload(), err.headers()
    if isinstance(err, HTTPException):
        headers: dict[str, str] = {}
        if isinstance(err, NotFound):
            message = f"no such route: {method} {path}"
        elif isinstance(err, MethodNotAllowed):
            allowed = sorted(set(err.valid_methods or ()) - {"HEAD", "OPTIONS"})
            message = f"method {method} not allowed on {path}"
            if allowed:
                message += f"; allowed: {', '.join(allowed)}"
                headers["Allow"] = ", ".join(allowed)
        else:
            message = err.description or err.name
        code = err.name.lower().replace(" ", "_")
        return err.code or 500, {"error": message, "code": code}, headers
    if isinstance(err, (TimeoutError, ClientTooSlow)):  # a client stalled mid-body (worker.py)
        return (
            408,
            {"error": f"request body not received in time: {err}", "code": "request_timeout"},
            {"Connection": "close"},
        )
    log.error("event=unhandled-error method=%s path=%s", method, path, exc_info=err)
    return 500, {"error": f"internal error: {type(err).__name__}", "code": "internal"}, {}

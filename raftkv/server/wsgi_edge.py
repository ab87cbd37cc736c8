"""wsgi_edge.py — ``WsgiEdge``: the WSGI layer in front of Flask, for what every request needs at
raw-WSGI cost (this is on the hot path of every request; werkzeug's header objects and Flask hooks
cost several times more):

- the access check (auth.py: cluster and client tokens, peer mTLS), before anything else;
- the ``X-Raft-Leader``, ``X-Raft-Term``, ``X-Raft-Index`` and ``X-Raftkv-Served-By`` headers of
  every ``/v1/kv`` response;
- the request latency histogram (``raftkv_http_request_duration_seconds``);
- the whole ``POST /raft/v1/messages`` (routes_raft.handle_raft_post), without Flask: the hot path
  between peers;
- the common shape of ``PUT``/``GET /v1/kv/<key>`` (kvfast.py), without Flask: the hot path of
  clients (anything else goes on to the Flask routes).

Its answers use the one error mapping (http_errors.error_parts).
"""

from __future__ import annotations

import json
import time
from http import HTTPStatus
from typing import Any

from raftkv.errors import BadRequest
from raftkv.server.auth import Access
from raftkv.server.edge_node import EdgeNode
from raftkv.server.http_errors import JSON, error_parts
from raftkv.server.kvfast import FastKV
from raftkv.server.peer_gate import check_peer_cluster
from raftkv.server.routes_hash import HASH_PATH
from raftkv.server.routes_raft import RAFT_PATH, handle_raft_post
from raftkv.server.routes_snapshot import SNAPSHOT_PATH
from raftkv.server.worker import extend_for_body

__all__ = ["WsgiEdge", "peer_verified"]

_KNOWN_ROUTES = frozenset(
    {
        "/v1/kv",
        "/v1/status",
        "/healthz",
        "/readyz",
        "/metrics",
        "/v1/admin/transfer-leader",
        "/v1/admin/snapshot",
        RAFT_PATH,
        "/v1/watch",
        HASH_PATH,
        "/v1/members",
        "/v1/admin/members",
        "/openapi.json",
        SNAPSHOT_PATH,
    }
)


def peer_verified(environ: dict[str, Any]) -> bool:
    """True when the connection is TLS and the client presented a certificate that verified
    against --tls-ca (the handshake rejects a bad one; no certificate gives an empty dict)."""
    sock = environ.get("gunicorn.socket")
    getpeercert = getattr(sock, "getpeercert", None)
    if getpeercert is None:
        return False
    try:
        return bool(getpeercert())
    except (ValueError, OSError):
        return False


def _content_length(environ: dict[str, Any]) -> int | None:
    raw = environ.get("CONTENT_LENGTH")
    return int(raw) if raw and raw.isascii() and raw.isdigit() else None


def _route_label(path: str) -> str:
    if path.startswith("/v1/kv/"):
        return "/v1/kv/<key>"
    return path if path in _KNOWN_ROUTES else "unmatched"


_STATUS_LINES = {code: f"{code} {HTTPStatus(code).phrase}" for code in (200, 404)}


class WsgiEdge:
    """Wraps the Flask WSGI app ``inner`` serving ``node`` (see module docstring)."""

    def __init__(self, inner: Any, node: EdgeNode) -> None:
        self.inner = inner
        self.node = node
        cfg = node.config
        self.id = cfg.id
        self.access = Access(cfg)
        self.guarded = bool(cfg.cluster_tokens or cfg.client_auth or cfg.peer_mtls)
        self.histogram = node.metrics.request_seconds
        self.children: dict[tuple[str, str, str], Any] = {}
        self.fast: FastKV | None = FastKV(node)  # None: every request goes to Flask

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        t0 = time.perf_counter()
        path: str = environ.get("PATH_INFO", "")
        method: str = environ.get("REQUEST_METHOD", "")
        status_code = ["500"]
        if self.guarded:
            denied = self.access.check(
                method, path, environ.get("HTTP_AUTHORIZATION", ""), peer_verified(environ)
            )
            if denied is not None:
                return self._answer(
                    start_response, *error_parts(denied, method, path), method, path, t0
                )
        extend_for_body(
            environ.get("gunicorn.socket"),
            _content_length(environ),
            "HTTP_TRANSFER_ENCODING" in environ,
        )
        if method == "POST" and path == RAFT_PATH:
            return self._raft(environ, start_response, t0)
        kv = path.startswith("/v1/kv")
        fast = self.fast
        if kv and fast is not None and (method == "PUT" or method == "GET"):
            try:
                answer = fast.handle(environ, method, path)
            except Exception as err:  # the same mapping as the routes' errorhandler
                return self._answer(
                    start_response, *error_parts(err, method, path), method, path, t0, kv=True
                )
            if answer is not None:
                return self._answer(
                    start_response, answer[0], answer[1], {}, method, path, t0, kv=True
                )

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status_code[0] = status[:3]
            if kv and not any(k == "X-Raft-Term" for k, _ in headers):
                headers.extend(self._kv_headers())
            return start_response(status, headers, exc_info)

        result = self.inner(environ, start)
        self._observe(method, path, status_code[0], t0)
        return result

    def _kv_headers(self) -> list[tuple[str, str]]:
        """The headers of every ``/v1/kv`` answer: who leads, at which term, how far applied."""
        st = self.node.status()
        return [
            ("X-Raft-Leader", st.leader or ""),
            ("X-Raft-Term", str(st.term)),
            ("X-Raft-Index", str(st.last_applied)),
            ("X-Raftkv-Served-By", self.id),
        ]

    def _raft(self, environ: dict[str, Any], start_response: Any, t0: float) -> Any:
        try:
            raw_length = environ.get("CONTENT_LENGTH") or None
            try:
                length = int(raw_length) if raw_length is not None else None
            except ValueError:
                raise BadRequest(f"bad Content-Length {raw_length!r}") from None
            check_peer_cluster(self.node, environ)
            obj = handle_raft_post(self.node, length, environ["wsgi.input"])
        except Exception as err:  # mapped like any error: never a traceback to a peer
            return self._answer(
                start_response, *error_parts(err, "POST", RAFT_PATH), "POST", RAFT_PATH, t0
            )
        return self._answer(start_response, 200, obj, {}, "POST", RAFT_PATH, t0)

    def _answer(
        self,
        start_response: Any,
        code: int,
        obj: dict[str, Any],
        headers: dict[str, str],
        method: str,
        path: str,
        t0: float,
        kv: bool = False,
    ) -> list[bytes]:
        body = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
        head = [("Content-Type", JSON), ("Content-Length", str(len(body))), *headers.items()]
        if kv:
            head += self._kv_headers()
        start_response(_STATUS_LINES.get(code) or f"{code} {HTTPStatus(code).phrase}", head)
        self._observe(method, path, str(code), t0)
        return [body]

    def _observe(self, method: str, path: str, status: str, t0: float) -> None:
        key = (method, _route_label(path), status)
        child = self.children.get(key)
        if child is None:
            child = self.children[key] = self.histogram.labels(*key)
        child.observe(time.perf_counter() - t0)

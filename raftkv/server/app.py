"""app.py — the Flask app: KV API, Raft RPC, admin, status/health/metrics on one port.

Contract (README's API table, docs/contracts.md §3):
- Every response is JSON except ``/metrics``; every error has an ``error`` field. ONE mapping,
  ``error_parts``, turns the ``raftkv.errors`` tree and werkzeug's HTTP errors (404, 405, 413, ...)
  into status + JSON; anything else is logged and answered 500 JSON (never an HTML page or a
  traceback). Flask's single errorhandler and the WSGI fast paths both use it.
- ``_Edge`` (a WSGI layer in front of Flask) does what every request needs at raw-WSGI cost: the
  access check (auth.py: cluster and client tokens, peer mTLS), the X-Raft-* headers, the
  latency histogram, and the whole Raft RPC (peers only).
- KV responses carry ``X-Raft-Leader``, ``X-Raft-Term``, ``X-Raft-Index`` and
  ``X-Raftkv-Served-By``.
- A follower forwards writes and linearizable reads to the leader (forward.py); a forwarded
  request is never forwarded again. No leader -> 503 + ``Retry-After``.
- Requests that block on the node (writes, linearizable reads, forwarding) take a slot from a
  semaphore sized below gunicorn's thread count, so the Raft RPC from peers always finds a free
  thread (otherwise a leader whose threads all wait on commits could not receive the
  acknowledgements that commit them). No slot -> 503 ``overloaded`` at once.
- ``create_app(node)`` builds the app around a ``NodeAPI``; it starts no thread (gunicorn's
  ``post_worker_init`` hook starts the node inside the worker, see gunicorn_conf.py).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http import HTTPStatus
from typing import Any

from flask import Flask, Request, Response, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import BaseConverter, PathConverter

from raftkv.config import NodeConfig
from raftkv.errors import (
    BadRequest,
    InvalidKey,
    InvalidQuery,
    InvalidValue,
    KeyNotFound,
    NodeFailed,
    NoLeader,
    NotLeader,
    Overloaded,
    PayloadTooLarge,
    PreconditionFailed,
    RaftkvError,
    RequestIdConflict,
    RequestIdReused,
    SessionExpired,
    ShuttingDown,
)
from raftkv.keycodec import validate_key
from raftkv.kv import Command, Op, Outcome, Result, fingerprint
from raftkv.server import watch as watch_routes
from raftkv.server.admin_backup import backup_blueprint
from raftkv.server.api import NodeAPI
from raftkv.server.auth import Access
from raftkv.server.forward import FORWARDED_HEADER, Forwarder
from raftkv.server.keypath import forward_target, query_value, request_key
from raftkv.server.kvfast import FastKV
from raftkv.server.members import register_members
from raftkv.server.openapi import register as register_openapi
from raftkv.server.peer_gate import check_peer_cluster
from raftkv.server.requestid import parse_request_id
from raftkv.server.routes_hash import HASH_PATH, hash_blueprint
from raftkv.server.routes_snapshot import SNAPSHOT_PATH, snapshot_blueprint
from raftkv.server.tls import client_context
from raftkv.server.transport import RAFT_PATH, receive_post
from raftkv.server.worker import ClientTooSlow, extend_for_body

__all__ = ["EXTENSION_KEY", "build_app", "parse_request_id", "validate_key"]

log = logging.getLogger(__name__)

EXTENSION_KEY = "raftkv.node"
MAX_LIST_LIMIT = 10_000
DEFAULT_LIST_LIMIT = 1_000
_JSON = "application/json"


class _KeyConverter(BaseConverter):
    """``<key:...>``: the rest of the path, whatever it holds (a key may start or end with ``/``,
    or hold empty segments). Only routes on it: the key itself comes from the raw request
    target (keypath.request_key), never from the decoded path."""

    regex = r"[\s\S]+"  # '.' would not match a newline (%0A)
    part_isolating = False


def _check_query(req: Request, allowed: frozenset[str]) -> None:
    for name in req.args:
        if name not in allowed:
            hint = ", ".join(sorted(allowed)) or "none"
            raise InvalidQuery(f"unknown query parameter {name!r} (allowed: {hint})")


def _consistency(req: Request) -> bool:
    """True for linearizable (the default), False for ``consistency=stale``."""
    value = req.args.get("consistency", "linearizable")
    if value not in ("linearizable", "stale"):
        raise InvalidQuery(f"consistency must be 'linearizable' or 'stale', got {value!r}")
    return value == "linearizable"


def _json(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(obj, separators=(",", ":"), ensure_ascii=False),
        status=status,
        headers=headers,
        mimetype=_JSON,
    )


class _Ctx:
    """Per-app state shared by the routes."""

    def __init__(self, node: NodeAPI) -> None:
        self.node = node
        cfg: NodeConfig = node.config
        self.cfg = cfg
        self.id = cfg.id
        self.forwarder = Forwarder(
            cfg.id, cfg.peer_urls, timeout=cfg.request_timeout + 1.0,
            ssl_context=client_context(cfg).get if cfg.tls else None,
        )
        reserve = max(4, cfg.threads // 8)
        self.slots = threading.BoundedSemaphore(max(1, cfg.threads - reserve))
        self.access = Access(cfg)
        self.guarded = bool(cfg.cluster_tokens or cfg.client_auth or cfg.peer_mtls)

    @contextmanager
    def slot(self) -> Iterator[None]:
        if not self.slots.acquire(blocking=False):
            raise Overloaded("too many requests in flight on this node; retry")
        try:
            yield
        finally:
            self.slots.release()


_STATUS_LINES = {code: f"{code} {HTTPStatus(code).phrase}" for code in (200, 404)}

_KNOWN_ROUTES = frozenset({
    "/v1/kv", "/v1/status", "/healthz", "/readyz", "/metrics", "/v1/admin/transfer-leader",
    "/v1/admin/snapshot", "/raft/v1/messages", "/v1/watch", HASH_PATH, "/v1/members",
    "/v1/admin/members", "/openapi.json", SNAPSHOT_PATH,
})


def error_parts(
    err: BaseException, method: str, path: str
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """THE mapping of an exception to (HTTP status, JSON body with ``error``, headers), used by
    Flask's one errorhandler and by the WSGI fast paths alike: the ``raftkv.errors`` tree carries
    its own status/payload/headers; werkzeug's HTTP errors (404, 405, 413, ...) become JSON;
    anything else is logged and answered 500 without internals."""
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
        return 408, {"error": f"request body not received in time: {err}",
                     "code": "request_timeout"}, {"Connection": "close"}
    log.error("event=unhandled-error method=%s path=%s", method, path, exc_info=err)
    return 500, {"error": f"internal error: {type(err).__name__}", "code": "internal"}, {}


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


class KeyConverter(PathConverter):
    """``<path:key>`` for keys: any characters, a leading '/' and newlines included (werkzeug's
    own stops at a newline and refuses a leading '/', so such keys were a 404 "no such route"
    instead of the key's own answer: found by schemathesis). validate_key judges the key."""

    regex = "(?s:.+)"
    part_isolating = False  # spans '/' (werkzeug infers True from a regex without a '/')


def _content_length(environ: dict[str, Any]) -> int | None:
    raw = environ.get("CONTENT_LENGTH")
    return int(raw) if raw and raw.isascii() and raw.isdigit() else None


def _route_label(path: str) -> str:
    if path.startswith("/v1/kv/"):
        return "/v1/kv/<key>"
    return path if path in _KNOWN_ROUTES else "unmatched"


class _Edge:
    """WSGI layer around Flask for what every request needs, at raw-WSGI cost (this is on the
    hot path of every request; werkzeug's header objects and Flask hooks cost several times more):
    the cluster-token check, the X-Raft-* headers of KV responses, the latency histogram."""

    def __init__(self, inner: Any, ctx: _Ctx) -> None:
        self.inner = inner
        self.ctx = ctx
        self.node = ctx.node
        self.histogram = ctx.node.metrics.request_seconds
        self.children: dict[tuple[str, str, str], Any] = {}
        self.fast: FastKV | None = None  # set by build_app: PUT/GET /v1/kv/<key> without Flask

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        t0 = time.perf_counter()
        path: str = environ.get("PATH_INFO", "")
        method: str = environ.get("REQUEST_METHOD", "")
        ctx = self.ctx
        status_code = ["500"]
        if ctx.guarded:
            denied = ctx.access.check(method, path, environ.get("HTTP_AUTHORIZATION", ""),
                                      peer_verified(environ))
            if denied is not None:
                return self._answer(start_response, *error_parts(denied, method, path),
                                    method, path, t0)
        extend_for_body(environ.get("gunicorn.socket"), _content_length(environ),
                        "HTTP_TRANSFER_ENCODING" in environ)
        if method == "POST" and path == RAFT_PATH:
            return self._raft(environ, start_response, t0)
        kv = path.startswith("/v1/kv")
        fast = self.fast
        if kv and fast is not None and (method == "PUT" or method == "GET"):
            try:
                answer = fast.handle(environ, method, path)
            except Exception as err:  # the same mapping as the routes' errorhandler
                return self._answer(start_response, *error_parts(err, method, path),
                                    method, path, t0, kv=True)
            if answer is not None:
                return self._answer(start_response, answer[0], answer[1], {}, method, path, t0,
                                    kv=True)

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status_code[0] = status[:3]
            if kv and not any(k == "X-Raft-Term" for k, _ in headers):
                st = self.node.status()
                headers.append(("X-Raft-Leader", st.leader or ""))
                headers.append(("X-Raft-Term", str(st.term)))
                headers.append(("X-Raft-Index", str(st.last_applied)))
                headers.append(("X-Raftkv-Served-By", ctx.id))
            return start_response(status, headers, exc_info)

        result = self.inner(environ, start)
        self._observe(method, path, status_code[0], t0)
        return result

    def _raft(self, environ: dict[str, Any], start_response: Any, t0: float) -> Any:
        try:
            raw_length = environ.get("CONTENT_LENGTH") or None
            try:
                length = int(raw_length) if raw_length is not None else None
            except ValueError:
                raise BadRequest(f"bad Content-Length {raw_length!r}") from None
            check_peer_cluster(self.node, environ)
            obj = receive_post(self.node, self.node.config.id, length, environ["wsgi.input"])
        except Exception as err:  # mapped like any error: never a traceback to a peer
            return self._answer(start_response, *error_parts(err, "POST", RAFT_PATH),
                                "POST", RAFT_PATH, t0)
        return self._answer(start_response, 200, obj, {}, "POST", RAFT_PATH, t0)

    def _answer(self, start_response: Any, code: int, obj: dict[str, Any],
                headers: dict[str, str], method: str, path: str, t0: float,
                kv: bool = False) -> list[bytes]:
        body = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
        head = [("Content-Type", _JSON), ("Content-Length", str(len(body))), *headers.items()]
        if kv:
            st = self.node.status()
            head += [("X-Raft-Leader", st.leader or ""), ("X-Raft-Term", str(st.term)),
                     ("X-Raft-Index", str(st.last_applied)), ("X-Raftkv-Served-By", self.ctx.id)]
        start_response(_STATUS_LINES.get(code) or f"{code} {HTTPStatus(code).phrase}", head)
        self._observe(method, path, str(code), t0)
        return [body]

    def _observe(self, method: str, path: str, status: str, t0: float) -> None:
        key = (method, _route_label(path), status)
        child = self.children.get(key)
        if child is None:
            child = self.children[key] = self.histogram.labels(*key)
        child.observe(time.perf_counter() - t0)


def build_app(node: NodeAPI) -> Flask:
    """The Flask app serving ``node`` (see module docstring)."""
    app = Flask("raftkv")
    app.url_map.converters["path"] = KeyConverter  # before any route is added
    app.url_map.merge_slashes = False
    app.url_map.strict_slashes = False
    app.url_map.converters["key"] = _KeyConverter
    ctx = _Ctx(node)
    app.extensions[EXTENSION_KEY] = node
    app.extensions["raftkv.ctx"] = ctx
    metrics = node.metrics

    # ------------------------------------------------------------------ plumbing
    edge = _Edge(app.wsgi_app, ctx)
    app.wsgi_app = edge  # type: ignore[method-assign]
    proposals_ok = metrics.proposals.labels("ok")

    default_options = app.make_default_options_response

    def options_response() -> Response:
        """OPTIONS answers JSON too (Flask's automatic answer is an empty text/html page)."""
        allowed = sorted(default_options().allow)
        return _json({"allow": allowed}, 200, {"Allow": ", ".join(allowed)})

    app.make_default_options_response = options_response  # type: ignore[method-assign]

    @app.errorhandler(Exception)
    def _error(err: Exception) -> Response:
        status, body, headers = error_parts(err, request.method, request.path)
        return _json(body, status, headers)

    # ------------------------------------------------------------------ helpers
    def forward_or_raise(leader: str | None) -> Response:
        """Relay the current request to ``leader``, or explain why not (503)."""
        if request.headers.get(FORWARDED_HEADER) is not None:
            raise NotLeader(
                f"node {ctx.id} is not the leader (request already forwarded once); retry",
                leader=leader,
            )
        if not ctx.forwarder.can_forward_to(leader):
            raise NoLeader("no leader known (election in progress); retry", leader=None)
        assert leader is not None
        body = request.get_data(cache=True)
        status, headers, data = ctx.forwarder.forward(
            leader, request.method, forward_target(request.environ), request.headers, body
        )
        metrics.forwarded.inc()
        return Response(data, status=status, headers=headers)

    def leader_check() -> Response | None:
        st = node.status()
        if st.role == "leader":
            return None
        return forward_or_raise(st.leader)

    def result_response(res: Result) -> Response:
        return _json(result_body(res))

    def result_body(res: Result) -> dict[str, Any]:
        """A write's answer (200 body), or the error it is (raised)."""
        if res.outcome is Outcome.OK:
            body: dict[str, Any] = {"key": res.key, "index": res.index, "term": res.term}
            if res.value is None:
                body["deleted"] = True
            else:
                body["value"] = res.value
            body["leader"] = node.status().leader
            return body
        if res.outcome is Outcome.NOT_FOUND:
            raise KeyNotFound(res.key)
        if res.outcome is Outcome.CAS_FAILED:
            raise PreconditionFailed(res.key, res.value, res.index)
        if res.outcome is Outcome.STALE_REQUEST:
            raise RequestIdConflict(
                "X-Request-Id is older than this client's deduplication window"
            )
        if res.outcome is Outcome.SESSION_EXPIRED:
            raise SessionExpired(
                "this client's exactly-once session expired (evicted); the request may have "
                "been applied before and was refused; continue with a new seq or client id"
            )
        if res.outcome is Outcome.REQUEST_ID_REUSED:
            raise RequestIdReused(
                "X-Request-Id was already used for a different request; this one was not applied"
            )
        raise RaftkvError(f"command could not be applied ({res.outcome.value})")

    def write(cmd: Command) -> Response:
        if node.draining:
            raise ShuttingDown(f"node {ctx.id} is shutting down; retry on another node")
        if cmd.client_id is not None and cmd.seq is not None:
            recorded = node.sm.lookup_session(cmd.client_id, cmd.seq, fingerprint(cmd))
            if recorded is not None:
                return result_response(recorded)
        relayed = leader_check()
        if relayed is not None:
            return relayed
        with ctx.slot():
            try:
                res = node.propose(cmd, ctx.cfg.request_timeout)
            except NotLeader as err:
                return forward_or_raise(err.leader)
        if res.outcome is Outcome.OK:
            proposals_ok.inc()
        return result_response(res)

    edge.fast = FastKV(node, ctx.slot, result_body, proposals_ok.inc)

    def barrier() -> Response | None:
        """Linearizable read: wait for a ReadIndex — on the leader, or on a follower that asks
        its leader for the index and answers once it applied it (thesis §6.4); with no leader
        known, relay (or 503)."""
        st = node.status()
        if st.role != "leader" and not (st.role == "follower" and st.leader):
            return forward_or_raise(st.leader)
        with ctx.slot():
            try:
                node.read_barrier(ctx.cfg.request_timeout)
            except NotLeader as err:
                return forward_or_raise(err.leader)
        return None

    def request_value() -> str:
        limit = ctx.cfg.max_value_bytes
        length = request.content_length
        if length is not None and length > limit:
            raise PayloadTooLarge(f"value is {length} bytes; the limit is {limit} (1 MiB)")
        raw = request.stream.read(limit + 1) if length is None else request.get_data(cache=True)
        if length is not None and len(raw) != length:  # the client went away mid-body
            raise BadRequest(f"request body truncated: got {len(raw)} of {length} bytes")
        if len(raw) > limit:
            raise PayloadTooLarge(f"value is larger than the limit of {limit} bytes (1 MiB)")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidValue("value must be UTF-8 text") from None

    # ------------------------------------------------------------------ KV API
    q_put = frozenset({"prev_value"})
    q_get = frozenset({"consistency"})
    q_poll = frozenset({"wait_index", "timeout"})
    q_list = frozenset({"prefix", "limit", "consistency"})

    def prev_value() -> str | None:
        return query_value(request.environ, "prev_value", error=InvalidValue)

    @app.route("/v1/kv/<key:_route_key>", methods=["PUT"])
    def kv_put(_route_key: str) -> Response:
        key = request_key(request.environ)
        _check_query(request, q_put)
        client, seq = parse_request_id(request.headers.get("X-Request-Id"))
        value = request_value()
        prev = prev_value()
        return write(
            Command(op=Op.PUT, key=key, value=value, prev_value=prev, client_id=client, seq=seq)
        )

    @app.route("/v1/kv/<key:_route_key>", methods=["DELETE"])
    def kv_delete(_route_key: str) -> Response:
        key = request_key(request.environ)
        _check_query(request, q_put)
        client, seq = parse_request_id(request.headers.get("X-Request-Id"))
        prev = prev_value()
        return write(Command(op=Op.DELETE, key=key, prev_value=prev, client_id=client, seq=seq))

    @app.route("/v1/kv/<key:_route_key>", methods=["GET"])
    def kv_get(_route_key: str) -> Response:
        key = request_key(request.environ)
        if "wait_index" in request.args:  # long poll (watch.py)
            _check_query(request, q_poll)
            return watch_routes.long_poll(node, key, request)
        _check_query(request, q_get)
        if _consistency(request):
            relayed = barrier()
            if relayed is not None:
                return relayed
        found = node.sm.get(key)
        if found is None:
            raise KeyNotFound(key)
        return _json({"key": key, "value": found[0], "index": found[1]})

    @app.route("/v1/kv/", methods=["GET", "PUT", "DELETE"])
    def kv_empty_key() -> Response:
        if request.environ.get("PATH_INFO") != "/v1/kv/":  # key "/" (/v1/kv//) lands here
            handler = {"PUT": kv_put, "DELETE": kv_delete}.get(request.method, kv_get)
            return handler("/")
        if request.method == "GET":
            return kv_list()
        raise InvalidKey("key must not be empty: use /v1/kv/<key>")

    @app.route("/v1/kv", methods=["GET"])
    def kv_list() -> Response:
        _check_query(request, q_list)
        prefix = query_value(request.environ, "prefix", error=InvalidKey) or ""
        if prefix:
            validate_key(prefix)
        raw_limit = request.args.get("limit", str(DEFAULT_LIST_LIMIT))
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIST_LIMIT:
            raise InvalidQuery(
                f"limit must be an integer in 1..{MAX_LIST_LIMIT}, got {raw_limit!r}"
            )
        limit = int(raw_limit)
        if _consistency(request):
            relayed = barrier()
            if relayed is not None:
                return relayed
        rows = node.sm.list_prefix(prefix, limit + 1)
        items = [{"key": k, "value": v, "index": i} for k, v, i in rows[:limit]]
        return _json(
            {"prefix": prefix, "items": items, "count": len(items), "truncated": len(rows) > limit}
        )

    # ------------------------------------------------------------------ observability
    @app.route("/v1/status", methods=["GET"])
    def status() -> Response:
        return _json({**node.status().to_json(), "cluster_id": node.cluster_id})

    @app.route("/healthz", methods=["GET"])
    def healthz() -> Response:
        if not node.started:
            raise NodeFailed(f"node {ctx.id} is not running")
        return _json({"ok": True, "id": ctx.id})

    @app.route("/readyz", methods=["GET"])
    def readyz() -> Response:
        st = node.status()
        why = None
        if not node.started:
            why = "node is not running"
        elif node.draining:
            why = "node is shutting down"
        elif st.member_role in ("none", "removed"):
            why = "joining" if st.member_role == "none" else "removed from the cluster"
        elif st.leader is None:
            why = "no known leader"
        elif st.last_applied < st.commit_index:
            why = f"applying: last_applied {st.last_applied} < commit_index {st.commit_index}"
        body = {"ready": why is None, "id": ctx.id, "role": st.public_role, "leader": st.leader,
                "commit_index": st.commit_index, "last_applied": st.last_applied}
        if why is not None:
            body["error"] = f"not ready: {why}"
            return _json(body, 503, {"Retry-After": "1"})
        return _json(body)

    @app.route("/metrics", methods=["GET"])
    def metrics_route() -> Response:
        return Response(metrics.render(), mimetype="text/plain; version=0.0.4; charset=utf-8")

    # ------------------------------------------------------------------ admin
    def admin_body() -> dict[str, Any]:
        raw = request.get_data(cache=True)
        if request.content_length is not None and len(raw) != request.content_length:
            raise BadRequest(f"request body truncated: got {len(raw)} of "
                             f"{request.content_length} bytes")
        if not raw.strip():
            return {}
        try:
            obj = json.loads(raw)
        except (ValueError, RecursionError):  # RecursionError: nesting too deep
            raise BadRequest("body must be a JSON object") from None
        if not isinstance(obj, dict):
            raise BadRequest("body must be a JSON object")
        return obj

    @app.route("/v1/admin/transfer-leader", methods=["POST"])
    def transfer_leader() -> Response:
        body = admin_body()
        unknown = set(body) - {"target"}
        if unknown:
            raise BadRequest(f"unknown field(s): {', '.join(sorted(unknown))}")
        target = body.get("target")
        voters = node.status().members  # from the configuration: members added later count
        if target is not None and (not isinstance(target, str) or target not in voters):
            raise BadRequest(
                f"target must be null or one of {', '.join(voters)}, got {target!r}"
            )
        relayed = leader_check()
        if relayed is not None:
            return relayed
        before = node.status()
        if target == ctx.id:
            return _json({"leader": ctx.id, "previous": ctx.id, "term": before.term})
        with ctx.slot():
            try:
                new_leader = node.transfer_leadership(target, ctx.cfg.request_timeout)
            except NotLeader as err:
                return forward_or_raise(err.leader)
        after = node.status()
        return _json({"leader": new_leader, "previous": ctx.id, "term": after.term})

    @app.route("/v1/admin/snapshot", methods=["POST"])
    def snapshot() -> Response:
        with ctx.slot():
            index = node.snapshot_now(ctx.cfg.request_timeout)
        return _json({"id": ctx.id, "snapshot_index": index})

    watch_routes.register(app, node, ctx.slots)
    app.register_blueprint(hash_blueprint(node))
    app.register_blueprint(snapshot_blueprint(node))
    # membership routes (members.py); members added through the log are found by their URL in the
    # configuration, so forwarding reaches a leader that was not among the flags' peers
    ctx.forwarder.resolver = lambda pid: node.status().peer_urls.get(pid)
    register_members(app, node, forward_or_raise)
    app.register_blueprint(backup_blueprint(node, ctx))  # GET /v1/admin/snapshot (backups)
    register_openapi(app)  # GET /openapi.json

    # ------------------------------------------------------------------ Raft RPC
    # POSTs are answered by _Edge without Flask (the hot path between peers); the route exists
    # for the URL map (405 on other methods) and serves them too if _Edge is not in front.
    @app.route(RAFT_PATH, methods=["POST"])
    def raft_messages() -> Response:
        check_peer_cluster(node, request.environ)
        return _json(receive_post(node, node.config.id, request.content_length, request.stream))

    return app

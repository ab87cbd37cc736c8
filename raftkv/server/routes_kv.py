"""routes_kv.py — the client KV API: ``PUT/GET/DELETE /v1/kv/<key>`` and ``GET /v1/kv``.

Contract (README's API table, docs/contracts.md §3):
- KV responses carry ``X-Raft-Leader``, ``X-Raft-Term``, ``X-Raft-Index`` and
  ``X-Raftkv-Served-By`` (added by the WSGI edge, wsgi_edge.py).
- A write is acknowledged once committed and applied; a follower relays writes to the leader
  (relay.py) and serves linearizable reads itself through ReadIndex (it asks the leader for the
  read index, thesis §6.4); ``consistency=stale`` reads this replica at once.
- The common shape of ``PUT``/``GET /v1/kv/<key>`` is answered before Flask by kvfast.py, with
  the pieces below (``result_body``, ``value_body``, ``decode_value``, ``reads_here``).
- ``X-Request-Id: <client>:<seq>`` makes a write exactly-once: an already applied one is answered
  from the recorded result without a Raft round.
- ``GET /v1/kv/<key>?wait_index=N`` is a long poll (watch.py).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request
from werkzeug.routing import BaseConverter

from raftkv.errors import (
    BadRequest,
    InvalidKey,
    InvalidQuery,
    InvalidValue,
    KeyNotFound,
    NotLeader,
    PayloadTooLarge,
    PreconditionFailed,
    RaftkvError,
    RequestIdConflictError,
    RequestIdReusedError,
    SessionExpiredError,
    ShuttingDown,
)
from raftkv.keycodec import validate_key
from raftkv.kv import Command, Op, Outcome, Result
from raftkv.server.edge_node import EdgeNode, NodeStatus
from raftkv.server.http_errors import json_response
from raftkv.server.keypath import query_value, request_key
from raftkv.server.query import check_query, linearizable
from raftkv.server.relay import Relay
from raftkv.server.requestid import parse_request_id
from raftkv.server.watch import WatchSlots, long_poll

__all__ = [
    "DEFAULT_LIST_LIMIT",
    "MAX_LIST_LIMIT",
    "KeyConverter",
    "decode_value",
    "kv_blueprint",
    "reads_here",
    "result_body",
    "value_body",
]

MAX_LIST_LIMIT = 10_000
DEFAULT_LIST_LIMIT = 1_000
_Q_PUT = frozenset({"prev_value"})
_Q_GET = frozenset({"consistency"})
_Q_POLL = frozenset({"wait_index", "timeout"})
_Q_LIST = frozenset({"prefix", "limit", "consistency"})


class KeyConverter(BaseConverter):
    """``<key:...>``: the rest of the path, whatever it holds (a key may start or end with ``/``,
    or hold empty segments). Only routes on it: the key itself comes from the raw request
    target (keypath.request_key), never from the decoded path."""

    regex = r"[\s\S]+"  # '.' would not match a newline (%0A)
    part_isolating = False


def result_body(node: EdgeNode, res: Result) -> dict[str, Any]:
    """A write's 200 body for its ``Result``, or (raised) the error its outcome is."""
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
        raise RequestIdConflictError(
            "X-Request-Id is older than this client's deduplication window"
        )
    if res.outcome is Outcome.SESSION_EXPIRED:
        raise SessionExpiredError(
            "this client's exactly-once session expired (evicted); the request may have "
            "been applied before and was refused; continue with a new seq or client id"
        )
    if res.outcome is Outcome.REQUEST_ID_REUSED:
        raise RequestIdReusedError(
            "X-Request-Id was already used for a different request; this one was not applied"
        )
    raise RaftkvError(f"command could not be applied ({res.outcome.value})")


def result_response(node: EdgeNode, res: Result) -> Response:
    """The answer to a write's ``Result``: 200 with the entry, or the error its outcome is."""
    return json_response(result_body(node, res))


def value_body(node: EdgeNode, key: str) -> dict[str, Any]:
    """A read's 200 body from this replica's state machine; KeyNotFound (404)."""
    found = node.get(key)
    if found is None:
        raise KeyNotFound(key)
    return {"key": key, "value": found[0], "index": found[1]}


def decode_value(raw: bytes) -> str:
    """A request body as the value it carries (UTF-8 text); InvalidValue (400)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidValue("value must be UTF-8 text") from None


def reads_here(st: NodeStatus) -> bool:
    """Whether this node serves a linearizable read itself: the leader, or a follower that knows
    its leader (it asks the leader for the read index and waits to have applied it, thesis
    §6.4). Elsewhere (a candidate, no leader known) the read is relayed, or answered 503."""
    return st.role == "leader" or (st.role == "follower" and bool(st.leader))


def barrier(node: EdgeNode, relay: Relay) -> Response | None:
    """Linearizable read: wait for a ReadIndex here (None: read this replica) — on the leader, or
    on a follower (``reads_here``); otherwise the leader's answer (relayed) or 503."""
    st = node.status()
    if not reads_here(st):
        return relay.forward_or_raise(st.leader)
    with node.slot():
        try:
            node.read_barrier()
        except NotLeader as err:
            return relay.forward_or_raise(err.leader)
    return None


def _request_value(limit: int) -> str:
    length = request.content_length
    if length is not None and length > limit:
        raise PayloadTooLarge(f"value is {length} bytes; the limit is {limit} (1 MiB)")
    raw = request.stream.read(limit + 1) if length is None else request.get_data(cache=True)
    if length is not None and len(raw) != length:  # the client went away mid-body
        raise BadRequest(f"request body truncated: got {len(raw)} of {length} bytes")
    if len(raw) > limit:
        raise PayloadTooLarge(f"value is larger than the limit of {limit} bytes (1 MiB)")
    return decode_value(raw)


def _prev_value() -> str | None:
    return query_value(request.environ, "prev_value", error=InvalidValue)


def kv_blueprint(node: EdgeNode, relay: Relay, watch_slots: WatchSlots) -> Blueprint:
    """The blueprint serving the KV API for ``node`` (the app registers the ``key`` converter)."""
    bp = Blueprint("kv", __name__)
    proposals_ok = node.metrics.proposals.labels("ok")

    def write(cmd: Command) -> Response:
        if node.draining:
            raise ShuttingDown(f"node {node.id} is shutting down; retry on another node")
        recorded = node.recorded_result(cmd)
        if recorded is not None:
            return result_response(node, recorded)
        relayed = relay.unless_leader()
        if relayed is not None:
            return relayed
        with node.slot():
            try:
                res = node.propose(cmd)
            except NotLeader as err:
                return relay.forward_or_raise(err.leader)
        if res.outcome is Outcome.OK:
            proposals_ok.inc()
        return result_response(node, res)

    @bp.route("/v1/kv/<key:_route_key>", methods=["PUT"])
    def kv_put(_route_key: str) -> Response:
        key = request_key(request.environ)
        check_query(request, _Q_PUT)
        client, seq = parse_request_id(request.headers.get("X-Request-Id"))
        value = _request_value(node.config.max_value_bytes)
        prev = _prev_value()
        return write(
            Command(op=Op.PUT, key=key, value=value, prev_value=prev, client_id=client, seq=seq)
        )

    @bp.route("/v1/kv/<key:_route_key>", methods=["DELETE"])
    def kv_delete(_route_key: str) -> Response:
        key = request_key(request.environ)
        check_query(request, _Q_PUT)
        client, seq = parse_request_id(request.headers.get("X-Request-Id"))
        prev = _prev_value()
        return write(Command(op=Op.DELETE, key=key, prev_value=prev, client_id=client, seq=seq))

    @bp.route("/v1/kv/<key:_route_key>", methods=["GET"])
    def kv_get(_route_key: str) -> Response:
        key = request_key(request.environ)
        if "wait_index" in request.args:  # long poll (watch.py)
            check_query(request, _Q_POLL)
            return long_poll(node, watch_slots, key, request)
        check_query(request, _Q_GET)
        if linearizable(request):
            relayed = barrier(node, relay)
            if relayed is not None:
                return relayed
        return json_response(value_body(node, key))

    @bp.route("/v1/kv/", methods=["GET", "PUT", "DELETE"])
    def kv_empty_key() -> Response:
        if request.environ.get("PATH_INFO") != "/v1/kv/":  # key "/" (/v1/kv//) lands here
            handler = {"PUT": kv_put, "DELETE": kv_delete}.get(request.method, kv_get)
            return handler("/")
        if request.method == "GET":
            return kv_list()
        raise InvalidKey("key must not be empty: use /v1/kv/<key>")

    @bp.route("/v1/kv", methods=["GET"])
    def kv_list() -> Response:
        check_query(request, _Q_LIST)
        prefix = query_value(request.environ, "prefix", error=InvalidKey) or ""
        if prefix:
            validate_key(prefix)
        raw_limit = request.args.get("limit", str(DEFAULT_LIST_LIMIT))
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIST_LIMIT:
            raise InvalidQuery(
                f"limit must be an integer in 1..{MAX_LIST_LIMIT}, got {raw_limit!r}"
            )
        limit = int(raw_limit)
        if linearizable(request):
            relayed = barrier(node, relay)
            if relayed is not None:
                return relayed
        rows = node.list_prefix(prefix, limit + 1)
        items = [{"key": k, "value": v, "index": i} for k, v, i in rows[:limit]]
        return json_response(
            {"prefix": prefix, "items": items, "count": len(items), "truncated": len(rows) > limit}
        )

    return bp

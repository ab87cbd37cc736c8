"""errors.py — the node's exception tree; the HTTP layer maps it to JSON in ONE errorhandler.

Two kinds of write failure, never mixed up: a DEFINITE failure (any 4xx, or a 503 — the write
was not applied, safe to retry) and an UNKNOWN outcome (504: the write may still be applied;
retry with the same ``X-Request-Id`` to learn its fate).

Every error a client can see is a ``RaftkvError``: it knows its HTTP ``status``, a short machine
``code`` and the extra JSON fields to send next to ``error`` (its message). The CLI maps
``ConfigError`` to one stderr line and exit code 2.

    RaftkvError (500 internal)
    ├── ConfigError                    bad flag / env var (CLI exit 2, never HTTP)
    ├── BadRequest (400 bad_request)
    │   ├── InvalidKey                 key empty, > 512 bytes, not UTF-8, bad %-escape
    │   ├── InvalidValue               body not UTF-8
    │   ├── InvalidQuery               unknown / malformed query parameter
    │   ├── InvalidRequestId           X-Request-Id not ``<client-id>:<seq>``
    │   └── MalformedRaftMessage       a peer's POST /raft/v1/messages did not decode
    ├── Unauthorized (401)             cluster or client token missing or wrong
    ├── Forbidden (403)                client token too weak (read-only token, write request)
    ├── KeyNotFound (404)
    ├── ClusterIdMismatch (409)        a peer's Raft message comes from another cluster
    ├── Compacted (410)                watch/long poll from an index older than the change window
    ├── PreconditionFailed (412)       compare-and-set: current value differs / key absent
    ├── PayloadTooLarge (413)          value > 1 MiB
    ├── Unavailable (503, Retry-After)
    │   ├── NoLeader                   no known leader (election in progress)
    │   ├── NotLeader                  this node is not the leader and may not forward
    │   ├── ShuttingDown               SIGTERM received: no new writes
    │   ├── Overloaded                 too many requests waiting on this node
    │   ├── TooManyWatchers            every watch slot of this node is taken
    │   └── ProposalLost               leadership changed before the entry committed (retry)
    ├── CommitTimeout (504)            the entry did not commit in time (outcome unknown)
    ├── OutcomeUnknown (504)           the write may or may not be applied (shutdown, failure,
    │                                  snapshot install, lost connection after sending)
    └── NodeFailed (500)               storage failed: the node stops serving

The state machine's own refusals are domain errors without any HTTP in them (raftkv/kv/errors.py,
re-exported here). ``refusal_error(err)`` turns one into the node's error, which is both: the
driver uses it for the answers it computes, the edge (raftkv/server/http_errors.py) for the rest.

    RequestIdConflict                  X-Request-Id older than the deduplication window
    ├── SessionExpired                 the client's session was evicted: cannot deduplicate
    └── RequestIdReused                the X-Request-Id was used for a different request
    RaftkvError + the refusal: RequestIdConflictError (409 request_id_conflict),
    SessionExpiredError (409 session_expired), RequestIdReusedError (409 request_id_reused)
"""

from __future__ import annotations

from typing import Any

from raftkv.kv.errors import RequestIdConflict, RequestIdReused, SessionExpired

__all__ = [
    "BadRequest",
    "ClusterIdMismatch",
    "CommitTimeout",
    "Compacted",
    "ConfigError",
    "Forbidden",
    "InvalidKey",
    "InvalidQuery",
    "InvalidRequestId",
    "InvalidValue",
    "KeyNotFound",
    "MalformedRaftMessage",
    "NoLeader",
    "NodeFailed",
    "NotLeader",
    "OutcomeUnknown",
    "Overloaded",
    "PayloadTooLarge",
    "PreconditionFailed",
    "ProposalLost",
    "RaftkvError",
    "RequestIdConflict",
    "RequestIdConflictError",
    "RequestIdReused",
    "RequestIdReusedError",
    "SessionExpired",
    "SessionExpiredError",
    "ShuttingDown",
    "TooManyWatchers",
    "Unauthorized",
    "Unavailable",
    "refusal_error",
]


class RaftkvError(Exception):
    """Base of every error raftkv reports. ``str(err)`` is the human message."""

    status = 500
    code = "internal"

    def payload(self) -> dict[str, Any]:
        """The JSON body for this error: ``error`` + ``code`` + subclass extras."""
        return {"error": str(self), "code": self.code}

    def headers(self) -> dict[str, str]:
        """Extra response headers (e.g. ``Retry-After``)."""
        return {}


class ConfigError(RaftkvError):
    """A flag or environment variable is invalid; the message names it."""

    code = "config"


class BadRequest(RaftkvError):
    status = 400
    code = "bad_request"


class InvalidKey(BadRequest):
    code = "invalid_key"


class InvalidValue(BadRequest):
    code = "invalid_value"


class InvalidQuery(BadRequest):
    code = "invalid_query"


class InvalidRequestId(BadRequest):
    code = "invalid_request_id"


class MalformedRaftMessage(BadRequest):
    code = "malformed_raft_message"


class Unauthorized(RaftkvError):
    status = 401
    code = "unauthorized"

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="raftkv"'}


class Forbidden(RaftkvError):
    """A valid client token whose level does not allow the request (read-only token, write)."""

    status = 403
    code = "forbidden"


class KeyNotFound(RaftkvError):
    status = 404
    code = "key_not_found"

    def __init__(self, key: str, index: int = 0) -> None:
        super().__init__(f"key not found: {key!r}")
        self.key = key
        self.index = index

    def payload(self) -> dict[str, Any]:
        return {**super().payload(), "key": self.key}


class RequestIdConflictError(RaftkvError, RequestIdConflict):
    """A kv session refusal as the node reports it (409); ``refusal_error`` builds one."""

    status = 409
    code = "request_id_conflict"


class SessionExpiredError(RequestIdConflictError, SessionExpired):
    code = "session_expired"


class RequestIdReusedError(RequestIdConflictError, RequestIdReused):
    code = "request_id_reused"


def refusal_error(err: RequestIdConflict) -> RequestIdConflictError:
    """The node's error (409, with the refusal's own code) for a kv session refusal."""
    if isinstance(err, RequestIdConflictError):
        return err
    if isinstance(err, RequestIdReused):
        return RequestIdReusedError(str(err))
    if isinstance(err, SessionExpired):
        return SessionExpiredError(str(err))
    return RequestIdConflictError(str(err))


class ClusterIdMismatch(RaftkvError):
    """A Raft message from a node of another cluster (its ``X-Raftkv-Cluster-Id`` differs)."""

    status = 409
    code = "cluster_id_mismatch"


class Compacted(RaftkvError):
    """A watch asked for changes after an index this node no longer holds. ``oldest_index``: the
    node holds every change at that index or later (resume with ``from_index >= oldest_index - 1``
    after reloading the state)."""

    status = 410
    code = "compacted"

    def __init__(self, message: str, oldest_index: int) -> None:
        super().__init__(message)
        self.oldest_index = oldest_index

    def payload(self) -> dict[str, Any]:
        return {**super().payload(), "oldest_index": self.oldest_index}


class PreconditionFailed(RaftkvError):
    """Compare-and-set failed: carries the current value (None when the key is absent)."""

    status = 412
    code = "precondition_failed"

    def __init__(self, key: str, current: str | None, index: int) -> None:
        what = "key is absent" if current is None else "current value differs"
        super().__init__(f"compare-and-set failed for {key!r}: {what}")
        self.key = key
        self.current = current
        self.index = index

    def payload(self) -> dict[str, Any]:
        return {**super().payload(), "key": self.key, "value": self.current, "index": self.index}


class PayloadTooLarge(RaftkvError):
    status = 413
    code = "payload_too_large"


class Unavailable(RaftkvError):
    """The request may succeed later or on another node: 503 with ``Retry-After``."""

    status = 503
    code = "unavailable"
    retry_after = 1

    def __init__(self, message: str, leader: str | None = None) -> None:
        super().__init__(message)
        self.leader = leader

    def payload(self) -> dict[str, Any]:
        return {**super().payload(), "leader": self.leader}

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class NoLeader(Unavailable):
    code = "no_leader"


class NotLeader(Unavailable):
    code = "not_leader"


class ShuttingDown(Unavailable):
    code = "shutting_down"


class Overloaded(Unavailable):
    code = "overloaded"


class TooManyWatchers(Unavailable):
    code = "too_many_watchers"


class ProposalLost(Unavailable):
    code = "proposal_lost"


class CommitTimeout(RaftkvError):
    status = 504
    code = "commit_timeout"


class OutcomeUnknown(RaftkvError):
    """The write may or may not have been applied (it was proposed, or sent to the leader, and
    then the node stopped, failed, installed a snapshot, or the connection broke). Retrying with
    the same ``X-Request-Id`` is safe and tells which."""

    status = 504
    code = "outcome_unknown"


class NodeFailed(RaftkvError):
    status = 500
    code = "node_failed"

"""errors.py — the state machine's own refusals: domain errors, no HTTP in them.

The exactly-once session table (statemachine.py) refuses a ``(client_id, seq)`` it cannot answer
truthfully. These say WHY (a message and a machine ``code``) and nothing about HTTP:
``raftkv.errors.refusal_error`` turns one into the node's error (409 with the same code), used by
the driver and by the HTTP edge's one error mapping (``raftkv/server/http_errors.py``).
``raftkv.errors`` re-exports them, so the node's error vocabulary is importable from one module.

    RequestIdConflict (request_id_conflict)  the seq is older than the client's recorded window
    ├── SessionExpired (session_expired)     the client's session was evicted: cannot deduplicate
    └── RequestIdReused (request_id_reused)  the id is recorded for a different request
"""

from __future__ import annotations

__all__ = ["RequestIdConflict", "RequestIdReused", "SessionExpired"]


class RequestIdConflict(Exception):
    """The request's X-Request-Id can no longer be deduplicated (older than the client's window
    of recorded results)."""

    code = "request_id_conflict"


class SessionExpired(RequestIdConflict):
    """The client's exactly-once session was evicted (Raft thesis §6.3): a request of it whose
    seq is not newer than the last one applied cannot be deduplicated, so it is refused."""

    code = "session_expired"


class RequestIdReused(RequestIdConflict):
    """The X-Request-Id is recorded for a different request (other op, key, value or
    condition): this request was not applied. Client ids must be unique per incarnation."""

    code = "request_id_reused"

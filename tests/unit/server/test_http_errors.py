"""The one mapping of errors to HTTP answers (http_errors.error_parts)."""

from __future__ import annotations

import logging

import pytest
from werkzeug.exceptions import MethodNotAllowed, NotFound

from raftkv.errors import NoLeader, RequestIdConflict, RequestIdReused, SessionExpired
from raftkv.server.http_errors import error_parts
from raftkv.server.worker import ClientTooSlow


@pytest.mark.parametrize(
    ("err", "code"),
    [
        (RequestIdConflict("too old"), "request_id_conflict"),
        (SessionExpired("evicted"), "session_expired"),
        (RequestIdReused("reused"), "request_id_reused"),
    ],
)
def test_kv_refusals_are_409_with_their_code(err: Exception, code: str) -> None:
    assert error_parts(err, "PUT", "/v1/kv/k") == (409, {"error": str(err), "code": code}, {})


def test_node_errors_carry_their_status_and_headers() -> None:
    status, body, headers = error_parts(NoLeader("no leader", leader=None), "GET", "/v1/kv/k")
    assert status == 503 and body["code"] == "no_leader" and headers["Retry-After"]


def test_werkzeug_errors_become_json() -> None:
    assert error_parts(NotFound(), "GET", "/x")[:2] == (
        404,
        {"error": "no such route: GET /x", "code": "not_found"},
    )
    status, body, headers = error_parts(MethodNotAllowed(["GET", "HEAD"]), "PUT", "/v1/status")
    assert status == 405 and headers == {"Allow": "GET"} and "allowed: GET" in body["error"]


def test_a_stalled_client_is_408_and_the_connection_closes() -> None:
    status, body, headers = error_parts(ClientTooSlow("slow"), "PUT", "/v1/kv/k")
    assert status == 408 and body["code"] == "request_timeout"
    assert headers == {"Connection": "close"}


def test_anything_else_is_500_without_internals(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        status, body, _ = error_parts(KeyError("secret"), "GET", "/v1/status")
    assert status == 500 and body == {"error": "internal error: KeyError", "code": "internal"}
    assert "unhandled-error" in caplog.text

"""HTTP answers of the exactly-once table and the unknown-outcome error (fake node, real table)."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from raftkv.errors import OutcomeUnknown
from raftkv.kv import KVStateMachine
from raftkv.server.app import build_app
from tests.unit.server.fakenode import FakeNode
from tests.unit.server.test_routes import assert_json_error


@pytest.fixture
def node() -> FakeNode:
    return FakeNode()


@pytest.fixture
def client(node: FakeNode) -> FlaskClient:
    return build_app(node).test_client()


def test_reused_request_id_with_another_value_is_409_and_not_applied(
    client: FlaskClient, node: FakeNode
) -> None:
    h = {"X-Request-Id": "restarted-client:1"}
    assert client.put("/v1/kv/k4", data="old", headers=h).status_code == 200
    r = client.put("/v1/kv/k4", data="new", headers=h)
    body = assert_json_error(r, 409, "request_id_reused")
    assert "different request" in body["error"]
    assert client.get("/v1/kv/k4").get_json()["value"] == "old"
    # a DELETE under the same id is another request too; the same PUT is still answered
    assert_json_error(client.delete("/v1/kv/k4", headers=h), 409, "request_id_reused")
    assert client.put("/v1/kv/k4", data="old", headers=h).status_code == 200
    assert len(node.proposed) == 1  # the table answered every retry before proposing


def test_request_id_reused_when_the_table_refuses_at_apply(node: FakeNode) -> None:
    """The follower's table did not know the id yet; the leader's apply refuses it."""
    client = build_app(node).test_client()
    node.sm.lookup_session = lambda *a: None  # type: ignore[method-assign,assignment]
    h = {"X-Request-Id": "c:5"}
    assert client.put("/v1/kv/k", data="a", headers=h).status_code == 200
    assert_json_error(client.put("/v1/kv/k", data="b", headers=h), 409, "request_id_reused")
    assert node.sm.get("k") == ("a", 1)


def test_expired_session_is_409_session_expired(node: FakeNode) -> None:
    node.sm = KVStateMachine(max_clients=1)
    client = build_app(node).test_client()
    assert client.put("/v1/kv/k", data="1", headers={"X-Request-Id": "a:1"}).status_code == 200
    assert client.put("/v1/kv/j", data="1", headers={"X-Request-Id": "b:1"}).status_code == 200
    r = client.put("/v1/kv/k", data="1", headers={"X-Request-Id": "a:1"})  # a was evicted
    body = assert_json_error(r, 409, "session_expired")
    assert "expired" in body["error"]
    assert client.put("/v1/kv/k", data="2", headers={"X-Request-Id": "a:2"}).status_code == 200


def test_outcome_unknown_is_504_outcome_unknown(client: FlaskClient, node: FakeNode) -> None:
    node.fail_with = OutcomeUnknown("node stopped after the write was proposed")
    body = assert_json_error(client.put("/v1/kv/k", data="v"), 504, "outcome_unknown")
    assert "proposed" in body["error"]

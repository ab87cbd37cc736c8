"""Flask routes against a fake node: statuses, JSON errors, headers, validation, forwarding."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from raftkv.config import load_config
from raftkv.errors import CommitTimeout, NoLeader, ProposalLost, ShuttingDown
from raftkv.raft import HeartbeatResponse, decode_message, encode_message
from raftkv.server.app import build_app, parse_request_id, validate_key
from raftkv.server.forward import FORWARDED_HEADER
from tests.unit.server.fakenode import PEERS, FakeNode, raft_body


@pytest.fixture
def node() -> FakeNode:
    return FakeNode()


@pytest.fixture
def app(node: FakeNode) -> Flask:
    return build_app(node)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def assert_json_error(resp: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == "application/json"
    body = resp.get_json()
    assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"]
    if code is not None:
        assert body["code"] == code
    return body


def test_put_get_delete_roundtrip(client: FlaskClient) -> None:
    r = client.put("/v1/kv/a/b", data="héllo")
    assert r.status_code == 200
    assert r.get_json() == {"key": "a/b", "value": "héllo", "index": 1, "term": 3, "leader": "n0"}
    for header in ("X-Raft-Leader", "X-Raft-Term", "X-Raft-Index", "X-Raftkv-Served-By"):
        assert header in r.headers
    assert r.headers["X-Raft-Leader"] == "n0" and r.headers["X-Raft-Index"] == "1"
    r = client.get("/v1/kv/a/b")
    assert r.get_json() == {"key": "a/b", "value": "héllo", "index": 1}
    r = client.delete("/v1/kv/a/b")
    assert r.status_code == 200 and r.get_json()["deleted"] is True
    body = assert_json_error(client.delete("/v1/kv/a/b"), 404, "key_not_found")
    assert body["key"] == "a/b"
    r = client.get("/v1/kv/a/b")
    assert_json_error(r, 404, "key_not_found")
    assert "X-Raft-Term" in r.headers


def test_empty_value_and_percent_encoded_key(client: FlaskClient) -> None:
    assert client.put("/v1/kv/sp%20ace", data=b"").status_code == 200
    assert client.get("/v1/kv/sp ace").get_json()["value"] == ""


def test_linearizable_read_uses_barrier_and_stale_does_not(
    client: FlaskClient, node: FakeNode
) -> None:
    client.put("/v1/kv/k", data="v")
    client.get("/v1/kv/k")
    assert node.reads == 1
    assert client.get("/v1/kv/k?consistency=stale").status_code == 200
    assert node.reads == 1
    assert_json_error(client.get("/v1/kv/k?consistency=eventual"), 400, "invalid_query")


def test_compare_and_set(client: FlaskClient) -> None:
    body = assert_json_error(client.put("/v1/kv/k?prev_value=x", data="1"), 412)
    assert body["value"] is None and body["code"] == "precondition_failed"
    client.put("/v1/kv/k", data="1")
    body = assert_json_error(client.put("/v1/kv/k?prev_value=2", data="3"), 412)
    assert body["value"] == "1"
    assert client.put("/v1/kv/k?prev_value=1", data="3").get_json()["value"] == "3"
    assert_json_error(client.delete("/v1/kv/k?prev_value=1"), 412)
    assert client.delete("/v1/kv/k?prev_value=3").status_code == 200


def test_list_prefix(client: FlaskClient) -> None:
    for k in ("b", "a/2", "a/1", "a/3"):
        client.put(f"/v1/kv/{k}", data=k)
    r = client.get("/v1/kv?prefix=a/&limit=2")
    body = r.get_json()
    assert [i["key"] for i in body["items"]] == ["a/1", "a/2"]
    assert body["count"] == 2 and body["truncated"] is True
    assert body["items"][0] == {"key": "a/1", "value": "a/1", "index": 3}
    assert len(client.get("/v1/kv").get_json()["items"]) == 4
    assert client.get("/v1/kv/").get_json()["count"] == 4
    assert client.get("/v1/kv/?prefix=a/").get_json()["count"] == 3
    assert "X-Raft-Index" in r.headers


@pytest.mark.parametrize(
    ("method", "url", "kwargs", "status", "code"),
    [
        ("put", "/v1/kv/" + "k" * 513, {"data": "v"}, 400, "invalid_key"),
        ("put", "/v1/kv/a%FFb", {"data": "v"}, 400, "invalid_key"),
        ("get", "/v1/kv/100%", {}, 400, "invalid_key"),
        ("get", "/v1/kv/%ED%A0%80", {}, 400, "invalid_key"),
        ("put", "/v1/kv/", {"data": "v"}, 400, "invalid_key"),
        ("delete", "/v1/kv/", {}, 400, "invalid_key"),
        ("put", "/v1/kv/k", {"data": b"\xff\xfe"}, 400, "invalid_value"),
        ("put", "/v1/kv/k", {"data": b"x" * ((1 << 20) + 1)}, 413, "payload_too_large"),
        ("put", "/v1/kv/k?bogus=1", {"data": "v"}, 400, "invalid_query"),
        ("get", "/v1/kv/k?prev_value=1", {}, 400, "invalid_query"),
        ("get", "/v1/kv?limit=0", {}, 400, "invalid_query"),
        ("get", "/v1/kv?limit=abc", {}, 400, "invalid_query"),
        ("get", "/v1/kv?limit=10001", {}, 400, "invalid_query"),
        ("get", "/v1/kv?prefix=%C3", {}, 400, "invalid_key"),
        ("get", "/v1/kv?what=1", {}, 400, "invalid_query"),
        (
            "put",
            "/v1/kv/k",
            {"data": "v", "headers": {"X-Request-Id": "nocolon"}},
            400,
            "invalid_request_id",
        ),
        (
            "put",
            "/v1/kv/k",
            {"data": "v", "headers": {"X-Request-Id": "c:-1"}},
            400,
            "invalid_request_id",
        ),
        ("get", "/nope", {}, 404, "not_found"),
        ("get", "/v1/kvx", {}, 404, "not_found"),
        ("patch", "/v1/kv/k", {}, 405, "method_not_allowed"),
        ("post", "/v1/kv", {}, 405, "method_not_allowed"),
        ("get", "/raft/v1/messages", {}, 405, "method_not_allowed"),
        ("post", "/raft/v1/messages", {"data": "not json"}, 400, "malformed_raft_message"),
        ("post", "/raft/v1/messages", {"json": {"msgs": []}}, 400, "malformed_raft_message"),
        (
            "post",
            "/raft/v1/messages",
            {"json": {"messages": [{"v": 9}]}},
            400,
            "malformed_raft_message",
        ),
        ("post", "/v1/admin/transfer-leader", {"data": "[1]"}, 400, "bad_request"),
        ("post", "/v1/admin/transfer-leader", {"json": {"target": "zz"}}, 400, "bad_request"),
        ("post", "/v1/admin/transfer-leader", {"json": {"x": 1}}, 400, "bad_request"),
    ],
)
def test_bad_input_gets_status_and_json_error(
    client: FlaskClient, method: str, url: str, kwargs: dict[str, Any], status: int, code: str
) -> None:
    resp = getattr(client, method)(url, **kwargs)
    assert_json_error(resp, status, code)
    assert b"<html" not in resp.get_data().lower()


def test_405_lists_allowed_methods(client: FlaskClient) -> None:
    r = client.patch("/v1/kv/k")
    assert set(r.headers["Allow"].split(", ")) == {"GET", "PUT", "DELETE"}


def test_value_of_exactly_one_mib_is_accepted(client: FlaskClient) -> None:
    assert client.put("/v1/kv/big", data=b"x" * (1 << 20)).status_code == 200


def test_request_id_retry_is_answered_from_the_table(client: FlaskClient, node: FakeNode) -> None:
    h = {"X-Request-Id": "client-1:7"}
    first = client.put("/v1/kv/k", data="v1", headers=h).get_json()
    client.put("/v1/kv/k", data="other")
    again = client.put("/v1/kv/k", data="v1", headers=h).get_json()
    assert again["index"] == first["index"] and again["value"] == "v1"
    assert len(node.proposed) == 2
    assert client.get("/v1/kv/k").get_json()["value"] == "other"


def test_parse_request_id_and_validate_key() -> None:
    assert parse_request_id(None) == (None, None)
    assert parse_request_id("a:b:12") == ("a:b", 12)
    assert validate_key("ü" * 256) == "ü" * 256
    with pytest.raises(Exception, match="513 bytes"):
        validate_key("ü" * 256 + "x")


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (NoLeader("no leader"), 503, "no_leader"),
        (ShuttingDown("bye"), 503, "shutting_down"),
        (ProposalLost("lost"), 503, "proposal_lost"),
        (CommitTimeout("slow"), 504, "commit_timeout"),
    ],
)
def test_node_errors_map_to_statuses(
    client: FlaskClient, node: FakeNode, error: Exception, status: int, code: str
) -> None:
    node.fail_with = error  # type: ignore[assignment]
    r = client.put("/v1/kv/k", data="v")
    assert_json_error(r, status, code)
    if status == 503:
        assert r.headers["Retry-After"] == "1"


def test_draining_node_refuses_writes(client: FlaskClient, node: FakeNode) -> None:
    node.draining = True
    assert_json_error(client.put("/v1/kv/k", data="v"), 503, "shutting_down")
    assert_json_error(client.get("/readyz"), 503)


def test_no_leader_is_503_with_retry_after() -> None:
    app = build_app(FakeNode(leader=None))
    r = app.test_client().put("/v1/kv/k", data="v")
    body = assert_json_error(r, 503, "no_leader")
    assert r.headers["Retry-After"] == "1" and body["leader"] is None


class RecordingForwarder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str, bytes]] = []

    def can_forward_to(self, leader: str | None) -> bool:
        return leader in ("n1", "n2")

    def forward(
        self, leader: str, method: str, path_qs: str, headers: Any, body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        self.calls.append((leader, method, path_qs, body))
        return (
            201,
            [("Content-Type", "application/json"), ("X-Raft-Leader", leader), ("X-Raft-Term", "9")],
            b'{"relayed":true}',
        )


def test_follower_forwards_writes_and_linearizable_reads_to_the_leader() -> None:
    node = FakeNode(leader="n1")
    app = build_app(node)
    fwd = RecordingForwarder()
    app.extensions["raftkv.ctx"].forwarder = fwd
    c = app.test_client()
    r = c.put("/v1/kv/k?prev_value=a", data="v", headers={"X-Request-Id": "c:1"})
    assert r.status_code == 201 and r.get_json() == {"relayed": True}
    assert r.headers["X-Raft-Leader"] == "n1" and r.headers["X-Raft-Term"] == "9"
    assert fwd.calls[-1] == ("n1", "PUT", "/v1/kv/k?prev_value=a", b"v")
    c.get("/v1/kv/k")
    assert fwd.calls[-1][:3] == ("n1", "GET", "/v1/kv/k")
    c.get("/v1/kv?prefix=a")
    assert fwd.calls[-1][:3] == ("n1", "GET", "/v1/kv?prefix=a")
    # stale reads are served locally
    assert c.get("/v1/kv/k?consistency=stale").status_code == 404
    assert len(fwd.calls) == 3
    assert node.proposed == [] and node.reads == 0


def test_forwarded_request_is_never_forwarded_again() -> None:
    app = build_app(FakeNode(leader="n1"))
    fwd = RecordingForwarder()
    app.extensions["raftkv.ctx"].forwarder = fwd
    r = app.test_client().put("/v1/kv/k", data="v", headers={FORWARDED_HEADER: "n2"})
    body = assert_json_error(r, 503, "not_leader")
    assert body["leader"] == "n1" and fwd.calls == []


def test_status_health_ready_metrics(client: FlaskClient, node: FakeNode) -> None:
    st = client.get("/v1/status").get_json()
    assert set(st) == {
        "id",
        "role",
        "term",
        "leader",
        "commit_index",
        "last_applied",
        "last_log_index",
        "snapshot_index",
        "members",
        "voters",
        "learners",
        "config_index",
        "cluster_id",
    }
    assert st["role"] == "leader" and st["members"] == ["n0", "n1", "n2"]
    assert st["cluster_id"] == node.cluster_id
    assert client.get("/healthz").get_json()["ok"] is True
    assert client.get("/readyz").status_code == 200
    client.put("/v1/kv/k", data="v")
    text = client.get("/metrics").get_data(as_text=True)
    for name in (
        "raftkv_role",
        "raftkv_term",
        "raftkv_commit_index",
        "raftkv_applied_index",
        "raftkv_proposals_total",
        "raftkv_elections_total",
        "raftkv_http_request_seconds_bucket",
        "raftkv_fsync_seconds_bucket",
    ):
        assert name in text
    assert 'raftkv_role{role="leader"} 1.0' in text
    node.leader = None
    assert_json_error(client.get("/readyz"), 503)
    node.started = False
    assert_json_error(client.get("/healthz"), 500, "node_failed")


def test_token_protects_raft_and_admin_but_not_kv() -> None:
    cfg = load_config({"id": "n0", "peers": PEERS, "token": "tok"}, {}, "n0")
    node = FakeNode(cfg)
    c = build_app(node).test_client()
    assert_json_error(c.post("/raft/v1/messages", json={"messages": []}), 401, "unauthorized")
    assert_json_error(
        c.post(
            "/raft/v1/messages", json={"messages": []}, headers={"Authorization": "Bearer nope"}
        ),
        401,
    )
    body = raft_body(node)
    ok = c.post("/raft/v1/messages", json=body, headers={"Authorization": "Bearer tok"})
    assert ok.status_code == 200
    reply = HeartbeatResponse(src="n0", dst="n1", term=node.term)
    assert ok.get_json() == {"ok": True, "received": 1, "messages": [encode_message(reply)]}
    assert node.delivered == [decode_message(body["messages"][0])]
    assert_json_error(c.post("/v1/admin/snapshot"), 401)
    r = c.post("/v1/admin/snapshot", headers={"Authorization": "Bearer tok"})
    assert r.status_code == 200 and node.snapshots == 1
    assert c.put("/v1/kv/k", data="v").status_code == 200
    assert c.get("/healthz").status_code == 200


def test_admin_transfer_leader(client: FlaskClient, node: FakeNode) -> None:
    r = client.post("/v1/admin/transfer-leader", json={"target": "n2"})
    assert r.status_code == 200 and r.get_json()["leader"] == "n2"
    assert node.transferred == ["n2"]
    r = client.post("/v1/admin/transfer-leader")
    assert r.status_code in (200, 503)  # no longer leader: forwards or explains


def test_unexpected_exception_is_json_500(app: Flask, node: FakeNode) -> None:
    def boom(cmd: Any, timeout: float) -> Any:
        raise RuntimeError("kaput")

    node.propose = boom  # type: ignore[method-assign]
    r = app.test_client().put("/v1/kv/k", data="v")
    body = assert_json_error(r, 500, "internal")
    assert "kaput" not in body["error"] and "Traceback" not in r.get_data(as_text=True)


def _raw_post(app: Flask, body: bytes, length: str | None) -> tuple[str, dict[str, str], bytes]:
    import io

    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/raft/v1/messages",
        "QUERY_STRING": "",
        "SERVER_NAME": "x",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": io.StringIO(),
    }
    if length is not None:
        environ["CONTENT_LENGTH"] = length
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc: Any = None) -> None:
        seen["status"], seen["headers"] = status, dict(headers)

    out = b"".join(app.wsgi_app(environ, start_response))
    return seen["status"], seen["headers"], out


def test_raft_rpc_fast_path_without_content_length_and_with_a_bad_one(
    app: Flask, node: FakeNode
) -> None:
    import json as _json

    sent = raft_body(node)
    status, headers, body = _raw_post(app, _json.dumps(sent).encode(), None)  # chunked upload
    assert status == "200 OK" and headers["Content-Type"] == "application/json"
    assert _json.loads(body)["received"] == 1
    assert node.delivered == [decode_message(sent["messages"][0])]
    status, _, body = _raw_post(app, b"{}", "zwei")
    assert status.startswith("400") and "error" in _json.loads(body)
    status, _, body = _raw_post(app, b"x" * 10, str((512 << 20) + 1))
    assert status.startswith("413") and _json.loads(body)["code"] == "payload_too_large"

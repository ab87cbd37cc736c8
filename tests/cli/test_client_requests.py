"""raftctl's client on ``requests`` (issue 16) with the key codec (issue 10): the exact bytes a
key goes out as, what the urllib3 Retry policy re-sends (reads) and never re-sends (writes
whose bytes went out), keep-alive, and truthful "outcome unknown" messages."""

from __future__ import annotations

import socket

import pytest

from raftctl.client import KVClient, NodeUnreachable, Transport, retry_policy
from raftctl.errors import NodeError, OutcomeUnknown, Unavailable
from raftkv.keycodec import key_path
from tests.cli.realnodes import RealCluster

KEYS = {
    "tag#frag": "tag%23frag",
    "pct%41": "pct%2541",
    "q?x": "q%3Fx",
    "ün": "%C3%BCn",
    "..": "%2E%2E",
    "x/../y": "x%2F..%2Fy",
    "/lead": "%2Flead",
    "a//b": "a%2F%2Fb",
    "sp ace+": "sp%20ace%2B",
}


def client_for(nodes: RealCluster, **kw: object) -> KVClient:
    return KVClient(nodes.urls, ids={n: nodes.url(n) for n in nodes.ids}, **kw)  # type: ignore[arg-type]


def test_keys_go_out_in_the_codec_wire_form_byte_for_byte(nodes: RealCluster) -> None:
    c = client_for(nodes)
    for key, wire in KEYS.items():
        c.put(key, "v", prev_value=None)
        c.get(key)
        c.delete(key)
        paths = [s.path for s in nodes.seen[-3:]]
        assert paths == ["/v1/kv/" + wire] * 3, key
    c.put("tag#frag", "v & =+?")
    c.put("tag#frag", "w", prev_value="v & =+?")
    assert nodes.seen[-1].path == "/v1/kv/tag%23frag?prev_value=v%20%26%20%3D%2B%3F"
    c.list_keys(prefix="a/#?&", limit=5)
    assert nodes.seen[-1].path == "/v1/kv?prefix=a%2F%23%3F%26&limit=5"
    assert nodes.store == {"tag#frag": ("w", nodes.index)}


def test_invalid_keys_are_refused_before_sending(nodes: RealCluster) -> None:
    c = client_for(nodes)
    for key in ("", "k" * 513, "\ud800"):
        with pytest.raises(NodeError) as err:
            c.put(key, "v")
        assert err.value.status == 400
    assert nodes.seen == []


def test_a_write_whose_bytes_went_out_is_never_resent_by_the_transport(
    nodes: RealCluster,
) -> None:
    nodes.take_down("raft-0")  # reads the request, then closes the connection unanswered
    t = Transport(timeout=2.0)
    with pytest.raises(NodeUnreachable) as err:
        t.request(
            nodes.url("raft-0"), "PUT", key_path("k"), body=b"v", headers={"X-Request-Id": "c:1"}
        )
    assert err.value.sent
    assert len(nodes.requests_to("/v1/kv/k")) == 1
    with pytest.raises(NodeUnreachable):
        t.request(nodes.url("raft-0"), "GET", key_path("k"))
    assert len(nodes.requests_to("/v1/kv/k")) == 3  # a read is retried once
    t.close()


def test_connection_refused_is_known_not_sent() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(NodeUnreachable) as err:
        Transport(timeout=1.0).request(f"http://127.0.0.1:{port}", "PUT", "/v1/kv/k", body=b"")
    assert not err.value.sent
    assert "Connection refused" in err.value.why and "HTTPConnection" not in err.value.why


def test_retry_policy_never_resends_writes() -> None:
    policy = retry_policy()
    for method in ("PUT", "DELETE", "POST"):
        assert not policy.is_retry(method, 503)
        assert not policy._is_method_retryable(method)
    assert policy._is_method_retryable("GET")
    assert policy.status == 0 and policy.redirect == 0


def test_keep_alive_one_connection_for_many_requests(nodes: RealCluster) -> None:
    c = client_for(nodes)
    accepted: list[object] = []
    server = nodes.relays["raft-0"].server
    real = server.get_request

    def counting() -> tuple[socket.socket, object]:
        conn = real()
        accepted.append(conn)
        return conn

    server.get_request = counting  # type: ignore[method-assign]
    for n in range(5):
        c.put(f"k{n}", "v")
        c.get(f"k{n}")
    assert len(accepted) == 1


def test_unknown_outcome_is_said_when_a_write_may_have_been_applied(nodes: RealCluster) -> None:
    for node in nodes.ids:
        nodes.take_down(node)
    c = client_for(nodes, timeout=0.5, deadline=0.5)
    with pytest.raises(OutcomeUnknown, match="may or may not have been applied"):
        c.put("k", "v")
    with pytest.raises(Unavailable) as err:
        c.get("k")
    assert "outcome unknown" not in str(err.value)  # a read has no outcome to be unsure about


def test_no_leader_503_is_not_an_unknown_outcome(nodes: RealCluster) -> None:
    nodes.elect(None)
    with pytest.raises(Unavailable) as err:
        client_for(nodes, deadline=0.3).put("k", "v")
    assert "outcome unknown" not in str(err.value)


def test_control_characters_in_keys_never_reach_the_terminal(nodes: RealCluster) -> None:
    from typer.testing import CliRunner

    from raftctl.main import app

    evil = "k\x1b[2J\x07"  # clear-screen and bell: a valid key now that keys are arbitrary
    client_for(nodes).put(evil, "v")
    runner = CliRunner()
    urls = ",".join(nodes.urls)
    for cmd, *args in (["list"], ["put", evil, "w"], ["delete", evil], ["get", evil]):
        res = runner.invoke(app, [cmd, "--endpoints", urls, "--", *args])
        shown = res.stdout + res.stderr
        assert "\x1b" not in shown and "\x07" not in shown, cmd
        assert "k\\x1b[2J\\x07" in shown, (cmd, shown)
    assert res.exit_code == 1 and "key not found" in res.stderr  # the get after the delete


def test_text_that_is_not_utf8_is_a_one_line_error(nodes: RealCluster) -> None:
    c = client_for(nodes)
    with pytest.raises(NodeError, match="prefix must be valid UTF-8"):
        c.list_keys(prefix="\udcff")  # what argv holds for an undecodable byte
    with pytest.raises(NodeError, match="prev_value must be valid UTF-8"):
        c.put("k", "v", prev_value="\udcff")
    with pytest.raises(NodeError, match="value must be valid UTF-8"):
        c.put("k", "\udcff")
    assert nodes.seen == []

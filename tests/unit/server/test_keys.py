"""Keys through the Flask routes (issue 10): the key comes from the raw request target, decoded
once by the codec; a follower relays the target exactly as received."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from raftkv.errors import OutcomeUnknown
from raftkv.keycodec import MAX_KEY_BYTES, encode_key, encode_query_value, key_path
from raftkv.server.app import build_app
from tests.unit.server.fakenode import FakeNode

KEYS = [
    "tag#frag",
    "tag",
    "pct%41",
    "pctA",
    "q?x",
    "ün",
    "/lead",
    "lead",
    "a//b",
    "a/b",
    "x/../y",
    "y",
    "..",
    ".",
    "/",
    "//",
    "a/",
    "exec",
    "sp ace",
    "a+b",
    "\x00\x7f",
    "\U0010fffd",
    "k" * MAX_KEY_BYTES,
]


def test_every_key_is_its_own_key() -> None:
    c = build_app(FakeNode()).test_client()
    for i, key in enumerate(KEYS):
        r = c.put(key_path(key), data=f"v{i}")
        assert r.status_code == 200, (key, r.get_json())
        assert r.get_json()["key"] == key
    for i, key in enumerate(KEYS):
        assert c.get(key_path(key)).get_json() == {"key": key, "value": f"v{i}", "index": i + 1}
    listed = c.get("/v1/kv?limit=100").get_json()["items"]
    assert sorted(item["key"] for item in listed) == sorted(KEYS)
    for key in KEYS:
        assert c.delete(key_path(key)).get_json()["key"] == key
    assert c.get("/v1/kv").get_json()["count"] == 0


def test_a_raw_slash_means_a_slash() -> None:
    c = build_app(FakeNode()).test_client()
    assert c.put("/v1/kv/a/b", data="1").get_json()["key"] == "a/b"
    assert c.get("/v1/kv/a%2Fb").get_json()["value"] == "1"
    assert c.put("/v1/kv//lead/", data="2").get_json()["key"] == "/lead/"
    assert c.get("/v1/kv/%2Flead%2F").get_json()["value"] == "2"
    assert c.put("/v1/kv/%2F", data="3").get_json()["key"] == "/"
    assert c.head("/v1/kv//").status_code == 200
    assert c.head("/v1/kv/%2Fnope").status_code == 404


def test_prefix_and_prev_value_are_decoded_by_the_codec() -> None:
    c = build_app(FakeNode()).test_client()
    for key in ("a/#1", "a/#2", "a/?3", "a b", "a+b"):
        c.put(key_path(key), data=key)
    body = c.get("/v1/kv?prefix=" + encode_query_value("a/#")).get_json()
    assert [i["key"] for i in body["items"]] == ["a/#1", "a/#2"] and body["prefix"] == "a/#"
    # '+' in a query string is a space (form encoding), %2B is a plus
    assert [i["key"] for i in c.get("/v1/kv?prefix=a+").get_json()["items"]] == ["a b"]
    assert [i["key"] for i in c.get("/v1/kv?prefix=a%2B").get_json()["items"]] == ["a+b"]
    r = c.put(key_path("a/#1") + "?prev_value=" + encode_query_value("a/#1"), data="new")
    assert r.status_code == 200 and r.get_json()["value"] == "new"
    r = c.put(key_path("a/#1") + "?prev_value=%FF", data="x")
    assert r.status_code == 400 and r.get_json()["code"] == "invalid_value"
    r = c.get("/v1/kv?prefix=a&prefix=b")
    assert r.status_code == 400 and r.get_json()["code"] == "invalid_query"


class RecordingForwarder:
    def __init__(self) -> None:
        self.targets: list[str] = []
        self.fail: Exception | None = None

    def can_forward_to(self, leader: str | None) -> bool:
        return leader == "n1"

    def forward(
        self, leader: str, method: str, target: str, headers: Any, body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        self.targets.append(target)
        if self.fail is not None:
            raise self.fail
        return 200, [("Content-Type", "application/json")], b"{}"


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.text(min_size=1, max_size=40), query=st.sampled_from(["", "?prev_value=a%2Bb+c"]))
def test_a_follower_relays_the_target_exactly_as_received(key: str, query: str) -> None:
    app = build_app(FakeNode(leader="n1"))
    fwd = RecordingForwarder()
    app.extensions["raftkv.ctx"].forwarder = fwd
    target = key_path(key) + query
    assert app.test_client().put(target, data="v").status_code == 200
    assert fwd.targets == [target]


def test_a_follower_relays_undecodable_looking_targets_unchanged() -> None:
    app = build_app(FakeNode(leader="n1"))
    fwd = RecordingForwarder()
    app.extensions["raftkv.ctx"].forwarder = fwd
    c = app.test_client()
    for target in (
        "/v1/kv/pct%2541",
        "/v1/kv/tag%23frag",
        "/v1/kv/q%3Fx",
        "/v1/kv/%C3%BCn",
        "/v1/kv/a/b",
        "/v1/kv?prefix=a%2F%23&limit=5",
    ):
        assert c.get(target).status_code == 200
        assert fwd.targets[-1] == target


def test_unknown_outcome_from_the_leader_relay_is_504() -> None:
    app = build_app(FakeNode(leader="n1"))
    fwd = RecordingForwarder()
    fwd.fail = OutcomeUnknown("the write was relayed but its answer was lost")
    app.extensions["raftkv.ctx"].forwarder = fwd
    r = app.test_client().put("/v1/kv/k", data="v")
    assert r.status_code == 504
    assert r.get_json()["code"] == "outcome_unknown" and "answer was lost" in r.get_json()["error"]


@pytest.mark.parametrize("key", ["tag#frag", "ün", "/"])
def test_environ_without_a_raw_target_gives_the_same_key(key: str) -> None:
    """A WSGI server that gives only the decoded PATH_INFO: the key is not decoded twice."""
    app = build_app(FakeNode())
    path_info = "/v1/kv/" + key.encode().decode("latin-1")
    seen: list[int] = []

    def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        seen.append(int(status[:3]))

    environ = {
        "REQUEST_METHOD": "PUT",
        "PATH_INFO": path_info,
        "QUERY_STRING": "",
        "SERVER_NAME": "x",
        "SERVER_PORT": "1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": __import__("io").BytesIO(b"v"),
        "CONTENT_LENGTH": "1",
    }
    body = b"".join(app.wsgi_app(environ, start))
    assert seen == [200], body
    assert app.extensions["raftkv.node"].sm.get(key) == ("v", 1)
    assert encode_key(key)  # and it has a wire form

"""GET /v1/admin/hash: the state-machine hash at the applied index (replica agreement)."""

from __future__ import annotations

from raftkv.config import load_config
from raftkv.kv import Command, KVStateMachine, Op, encode_command
from raftkv.server.app import build_app
from tests.unit.server.fakenode import PEERS, FakeNode


def _apply(sm: KVStateMachine, *cmds: Command) -> None:
    with sm.lock:
        for cmd in cmds:
            sm.apply(sm.applied_index + 1, 1, encode_command(cmd))


def test_hash_reports_id_applied_index_hash_and_keys() -> None:
    node = FakeNode()
    client = build_app(node).test_client()
    empty = client.get("/v1/admin/hash").get_json()
    assert empty["id"] == "n0" and empty["applied_index"] == 0 and empty["keys"] == 0
    _apply(node.sm, Command(op=Op.PUT, key="a", value="1"), Command(op=Op.PUT, key="b", value="2"))
    r = client.get("/v1/admin/hash")
    assert r.status_code == 200 and r.mimetype == "application/json"
    body = r.get_json()
    assert set(body) == {"id", "applied_index", "hash", "keys"}
    assert body["applied_index"] == 2 and body["keys"] == 2 and body["hash"] != empty["hash"]
    assert len(body["hash"]) == 64


def test_same_content_same_hash_regardless_of_history_and_order() -> None:
    one, two = KVStateMachine(), KVStateMachine()
    _apply(one, Command(op=Op.PUT, key="a", value="1"), Command(op=Op.PUT, key="b", value="2"))
    _apply(
        two,
        Command(op=Op.PUT, key="b", value="x"),
        Command(op=Op.PUT, key="a", value="1"),
        Command(op=Op.PUT, key="b", value="2"),
    )
    assert one.content_hash()[1:] == two.content_hash()[1:]
    _apply(two, Command(op=Op.DELETE, key="b"))
    assert one.content_hash()[2] != two.content_hash()[2]
    # length-prefixed: moving a character between key and value changes the hash
    three, four = KVStateMachine(), KVStateMachine()
    _apply(three, Command(op=Op.PUT, key="ab", value="c"))
    _apply(four, Command(op=Op.PUT, key="a", value="bc"))
    assert three.content_hash()[2] != four.content_hash()[2]


def test_hash_needs_the_cluster_token_when_set() -> None:
    cfg = load_config({"id": "n0", "peers": PEERS, "token": "tok"}, {}, "n0")
    client = build_app(FakeNode(cfg)).test_client()
    r = client.get("/v1/admin/hash")
    assert r.status_code == 401 and r.get_json()["code"] == "unauthorized"
    r = client.get("/v1/admin/hash", headers={"Authorization": "Bearer tok"})
    assert r.status_code == 200 and r.get_json()["id"] == "n0"


def test_hash_is_get_only() -> None:
    r = build_app(FakeNode()).test_client().post("/v1/admin/hash")
    assert r.status_code == 405 and "error" in r.get_json()

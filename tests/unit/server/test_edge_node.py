"""EdgeNode, the narrow node API of the HTTP routes: what each call asks of the node, and that
the blueprint modules reach the node through it only (never the driver or its state machine)."""

from __future__ import annotations

import ast
import io
import json
import threading
from pathlib import Path

import pytest

import raftkv.server
from raftkv.errors import Overloaded
from raftkv.kv import Command, Op
from raftkv.raft import Heartbeat
from raftkv.server.app import build_app
from raftkv.server.edge_node import EdgeNode
from tests.unit.server.fakenode import FakeNode, raft_body

SERVER_DIR = Path(raftkv.server.__file__).parent
ROUTE_MODULES = sorted([*SERVER_DIR.glob("routes_*.py"), SERVER_DIR / "watch.py"])


@pytest.mark.parametrize("path", ROUTE_MODULES, ids=lambda p: p.name)
def test_route_modules_see_the_node_only_through_edge_node(path: Path) -> None:
    tree = ast.parse(path.read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert "raftkv.server.driver" not in imported and "raftkv.server.api" not in imported
    reached = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    assert not reached & {"sm", "_node", "_transport", "_inbox"}, path.name


def test_every_route_module_is_a_registered_blueprint() -> None:
    app = build_app(FakeNode())
    assert set(app.blueprints) == {
        "kv",
        "watch",
        "health",
        "admin",
        "raftkv_hash",
        "backup",
        "members",
        "raftkv_snapshot_stream",
        "raft",
        "openapi",
    }
    endpoints = {r.endpoint for r in app.url_map.iter_rules()} - {"static"}
    assert all("." in e for e in endpoints), endpoints  # no route outside a blueprint


def test_reads_and_writes_go_to_the_node_with_its_request_timeout() -> None:
    fake = FakeNode()
    node = EdgeNode(fake)
    assert node.request_timeout == fake.config.request_timeout
    res = node.propose(Command(op=Op.PUT, key="k", value="v"))
    assert res.index == 1 and fake.proposed[0].key == "k"
    assert node.get("k") == ("v", 1)
    assert node.list_prefix("", 10) == [("k", "v", 1)]
    assert node.read_barrier() == 1 and fake.reads == 1
    copy = node.backup_copy()
    assert (copy.index, copy.keys) == (1, 1) and copy.data == fake.sm.snapshot()
    assert node.content_hash() == fake.sm.content_hash()


def test_recorded_result_answers_only_writes_with_a_request_id() -> None:
    fake = FakeNode()
    node = EdgeNode(fake)
    cmd = Command(op=Op.PUT, key="k", value="v", client_id="c", seq=1)
    assert node.recorded_result(cmd) is None
    first = node.propose(cmd)
    assert node.recorded_result(cmd) == first
    assert node.recorded_result(Command(op=Op.PUT, key="k", value="v")) is None


def test_raft_exchange_decodes_delivers_and_answers() -> None:
    fake = FakeNode()
    body = json.dumps({"messages": raft_body(fake)["messages"] * 2}).encode()
    answer = EdgeNode(fake).raft_exchange(len(body), io.BytesIO(body))
    assert answer["ok"] is True and answer["received"] == 2
    assert [type(m) for m in fake.delivered] == [Heartbeat, Heartbeat]
    assert [r["type"] for r in answer["messages"]] == ["HeartbeatResponse"] * 2


def test_membership_is_none_when_the_node_tracks_none() -> None:
    assert EdgeNode(FakeNode()).membership() is None


def test_a_full_node_answers_overloaded_at_once() -> None:
    node = EdgeNode(FakeNode())
    node.slots = threading.BoundedSemaphore(1)
    with node.slot(), pytest.raises(Overloaded), node.slot():
        pass  # pragma: no cover
    with node.slot():  # released again
        pass

"""GET /v1/admin/snapshot (admin_backup.py) and the peer cluster-id gate (peer_gate.py)."""

from __future__ import annotations

import io
import logging
from typing import Any

from raftkv.backup import verify_backup
from raftkv.config import load_config
from raftkv.kv.commands import Command, Op
from raftkv.server.app import build_app
from tests.unit.server.fakenode import PEERS, FakeNode, raft_body
from tests.unit.server.test_routes import RecordingForwarder, assert_json_error


def _fill(node: FakeNode, n: int) -> None:
    for i in range(n):
        node.propose(Command(op=Op.PUT, key=f"k{i}", value=f"v{i}"), 1.0)


def test_leader_streams_a_verified_backup_after_a_read_barrier() -> None:
    node = FakeNode()
    _fill(node, 20)
    c = build_app(node).test_client()
    reads = node.reads
    r = c.get("/v1/admin/snapshot")
    assert r.status_code == 200 and r.mimetype == "application/octet-stream"
    assert node.reads == reads + 1  # linearizable: a ReadIndex round first
    info, data = verify_backup(io.BytesIO(r.get_data()), keep_data=True)
    assert (info.index, info.keys, info.cluster_id, info.node) == (20, 20, "c0ffee", "n0")
    assert r.headers["X-Raftkv-Snapshot-Index"] == "20"
    assert r.headers["X-Raftkv-Snapshot-Keys"] == "20"
    assert r.headers["X-Raftkv-Snapshot-Checksum"] == f"sha256:{info.checksum}"
    assert r.headers["X-Raftkv-Cluster-Id"] == "c0ffee"
    assert int(r.headers["Content-Length"]) == len(r.get_data()) == info.size
    assert data == node.sm.snapshot()


def test_stale_backup_on_a_follower_is_served_locally() -> None:
    node = FakeNode(leader="n1")
    node.leader = "n0"
    _fill(node, 3)
    node.leader = "n1"
    c = build_app(node).test_client()
    r = c.get("/v1/admin/snapshot?consistency=stale")
    assert r.status_code == 200
    info, _ = verify_backup(io.BytesIO(r.get_data()))
    assert info.index == 3 and info.node == "n0"


def test_follower_relays_a_linearizable_backup_to_the_leader() -> None:
    leader = FakeNode()
    _fill(leader, 4)
    blob = build_app(leader).test_client().get("/v1/admin/snapshot").get_data()

    class Fwd(RecordingForwarder):
        def forward(
            self, leader_id: str, method: str, path_qs: str, headers: Any, body: bytes
        ) -> tuple[int, list[tuple[str, str]], bytes]:
            self.calls.append((leader_id, method, path_qs, body))
            return 200, [("Content-Type", "application/octet-stream")], blob

    app = build_app(FakeNode(leader="n1"))
    fwd = Fwd()
    app.extensions["raftkv.ctx"].forwarder = fwd
    r = app.test_client().get("/v1/admin/snapshot")
    assert r.status_code == 200 and r.get_data() == blob
    assert fwd.calls == [("n1", "GET", "/v1/admin/snapshot", b"")]
    assert r.headers["X-Raftkv-Snapshot-Index"] == "4"


def test_backup_errors_are_json() -> None:
    c = build_app(FakeNode(leader=None)).test_client()
    assert_json_error(c.get("/v1/admin/snapshot"), 503, "no_leader")
    assert_json_error(c.get("/v1/admin/snapshot?consistency=weird"), 400, "invalid_query")
    assert_json_error(c.get("/v1/admin/snapshot?x=1"), 400, "invalid_query")


def test_backup_needs_the_cluster_token_when_set_and_post_still_snapshots() -> None:
    cfg = load_config({"id": "n0", "peers": PEERS, "token": "tok"}, {}, "n0")
    c = build_app(FakeNode(cfg)).test_client()
    assert_json_error(c.get("/v1/admin/snapshot"), 401, "unauthorized")
    ok = c.get("/v1/admin/snapshot", headers={"Authorization": "Bearer tok"})
    assert ok.status_code == 200
    post = c.post("/v1/admin/snapshot", headers={"Authorization": "Bearer tok"})
    assert post.status_code == 200 and "snapshot_index" in post.get_json()


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_raft_messages_from_another_cluster_get_409_and_one_log_line() -> None:
    node = FakeNode()
    c = build_app(node).test_client()
    body = raft_body(node)
    logger = logging.getLogger("raftkv.server.peer_gate")  # its own handler: the node's logging
    seen = _Records()  # setup may stop propagation
    logger.addHandler(seen)
    try:
        for _ in range(3):
            r = c.post(
                "/raft/v1/messages",
                json=body,
                headers={"X-Raftkv-Cluster-Id": "other", "X-Raftkv-Node": "x-9"},
            )
            err = assert_json_error(r, 409, "cluster_id_mismatch")
            assert "c0ffee" in err["error"] and "other" in err["error"]
    finally:
        logger.removeHandler(seen)
    lines = [rec for rec in seen.records if "cluster-id-mismatch" in rec.getMessage()]
    assert len(lines) == 1 and "sender=x-9" in lines[0].getMessage()
    assert node.delivered == []
    same = c.post("/raft/v1/messages", json=body, headers={"X-Raftkv-Cluster-Id": "c0ffee"})
    assert same.status_code == 200 and len(node.delivered) == 1
    legacy = c.post("/raft/v1/messages", json=body)  # no header: an older peer
    assert legacy.status_code == 200


def test_a_joining_node_adopts_the_first_cluster_id_then_refuses_others(tmp_path: Any) -> None:
    from raftkv.storage.identity import read_cluster_id

    cfg = load_config({"id": "n9", "peers": PEERS, "data_dir": str(tmp_path)}, {}, "n9")
    node = FakeNode(cfg)
    node.cluster_id = None  # joining: not known yet
    c = build_app(node).test_client()
    body = raft_body(node)
    assert c.post("/raft/v1/messages", json=body).status_code == 200  # no header: accepted
    assert node.cluster_id is None
    r = c.post("/raft/v1/messages", json=body, headers={"X-Raftkv-Cluster-Id": "theirs"})
    assert r.status_code == 200 and node.cluster_id == "theirs"
    assert read_cluster_id(str(tmp_path)) == "theirs"  # recorded durably
    other = c.post("/raft/v1/messages", json=body, headers={"X-Raftkv-Cluster-Id": "other"})
    assert_json_error(other, 409, "cluster_id_mismatch")
    bad = FakeNode(
        load_config({"id": "n8", "peers": PEERS, "data_dir": str(tmp_path / "x")}, {}, "n8")
    )
    bad.cluster_id = None
    r = (
        build_app(bad)
        .test_client()
        .post("/raft/v1/messages", json=body, headers={"X-Raftkv-Cluster-Id": "bad id"})
    )
    assert_json_error(r, 409, "cluster_id_mismatch")
    assert bad.cluster_id is None

"""How verify's recorder classifies answers: ok, failed (certainly no effect), unknown outcome."""

from __future__ import annotations

from raftctl.client import NodeUnreachable, Reply
from raftctl.linearizability import Kind, Status
from raftctl.recorder import classify


def test_classify_answers() -> None:
    def reply(status: int, body: dict[str, object]) -> Reply:
        return Reply(url="http://n", status=status, body=body)

    assert classify(Kind.PUT, reply(200, {})).status is Status.OK
    got = classify(Kind.GET, reply(200, {"value": "v"}))
    assert got.status is Status.OK and got.result == "v"
    got = classify(Kind.GET, reply(404, {"code": "key_not_found"}))
    assert got.status is Status.OK and got.result is None
    got = classify(Kind.CAS, reply(412, {"code": "precondition_failed", "value": "cur"}))
    assert got.status is Status.OK and not got.applied and got.result == "cur"
    got = classify(Kind.DELETE, reply(404, {"code": "key_not_found"}))
    assert got.status is Status.OK and not got.applied
    no_leader = {"code": "no_leader", "error": "no leader known (election in progress); retry"}
    assert classify(Kind.PUT, reply(503, no_leader)).status is Status.FAILED
    relayed = {"code": "no_leader", "error": "leader raft-1 unreachable (TimeoutError); retry"}
    assert classify(Kind.PUT, reply(503, relayed)).status is Status.UNKNOWN
    for body in ({"code": "proposal_lost", "error": "x"}, {"code": "shutting_down", "error": "x"}):
        assert classify(Kind.PUT, reply(503, body)).status is Status.UNKNOWN
    assert classify(Kind.PUT, reply(504, {"code": "outcome_unknown"})).status is Status.UNKNOWN
    assert classify(Kind.PUT, reply(400, {"code": "invalid_key"})).status is Status.FAILED
    refused = NodeUnreachable("http://n", "[Errno 111] Connection refused")
    assert classify(Kind.PUT, None, refused).status is Status.FAILED
    timeout = NodeUnreachable("http://n", "timed out")
    assert classify(Kind.PUT, None, timeout).status is Status.UNKNOWN

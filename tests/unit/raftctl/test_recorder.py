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
    # The node says these had no effect (a relay answers no_leader only if nothing reached the
    # leader; a lost entry was overwritten): verify holds it to that, so a "failed" write whose
    # value is read later is a violation the checker reports.
    relayed = {"code": "no_leader", "error": "leader raft-1 unreachable (ConnectionRefusedError)"}
    assert classify(Kind.PUT, reply(503, relayed)).status is Status.FAILED
    for body in ({"code": "proposal_lost", "error": "x"}, {"code": "shutting_down", "error": "x"}):
        assert classify(Kind.PUT, reply(503, body)).status is Status.FAILED
    assert classify(Kind.PUT, reply(503, {"code": "unavailable"})).status is Status.UNKNOWN
    assert classify(Kind.PUT, reply(500, {"code": "node_failed"})).status is Status.UNKNOWN
    assert classify(Kind.PUT, reply(504, {"code": "outcome_unknown"})).status is Status.UNKNOWN
    assert classify(Kind.PUT, reply(400, {"code": "invalid_key"})).status is Status.FAILED
    refused = NodeUnreachable("http://n", "[Errno 111] Connection refused", sent=False)
    assert classify(Kind.PUT, None, refused).status is Status.FAILED
    # a connection that broke after the request may have gone out: unknown, whatever the reason
    reset = NodeUnreachable("http://n", "Connection reset by peer", sent=True)
    assert classify(Kind.PUT, None, reset).status is Status.UNKNOWN
    timeout = NodeUnreachable("http://n", "timed out")
    assert classify(Kind.PUT, None, timeout).status is Status.UNKNOWN

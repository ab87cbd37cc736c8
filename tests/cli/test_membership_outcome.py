"""raftctl's membership calls tell the truth about changes whose answer was lost."""

from __future__ import annotations

import pytest

from raftctl.client import KVClient
from raftctl.errors import OutcomeUnknown
from raftctl.membership import MemberError, Members
from tests.cli.realnodes import RealCluster


def members_of(nodes: RealCluster) -> Members:
    return Members(KVClient(nodes.urls, ids={n: nodes.url(n) for n in nodes.ids}, deadline=2.0))


def test_a_change_answered_504_then_refused_is_an_unknown_outcome(nodes: RealCluster) -> None:
    """Found by review (hqa): membership changes went out as reads, so a 504 (the change was
    proposed but not seen committed in time) was retried on another node, whose 409 ("already
    a member", the first attempt committed) became a definite failure — and a change that kept
    answering 504 became "unavailable". Either way it may have been applied: unknown (exit 3)."""
    nodes.fail_next("raft-0", 504)
    nodes.fail_next("raft-1", 409)
    with pytest.raises(OutcomeUnknown) as e:
        members_of(nodes).add("raft-3", "http://127.0.0.1:9")
    assert e.value.exit_code == 3
    # not deduplicated by the node: no X-Request-Id (a relaying follower must not re-send it)
    assert all("X-Request-Id" not in s.headers for s in nodes.requests_to("/v1/admin/"))
    for node in nodes.ids:
        nodes.fail_next(node, *([504] * 100))
    with pytest.raises(OutcomeUnknown, match="may or may not have been applied"):
        members_of(nodes).remove("raft-2")


def test_a_refused_change_is_a_member_error(nodes: RealCluster) -> None:
    nodes.fail_next("raft-0", 409)
    with pytest.raises(MemberError, match="HTTP 409") as e:
        members_of(nodes).promote("raft-3")
    assert not isinstance(e.value, OutcomeUnknown)

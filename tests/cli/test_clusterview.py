"""raftctl.clusterview: what `raftctl status` adds up — quorum counts voters only; learners are
shown apart and never make a cluster healthy (a real cluster with a learner:
test_local_scale.py)."""

from __future__ import annotations

from raftctl.backends.base import Replica
from raftctl.clusterview import ClusterView, ReplicaStatus


def row(
    rid: str, health: str, *, role: str = "follower", learners: tuple[str, ...] = ()
) -> ReplicaStatus:
    reachable = health not in ("unreachable", "frozen", "down")
    return ReplicaStatus(
        Replica(rid, f"http://127.0.0.1:1/{rid}"),
        reachable=reachable,
        role=role if reachable else None,
        term=2 if reachable else None,
        leader="raft-0" if reachable else None,
        health=health,
        learners=learners,
    )


def view(*rows: ReplicaStatus) -> ClusterView:
    return ClusterView(rows, "raft-0", 2)


def test_learners_do_not_count_towards_the_quorum() -> None:
    """3 voters (2 of them unreachable) + 2 healthy learners: 3 of 5 rows are healthy, but only
    1 of 3 voters — no quorum, not healthy."""
    v = view(
        row("raft-0", "healthy", role="leader", learners=("raft-3", "raft-4")),
        row("raft-1", "unreachable"),
        row("raft-2", "unreachable"),
        row("raft-3", "healthy", role="learner"),
        row("raft-4", "healthy", role="learner"),
    )
    assert [r.id for r in v.learners] == ["raft-3", "raft-4"]
    assert [r.id for r in v.voters] == ["raft-0", "raft-1", "raft-2"]
    assert (v.quorum, v.healthy_voters) == (2, 1)
    assert not v.healthy
    assert v.to_json()["learners"] == ["raft-3", "raft-4"] and not v.to_json()["healthy"]


def test_an_unreachable_learner_is_known_from_the_leaders_configuration() -> None:
    v = view(
        row("raft-0", "healthy", role="leader", learners=("raft-3",)),
        row("raft-1", "healthy"),
        row("raft-2", "unreachable"),
        row("raft-3", "unreachable"),
    )
    assert [r.id for r in v.learners] == ["raft-3"]
    assert (v.quorum, v.healthy_voters) == (2, 2) and v.healthy  # 2 of 3 voters


def test_without_learners_every_replica_votes() -> None:
    v = view(
        row("raft-0", "healthy", role="leader"),
        row("raft-1", "healthy"),
        row("raft-2", "unreachable"),
    )
    assert v.learners == () and len(v.voters) == 3 and v.quorum == 2 and v.healthy
    assert v.to_json()["learners"] == []

"""raftctl's membership helpers without processes: new ids, the founders in --peers, parsing."""

from __future__ import annotations

import pytest

from raftctl.backends.local.state import ReplicaSpec, Spec
from raftctl.errors import RaftctlError
from raftctl.membership import Config, next_replica_id


def _conf(members: list[tuple[str, str]], removed: tuple[str, ...] = ()) -> Config:
    return Config(
        members=tuple({"id": i, "role": r, "url": f"http://{i}:1"} for i, r in members),
        config_index=7,
        removed=removed,
    )


def test_new_ids_are_never_reused() -> None:
    conf = _conf([("raft-0", "voter"), ("raft-1", "voter"), ("raft-2", "learner")])
    assert next_replica_id(conf, []) == "raft-3"
    assert next_replica_id(conf, ["raft-5"]) == "raft-6"  # a replica not yet a member
    assert next_replica_id(_conf([("raft-0", "voter")], removed=("raft-9",)), []) == "raft-10"
    assert conf.voters == ["raft-0", "raft-1"] and conf.learners == ["raft-2"]


def test_config_parse_rejects_garbage() -> None:
    with pytest.raises(RaftctlError, match="unexpected answer"):
        Config.parse({"nope": 1})
    c = Config.parse(
        {"members": [{"id": "a", "role": "voter"}], "config_index": 3, "removed": ["z"]}
    )
    assert c.voters == ["a"] and c.removed == ("z",) and c.to_json()["config_index"] == 3


def _spec(ids: list[str], bootstrap: tuple[str, ...] = ()) -> Spec:
    reps = tuple(ReplicaSpec(i, 9000 + n, f"/d/{i}", f"/l/{i}") for n, i in enumerate(ids))
    return Spec(
        name="t",
        replicas=reps,
        command=("raftkv",),
        election_ms=500,
        heartbeat_ms=50,
        bootstrap=bootstrap,
    )


def test_only_founders_list_themselves_in_peers() -> None:
    spec = _spec(["raft-0", "raft-1", "raft-2", "raft-3"], bootstrap=("raft-0", "raft-1", "raft-2"))
    founder = spec.argv(spec.replicas[0])
    peers = founder[founder.index("--peers") + 1]
    assert peers.split(",") == [f"raft-{i}=http://127.0.0.1:{9000 + i}" for i in range(3)]
    joiner = spec.argv(spec.replicas[3])
    peers = joiner[joiner.index("--peers") + 1]
    assert "raft-3=" not in peers and peers.count("=") == 3  # the others, not itself: joining
    # an old cluster.json without "bootstrap": every replica is a founder
    old = _spec(["raft-0", "raft-1", "raft-2"])
    argv = old.argv(old.replicas[2])
    assert argv[argv.index("--peers") + 1].count("=") == 3

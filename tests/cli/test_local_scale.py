"""`raftctl scale` and `raftctl member` on a real local cluster (docs/membership.md): 3 -> 5 -> 3
through learners and the log, data of removed replicas deleted, refusals as one line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.localcluster import Local

pytestmark = pytest.mark.integration


@pytest.fixture
def local(tmp_path: Path) -> Iterator[Local]:
    cluster = Local.new(tmp_path / "state")
    try:
        yield cluster
    finally:
        cluster.teardown()


def voters(conf: dict[str, object]) -> list[str]:
    return sorted(m["id"] for m in conf["members"] if m["role"] == "voter")  # type: ignore[index,union-attr]


def test_scale_up_and_down_through_the_log(local: Local) -> None:
    assert local.sh("up", "--election-ms", "300", "--heartbeat-ms", "50").returncode == 0
    assert local.sh("put", "before", "1").returncode == 0

    res = local.sh("scale", "5", timeout=240)
    assert res.returncode == 0, res.stderr
    for needle in (
        "raft-3: adding as a learner",
        "raft-3: catching up",
        "raft-4: promoting to voter",
    ):
        assert needle in res.stderr, res.stderr
    conf = local.json("member", "list")
    assert voters(conf) == ["raft-0", "raft-1", "raft-2", "raft-3", "raft-4"]
    assert all(m["reachable"] for m in conf["members"]), conf
    status = local.json("status")
    assert len(status["replicas"]) == 5 and status["healthy"], status
    assert local.sh("put", "during", "2").returncode == 0

    data = local.root / local.name / "data"
    assert (data / "raft-4").is_dir()
    res = local.sh("scale", "3", timeout=240)
    assert res.returncode == 0, res.stderr
    conf = local.json("member", "list")
    assert voters(conf) == ["raft-0", "raft-1", "raft-2"]
    assert conf["removed"] == ["raft-4", "raft-3"]
    assert not (data / "raft-4").exists() and not (data / "raft-3").exists()
    assert sorted(local.pids()) == ["raft-0", "raft-1", "raft-2", "supervisor"]
    for key, value in (("before", "1"), ("during", "2")):
        res = local.sh("get", key)
        assert res.returncode == 0 and value in res.stdout, res

    # refusals: one line, non-zero exit
    res = local.sh("scale", "0")
    assert res.returncode == 2 and "at least 1 voter" in res.stderr
    res = local.sh("member", "remove", "raft-9")
    assert res.returncode == 1 and res.stderr.count("\n") == 1 and "no member" in res.stderr
    res = local.sh("member", "add", "raft-4", "http://127.0.0.1:9")
    assert res.returncode == 1 and "new id" in res.stderr, res.stderr
    res = local.sh("scale", "4", "--timeout", "1")  # even: warned about (the step may time out)
    assert "4 voters tolerate no more failures than 3" in res.stderr


def test_status_counts_voters_for_the_quorum_and_shows_learners_apart(local: Local) -> None:
    from raftctl.backends.local.scale import LocalPool

    assert local.sh("up", "--election-ms", "300", "--heartbeat-ms", "50").returncode == 0
    _, url = LocalPool(local.backend).start_replica("raft-3")
    res = local.sh("member", "add", "raft-3", url)
    assert res.returncode == 0, res.stderr
    status = local.json("status")
    assert status["learners"] == ["raft-3"] and status["healthy"], status
    assert len(status["replicas"]) == 4
    res = local.sh("status")
    assert res.returncode == 0, res.stderr
    assert "3/3 healthy; learners (not in the quorum): raft-3" in res.stdout, res.stdout

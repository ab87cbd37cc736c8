"""Membership changes on real ``raftkv serve`` processes (docs/membership.md): 3 -> 5 -> 3 while a
writer runs, removing the leader, replacing a dead member by a new id on an empty disk, a removed
node restarted with its old flags, and the admin API's answers (401/400/404/409)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.cluster import LocalCluster, Reply
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


class GrowingCluster(LocalCluster):
    """A LocalCluster that can start extra nodes: new id, new port, empty data dir, started with
    the ORIGINAL ``--peers`` (so its own id is not among them: a joining node)."""

    def add_process(self) -> int:
        i = len(self.ids)
        self.ids.append(f"raft-{i}")
        self.add_port()
        self.start_node(i)
        self.wait_serving(i)
        return i

    def idx(self, node_id: str) -> int:
        return self.ids.index(node_id)

    def admin(
        self,
        i: int,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        timeout: float = 15,
    ) -> Reply:
        data = json.dumps(body) if body is not None else None
        return self.request(
            i, method, path, data, AUTH if headers is None else headers, timeout=timeout
        )

    def members(self, i: int) -> dict[str, Any]:
        r = self.get(i, "/v1/members")
        assert r.status == 200, r
        return dict(r.json)

    def change_ok(
        self, i: int, method: str, path: str, body: Any = None, timeout: float = 30
    ) -> dict[str, Any]:
        """An admin change, retried while the cluster says 409 (in flight / catching up) or 503
        (electing); returns the new configuration."""

        def attempt() -> dict[str, Any] | None:
            r = self.admin(i, method, path, body)
            if r.status == 200:
                return dict(r.json)
            if r.status in (409, 503, 504):
                return None
            raise AssertionError(f"{method} {path} via node {i}: {r}")

        return wait_until(attempt, timeout, f"{method} {path} accepted", self.logs)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[GrowingCluster]:
    c = GrowingCluster(tmp_path, token=TOKEN)
    try:
        c.start()
        yield c
    finally:
        c.close()


def voters(conf: dict[str, Any]) -> list[str]:
    return sorted(m["id"] for m in conf["members"] if m["role"] == "voter")


def learners(conf: dict[str, Any]) -> list[str]:
    return sorted(m["id"] for m in conf["members"] if m["role"] == "learner")


def grow(c: GrowingCluster, via: int) -> str:
    """Start a fresh node, add it as a learner, wait until caught up, promote it."""
    i = c.add_process()
    nid = c.ids[i]
    r = c.get(i, "/readyz")
    assert r.status == 503 and "joining" in r.json["error"], r
    assert c.status(i)["role"] == "joining"
    conf = c.change_ok(via, "POST", "/v1/admin/members", {"id": nid, "url": c.url(i)})
    assert nid in learners(conf)
    wait_until(lambda: c.get(i, "/readyz").status == 200, 30, f"{nid} caught up", c.logs)
    assert c.status(i)["role"] == "learner"
    conf = c.change_ok(via, "POST", f"/v1/admin/members/{nid}/promote")
    assert nid in voters(conf)
    return nid


class Writer(threading.Thread):
    """Writes unique keys through any node until stopped; remembers what was acknowledged."""

    def __init__(self, c: GrowingCluster) -> None:
        super().__init__(daemon=True)
        self.c = c
        self.acked: dict[str, str] = {}
        self.stop_evt = threading.Event()
        self.n = 0

    def run(self) -> None:
        while not self.stop_evt.is_set():
            self.n += 1
            key, value = f"w{self.n}", f"v{self.n}"
            alive = self.c.alive()
            i = alive[self.n % len(alive)]
            try:
                r = self.c.put(i, key, value)
            except OSError:
                continue
            if r.status == 200:
                self.acked[key] = value
            time.sleep(0.01)


def test_scale_3_to_5_to_3_while_writing_keeps_every_acknowledged_write(
    cluster: GrowingCluster,
) -> None:
    c = cluster
    leader = c.wait_for_leader()
    w = Writer(c)
    w.start()
    try:
        added = [grow(c, via=(leader + 1) % 3) for _ in range(2)]
        conf = c.members(0)
        assert voters(conf) == sorted([*c.ids[:3], *added]) and conf["config_index"] > 1
        assert all(m["reachable"] and m["match_index"] > 0 for m in conf["members"]), conf
        # back to 3: remove one new node and the current leader (the leader goes last)
        leader_id = c.ids[c.wait_for_leader(among=c.alive())]
        for nid in (added[0], leader_id):
            conf = c.change_ok(c.idx(added[1]), "DELETE", f"/v1/admin/members/{nid}")
            assert nid not in voters(conf) and nid not in learners(conf)
        assert len(voters(conf)) == 3
        time.sleep(0.5)
    finally:
        w.stop_evt.set()
        w.join(30)
    assert len(w.acked) > 20, f"the writer got too few acknowledgements: {len(w.acked)}"
    remaining = [c.idx(n) for n in voters(conf)]
    for i in remaining:
        st = c.status(i)
        assert sorted(st["voters"]) == voters(conf) and st["role"] in ("leader", "follower")
    for key, value in w.acked.items():
        r = c.get(remaining[0], f"/v1/kv/{key}")
        assert r.status == 200 and r.json["value"] == value, (key, r)
    # the removed leader knows it and never comes back
    old = c.idx(leader_id)
    wait_until(lambda: c.status(old)["role"] == "removed", 10, "old leader reports removed")
    assert c.get(old, "/readyz").status == 503


def test_removed_node_restarted_with_its_old_flags_cannot_rejoin_or_move_the_term(
    cluster: GrowingCluster,
) -> None:
    c = cluster
    leader = c.wait_for_leader()
    c.put_ok(leader, "a", "1")
    victim = (leader + 1) % 3
    conf = c.change_ok(leader, "DELETE", f"/v1/admin/members/{c.ids[victim]}")
    assert voters(conf) == sorted(set(c.ids[:3]) - {c.ids[victim]})
    wait_until(lambda: c.status(victim)["role"] == "removed", 10, "victim reports removed")
    rest = [i for i in range(3) if i != victim]
    term = c.status(leader)["term"]
    c.kill(victim)
    c.start_node(victim)  # same id, same data dir, same --peers as before
    c.wait_serving(victim)
    st = c.status(victim)
    assert st["role"] == "removed" and c.ids[victim] not in st["voters"], st
    r = c.get(victim, "/readyz")
    assert r.status == 503 and "removed" in r.json["error"]
    time.sleep(3 * 0.5 * 2)  # several election timeouts
    assert c.wait_for_leader(among=rest) == leader
    assert all(c.status(i)["term"] == term for i in rest)
    assert c.status(victim)["term"] <= term
    c.put_ok(rest[1], "b", "2")
    # a removed id can never come back
    r = c.admin(leader, "POST", "/v1/admin/members", {"id": c.ids[victim], "url": c.url(victim)})
    assert r.status == 409 and "new id" in r.json["error"], r


def test_replace_a_dead_member_with_a_new_id_on_an_empty_disk(cluster: GrowingCluster) -> None:
    c = cluster
    leader = c.wait_for_leader()
    for k in range(5):
        c.put_ok(leader, f"k{k}", str(k))
    dead = (leader + 2) % 3
    c.kill(dead)
    wait_until(
        lambda: (
            not next(m for m in c.members(leader)["members"] if m["id"] == c.ids[dead])["reachable"]
        ),
        10,
        "the dead member reported unreachable",
    )
    # removing another voter now would leave {leader, dead}: no reachable majority
    other = 3 - leader - dead
    r = c.admin(leader, "DELETE", f"/v1/admin/members/{c.ids[other]}")
    assert r.status == 409 and "majority" in r.json["error"], r
    new = grow(c, via=leader)
    conf = c.change_ok(leader, "DELETE", f"/v1/admin/members/{c.ids[dead]}")
    assert voters(conf) == sorted([c.ids[leader], c.ids[other], new])
    c.kill(leader)  # the new member now counts toward the quorum
    c.wait_for_leader(among=[other, c.idx(new)])
    c.put_ok(other, "after", "x")
    for k in range(5):
        assert c.get(c.idx(new), f"/v1/kv/k{k}").json["value"] == str(k)


def test_admin_answers(cluster: GrowingCluster) -> None:
    c = cluster
    leader = c.wait_for_leader()
    f = (leader + 1) % 3
    body = {"id": "raft-9", "url": "http://127.0.0.1:1"}
    assert c.admin(f, "POST", "/v1/admin/members", body, headers={}).status == 401
    for bad in (
        {"id": "bad id", "url": "http://x:1"},
        {"id": "raft-9", "url": "x"},
        {"id": "raft-9"},
        [1],
        {"id": "raft-9", "url": "^\U0001f600[\u009a}"},
    ):
        r = c.admin(f, "POST", "/v1/admin/members", bad)
        assert r.status == 400 and r.json["error"], (bad, r)
    r = c.admin(f, "DELETE", "/v1/admin/members/raft-7")
    assert r.status == 404 and r.json["code"] == "member_not_found", r
    r = c.admin(f, "POST", "/v1/admin/members/raft-1/promote")
    assert r.status == 409 and "already a voter" in r.json["error"], r
    # a learner that is not running cannot be promoted (not caught up) unless forced
    conf = c.change_ok(f, "POST", "/v1/admin/members", body)
    assert learners(conf) == ["raft-9"]
    for k in range(80):
        c.put_ok(leader, f"k{k}", "v")
    r = c.admin(f, "POST", "/v1/admin/members/raft-9/promote")
    assert r.status == 409 and "not caught up" in r.json["error"], r
    r = c.admin(f, "POST", "/v1/admin/members/raft-9/promote?force=maybe")
    assert r.status == 400
    conf = c.change_ok(f, "DELETE", "/v1/admin/members/raft-9")
    assert learners(conf) == [] and len(voters(conf)) == 3 and conf["removed"] == ["raft-9"]
    r = c.admin(f, "POST", "/v1/admin/members", body)
    assert r.status == 409 and "new id" in r.json["error"], r
    conf = c.change_ok(f, "POST", "/v1/admin/members?force=true", body)  # its data is gone
    assert learners(conf) == ["raft-9"] and conf["removed"] == []
    conf = c.change_ok(f, "DELETE", "/v1/admin/members/raft-9")
    # GET /v1/members through a follower is answered by the leader (match indexes known)
    m = c.members(f)
    assert all(x["match_index"] is not None and x["reachable"] for x in m["members"]), m

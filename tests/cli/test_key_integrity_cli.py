"""Issue 10 for raftctl on the local target (a real `raftctl up` cluster): any key written with
raftctl is read, listed and deleted under exactly that key — through its client API (entering
through a follower) and as real `raftctl put/get/list/delete` subprocesses — and no other key
is touched."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from raftctl.client import KVClient
from tests.cli.localcluster import Local
from tests.keys import any_key

pytestmark = pytest.mark.integration

DECOYS = {"tag": "decoy-tag", "pctA": "decoy-pctA", "lead": "decoy-lead", "a/b": "decoy-a/b"}
_n = itertools.count(1)
SLOW = [
    HealthCheck.function_scoped_fixture,
    HealthCheck.too_slow,
    HealthCheck.data_too_large,
    HealthCheck.filter_too_much,
]


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Local]:
    cluster = Local.new(tmp_path_factory.mktemp("raftctl-keys"))
    try:
        res = cluster.sh("up", "--timeout", "90")
        assert res.returncode == 0, res.stderr
        for key, value in DECOYS.items():
            assert cluster.sh("put", "--", key, value).returncode == 0
        yield cluster
    finally:
        cluster.teardown()


def everything(client: KVClient) -> dict[str, Any]:
    reply, items = client.list_keys(limit=10000)
    assert not reply.body["truncated"]
    return {item["key"]: item["value"] for item in items}


def follower_client(local: Local) -> tuple[KVClient, KVClient]:
    """A client that only knows one follower (every request relayed), and a normal one."""
    replicas = local.backend.replicas()
    normal = KVClient([r.url for r in replicas], ids={r.id: r.url for r in replicas})
    leader = normal.status(replicas[0].url)["leader"]
    follower = next(r for r in replicas if r.id != leader)
    return KVClient([follower.url], ids={follower.id: follower.url}), normal


@settings(max_examples=30, deadline=None, database=None, suppress_health_check=SLOW)
@given(key=any_key)
def test_client_api_keeps_every_key(local: Local, key: str) -> None:
    via_follower, normal = follower_client(local)
    try:
        value = f"v{next(_n)}"
        before = everything(normal)
        assert via_follower.put(key, value).body["key"] == key
        assert normal.get(key).body == {
            "key": key,
            "value": value,
            "index": normal.get(key).body["index"],
        }
        assert via_follower.get(key, stale=False).body["value"] == value
        _, items = via_follower.list_keys(prefix=key)
        assert [i["key"] for i in items] == sorted(k for k in {*before, key} if k.startswith(key))
        assert via_follower.delete(key).body["key"] == key
        after = everything(normal)
        assert after == before and {k: after[k] for k in DECOYS} == DECOYS
    finally:
        via_follower.close()
        normal.close()


def sh_json(local: Local, command: str, *args: str) -> Any:
    """raftctl as a real subprocess (the key travels through argv)."""
    res = local.sh(command, "-o", "json", "--", *args)
    assert res.returncode == 0, (command, args, res.stderr)
    return json.loads(res.stdout)


def cli_json(local: Local, command: str, *args: str, key: str | None = None) -> Any:
    """raftctl in-process (Typer's runner): the same commands, without a Python start-up."""
    res = local.cli(command, *args, "-o", "json", *(("--", key) if key is not None else ()))
    assert res.exit_code == 0, (args, res.stderr)
    return json.loads(res.stdout)


@settings(max_examples=5, deadline=None, database=None, suppress_health_check=SLOW)
@given(key=any_key.filter(lambda k: "\x00" not in k))  # argv cannot carry NUL
def test_raftctl_commands_keep_every_key(local: Local, key: str) -> None:
    value = f"cli-{next(_n)}"
    before = {i["key"]: i["value"] for i in cli_json(local, "list")["items"]}
    assert sh_json(local, "put", key, value)["key"] == key
    got = cli_json(local, "get", key=key)
    assert (got["key"], got["value"]) == (key, value)
    listed = cli_json(local, "list", f"--prefix={key}")["items"]
    assert [i["key"] for i in listed] == sorted(k for k in {*before, key} if k.startswith(key))
    assert sh_json(local, "delete", key)["key"] == key
    missing = local.cli("get", "--", key)
    assert missing.exit_code == 1 and "key not found" in missing.stderr
    after = {i["key"]: i["value"] for i in cli_json(local, "list")["items"]}
    assert after == before


def test_a_key_no_node_would_take_is_one_line_exit_1(local: Local) -> None:
    res = local.sh("put", "--", "k" * 513, "v")
    assert res.returncode == 1
    assert res.stderr.strip().count("\n") == 0 and "513 bytes" in res.stderr
    assert "Traceback" not in res.stderr

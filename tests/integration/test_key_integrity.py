"""Issue 10 on a REAL 3-node cluster: any key PUT through a follower is stored, read (through the
leader and the other follower) and deleted (through a follower) under exactly that key, and no
other key is touched. Before the fix a follower relayed the percent-decoded path: ``tag%23frag``
was stored as ``tag`` (overwriting it), ``pct%2541`` as ``pctA``, ``q%3Fx`` was a 400 and ``ün``
a 500 that broke the next relay on that thread."""

from __future__ import annotations

import itertools
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from raftkv.keycodec import encode_query_value, key_path
from tests.integration.cluster import LocalCluster, Reply
from tests.keys import any_key
from tests.support.waiting import retry

pytestmark = pytest.mark.integration

# Keys the bugs above rewrote requests onto: they must keep their values throughout.
DECOYS = {
    "tag": "decoy-tag",
    "pctA": "decoy-pctA",
    "q": "decoy-q",
    "lead": "decoy-lead",
    "a/b": "decoy-a/b",
    "y": "decoy-y",
    "x": "decoy-x",
    "\ufffd": "decoy-fffd",
}
_ids = itertools.count(1)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    c = LocalCluster(Path(tmp_path_factory.mktemp("keys")))
    try:
        c.start()
        leader = c.wait_for_leader()
        for key, value in DECOYS.items():
            c.request(leader, "PUT", key_path(key), value, {"X-Request-Id": f"decoy:{next(_ids)}"})
        yield c
    finally:
        c.close()


def call(
    c: LocalCluster,
    i: int,
    method: str,
    path: str,
    body: str | None = None,
    request_id: str | None = None,
) -> Reply:
    """One request; a 503/504 (leader change under CPU contention) is retried with the same
    request id, which the cluster applies at most once."""
    headers = {"X-Request-Id": request_id} if request_id else {}
    return retry(
        lambda: c.request(i, method, path, body, headers), lambda r: r.status not in (503, 504), 20
    )


def everything(c: LocalCluster, i: int) -> dict[str, Any]:
    r = call(c, i, "GET", "/v1/kv?limit=10000")
    assert r.status == 200, r
    assert not r.json["truncated"]
    return {item["key"]: item["value"] for item in r.json["items"]}


def raw_request(port: int, request_line: bytes, body: bytes) -> tuple[int, bytes]:
    """One request with the request line's bytes exactly as given (http.client refuses
    non-ASCII targets), ``Connection: close``."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            request_line + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body) + body
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, payload = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), payload


def roles(c: LocalCluster) -> tuple[int, int, int]:
    leader = c.wait_for_leader()
    f1, f2 = (i for i in range(c.size) if i != leader)
    return leader, f1, f2


@settings(
    max_examples=50,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)
@given(key=any_key, raw_slashes=st.booleans())
def test_any_key_through_any_node_is_the_same_key(
    cluster: LocalCluster, key: str, raw_slashes: bool
) -> None:
    c = cluster
    leader, f1, f2 = roles(c)
    path = key_path(key)
    if raw_slashes:  # a raw '/' names the same key as %2F (what existing clients send)
        path = "/v1/kv/" + path[len("/v1/kv/") :].replace("%2F", "/")
    value = f"value-{next(_ids)}"
    before = everything(c, leader)

    r = call(c, f1, "PUT", path, value, f"keys:{next(_ids)}")
    assert r.status == 200, (key, r)
    assert r.json["key"] == key and r.json["value"] == value
    assert r.header("X-Raftkv-Served-By") == c.ids[leader]  # relayed by the follower

    for i in (leader, f2):
        r = call(c, i, "GET", path)
        assert r.status == 200 and r.json == {
            "key": key,
            "value": value,
            "index": r.json["index"],
        }, (key, i, r)
    r = call(c, f2, "GET", "/v1/kv?prefix=" + encode_query_value(key))
    assert [item["key"] for item in r.json["items"]] == [
        k for k in sorted({*before, key}) if k.startswith(key)
    ], (key, r)
    assert everything(c, f2) == {**before, key: value}

    r = call(c, f2, "DELETE", path, request_id=f"keys:{next(_ids)}")
    assert r.status == 200 and r.json["key"] == key and r.json["deleted"] is True, (key, r)
    assert call(c, f1, "GET", path).status == 404
    after = everything(c, f1)
    assert after == before
    assert {k: after[k] for k in DECOYS} == DECOYS


def test_the_keys_of_the_bug_report(cluster: LocalCluster) -> None:
    """The exact requests of issue 10's table, through a follower."""
    c = cluster
    leader, f1, f2 = roles(c)
    for wire, key in [
        ("pct%2541", "pct%41"),
        ("tag%23frag", "tag#frag"),
        ("q%3Fx", "q?x"),
        ("%C3%BCn", "ün"),
        ("x%2F..%2Fy", "x/../y"),
        ("%2Flead", "/lead"),
        ("a%2F%2Fb", "a//b"),
        ("exec-1", "exec-1"),
    ]:
        r = call(c, f1, "PUT", "/v1/kv/" + wire, "v", f"bug:{next(_ids)}")
        assert r.status == 200 and r.json["key"] == key, (wire, r)
        assert call(c, f2, "GET", "/v1/kv/" + wire).json["key"] == key
        assert call(c, f2, "DELETE", "/v1/kv/" + wire, request_id=f"bug:{next(_ids)}").status == 200
    assert {k: v for k, v in everything(c, leader).items() if k in DECOYS} == DECOYS
    # raw (unencoded) UTF-8 in the request target: gunicorn refuses it (RFC 9112: printable
    # ASCII only) with a 400 before the app sees it; nothing is stored under any name
    before = everything(c, leader)
    status, _ = raw_request(c.ports[f1], b"PUT /v1/kv/raw-\xc3\xbcn", b"v")
    assert status == 400
    assert everything(c, leader) == before
    # after a refused key, the follower's relay to the leader still works
    assert call(c, f1, "PUT", "/v1/kv/bad%FF", "v").status == 400
    assert call(c, f1, "PUT", "/v1/kv/%C3%BC", "v", f"bug:{next(_ids)}").status == 200

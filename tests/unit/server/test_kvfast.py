"""The KV fast path (kvfast.py) answers exactly like the Flask routes it bypasses: the same
status, JSON body and headers for the same request, success and errors alike; and it hands
everything else (relays, long polls, CAS, chunked bodies) to the routes."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from raftkv.server.app import build_app
from tests.unit.server.fakenode import FakeNode

Req = tuple[str, str, dict[str, Any]]

REQUESTS: list[Req] = [
    ("PUT", "/v1/kv/a/b", {"data": "héllo"}),
    ("PUT", "/v1/kv/a/b", {"data": "v2", "headers": {"X-Request-Id": "c1:1"}}),
    ("PUT", "/v1/kv/a/b", {"data": "v2", "headers": {"X-Request-Id": "c1:1"}}),  # recorded
    ("PUT", "/v1/kv/a/b", {"data": "other", "headers": {"X-Request-Id": "c1:1"}}),  # reused
    ("PUT", "/v1/kv/a/b", {"data": "x", "headers": {"X-Request-Id": "nope"}}),
    ("PUT", "/v1/kv/bad", {"data": b"\xff\xfe"}),
    ("PUT", "/v1/kv/%2F%2Fslashes", {"data": "s"}),
    ("PUT", "/v1/kv/sp%20ace", {"data": ""}),
    ("PUT", "/v1/kv/a/b?prev_value=v2", {"data": "cas"}),
    ("PUT", "/v1/kv/a/b?bogus=1", {"data": "q"}),
    ("PUT", "/v1/kv/big", {"data": "v" * (1 << 20 + 1)}),
    ("GET", "/v1/kv/a/b", {}),
    ("GET", "/v1/kv/missing", {}),
    ("GET", "/v1/kv/a/b?consistency=stale", {}),
    ("GET", "/v1/kv/a/b?consistency=linearizable", {}),
    ("GET", "/v1/kv/a/b?consistency=maybe", {}),
    ("GET", "/v1/kv/%2F%2Fslashes", {}),
    ("GET", "/v1/kv/sp%20ace", {}),
    ("GET", "/v1/kv/%FF", {}),
    ("DELETE", "/v1/kv/sp%20ace", {}),
]


def _run(app: Flask, requests: list[Req]) -> list[tuple[int, Any, dict[str, str]]]:
    client = app.test_client()
    out = []
    for method, path, kw in requests:
        r = client.open(path, method=method, **kw)
        headers = {k: v for k, v in r.headers.items() if k not in ("Date",)}
        out.append((r.status_code, r.get_json(silent=True), headers))
    return out


@pytest.mark.parametrize("leader", ["n0", "n1", None], ids=["leader", "follower", "no-leader"])
def test_fast_path_answers_like_the_routes(leader: str | None) -> None:
    fast_app = build_app(FakeNode(leader=leader))
    slow_app = build_app(FakeNode(leader=leader))
    slow_app.wsgi_app.fast = None  # type: ignore[attr-defined]
    assert fast_app.wsgi_app.fast is not None  # type: ignore[attr-defined]
    # a follower relays writes: both apps would try the (fake) leader; only reads compare
    reqs = [r for r in REQUESTS if r[0] == "GET"] if leader not in (None, "n0") else REQUESTS
    fast, slow = _run(fast_app, reqs), _run(slow_app, reqs)
    for req, a, b in zip(reqs, fast, slow, strict=True):
        assert a == b, req


def test_fast_path_serves_common_requests_without_flask(monkeypatch: pytest.MonkeyPatch) -> None:
    node = FakeNode()
    app = build_app(node)
    seen: list[str] = []
    inner = app.wsgi_app.inner  # type: ignore[attr-defined]

    def spy(environ: dict[str, Any], start: Any) -> Any:
        seen.append(environ["REQUEST_METHOD"] + " " + environ["PATH_INFO"])
        return inner(environ, start)

    monkeypatch.setattr(app.wsgi_app, "inner", spy)
    client = app.test_client()
    assert client.put("/v1/kv/k", data="v").status_code == 200
    assert client.get("/v1/kv/k").get_json()["value"] == "v"
    assert client.get("/v1/kv/k?consistency=stale").status_code == 200
    assert client.get("/v1/kv/nope").status_code == 404
    assert seen == []  # none of these reached Flask
    assert node.reads == 2 and len(node.proposed) == 1  # the stale GET asked nothing
    assert client.put("/v1/kv/k?prev_value=v", data="w").status_code == 200  # CAS: the route
    assert client.get("/v1/kv/k?wait_index=1").status_code == 200  # a long poll: the route
    assert seen == ["PUT /v1/kv/k", "GET /v1/kv/k"]

"""Every key path reaches the key's own handler (found by schemathesis: a key with a newline or
a leading '/' was a 404 "no such route" from werkzeug's path converter, not the key's answer)."""

from __future__ import annotations

import pytest

from raftkv.server.app import build_app
from tests.unit.server.fakenode import FakeNode


@pytest.mark.parametrize(
    ("path", "status", "key"),
    [
        ("/v1/kv/a%0Ab", 200, "a\nb"),  # a control character is part of a key (keycodec), not a 404
        ("/v1/kv/%0A", 200, "\n"),
        ("/v1/kv/a%ZZ", 400, None),  # a malformed escape: the key's own 400
        ("/v1/kv/%2Flead", 200, "/lead"),
        ("/v1/kv//x", 200, "/x"),
        ("/v1/kv/a/b", 200, "a/b"),
        ("/v1/kv/x/", 200, "x/"),
        ("/v1/kv/a%2F..%2Fb", 200, "a/../b"),
    ],
)
def test_key_paths(path: str, status: int, key: str | None) -> None:
    c = build_app(FakeNode()).test_client()
    r = c.put(path, data="v")
    assert r.status_code == status, r.get_json()
    body = r.get_json()
    if key is None:
        assert body["code"] == "invalid_key"
        return
    assert body["key"] == key
    assert c.get(path + "?consistency=stale").get_json()["key"] == key

"""Access control: cluster token lists (rotation), client tokens (read-write / read-only),
open paths; config parsing of the token lists and TLS options."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from raftkv.config import load_config
from raftkv.errors import ConfigError
from raftkv.server.app import build_app
from tests.unit.server.fakenode import PEERS, FakeNode


def _client(**flags: str) -> FlaskClient:
    cfg = load_config({"id": "n0", "peers": PEERS, **flags}, {}, "n0")
    return build_app(FakeNode(cfg)).test_client()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _err(resp: Any, status: int, code: str) -> None:
    assert resp.status_code == status, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["code"] == code and body["error"]


def test_cluster_token_list_accepts_every_token_and_config_sends_the_first() -> None:
    cfg = load_config({"id": "n0", "peers": PEERS, "token": "new1, old0"}, {}, "n0")
    assert cfg.token == "new1" and cfg.cluster_tokens == ("new1", "old0")
    c = _client(token="new1,old0")
    for tok in ("new1", "old0"):
        assert c.post("/v1/admin/snapshot", headers=_bearer(tok)).status_code == 200
        r = c.post("/raft/v1/messages", json={"messages": []}, headers=_bearer(tok))
        assert r.status_code == 200
    _err(c.post("/v1/admin/snapshot", headers=_bearer("other")), 401, "unauthorized")
    _err(c.post("/v1/admin/snapshot"), 401, "unauthorized")
    # no client tokens configured: the KV API stays open
    assert c.put("/v1/kv/a", data="1").status_code == 200


def test_client_tokens_read_write_and_read_only() -> None:
    c = _client(client_tokens="rw1,rw2", client_read_tokens="ro1", token="cl")
    _err(c.get("/v1/kv/a"), 401, "unauthorized")
    r = c.get("/v1/kv/a")
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    _err(c.put("/v1/kv/a", data="1", headers=_bearer("nope")), 401, "unauthorized")
    assert c.put("/v1/kv/a", data="1", headers=_bearer("rw2")).status_code == 200
    assert c.get("/v1/kv/a", headers=_bearer("ro1")).get_json()["value"] == "1"
    assert c.get("/v1/kv?prefix=a", headers=_bearer("ro1")).status_code == 200
    _err(c.put("/v1/kv/a", data="2", headers=_bearer("ro1")), 403, "forbidden")
    _err(c.delete("/v1/kv/a", headers=_bearer("ro1")), 403, "forbidden")
    assert c.get("/v1/kv/a", headers=_bearer("rw1")).get_json()["value"] == "1"
    # the cluster token is a superuser token; client tokens do not open admin or Raft
    assert c.delete("/v1/kv/a", headers=_bearer("cl")).status_code == 200
    _err(c.post("/v1/admin/snapshot", headers=_bearer("rw1")), 401, "unauthorized")
    # health, readiness, metrics and status stay open
    for path in ("/healthz", "/readyz", "/metrics", "/v1/status"):
        assert c.get(path).status_code == 200, path


def test_token_config_errors_are_one_line() -> None:
    for flags, where in [
        ({"token": "a,,b"}, "--token/RAFTKV_TOKEN"),
        ({"client_tokens": "a b"}, "--client-tokens/RAFTKV_CLIENT_TOKENS"),
        ({"client_read_tokens": " "}, "--client-read-tokens/RAFTKV_CLIENT_READ_TOKENS"),
        ({"tls_cert": "c.pem"}, "--tls-cert/RAFTKV_TLS_CERT"),
        ({"peer_mtls": "true"}, "--peer-mtls/RAFTKV_PEER_MTLS"),
        ({"peer_mtls": "maybe"}, "--peer-mtls/RAFTKV_PEER_MTLS"),
    ]:
        with pytest.raises(ConfigError) as ei:
            load_config({"id": "n0", "peers": PEERS, **flags}, {}, "n0")
        assert str(ei.value).startswith(where) and "\n" not in str(ei.value)


def test_tls_config_upgrades_peer_urls_and_reads_env() -> None:
    env = {
        "RAFTKV_TLS_CERT": "c.pem",
        "RAFTKV_TLS_KEY": "k.pem",
        "RAFTKV_TLS_CA": "ca.pem",
        "RAFTKV_PEER_MTLS": "true",
        "RAFTKV_CLIENT_READ_TOKENS": "r",
    }
    cfg = load_config({"id": "n0", "peers": PEERS}, env, "n0")
    assert cfg.tls and cfg.peer_mtls and cfg.tls_ca == "ca.pem" and cfg.client_auth
    assert all(url.startswith("https://") for url in cfg.peer_urls.values())


def test_peer_mtls_guards_the_raft_rpc_not_admin() -> None:
    from raftkv.server.auth import Access

    cfg = load_config(
        {
            "id": "n0",
            "peers": PEERS,
            "tls_cert": "c",
            "tls_key": "k",
            "tls_ca": "ca",
            "peer_mtls": "true",
            "token": "t",
        },
        {},
        "n0",
    )
    access = Access(cfg)
    denied = access.check("POST", "/raft/v1/messages", "Bearer t", peer_verified=False)
    assert denied is not None and denied.status == 401 and "certificate" in str(denied)
    assert access.check("POST", "/raft/v1/messages", "Bearer t", peer_verified=True) is None
    assert access.check("POST", "/raft/v1/messages", "Bearer x", peer_verified=True) is not None
    assert access.check("POST", "/v1/admin/snapshot", "Bearer t", peer_verified=False) is None
    assert access.check("POST", "/v1/admin/snapshot", "", peer_verified=True) is not None

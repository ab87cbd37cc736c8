"""config.load_config: flags + env, validation with one-line errors, peers from list or template."""

from __future__ import annotations

import pytest

from raftkv.config import OPTIONS, Peer, load_config, parse_peers
from raftkv.errors import ConfigError

PEERS = "raft-0=http://127.0.0.1:8001,raft-1=http://127.0.0.1:8002,raft-2=127.0.0.1:8003"


def load(
    flags: dict[str, str | None] | None = None,
    env: dict[str, str] | None = None,
    hostname: str = "raft-0",
):  # type: ignore[no-untyped-def]
    return load_config(flags or {}, env or {}, hostname)


def test_defaults_single_member_cluster_named_after_host() -> None:
    cfg = load(hostname="raft-7")
    assert cfg.id == "raft-7"
    assert cfg.peers == (Peer("raft-7", "http://127.0.0.1:8000"),)
    assert (cfg.host, cfg.port) == ("0.0.0.0", 8000)
    assert cfg.data_dir == "raftkv-data/raft-7"
    assert cfg.election_tick == round(cfg.election_ms / cfg.heartbeat_ms)
    assert cfg.token is None


def test_explicit_peers_and_flags() -> None:
    cfg = load(
        {
            "id": "raft-1",
            "peers": PEERS,
            "port": "8002",
            "data_dir": "d1",
            "election_ms": "300",
            "heartbeat_ms": "50",
            "snapshot_every": "100",
            "token": "s3cret",
        }
    )
    assert cfg.peer_ids == ("raft-0", "raft-1", "raft-2")
    assert cfg.peer_urls["raft-2"] == "http://127.0.0.1:8003"  # scheme added
    assert (cfg.port, cfg.data_dir, cfg.election_tick, cfg.snapshot_every) == (8002, "d1", 6, 100)
    assert cfg.token == "s3cret"


def test_flag_wins_over_env_and_env_is_read() -> None:
    env = {"RAFTKV_PORT": "9000", "RAFTKV_DATA_DIR": "/data", "RAFTKV_ID": "raft-0"}
    assert load({}, env).port == 9000
    assert load({"port": "9100"}, env).port == 9100
    assert load({}, env).data_dir == "/data"


def test_replicas_and_template() -> None:
    env = {"RAFTKV_REPLICAS": "3", "RAFTKV_SERVICE": "raft-service", "RAFTKV_NAMESPACE": "db"}
    cfg = load({}, env, hostname="raft-1")
    assert cfg.peer_ids == ("raft-0", "raft-1", "raft-2")
    assert cfg.peer_urls["raft-2"] == "http://raft-2.raft-service.db.svc.cluster.local:8000"
    cfg = load(
        {"replicas": "2", "peer_template": "{name}-{i}.{service}:{port}", "port": "8100"},
        hostname="kv-0",
    )
    assert cfg.peer_urls == {
        "kv-0": "http://kv-0.raft-service:8100",
        "kv-1": "http://kv-1.raft-service:8100",
    }


@pytest.mark.parametrize(
    ("flags", "hostname", "needle"),
    [
        ({"port": "abc"}, "n", "--port/RAFTKV_PORT: must be an integer"),
        ({"port": "70000"}, "n", "--port/RAFTKV_PORT: must be in 1..65535"),
        ({"election_ms": "100", "heartbeat_ms": "100"}, "n", "at least twice"),
        ({"peers": "raft-0=http://a:1,raft-0=http://b:2"}, "raft-0", "listed twice"),
        ({"peers": "raft-0"}, "raft-0", "expected id=url"),
        ({"peers": "raft-0=ftp://a:1"}, "raft-0", "must be http"),
        ({"peers": "raft-0=http://a"}, "raft-0", "explicit port"),
        ({"peers": "raft-0=http://a:1/x"}, "raft-0", "scheme://host:port only"),
        ({"peers": "raft-0=http://[a:1"}, "raft-0", "malformed"),
        ({"peers": "raft-0=http://h\u00e9:1"}, "raft-0", "printable ASCII"),
        ({"peers": PEERS, "replicas": "3"}, "raft-0", "not both"),
        ({"replicas": "3"}, "node", "must end in -<ordinal>"),
        ({"replicas": "0"}, "raft-0", "must be in 1..99"),
        ({"replicas": "3", "peer_template": "{nope}:1"}, "raft-0", "bad template"),
        ({"peer_template": "{name}:1"}, "raft-0", "needs --replicas"),
        ({"id": "bad id"}, "x", "--id/RAFTKV_ID: node id"),
        ({"log_level": "loud"}, "n", "--log-level"),
        ({"token": "a b"}, "n", "--token"),
        ({"threads": "1"}, "n", "--threads"),
    ],
)
def test_invalid_configuration_is_one_clear_line(
    flags: dict[str, str | None], hostname: str, needle: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load(flags, hostname=hostname)
    message = str(info.value)
    assert needle in message
    assert "\n" not in message


def test_unknown_option_name_is_a_programming_error() -> None:
    with pytest.raises(KeyError):
        load({"bogus": "1"})


def test_every_option_has_flag_and_env() -> None:
    for name, (flag, env, text) in OPTIONS.items():
        assert flag == "--" + name.replace("_", "-")
        assert env == "RAFTKV_" + name.upper()
        assert text


def test_parse_peers_keeps_order_and_strips() -> None:
    assert parse_peers(" b=http://h:2 , a=http://h:1 ") == (
        Peer("b", "http://h:2"),
        Peer("a", "http://h:1"),
    )


def test_an_id_outside_the_peers_is_a_joining_node() -> None:
    """docs/membership.md: a node whose id the flags do not list joins an existing cluster (it
    never campaigns until it is added); with --replicas, a higher ordinal (kubectl scale up)."""
    from raftkv.config import load_config

    cfg = load_config({"peers": "raft-1=http://a:1"}, {}, "raft-0")
    assert cfg.id == "raft-0" and cfg.peer_ids == ("raft-1",)
    cfg = load_config({"replicas": "2"}, {}, "raft-5")
    assert cfg.id == "raft-5" and cfg.peer_ids == ("raft-0", "raft-1")

"""config.py — the node's configuration: flags + ``RAFTKV_*`` env vars -> a frozen ``NodeConfig``.

Contract (docs/contracts.md §3): every option has a flag and an env var, the flag wins; values are
validated here, once, at start, and every problem is a ``ConfigError`` whose one-line message names
the option (``--port/RAFTKV_PORT: must be an integer in 1..65535, got 'x'``).

Peers come either from ``--peers id=url,...`` (self included; a node whose id is not listed joins
an existing cluster, see docs/membership.md) or from ``--replicas N`` and
``--peer-template`` (placeholders ``{name} {i} {id} {service} {namespace} {port}``; ``{name}`` is
the node id without its ``-N`` suffix, so the StatefulSet pod ``raft-1`` derives
``raft-0..raft-{N-1}``). With neither, the node is a one-member cluster reachable at its own
``--host``/``--port``.

This module does no I/O: the caller passes the parsed flags, the environment and the hostname.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from raftkv.errors import ConfigError
from raftkv.keycodec import MAX_KEY_BYTES as MAX_KEY_BYTES  # decided by the key codec

__all__ = [
    "DEFAULT_PEER_TEMPLATE",
    "FLAG_OPTIONS",
    "OPTIONS",
    "NodeConfig",
    "Peer",
    "check_member_id",
    "check_member_url",
    "load_config",
    "parse_peers",
]

DEFAULT_PEER_TEMPLATE = "http://{name}-{i}.{service}.{namespace}.svc.cluster.local:{port}"
MAX_VALUE_BYTES = 1 << 20

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_CLUSTER_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_ORDINAL_RE = re.compile(r"^(?P<name>.+)-(?P<i>\d+)$")

# option name -> (flag, env var, help). The CLI builds its parser from this table.
OPTIONS: dict[str, tuple[str, str, str]] = {
    "id": ("--id", "RAFTKV_ID", "this node's id (default: the hostname)"),
    "peers": ("--peers", "RAFTKV_PEERS", "every member as id=url,... (self included)"),
    "replicas": ("--replicas", "RAFTKV_REPLICAS", "member count; peers from --peer-template"),
    "peer_template": (
        "--peer-template",
        "RAFTKV_PEER_TEMPLATE",
        "peer URL template with {name} {i} {service} {namespace} {port}",
    ),
    "service": ("--service", "RAFTKV_SERVICE", "headless service for the template"),
    "namespace": ("--namespace", "RAFTKV_NAMESPACE", "namespace for the template"),
    "data_dir": ("--data-dir", "RAFTKV_DATA_DIR", "directory of the Raft log and snapshots"),
    "host": ("--host", "RAFTKV_HOST", "address to bind (default 0.0.0.0)"),
    "port": ("--port", "RAFTKV_PORT", "port to bind (default 8000)"),
    "election_ms": ("--election-ms", "RAFTKV_ELECTION_MS", "base election timeout in ms"),
    "heartbeat_ms": ("--heartbeat-ms", "RAFTKV_HEARTBEAT_MS", "heartbeat interval (= tick) in ms"),
    "snapshot_every": (
        "--snapshot-every",
        "RAFTKV_SNAPSHOT_EVERY",
        "applied entries between snapshots, at least (more once the data is big: docs/storage.md)",
    ),
    "snapshot_chunk_bytes": (
        "--snapshot-chunk-bytes",
        "RAFTKV_SNAPSHOT_CHUNK_BYTES",
        "size of one InstallSnapshot chunk sent to a follower (default 1 MiB)",
    ),
    "token": (
        "--token",
        "RAFTKV_TOKEN",
        "cluster token(s) for Raft RPC and /v1/admin/*, comma-separated: all are accepted, "
        "the first is sent (rotation)",
    ),
    "client_tokens": (
        "--client-tokens",
        "RAFTKV_CLIENT_TOKENS",
        "read-write bearer tokens for the KV API, comma-separated (enables client auth)",
    ),
    "client_read_tokens": (
        "--client-read-tokens",
        "RAFTKV_CLIENT_READ_TOKENS",
        "read-only bearer tokens for the KV API, comma-separated (enables client auth)",
    ),
    "tls_cert": ("--tls-cert", "RAFTKV_TLS_CERT", "PEM certificate (chain): serve HTTPS"),
    "tls_key": ("--tls-key", "RAFTKV_TLS_KEY", "PEM private key of --tls-cert"),
    "tls_ca": (
        "--tls-ca",
        "RAFTKV_TLS_CA",
        "PEM CA bundle that peers' (and, with --peer-mtls, clients') certificates chain to",
    ),
    "peer_mtls": (
        "--peer-mtls",
        "RAFTKV_PEER_MTLS",
        "true: peers present their certificate (mutual TLS); the Raft RPC needs one",
    ),
    "threads": ("--threads", "RAFTKV_THREADS", "gunicorn gthread threads"),
    "request_timeout_ms": (
        "--request-timeout-ms",
        "RAFTKV_REQUEST_TIMEOUT_MS",
        "how long a request waits for commit/read",
    ),
    "log_level": ("--log-level", "RAFTKV_LOG_LEVEL", "debug|info|warning|error"),
    "watch_window": (
        "--watch-window",
        "RAFTKV_WATCH_WINDOW",
        "recent changes kept for watchers to resume from (docs/watch.md)",
    ),
    "max_watchers": (
        "--max-watchers",
        "RAFTKV_MAX_WATCHERS",
        "concurrent watches + long polls (each holds a thread; default threads/4, max 16)",
    ),
    "watch_progress_ms": (
        "--watch-progress-ms",
        "RAFTKV_WATCH_PROGRESS_MS",
        "interval of progress lines on an idle watch",
    ),
    "lock_timeout": (
        "--lock-timeout",
        "RAFTKV_LOCK_TIMEOUT",
        "seconds to wait for the data dir's lock held by another process (default 30; 0: no wait)",
    ),
    "cluster_id": (
        "--cluster-id",
        "RAFTKV_CLUSTER_ID",
        "cluster id a FRESH data dir records (default: derived from the peer set)",
    ),
}


# options that are bare flags on the command line (``--peer-mtls``); their env vars take true/false
FLAG_OPTIONS = frozenset({"peer_mtls"})


@dataclass(frozen=True, slots=True)
class Peer:
    """One cluster member: its id and the base URL of its HTTP port."""

    id: str
    url: str


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeConfig:
    """Everything a node needs to start. Built only by ``load_config`` (validated)."""

    id: str
    peers: tuple[Peer, ...]
    data_dir: str
    host: str = "0.0.0.0"
    port: int = 8000
    election_ms: int = 600
    heartbeat_ms: int = 100
    snapshot_every: int = 10_000
    snapshot_chunk_bytes: int = 1 << 20
    token: str | None = None
    cluster_tokens: tuple[str, ...] = ()
    client_tokens: tuple[str, ...] = ()
    client_read_tokens: tuple[str, ...] = ()
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_ca: str | None = None
    peer_mtls: bool = False
    threads: int = 96
    request_timeout_ms: int = 5_000
    log_level: str = "info"
    lock_timeout_s: int = 30  # the Kubernetes default grace period; the chart passes its own
    max_value_bytes: int = MAX_VALUE_BYTES
    watch_window: int = 10_000
    max_watchers: int = 16
    watch_progress_ms: int = 5_000
    cluster_id: str | None = None  # only used to bootstrap a fresh data dir (docs/operations.md)
    peer_urls: Mapping[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "peer_urls", {p.id: p.url for p in self.peers})

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    @property
    def client_auth(self) -> bool:
        """True when the KV API needs a bearer token."""
        return bool(self.client_tokens or self.client_read_tokens)

    @property
    def peer_ids(self) -> tuple[str, ...]:
        return tuple(p.id for p in self.peers)

    @property
    def election_tick(self) -> int:
        """Election timeout in ticks (one tick = ``heartbeat_ms``)."""
        return max(2, round(self.election_ms / self.heartbeat_ms))

    @property
    def tick_seconds(self) -> float:
        return self.heartbeat_ms / 1000.0

    @property
    def request_timeout(self) -> float:
        return self.request_timeout_ms / 1000.0


def _where(name: str) -> str:
    flag, env, _ = OPTIONS[name]
    return f"{flag}/{env}"


def _int(name: str, raw: str, lo: int, hi: int) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{_where(name)}: must be an integer, got {raw!r}") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{_where(name)}: must be in {lo}..{hi}, got {value}")
    return value


def _tokens(name: str, raw: str | None) -> tuple[str, ...]:
    """A comma-separated list of bearer tokens (order kept: the first is the one sent)."""
    if raw is None:
        return ()
    out: list[str] = []
    for item in raw.split(","):
        token = item.strip()
        if not token or any(c.isspace() or not c.isprintable() for c in token):
            raise ConfigError(
                f"{_where(name)}: each token must be non-empty printable text without spaces "
                "(tokens are separated by commas)"
            )
        if token not in out:
            out.append(token)
    return tuple(out)


def _path(name: str, raw: str | None) -> str | None:
    if raw is None or not raw.strip():
        return None
    return raw.strip()


def _bool(name: str, raw: str | None) -> bool:
    value = (raw or "false").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{_where(name)}: must be true or false, got {raw!r}")


def check_member_url(where: str, member: str, url: str) -> str:
    """A member's URL, normalised (``host:port`` gets ``http://``); ConfigError (naming
    ``where``) unless it is ``http[s]://host:port`` in printable ASCII."""
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = "http://" + url
    if not url.isascii() or not url.isprintable():
        raise ConfigError(f"{where}: URL of {member!r} must be printable ASCII: {url!r}")
    try:
        parts = urlsplit(url)
    except ValueError as err:  # e.g. an unbalanced '[' (IPv6 literal)
        raise ConfigError(f"{where}: URL of {member!r} is malformed ({err}): {url!r}") from None
    if parts.scheme not in ("http", "https"):
        raise ConfigError(f"{where}: URL of {member!r} must be http:// or https://, got {url!r}")
    if not parts.hostname:
        raise ConfigError(f"{where}: URL of {member!r} has no host: {url!r}")
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"{where}: URL of {member!r} has a bad port: {url!r}") from None
    if port is None:
        raise ConfigError(f"{where}: URL of {member!r} needs an explicit port: {url!r}")
    if parts.path or parts.query or parts.fragment:
        raise ConfigError(f"{where}: URL of {member!r} must be scheme://host:port only: {url!r}")
    return url


def check_member_id(where: str, node_id: str) -> str:
    """A node id as given; ConfigError (naming ``where``) unless it is a valid one."""
    if not _ID_RE.match(node_id):
        raise ConfigError(
            f"{where}: node id must be 1-63 chars of letters, digits, '.', '_' or '-' "
            f"starting with a letter or digit, got {node_id!r}"
        )
    return node_id


def parse_peers(raw: str, where: str = "--peers/RAFTKV_PEERS") -> tuple[Peer, ...]:
    """Parse ``id=url,id=url,...`` (whitespace tolerated) into peers, in the given order."""
    peers: list[Peer] = []
    seen: set[str] = set()
    items = [item.strip() for item in raw.split(",") if item.strip()]
    if not items:
        raise ConfigError(f"{where}: empty peer list")
    for item in items:
        node_id, sep, url = item.partition("=")
        node_id = node_id.strip()
        if not sep or not node_id or not url.strip():
            raise ConfigError(f"{where}: expected id=url, got {item!r}")
        check_member_id(where, node_id)
        if node_id in seen:
            raise ConfigError(f"{where}: member {node_id!r} listed twice")
        seen.add(node_id)
        peers.append(Peer(node_id, check_member_url(where, node_id, url)))
    return tuple(peers)


def _template_peers(
    node_id: str, replicas: int, template: str, service: str, namespace: str, port: int
) -> tuple[Peer, ...]:
    where = _where("peer_template")
    m = _ORDINAL_RE.match(node_id)
    if not m:
        raise ConfigError(
            f"{_where('replicas')}: the node id must end in -<ordinal> (like raft-0) to derive "
            f"peers, got {node_id!r}"
        )
    # an ordinal >= replicas (``kubectl scale`` up) is a node joining an existing cluster
    name = m.group("name")
    peers = []
    for i in range(replicas):
        member = f"{name}-{i}"
        try:
            url = template.format(
                name=name, i=i, id=member, service=service, namespace=namespace, port=port
            )
        except (KeyError, IndexError, ValueError) as err:
            raise ConfigError(
                f"{where}: bad template {template!r} ({err!s}); placeholders are "
                "{name} {i} {id} {service} {namespace} {port}"
            ) from None
        peers.append(Peer(member, check_member_url(where, member, url)))
    return tuple(peers)


def load_config(
    flags: Mapping[str, str | None], env: Mapping[str, str], hostname: str
) -> NodeConfig:
    """Merge flags (winning) and ``RAFTKV_*`` env vars, validate, return a ``NodeConfig``.

    ``flags`` maps option names (keys of ``OPTIONS``) to the string given on the command line,
    or None when absent. Unknown names are a programming error (KeyError).
    """
    for name in flags:
        if name not in OPTIONS:
            raise KeyError(name)

    def get(name: str) -> str | None:
        value = flags.get(name)
        if value is None:
            value = env.get(OPTIONS[name][1]) or None
        return value

    node_id = check_member_id(_where("id"), (get("id") or hostname).strip())
    host = (get("host") or "0.0.0.0").strip()
    if not host:
        raise ConfigError(f"{_where('host')}: must not be empty")
    port = _int("port", get("port") or "8000", 1, 65535)
    election_ms = _int("election_ms", get("election_ms") or "600", 10, 600_000)
    heartbeat_ms = _int("heartbeat_ms", get("heartbeat_ms") or "100", 1, 60_000)
    if election_ms < 2 * heartbeat_ms:
        raise ConfigError(
            f"{_where('election_ms')}: must be at least twice --heartbeat-ms "
            f"({heartbeat_ms}), got {election_ms}"
        )
    snapshot_every = _int("snapshot_every", get("snapshot_every") or "10000", 1, 1 << 40)
    snapshot_chunk_bytes = _int(
        "snapshot_chunk_bytes", get("snapshot_chunk_bytes") or str(1 << 20), 1024, 64 << 20
    )
    threads = _int("threads", get("threads") or "96", 4, 1024)
    request_timeout_ms = _int(
        "request_timeout_ms", get("request_timeout_ms") or "5000", 100, 3_600_000
    )
    log_level = (get("log_level") or "info").strip().lower()
    if log_level not in ("debug", "info", "warning", "error"):
        raise ConfigError(
            f"{_where('log_level')}: must be debug, info, warning or error, got {log_level!r}"
        )
    cluster_tokens = _tokens("token", get("token"))
    client_tokens = _tokens("client_tokens", get("client_tokens"))
    client_read_tokens = _tokens("client_read_tokens", get("client_read_tokens"))
    tls_cert, tls_key, tls_ca = (_path(n, get(n)) for n in ("tls_cert", "tls_key", "tls_ca"))
    if (tls_cert is None) != (tls_key is None):
        raise ConfigError(f"{_where('tls_cert')}: --tls-cert and --tls-key go together")
    peer_mtls = _bool("peer_mtls", get("peer_mtls"))
    if peer_mtls and (tls_cert is None or tls_ca is None):
        raise ConfigError(f"{_where('peer_mtls')}: needs --tls-cert, --tls-key and --tls-ca")

    cluster_id = (get("cluster_id") or "").strip() or None
    if cluster_id is not None and not _CLUSTER_ID_RE.match(cluster_id):
        raise ConfigError(
            f"{_where('cluster_id')}: must be 1-64 chars of letters, digits, '.', '_' or '-' "
            f"starting with a letter or digit, got {cluster_id!r}"
        )

    raw_peers, raw_replicas = get("peers"), get("replicas")
    if raw_peers and raw_replicas:
        raise ConfigError(
            f"{_where('peers')}: give either --peers or --replicas (with --peer-template), not both"
        )
    if raw_peers:
        peers = parse_peers(raw_peers)
    elif raw_replicas:
        replicas = _int("replicas", raw_replicas, 1, 99)
        template = get("peer_template") or DEFAULT_PEER_TEMPLATE
        service = (get("service") or "raft-service").strip()
        namespace = (get("namespace") or "default").strip()
        peers = _template_peers(node_id, replicas, template, service, namespace, port)
    else:
        if get("peer_template"):
            raise ConfigError(f"{_where('peer_template')}: needs --replicas")
        own_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        peers = (Peer(node_id, check_member_url(_where("peers"), node_id, f"{own_host}:{port}")),)
    # An id not among the peers is a *joining* node (docs/membership.md): it never campaigns and
    # waits until the cluster adds it (POST /v1/admin/members). The peers bootstrap only an empty
    # cluster; once the log holds a configuration, the log decides membership.
    watch_window = _int("watch_window", get("watch_window") or "10000", 1, 10_000_000)
    max_watchers = _int(
        "max_watchers", get("max_watchers") or str(min(16, threads // 4)), 0, threads // 4
    )
    watch_progress_ms = _int("watch_progress_ms", get("watch_progress_ms") or "5000", 10, 3_600_000)
    lock_timeout_s = _int("lock_timeout", get("lock_timeout") or "30", 0, 3600)
    if tls_cert is not None:  # a TLS node serves HTTPS only, so every peer does too
        peers = tuple(Peer(p.id, "https://" + p.url.split("://", 1)[1]) for p in peers)
    data_dir = (get("data_dir") or f"raftkv-data/{node_id}").strip()
    if not data_dir:
        raise ConfigError(f"{_where('data_dir')}: must not be empty")
    return NodeConfig(
        id=node_id,
        peers=peers,
        data_dir=data_dir,
        host=host,
        port=port,
        election_ms=election_ms,
        heartbeat_ms=heartbeat_ms,
        snapshot_every=snapshot_every,
        token=cluster_tokens[0] if cluster_tokens else None,
        cluster_tokens=cluster_tokens,
        client_tokens=client_tokens,
        client_read_tokens=client_read_tokens,
        tls_cert=tls_cert,
        tls_key=tls_key,
        tls_ca=tls_ca,
        peer_mtls=peer_mtls,
        snapshot_chunk_bytes=snapshot_chunk_bytes,
        threads=threads,
        request_timeout_ms=request_timeout_ms,
        log_level=log_level,
        watch_window=watch_window,
        max_watchers=max_watchers,
        watch_progress_ms=watch_progress_ms,
        lock_timeout_s=lock_timeout_s,
        cluster_id=cluster_id,
    )

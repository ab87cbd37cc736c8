"""Security on real processes: cluster-token rotation through a rolling restart, client tokens,
TLS and mutual TLS between peers, certificate reload (docs/security.md)."""

from __future__ import annotations

import http.client
import shutil
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from raftctl.certs import make_ca, make_cert
from tests.integration.cluster import LocalCluster
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration


def _set_flag(c: LocalCluster, flag: str, value: str) -> None:
    if flag in c.common:
        c.common[c.common.index(flag) + 1] = value
    else:
        c.common += [flag, value]


def _ready(c: LocalCluster, i: int) -> bool:
    return c.get(i, "/readyz", timeout=2).status == 200


def _rolling_restart(c: LocalCluster, step: str) -> None:
    """What a StatefulSet rolling update does: highest ordinal first, each pod must be Ready
    before the next one goes."""
    for i in reversed(range(c.size)):
        assert c.terminate(i) == 0, c.logs()
        c.start_node(i)
        c.wait_serving(i)
        wait_until(lambda i=i: _ready(c, i), 20, f"node {i} ready in step {step!r}", c.logs)
        leader = c.wait_for_leader()
        c.put_ok(leader, f"{step}-{i}", "v")
        for j in range(c.size):  # the write reached every node: peers accept each other
            wait_until(
                lambda j=j, i=i: c.get(j, f"/v1/kv/{step}-{i}?consistency=stale").status == 200,
                10,
                f"node {j} has {step}-{i}",
                c.logs,
            )


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    c = LocalCluster(tmp_path, size=3, token="old-token")
    try:
        yield c.start()
    finally:
        c.close()


def test_cluster_token_rotates_during_rolling_restarts(cluster: LocalCluster) -> None:
    c = cluster
    c.wait_for_leader()
    # step 1: accept both, still send the old one; step 2: send the new one, still accept the
    # old one; cleanup: only the new one (docs/security.md, "Rotating tokens")
    for step, tokens in (
        ("accept-new", "old-token,new-token"),
        ("send-new", "new-token,old-token"),
        ("drop-old", "new-token"),
    ):
        _set_flag(c, "--token", tokens)
        _rolling_restart(c, step)
    leader = c.wait_for_leader()
    r = c.request(leader, "POST", "/v1/admin/snapshot", b"", {"Authorization": "Bearer old-token"})
    assert r.status == 401 and r.json["code"] == "unauthorized"
    r = c.request(leader, "POST", "/v1/admin/snapshot", b"", {"Authorization": "Bearer new-token"})
    assert r.status == 200, r


def test_sending_a_token_the_others_do_not_know_is_what_breaks(cluster: LocalCluster) -> None:
    """The failure the two-step rotation avoids: a node that already SENDS the new token while
    the others accept only the old one cannot get its messages accepted."""
    c = cluster
    leader = c.wait_for_leader()
    victim = (leader + 1) % c.size
    c.terminate(victim)
    _set_flag(c, "--token", "new-token")
    c.start_node(victim)
    c.wait_serving(victim)
    wait_until(
        lambda: "send-rejected status=401" in c.log_path(victim).read_text(),
        20,
        "the new-token node's messages to be rejected with 401",
        c.logs,
    )


def test_client_tokens_on_a_real_cluster(tmp_path: Path) -> None:
    c = LocalCluster(
        tmp_path,
        size=3,
        token="cl",
        env={"RAFTKV_CLIENT_TOKENS": "rw", "RAFTKV_CLIENT_READ_TOKENS": "ro"},
    )
    try:
        c.start()
        leader = c.wait_for_leader()
        follower = (leader + 1) % c.size
        rw, ro = {"Authorization": "Bearer rw"}, {"Authorization": "Bearer ro"}
        assert c.put(follower, "k", "v").status == 401
        r = c.put(follower, "k", "v", headers=ro)
        assert r.status == 403 and r.json["code"] == "forbidden"
        wait_until(
            lambda: c.put(follower, "k", "v", headers=rw).status == 200,
            10,
            "a relayed write with the read-write token",
        )
        r = c.request(follower, "GET", "/v1/kv/k", headers=ro)  # relayed ReadIndex read
        assert r.status == 200 and r.json["value"] == "v", r
        assert c.get(follower, "/healthz").status == 200
        assert c.get(follower, "/metrics").status == 200
    finally:
        c.close()


# ---------------------------------------------------------------- TLS


def _tls_cluster(
    root: Path, *, mtls: bool, env: dict[str, str] | None = None
) -> tuple[LocalCluster, Path, Any]:
    certs = root / "certs"
    ca = make_ca(certs)
    ctx = ssl.create_default_context(cafile=str(ca.cert_path))
    paths = [make_cert(ca, certs, f"raft-{i}", ["127.0.0.1", "localhost"]) for i in range(3)]

    def node_args(i: int) -> list[str]:
        cert, key = paths[i]
        args = ["--tls-cert", str(cert), "--tls-key", str(key), "--tls-ca", str(ca.cert_path)]
        return [*args, "--peer-mtls"] if mtls else args

    c = LocalCluster(root, size=3, ssl_context=ctx, node_args=node_args, env=env)
    return c, certs, ca


def _peer_serial(c: LocalCluster, i: int) -> int:
    with socket.create_connection(("127.0.0.1", c.ports[i]), timeout=5) as raw:
        assert c.ssl_context is not None
        with c.ssl_context.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            der = s.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


@pytest.mark.parametrize("mtls", [False, True], ids=["tls", "mtls"])
def test_three_nodes_over_tls(tmp_path: Path, mtls: bool) -> None:
    c, certs, ca = _tls_cluster(tmp_path, mtls=mtls)
    try:
        c.start()
        leader = c.wait_for_leader()  # peers reached each other over HTTPS
        follower = (leader + 1) % c.size
        c.put_ok(follower, "secret", "v")  # relayed to the leader over HTTPS
        for i in range(c.size):
            wait_until(
                lambda i=i: c.get(i, "/v1/kv/secret").status == 200,
                10,
                f"linearizable read on node {i}",
            )
        # plain HTTP on a TLS port gets no answer
        with socket.create_connection(("127.0.0.1", c.ports[leader]), timeout=5) as s:
            s.sendall(b"GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n")
            try:
                data = s.recv(100)
            except OSError:
                data = b""
            assert not data.startswith(b"HTTP/1.1 200"), data
        # a client that does not trust the cluster CA refuses the node
        with pytest.raises(ssl.SSLError):
            http.client.HTTPSConnection(
                "127.0.0.1", c.ports[leader], timeout=5, context=ssl.create_default_context()
            ).request("GET", "/v1/status")
        raft = c.request(leader, "POST", "/raft/v1/messages", b'{"messages": []}')
        if mtls:  # the Raft RPC needs a client certificate from the cluster CA
            assert raft.status == 401 and "certificate" in raft.json["error"], raft
            ctx = ssl.create_default_context(cafile=str(ca.cert_path))
            cert, key = make_cert(ca, certs, "operator", ["operator"])
            ctx.load_cert_chain(cert, key)
            conn = http.client.HTTPSConnection("127.0.0.1", c.ports[leader], context=ctx)
            conn.request("POST", "/raft/v1/messages", body=b'{"messages": []}')
            assert conn.getresponse().status == 200  # with a cluster-CA certificate: accepted
            # admin stays token-only (no token set here): operators need no client certificate
            assert c.request(leader, "POST", "/v1/admin/snapshot", b"").status == 200
            # a certificate from another CA fails the handshake
            other = make_ca(tmp_path / "other")
            bad = ssl.create_default_context(cafile=str(ca.cert_path))
            bad.load_cert_chain(*make_cert(other, tmp_path / "other", "mallory", ["x"]))
            conn = http.client.HTTPSConnection("127.0.0.1", c.ports[leader], context=bad)
            with pytest.raises((ssl.SSLError, ConnectionError)):
                conn.request("POST", "/raft/v1/messages", body=b'{"messages": []}')
                conn.getresponse()
        else:
            assert raft.status == 200, raft
    finally:
        c.close()


def test_certificates_reload_without_restart(tmp_path: Path) -> None:
    c, certs, ca = _tls_cluster(tmp_path, mtls=True)
    try:
        c.start()
        c.wait_for_leader()
        before = _peer_serial(c, 0)
        # a renewal caught half-way (key not matching the cert): the node keeps its old pair
        (certs / "raft-0-key.pem").write_text("-----BEGIN PRIVATE KEY-----\ngarbage\n")
        time.sleep(1.5)
        assert _peer_serial(c, 0) == before
        assert c.get(0, "/healthz").status == 200
        make_cert(ca, certs, "raft-0", ["127.0.0.1", "localhost"])  # the renewal lands
        after = wait_until(
            lambda: (s := _peer_serial(c, 0)) != before and s,
            10,
            "node 0 to serve its renewed certificate",
        )
        assert after != before
        assert "event=tls-reloaded context=server" in c.log_path(0).read_text()
        leader = c.wait_for_leader()
        c.put_ok(leader, "after-reload", "v")  # peers (mTLS with the new client cert) still work
        for i in range(c.size):
            wait_until(
                lambda i=i: c.get(i, "/v1/kv/after-reload?consistency=stale").status == 200,
                10,
                f"node {i} has the write",
            )
    finally:
        c.close()


def test_slow_tls_clients_are_cut_off_at_the_deadline(tmp_path: Path) -> None:
    """With TLS a head is read in a pool thread (encrypted bytes cannot be inspected without
    consuming them): more slow clients than threads stall the node, but only until
    RAFTKV_CLIENT_TIMEOUT_S, when each is cut off (docs/security.md, what remains)."""
    import threading

    timeout_s = 2
    c, _, _ = _tls_cluster(tmp_path, mtls=False, env={"RAFTKV_CLIENT_TIMEOUT_S": str(timeout_s)})
    stop = threading.Event()
    cut: list[float] = []

    def slow() -> None:
        assert c.ssl_context is not None
        t0 = time.monotonic()
        try:
            raw = socket.create_connection(("127.0.0.1", c.ports[0]), timeout=30)
            with c.ssl_context.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                for b in b"GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 500:
                    s.sendall(bytes([b]))
                    if stop.wait(0.2):
                        return
        except OSError:
            cut.append(time.monotonic() - t0)

    try:
        c.start()
        c.wait_for_leader()
        attackers = [threading.Thread(target=slow, daemon=True) for _ in range(24)]  # 16 threads
        for t in attackers:
            t.start()
        time.sleep(1.0)
        t0 = time.monotonic()
        assert c.get(0, "/v1/status", timeout=4 * timeout_s).status == 200
        assert time.monotonic() - t0 < 3 * timeout_s  # stalled at most about one deadline
        wait_until(lambda: len(cut) >= 20, 10 * timeout_s, "the slow TLS clients to be cut off")
        assert max(cut) < 6 * timeout_s, cut
        c.put_ok(c.wait_for_leader(), "after-slow-tls", "v")
    finally:
        stop.set()
        c.close()


def test_a_wiped_follower_catches_up_by_chunked_snapshot_over_mutual_tls(tmp_path: Path) -> None:
    """The snapshot stream (POST /raft/v1/snapshot) is peer traffic too: over HTTPS, with the
    node's client certificate under --peer-mtls, and carrying the cluster id."""
    c, _, _ = _tls_cluster(tmp_path, mtls=True)
    c.common += ["--snapshot-every", "50", "--snapshot-chunk-bytes", "4096"]
    try:
        c.start()
        leader = c.wait_for_leader()
        for n in range(200):
            c.put_ok(leader, f"k-{n:03d}", "v" * 200)
        assert c.request(leader, "POST", "/v1/admin/snapshot", b"").status == 200
        follower = (leader + 1) % c.size
        assert c.terminate(follower) == 0
        shutil.rmtree(c.data_dir(follower))
        c.start_node(follower)
        # the next append shows the leader that the follower lost what it acknowledged: it sends
        # the snapshot it holds (no new one is needed, docs/scale.md)
        c.put_ok(leader, "after-wipe", "x")
        wait_until(
            lambda: c.request(follower, "GET", "/v1/kv/k-199?consistency=stale").status == 200,
            60,
            "the wiped follower restored from the chunked snapshot",
        )
        wait_until(
            lambda: c.request(follower, "GET", "/v1/kv/after-wipe?consistency=stale").status == 200,
            30,
            "the wiped follower caught up past the snapshot",
        )
        assert "snapshot-send-start" in c.logs(400)
    finally:
        c.close()

"""The shared test helpers do what the tests rely on: ``wait_until``/``retry`` poll, return and
fail as documented; ``ReservedPort`` holds a port that only the server we start can listen on."""

from __future__ import annotations

import errno
import socket
import time

import pytest

from tests.support.ports import LOOPBACK, ReservedPort
from tests.support.waiting import retry, wait_until


def test_wait_until_returns_the_first_truthy_value() -> None:
    answers = iter([None, 0, "", "leader-2", "later"])
    assert wait_until(lambda: next(answers), 5, "an answer", interval=0.001) == "leader-2"


def test_wait_until_treats_transient_errors_as_not_yet() -> None:
    calls: list[int] = []

    def flaky() -> bool:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionRefusedError("not listening yet")
        return True

    assert wait_until(flaky, 5, "the server", interval=0.001) is True
    assert len(calls) == 3


def test_wait_until_fails_at_once_on_other_errors() -> None:
    calls: list[int] = []

    def dead() -> bool:
        calls.append(1)
        raise AssertionError("the node exited with 3")

    with pytest.raises(AssertionError, match="exited with 3"):
        wait_until(dead, 5, "the node", interval=0.001)
    assert len(calls) == 1


def test_wait_until_names_what_did_not_happen_with_the_last_error_and_diagnostics() -> None:
    def refused() -> bool:
        raise ConnectionRefusedError("port 1")

    began = time.monotonic()
    with pytest.raises(AssertionError) as err:
        wait_until(refused, 0.2, "node 0 serving", lambda: "--- node 0 log ---", interval=0.01)
    assert time.monotonic() - began >= 0.2
    text = str(err.value)
    assert text.startswith("timed out after 0.2s waiting for node 0 serving")
    assert "ConnectionRefusedError('port 1')" in text and text.endswith("--- node 0 log ---")


def test_wait_until_retry_on_widens_what_counts_as_not_yet() -> None:
    answers = iter([RuntimeError("docker: container restarting"), "up"])

    def probe() -> str:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert wait_until(probe, 5, "a container", interval=0.001, retry_on=(Exception,)) == "up"


def test_retry_returns_the_first_acceptable_or_the_last_result() -> None:
    statuses = iter([503, 504, 200, 200])
    assert retry(lambda: next(statuses), lambda s: s not in (503, 504), 5, interval=0.001) == 200
    tries: list[int] = []
    assert retry(lambda: tries.append(1) or 503, lambda s: s != 503, 0.05, interval=0.01) == 503
    assert len(tries) >= 2


def _server_socket() -> socket.socket:
    """What gunicorn does for ``--host 127.0.0.1 --port N``: SO_REUSEADDR, bind, listen."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    return sock


def test_reserved_port_refuses_connections_and_strangers_until_our_server_binds_it() -> None:
    with ReservedPort() as reserved:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((LOOPBACK, reserved.port), timeout=5).close()
        with socket.socket() as stranger, pytest.raises(OSError) as err:
            stranger.bind((LOOPBACK, reserved.port))
        assert err.value.errno == errno.EADDRINUSE
        # the kernel hands the reserved port to no bind(0)
        probes = []
        try:
            for _ in range(200):
                probe = socket.socket()
                probes.append(probe)
                probe.bind((LOOPBACK, 0))
                assert probe.getsockname()[1] != reserved.port
        finally:
            for probe in probes:
                probe.close()
        for _ in range(2):  # a server, then the same server restarted on the same port
            with _server_socket() as server:
                server.bind((LOOPBACK, reserved.port))
                server.listen(1)
                socket.create_connection((LOOPBACK, reserved.port), timeout=5).close()
            with pytest.raises(ConnectionRefusedError):  # stopped, and it looks stopped
                socket.create_connection((LOOPBACK, reserved.port), timeout=5).close()

"""``gunicorn -c raftkv/gunicorn_conf.py 'raftkv.server:create_app()'`` runs a node from env."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.integration.cluster import subprocess_env
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def gunicorn_node(
    conf: str, env: dict[str, str], log_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """``gunicorn -c <conf> 'raftkv.server:create_app()'`` with ``env``, its output in
    ``log_path``; on exit its whole session is killed if it still runs."""
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                str(ROOT / conf),
                "raftkv.server:create_app()",
            ],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield proc
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


@pytest.mark.parametrize("conf", ["raftkv/gunicorn_conf.py", "raftkv/server/gunicorn_conf.py"])
def test_gunicorn_config_file_runs_a_single_node(
    tmp_path: Path, conf: str, reserved_port: int
) -> None:
    import http.client

    port = reserved_port
    env = subprocess_env()
    env.update(
        RAFTKV_ID="solo-0",
        RAFTKV_HOST="127.0.0.1",
        RAFTKV_PORT=str(port),
        RAFTKV_DATA_DIR=str(tmp_path / "d"),
        RAFTKV_ELECTION_MS="200",
        RAFTKV_HEARTBEAT_MS="20",
        RAFTKV_THREADS="8",
    )

    def call(method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            c.request(method, path, body=body)
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    with gunicorn_node(conf, env, tmp_path / "log") as proc:
        wait_until(
            lambda: b'"role":"leader"' in call("GET", "/v1/status")[1],
            30,
            "single node leader",
            lambda: (tmp_path / "log").read_text(),
        )
        assert call("PUT", "/v1/kv/a", b"1")[0] == 200
        assert call("GET", "/v1/kv/a") == (200, b'{"key":"a","value":"1","index":2}')
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        text = (tmp_path / "log").read_text()
        assert "Booting worker" in text and "event=start" in text and "event=stopped" in text
        assert text.count("Booting worker") == 1  # exactly one worker


def test_bad_env_is_one_line_and_nonzero(tmp_path: Path) -> None:
    env = subprocess_env()
    env["RAFTKV_PORT"] = "eighty"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            str(ROOT / "raftkv/gunicorn_conf.py"),
            "raftkv.server:create_app()",
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0
    assert "raftkv: error: --port/RAFTKV_PORT: must be an integer, got 'eighty'" in out.stderr


def test_unusable_data_dir_stops_the_node_with_one_line(tmp_path: Path, reserved_port: int) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    env = subprocess_env()
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "raftkv",
            "serve",
            "--id",
            "solo",
            "--host",
            "127.0.0.1",
            "--port",
            str(reserved_port),
            "--data-dir",
            str(blocker),
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 3, out.stderr
    lines = [ln for ln in out.stderr.splitlines() if "event=start-failed" in ln]
    assert len(lines) == 1 and "Traceback" not in out.stderr


@pytest.mark.parametrize("conf", ["raftkv/gunicorn_conf.py", "raftkv/server/gunicorn_conf.py"])
def test_gunicorn_config_file_serves_https_from_env(
    tmp_path: Path, conf: str, reserved_port: int
) -> None:
    import http.client
    import ssl

    from raftctl.certs import make_ca, make_cert

    ca = make_ca(tmp_path / "ca")
    cert, key = make_cert(ca, tmp_path / "ca", "solo-0", ["127.0.0.1"])
    port = reserved_port
    env = subprocess_env()
    env.update(
        RAFTKV_ID="solo-0",
        RAFTKV_HOST="127.0.0.1",
        RAFTKV_PORT=str(port),
        RAFTKV_DATA_DIR=str(tmp_path / "d"),
        RAFTKV_THREADS="8",
        RAFTKV_TLS_CERT=str(cert),
        RAFTKV_TLS_KEY=str(key),
        RAFTKV_TLS_CA=str(ca.cert_path),
    )
    ctx = ssl.create_default_context(cafile=str(ca.cert_path))

    def status() -> bytes:
        c = http.client.HTTPSConnection("127.0.0.1", port, timeout=5, context=ctx)
        try:
            c.request("GET", "/v1/status")
            return c.getresponse().read()
        finally:
            c.close()

    with gunicorn_node(conf, env, tmp_path / "log"):
        wait_until(
            lambda: b'"role":"leader"' in status(),
            30,
            "single node leader over HTTPS",
            lambda: (tmp_path / "log").read_text(),
        )

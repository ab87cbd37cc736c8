"""raftkv-wait-ready (images/raftkv/wait_ready.py, the client Pod's init container), run on the host
against a real local HTTP server: waits through 503s until a 2xx, `--all` waits for every URL, and a
timeout ends with exit code 1 and one line naming what was not ready. No Docker needed."""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "images" / "raftkv" / "wait_ready.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("wait_ready", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Server:
    def __init__(self) -> None:
        self.ready_after = 0  # answer 503 to this many requests, then 200
        self.hits = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits += 1
                status = 200 if server.hits > server.ready_after else 503
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/readyz"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def server() -> Iterator[_Server]:
    s = _Server()
    try:
        yield s
    finally:
        s.close()


def test_waits_through_not_ready_answers(
    server: _Server, capsys: pytest.CaptureFixture[str]
) -> None:
    server.ready_after = 2
    assert _load().main(["--timeout", "60", server.url]) == 0
    assert server.hits == 3
    assert capsys.readouterr().out.strip() == f"ready: {server.url}"


def test_any_url_is_enough_unless_all(server: _Server) -> None:
    dead = "http://127.0.0.1:9/readyz"  # nothing listens on the discard port
    wait_ready = _load()
    assert wait_ready.main(["--timeout", "30", dead, server.url]) == 0
    assert wait_ready.main(["--timeout", "1", "--all", dead, server.url]) == 1


def test_timeout_is_one_clear_line(server: _Server, capsys: pytest.CaptureFixture[str]) -> None:
    server.ready_after = 10**9
    assert _load().main(["--timeout", "1", server.url]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"raftkv-wait-ready: not ready after 1s: {server.url}: HTTP 503"]

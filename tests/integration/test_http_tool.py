"""``raftkv http METHOD URL`` — the image's small curl — against a real one-node cluster: the
body on stdout, exit 0 / 1 / 2 like ``curl --fail-with-body``, one stderr line on failures."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.cluster import LocalCluster, subprocess_env
from tests.support.ports import ReservedPort

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    c = LocalCluster(tmp_path_factory.mktemp("http-tool"), size=1, token="tool-test-token")
    try:
        c.start()
        c.wait_for_leader()
        yield c
    finally:
        c.close()


def http(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "raftkv", "http", *args],
        capture_output=True, text=True, timeout=60, env=subprocess_env(), cwd=Path.cwd(),
    )  # fmt: skip


def test_put_then_get(node: LocalCluster) -> None:
    put = http("PUT", f"{node.url(0)}/v1/kv/greeting", "--data", "hello")
    assert put.returncode == 0, put.stderr
    assert json.loads(put.stdout)["value"] == "hello"
    get = http("get", f"{node.url(0)}/v1/kv/greeting")  # the method is case-insensitive
    assert (get.returncode, get.stderr) == (0, "")
    assert json.loads(get.stdout)["value"] == "hello"
    assert get.stdout.endswith("\n")


def test_http_error_prints_the_body_and_exits_1(node: LocalCluster) -> None:
    result = http("GET", f"{node.url(0)}/v1/kv/nope")
    assert result.returncode == 1
    assert json.loads(result.stdout)["error"]
    assert result.stderr.startswith("HTTP 404 ")


def test_headers_reach_the_node_and_include_shows_the_answer(node: LocalCluster) -> None:
    url = f"{node.url(0)}/v1/admin/snapshot"
    assert http("POST", url).returncode == 1  # the admin API needs the token
    ok = http("POST", url, "-H", "Authorization: Bearer tool-test-token", "-i")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stderr.startswith("HTTP 200 ")
    assert "Content-Type: application/json" in ok.stderr


def test_connection_failure_is_one_line() -> None:
    with ReservedPort() as nobody:  # nothing listens there
        url = f"http://127.0.0.1:{nobody.port}/v1/status"
        result = http("GET", url, "--timeout", "5")
    assert result.returncode == 1
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"raftkv http: GET {url} failed: ")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("FETCH", "http://127.0.0.1:1/"), "method must be one of GET, PUT, POST, DELETE, HEAD"),
        (("GET", "ftp://127.0.0.1:1/"), "URL must be http:// or https://"),
        (("GET", "http://127.0.0.1:x/"), "URL has a bad port"),
        (("GET", "http://127.0.0.1:1/", "-H", "no-colon"), "header must be 'Name: value'"),
        (("GET", "http://127.0.0.1:1/", "--timeout", "0"), "--timeout must be positive"),
        (("GET", "http://127.0.0.1:1/", "--timeout", "soon"), "invalid float value: 'soon'"),
        (("GET",), "the following arguments are required: URL"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args: tuple[str, ...], message: str) -> None:
    result = http(*args)
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert message in line

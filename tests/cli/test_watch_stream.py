"""raftctl.watchstream.WatchStream against scripted nodes: resume after a broken stream
with the last index, skip what it already printed, 503 → next node, compacted → WatchCompacted.

Scripted on purpose: each case needs one exact sequence of streams (a stream ending after a given
line, a duplicate change, a refusal on the next node) that real nodes produce only in races. The
same client against real nodes (leader kill, compaction, SIGTERM):
tests/integration/test_watch.py."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from typer.testing import CliRunner

from raftctl.errors import Unavailable
from raftctl.main import app
from raftctl.watchstream import WatchCompacted, WatchStream


class Node:
    """A node answering /v1/watch from a script: a list of (status, [lines]) per request."""

    def __init__(self, script: list[tuple[int, list[dict[str, Any]]]]) -> None:
        self.script = script
        self.queries: list[dict[str, list[str]]] = []
        node = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if not self.path.startswith("/v1/watch"):
                    status, lines = 404, [{"error": "no such route"}]
                else:
                    node.queries.append(parse_qs(urlsplit(self.path).query))
                    status, lines = node.script.pop(0) if node.script else (503, [{"error": "x"}])
                body = b"".join(json.dumps(x).encode() + b"\n" for x in lines)
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def nodes() -> Iterator[list[Node]]:
    made: list[Node] = []
    yield made
    for n in made:
        n.close()


def change(index: int, key: str = "k") -> dict[str, Any]:
    return {"index": index, "op": "put", "key": key, "value": str(index)}


def test_resumes_on_the_next_node_from_the_last_index(nodes: list[Node]) -> None:
    a = Node([(200, [{"progress": True, "index": 0}, change(3), change(5)])])  # then ends
    b = Node([(503, [{"error": "no", "code": "shutting_down"}])])
    c = Node([(200, [{"progress": True, "index": 5}, change(5), change(7)])])
    nodes += [a, b, c]
    stream = WatchStream([a.url, b.url, c.url], from_index=0, deadline=5)
    got = []
    for ch in stream:
        got.append(ch["index"])
        if len(got) == 3:
            break
    stream.close()
    assert got == [3, 5, 7]  # 5 repeated by node c is not printed twice
    assert b.queries[0]["from_index"] == ["5"] and c.queries[0]["from_index"] == ["5"]
    assert stream.reconnects == 2


def test_progress_lines_move_the_resume_point(nodes: list[Node]) -> None:
    a = Node([(200, [{"progress": True, "index": 10}, {"progress": True, "index": 42}])])
    b = Node([(200, [change(43)])])
    nodes += [a, b]
    stream = WatchStream([a.url, b.url], prefix="p/", deadline=5)
    assert next(iter(stream))["index"] == 43
    assert "from_index" not in a.queries[0]  # no --from-index: from now
    assert b.queries[0]["from_index"] == ["42"] and b.queries[0]["prefix"] == ["p/"]


def test_compacted_at_start_or_mid_stream(nodes: list[Node]) -> None:
    a = Node([(410, [{"error": "gone", "code": "compacted", "oldest_index": 90}])])
    nodes.append(a)
    with pytest.raises(WatchCompacted, match=r"after index 3 .*oldest index 90"):
        list(WatchStream([a.url], from_index=3))
    b = Node([(200, [change(4), {"error": "behind", "code": "compacted", "oldest_index": 99}])])
    nodes.append(b)
    seen: list[int] = []
    with pytest.raises(WatchCompacted, match="after index 4"):
        for ch in WatchStream([b.url], from_index=3):
            seen.append(ch["index"])
    assert seen == [4]


def test_no_replica_until_the_deadline_is_unavailable(nodes: list[Node]) -> None:
    a = Node([])
    nodes.append(a)
    with pytest.raises(Unavailable, match="no replica could serve the watch"):
        list(WatchStream([a.url, "http://127.0.0.1:1"], deadline=0.5))


def test_raftctl_watch_prints_changes_and_resumes(nodes: list[Node]) -> None:
    a = Node([(200, [{"progress": True, "index": 1}, change(2, "cfg/a")])])
    b = Node([(200, [{"index": 3, "op": "delete", "key": "cfg/a", "value": None}])])
    nodes += [a, b]
    result = CliRunner().invoke(
        app,
        [
            "watch",
            "cfg/",
            "--from-index",
            "1",
            "--max-changes",
            "2",
            "--endpoints",
            f"{a.url},{b.url}",
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["2 put cfg/a 2", "3 delete cfg/a"]
    assert "resuming" in result.stderr and "after index 2" in result.stderr
    assert b.queries[0]["from_index"] == ["2"]


def test_raftctl_watch_compacted_is_one_line_exit_1(nodes: list[Node]) -> None:
    a = Node([(410, [{"error": "gone", "code": "compacted", "oldest_index": 50}])])
    nodes.append(a)
    result = CliRunner().invoke(app, ["watch", "", "--from-index", "3", "--endpoints", a.url])
    assert result.exit_code == 1 and result.stdout == ""
    assert "no longer held" in result.stderr and len(result.stderr.strip().splitlines()) == 1

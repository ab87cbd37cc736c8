"""Fuzz the HTTP edges of a node.

* ``read_response`` (raftkv/server/httpconn.py), the response parser of the peer transport: for
  ANY bytes a peer (or something squatting on its port) sends back, it returns a response or
  raises ``ConnectionError`` — never another exception, never a read past its bounds.
* ``POST /raft/v1/messages`` through the real app with the real message decoder: any body is
  answered 200 or a 4xx JSON error (never a 500), and nothing is delivered unless the whole batch
  decodes.
* The KV API through the real app: any method, key, query, header and body gives a JSON answer
  with an ``error`` field for every non-2xx, never a 500, and only a 2xx write changes state.
"""

from __future__ import annotations

import io
import json
from typing import Any
from urllib.parse import quote

from hypothesis import example, given, strategies as st

from raftkv.raft import encode_message
from raftkv.server.app import build_app
from raftkv.server.httpconn import read_response
from tests.fuzz.strategies import json_values, messages, mutated
from tests.unit.server.fakenode import FakeNode

# ---------------------------------------------------------------- response parser


def _parse(raw: bytes) -> None:
    try:
        status, headers, body, _close = read_response(io.BytesIO(raw))
    except ConnectionError as err:
        assert str(err)
        return
    assert 100 <= status <= 999 and isinstance(body, bytes)
    assert all(k == k.lower() for k in headers)


header_lines = st.one_of(
    st.sampled_from(
        [
            b"Content-Length: 5",
            b"Content-Length: -1",
            b"Content-Length: 0x10",
            b"Content-Length: 1_0",
            b"Content-Length: 99999999999999999999",
            b"Content-Length:",
            b"Content-Length: +3",
            b"Content-Length:  3 ",
            b"Transfer-Encoding: chunked",
            b"Connection: close",
            b"X: y",
        ]
    ),
    st.binary(max_size=30).filter(lambda b: b"\n" not in b),
)
chunked_bodies = st.lists(
    st.one_of(
        st.binary(max_size=12).map(lambda b: b"%x\r\n%s\r\n" % (len(b), b)),
        st.sampled_from(
            [
                b"-5\r\n",
                b"0x3\r\nabc\r\n",
                b"1_0\r\n",
                b"fffffffffffffffffff\r\n",
                b"zz\r\n",
                b"3;ext=1\r\nabc\r\n",
            ]
        ),
    ),
    max_size=4,
).map(lambda parts: b"".join(parts) + b"0\r\n\r\n")


@example(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nabc")
@example(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n")
@example(b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n")
@example(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nabc")
@example(b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70000 + b"\r\n\r\n")
@given(st.binary(max_size=300))
def test_response_parser_raw_bytes(raw: bytes) -> None:
    _parse(raw)


@given(
    st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2", b"ICY", b""]),
    st.sampled_from([b"200", b"204", b"2000", b"-20", b"abc", b"\xb2\xb2\xb2", b""]),
    st.lists(header_lines, max_size=5),
    chunked_bodies | st.binary(max_size=40),
)
def test_response_parser_structured(
    version: bytes, status: bytes, headers: list[bytes], body: bytes
) -> None:
    _parse(version + b" " + status + b" OK\r\n" + b"\r\n".join(headers) + b"\r\n\r\n" + body)


# ---------------------------------------------------------------- Raft RPC endpoint


_NODE = FakeNode()  # the transport decodes and validates every message (transport.py)
_RAFT = build_app(_NODE).test_client()


def _post_raft(body: bytes, headers: dict[str, str] | None = None) -> None:
    before = len(_NODE.delivered)
    resp = _RAFT.post("/raft/v1/messages", data=body, headers=headers or {})
    assert resp.mimetype == "application/json", resp.get_data()
    obj = resp.get_json()
    if resp.status_code == 200:
        assert obj["ok"] is True and len(_NODE.delivered) == before + obj["received"]
    else:
        assert resp.status_code in (400, 413), (resp.status_code, obj)
        assert obj["error"] and len(_NODE.delivered) == before


@example(b"[" * 100_000)  # nesting beyond the JSON decoder's recursion limit: was a 500
@example(b'{"messages": ' + b"[" * 50_000 + b"]" * 50_000 + b"}")
@example(b"\xff\xfe")
@example(b'{"messages": [NaN]}')
@given(st.binary(max_size=200))
def test_raft_post_raw_bytes(body: bytes) -> None:
    _post_raft(body)


@given(st.data(), st.lists(messages(), min_size=1, max_size=3))
def test_raft_post_mutated_batches(data: st.DataObject, msgs: list[Any]) -> None:
    docs = [encode_message(_retarget(m)) for m in msgs]
    doc = json.loads(json.dumps({"messages": docs}))
    if data.draw(st.booleans()):
        doc = data.draw(mutated(doc))
    _post_raft(json.dumps(doc).encode())


def _retarget(msg: Any) -> Any:
    from dataclasses import replace

    return replace(msg, dst=_NODE.config.id)


@given(json_values)
def test_raft_post_any_json(doc: Any) -> None:
    _post_raft(json.dumps(doc).encode())


# ---------------------------------------------------------------- KV API

_KV_NODE = FakeNode()
_KV = build_app(_KV_NODE).test_client()
keys = st.text(max_size=20) | st.text(st.characters(codec="latin-1"), max_size=600)
queries = st.dictionaries(
    st.sampled_from(["prev_value", "consistency", "prefix", "limit", "x", ""]),
    st.text(max_size=8) | st.sampled_from(["stale", "linearizable", "0", "10001", "-1", "²"]),
    max_size=3,
)
header_values = st.text(st.characters(codec="latin-1", exclude_characters="\r\n"), max_size=40)


@example("GET", "k", {"limit": "²"}, {}, b"")
@example("PUT", "k", {}, {"X-Request-Id": "c:²"}, b"v")  # was a 500
@example("PUT", "k", {}, {"Content-Length": "-1"}, b"v")
@given(
    st.sampled_from(["GET", "PUT", "DELETE", "POST", "PATCH", "HEAD", "OPTIONS"]),
    keys,
    queries,
    st.dictionaries(
        st.sampled_from(["X-Request-Id", "Content-Type", "Authorization", "X-Raftkv-Forwarded-By"]),
        header_values,
        max_size=3,
    ),
    st.binary(max_size=64) | st.text(max_size=64).map(str.encode),
)
def test_kv_api(
    method: str, key: str, query: dict[str, str], headers: dict[str, str], body: bytes
) -> None:
    before = _KV_NODE.sm.list_prefix("", 1 << 20)
    path = "/v1/kv/" + quote(key, safe="")
    resp = _KV.open(path, method=method, query_string=query, headers=headers, data=body)
    assert resp.status_code < 500, (resp.status_code, resp.get_data()[:300])
    if method != "HEAD":
        assert resp.mimetype == "application/json"
        obj = resp.get_json()
        if resp.status_code >= 400:
            assert isinstance(obj.get("error"), str) and obj["error"]
    if method in ("GET", "HEAD", "OPTIONS") or resp.status_code != 200:
        assert _KV_NODE.sm.list_prefix("", 1 << 20) == before  # (a 404 DELETE is still logged)

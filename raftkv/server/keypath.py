"""keypath.py — where a request's key comes from, and what a follower relays to the leader.

WSGI servers hand the app a *decoded* ``PATH_INFO`` (and Werkzeug's ``request.path`` decodes it
again as UTF-8 with replacement characters), so the key is read from the raw request target
instead and decoded once, by ``raftkv.keycodec``:

- ``request_key(environ)``: the key of a ``/v1/kv/<key>`` request, from ``RAW_URI`` (gunicorn,
  Werkzeug's server and test client) or ``REQUEST_URI``; a server that gives neither: from the
  bytes of ``PATH_INFO``, which that server already percent-decoded (never decoded twice). Both
  agree, because a raw ``/`` and ``%2F`` name the same key character.
- ``query_value(environ, name)``: one query parameter from the raw ``QUERY_STRING``, decoded by the
  codec (strict UTF-8; a parameter given twice is refused rather than guessed at).
- ``forward_target(environ)``: the request target to relay, exactly as received (bytes outside
  printable ASCII percent-encoded, which names the same key), or, without a raw target, rebuilt
  from ``PATH_INFO`` by the codec's encoding. Never a decoded path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from raftkv.errors import BadRequest, InvalidKey, InvalidQuery
from raftkv.keycodec import (
    KEY_PATH_PREFIX,
    decode_key,
    decode_query_value,
    validate_key,
    wire_bytes,
)

__all__ = ["forward_target", "query_value", "raw_target", "request_key"]

# Bytes a request target may carry as they are; everything else is percent-encoded on relay.
_TARGET_SAFE = frozenset(range(0x21, 0x7F)) - {ord("#")}
_REBUILD_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~/")


def raw_target(environ: Mapping[str, Any]) -> str | None:
    """The request target as the client sent it, in origin form (``/path?query``), or None."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if not isinstance(raw, str) or not raw:
        return None
    if not raw.startswith("/"):  # absolute form: http://host:port/path?query
        scheme_end = raw.find("://")
        if scheme_end == -1:
            return None
        slash = raw.find("/", scheme_end + 3)
        query = raw.find("?", scheme_end + 3)
        if slash == -1 or (query != -1 and query < slash):
            return "/" + raw[query:] if query != -1 else "/"
        raw = raw[slash:]
    return raw


def request_key(environ: Mapping[str, Any]) -> str:
    """The key of a ``/v1/kv/<key>`` request, decoded once (``InvalidKey`` -> 400)."""
    target = raw_target(environ)
    if target is not None:
        path = target.split("?", 1)[0]
        if path.startswith(KEY_PATH_PREFIX):
            return decode_key(path[len(KEY_PATH_PREFIX) :])
    path_info: str = environ.get("PATH_INFO", "")
    if not path_info.startswith(KEY_PATH_PREFIX):
        raise InvalidKey("key must not be empty: use /v1/kv/<key>")
    raw = wire_bytes(path_info[len(KEY_PATH_PREFIX) :])
    try:
        return validate_key(raw.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise InvalidKey(f"key is not valid UTF-8 (bad byte at {err.start})") from None


def query_value(
    environ: Mapping[str, Any], name: str, *, error: type[BadRequest] = InvalidQuery
) -> str | None:
    """Query parameter ``name`` decoded by the key codec (``+`` = space), None when absent."""
    query: str = environ.get("QUERY_STRING", "")
    found: str | None = None
    for part in query.split("&"):
        raw_name, sep, raw_value = part.partition("=")
        if decode_query_value(raw_name, what="query parameter name") != name:
            continue
        if found is not None:
            raise InvalidQuery(f"query parameter {name!r} given more than once")
        found = decode_query_value(raw_value, what=name, error=error) if sep else ""
    return found


def _escape(raw: bytes, safe: frozenset[int]) -> str:
    return "".join(chr(b) if b in safe else f"%{b:02X}" for b in raw)


def forward_target(environ: Mapping[str, Any]) -> str:
    """What a follower sends the leader as the request target (always ASCII)."""
    target = raw_target(environ)
    if target is not None:
        return _escape(wire_bytes(target), _TARGET_SAFE)
    path_info: str = environ.get("PATH_INFO", "") or "/"
    path = _escape(wire_bytes(path_info), _REBUILD_SAFE)
    query: str = environ.get("QUERY_STRING", "")
    if query:
        path += "?" + _escape(wire_bytes(query), _TARGET_SAFE)
    return path

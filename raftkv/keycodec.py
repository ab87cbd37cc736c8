"""keycodec.py — THE key codec: which keys exist, and how a key travels in a URL.

Every path that carries a key (client → node, follower → leader forwarding, raftctl on every
target, list/prefix queries) uses this module; nothing else percent-encodes or decodes a key.

Keys: any non-empty Unicode string (valid UTF-8: no lone surrogates) of at most
``MAX_KEY_BYTES`` (512) bytes in UTF-8. Anything goes inside: ``/``, ``%``, ``#``, ``?``, ``..``,
empty segments, leading or trailing ``/``, control characters, any plane.

Wire form (``encode_key``): the key's UTF-8 bytes, every byte outside RFC 3986's unreserved set
``A-Z a-z 0-9 - . _ ~`` written as ``%XX`` (upper-case hex) — so ``/``, ``%``, ``#``, ``?``, ``+``
and space are always encoded. Exception: a key that is all dots and at most two long (``.`` or
``..``) has its dots encoded as ``%2E``, since HTTP clients remove ``.``/``..`` path segments.
``key_path(key)`` = ``/v1/kv/`` + that. ``tag#frag`` → ``/v1/kv/tag%23frag``; ``a/b`` →
``/v1/kv/a%2Fb``; ``ün`` → ``/v1/kv/%C3%BCn``.

Decoding (``decode_key``, done ONCE, by the node, from the raw request target): ``%XX`` is that
byte, any other character stands for itself — in particular a raw ``/`` is a ``/`` of the key, so
``GET /v1/kv/a/b`` is key ``a/b`` exactly like ``/v1/kv/a%2Fb``, and ``+`` is a ``+``. A ``%`` not
followed by two hex digits, or bytes that are not UTF-8, are refused (``InvalidKey``), never
guessed at. In a query string (``?prefix=``), ``decode_query_value`` also reads ``+`` as a space
(form encoding, what ``urlencode`` sends); ``encode_key`` never emits ``+``, so both agree.
"""

from __future__ import annotations

import re

from raftkv.errors import BadRequest, InvalidKey, InvalidQuery

__all__ = [
    "KEY_PATH_PREFIX",
    "MAX_KEY_BYTES",
    "decode_key",
    "decode_query_value",
    "encode_key",
    "encode_query_value",
    "key_path",
    "percent_decode",
    "validate_key",
    "wire_bytes",
]

MAX_KEY_BYTES = 512
KEY_PATH_PREFIX = "/v1/kv/"

_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_ENCODE_TABLE = [chr(b) if b in _UNRESERVED else f"%{b:02X}" for b in range(256)]
_HEX = frozenset(b"0123456789ABCDEFabcdef")
_PERCENT = re.compile(rb"%([0-9A-Fa-f]{2})")


def validate_key(key: str) -> str:
    """``key`` if it is a valid key (see the module docstring), else ``InvalidKey`` (400)."""
    if not key:
        raise InvalidKey("key must not be empty")
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidKey("key must be valid UTF-8 (no lone surrogates)") from None
    if size > MAX_KEY_BYTES:
        raise InvalidKey(f"key is {size} bytes; the limit is {MAX_KEY_BYTES}")
    return key


def _encode(text: str) -> str:
    return "".join([_ENCODE_TABLE[b] for b in text.encode("utf-8")])


def encode_key(key: str) -> str:
    """The wire form of ``key`` (one URL path segment; see the module docstring)."""
    validate_key(key)
    if key in (".", ".."):
        return "%2E" * len(key)
    return _encode(key)


def key_path(key: str) -> str:
    """``/v1/kv/<encoded key>``: the path of ``key`` on every node."""
    return KEY_PATH_PREFIX + encode_key(key)


def encode_query_value(text: str) -> str:
    """A query-string value (e.g. ``prefix``) in the same wire form (no ``+``, no ``&``/``=``)."""
    try:
        return _encode(text)
    except UnicodeEncodeError:
        raise InvalidKey("key must be valid UTF-8 (no lone surrogates)") from None


def percent_decode(raw: bytes, *, what: str = "key", error: type[BadRequest] = InvalidKey) -> bytes:
    """``%XX`` → that byte, everything else unchanged; a stray ``%`` raises ``error`` (400)."""
    pos = raw.find(b"%")
    if pos == -1:
        return raw
    while pos != -1:
        if pos + 2 >= len(raw) or raw[pos + 1] not in _HEX or raw[pos + 2] not in _HEX:
            bad = raw[pos : pos + 3].decode("latin-1")
            raise error(
                f"{what} has a malformed percent-escape {bad!r} at byte {pos} "
                "(write a literal '%' as %25)"
            )
        pos = raw.find(b"%", pos + 3)
    return _PERCENT.sub(lambda m: bytes([int(m.group(1), 16)]), raw)


def wire_bytes(wire: str | bytes) -> bytes:
    """WSGI hands the raw target as a ``str`` of one char per byte (latin-1); other text is
    taken as its UTF-8 bytes."""
    if isinstance(wire, bytes):
        return wire
    try:
        return wire.encode("latin-1")
    except UnicodeEncodeError:
        return wire.encode("utf-8", "surrogatepass")


def _utf8(raw: bytes, what: str, error: type[BadRequest]) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise error(f"{what} is not valid UTF-8 (bad byte at {err.start})") from None


def decode_key(wire: str | bytes) -> str:
    """The key a URL path segment names (the raw text after ``/v1/kv/``), validated."""
    return validate_key(_utf8(percent_decode(wire_bytes(wire)), "key", InvalidKey))


def decode_query_value(
    wire: str | bytes, *, what: str = "query value", error: type[BadRequest] = InvalidQuery
) -> str:
    """One raw query-string value: like ``decode_key`` but ``+`` is a space, and it may be
    empty; not validated as a key (the caller decides)."""
    raw = wire_bytes(wire).replace(b"+", b" ")
    return _utf8(percent_decode(raw, what=what, error=error), what, error)

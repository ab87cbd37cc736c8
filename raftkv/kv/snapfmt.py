"""snapfmt.py — the KV state machine's snapshot data: encoded as a stream, decoded as a stream.

Format v3 (what this version writes; the ``data`` section of a snapshot file, snapshot.py)::

    8 bytes  magic b"RKVKV3\\n\\0"
    u32      meta_len, then meta_len bytes of UTF-8 JSON:
             {"v": 3, "applied_index", "applied_term", "keys": N,
              "sessions": [[client, floor, [[seq, result, fingerprint], ...]], ...],
              "evicted": [[client, watermark], ...]}
    N records, each: u32 key_len | u32 value_len | u64 modification index | key | value
                     (key and value UTF-8; integers little-endian)

Versions 1 and 2 (one JSON document, older snapshots and backups) are still read. Writing goes
batch by batch (``BATCH`` records per ``write``) and reading block by block, so neither holds
more than a batch/block beyond the state itself, and a writer thread lets the GIL go between
batches (the driver keeps running while a snapshot is written).

``Packed`` values: the state machine keeps each key's (value, index) as ONE bytes object, the
8-byte little-endian index followed by the UTF-8 value: a record's tail is that object as is.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable
from typing import Any, BinaryIO, Protocol

__all__ = [
    "MAGIC_V3",
    "FormatError",
    "iter_records",
    "pack_value",
    "read_meta",
    "unpack_value",
    "write_v3",
]

MAGIC_V3 = b"RKVKV3\n\0"
_REC = struct.Struct("<II")
_U32 = struct.Struct("<I")
_IDX = struct.Struct("<Q")
BATCH = 4096
BLOCK = 1 << 20
MAX_META = 1 << 31


class FormatError(ValueError):
    """The snapshot data does not decode."""


class _Writable(Protocol):
    def write(self, data: bytes, /) -> int | None: ...


def pack_value(value: str, index: int) -> bytes:
    return _IDX.pack(index) + value.encode("utf-8")


def unpack_value(packed: bytes) -> tuple[str, int]:
    return packed[8:].decode("utf-8"), _IDX.unpack_from(packed)[0]


def write_v3(out: _Writable, meta: dict[str, Any], items: Iterable[tuple[str, bytes]]) -> int:
    """Write format v3 (``meta`` gets ``v``; ``items``: (key, packed value)); return bytes
    written. ``meta["keys"]`` must be the number of items."""
    doc = json.dumps({"v": 3, **meta}, separators=(",", ":"), ensure_ascii=False).encode()
    head = MAGIC_V3 + _U32.pack(len(doc)) + doc
    out.write(head)
    total = len(head)
    count = 0
    parts: list[bytes] = []
    pack = _REC.pack
    append = parts.append
    for key, packed in items:
        kb = key.encode("utf-8")
        append(pack(len(kb), len(packed) - 8))
        append(kb)
        append(packed)
        count += 1
        if len(parts) >= 3 * BATCH:
            blob = b"".join(parts)
            out.write(blob)
            total += len(blob)
            parts.clear()
    if parts:
        blob = b"".join(parts)
        out.write(blob)
        total += len(blob)
    if count != meta["keys"]:
        raise ValueError(f"snapshot view changed while written: {count} != {meta['keys']}")
    return total


def _read_exact(src: BinaryIO, n: int, what: str) -> bytes:
    buf = src.read(n)
    if len(buf) != n:
        raise FormatError(f"snapshot data truncated in {what}")
    return buf


def read_meta(src: BinaryIO, length: int) -> tuple[dict[str, Any], int]:
    """Read the meta of a v3 stream (``src`` at the data's start, ``length`` its size), or the
    whole JSON document of a v1/v2 one; return it and the bytes left (the records, v3 only)."""
    if length == 0:
        return {"v": 2, "data": [], "sessions": []}, 0
    prefix = _read_exact(src, min(length, len(MAGIC_V3)), "magic")
    if prefix != MAGIC_V3 or length < len(MAGIC_V3) + 4:
        try:
            doc = json.loads(prefix + _read_exact(src, length - len(prefix), "JSON document"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise FormatError(f"snapshot data is neither v3 nor JSON: {err}") from None
        if not isinstance(doc, dict):
            raise FormatError("snapshot must be a JSON object")
        return doc, 0
    (mlen,) = _U32.unpack(_read_exact(src, 4, "meta length"))
    if mlen > min(MAX_META, length - len(MAGIC_V3) - 4):
        raise FormatError(f"snapshot meta of {mlen} bytes exceeds the data")
    try:
        doc = json.loads(_read_exact(src, mlen, "meta"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise FormatError(f"snapshot meta is not JSON: {err}") from None
    if not isinstance(doc, dict) or doc.get("v") != 3:
        raise FormatError("snapshot meta must be a JSON object with v=3")
    return doc, length - len(MAGIC_V3) - 4 - mlen


def iter_records(src: BinaryIO, remaining: int) -> Iterable[list[tuple[str, bytes]]]:
    """The v3 records in ``remaining`` bytes of ``src``, a block's worth per list."""
    buf = b""
    unpack = _REC.unpack_from
    rec_size = _REC.size
    while remaining > 0 or buf:
        if remaining > 0:
            block = src.read(min(BLOCK, remaining))
            if not block:
                raise FormatError("snapshot data truncated in the records")
            remaining -= len(block)
            buf = buf + block if buf else block
        out: list[tuple[str, bytes]] = []
        pos, end = 0, len(buf)
        try:
            while pos + rec_size <= end:
                klen, vlen = unpack(buf, pos)
                stop = pos + rec_size + klen + 8 + vlen
                if stop > end:
                    break
                kstart = pos + rec_size
                out.append((buf[kstart : kstart + klen].decode("utf-8"), buf[kstart + klen : stop]))
                pos = stop
        except UnicodeDecodeError as err:
            raise FormatError(f"snapshot key is not UTF-8: {err}") from None
        buf = buf[pos:]
        if remaining <= 0 and buf:
            raise FormatError(f"snapshot data ends inside a record ({len(buf)} bytes left)")
        yield out

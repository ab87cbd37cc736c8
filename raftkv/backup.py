"""backup.py — the backup file: a self-describing, verifiable point-in-time copy of the KV state.

``GET /v1/admin/snapshot`` streams it, ``raftctl snapshot save`` stores it, ``raftctl snapshot
status`` verifies it alone, ``raftkv restore`` seeds a new cluster's data directories from it
(docs/operations.md). Layout::

    8 bytes  magic        b"RKVBKUP\\n"
    u16      version      (1)
    u16      reserved     (0)
    u32      header_len
    header   header_len bytes of UTF-8 JSON: {"format": "raftkv-backup", "index", "term",
             "keys", "data_bytes", "cluster_id", "node", "created"}
    u32      zlib.crc32 of every byte above (magic .. header)
    data     data_bytes bytes: the KV state machine's snapshot (``KVStateMachine.snapshot()``)
    8 bytes  trailer magic b"RKVBEND\\n"
    32 bytes SHA-256 of every byte before the trailer (the file's checksum)

Contract:
- ``encode_header`` / ``trailer`` build the file; ``iter_backup`` streams it from one in-memory
  copy of the state (the server never holds a lock while a client reads).
- ``read_backup(path)`` and ``verify_backup(stream)`` check, in file order, the magic, the header
  checksum, the header fields, the data length, the trailer magic, the SHA-256, that nothing
  follows the trailer and that the data decodes with the declared key count; any failure raises
  ``BackupError`` whose one-line message names the problem and the region (header, data, trailer).
  Damaged data is never returned.
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

__all__ = [
    "BACKUP_MAGIC",
    "TRAILER_SIZE",
    "BackupError",
    "BackupInfo",
    "build_header",
    "checksum_of",
    "iter_backup",
    "read_backup",
    "verify_backup",
]

BACKUP_MAGIC = b"RKVBKUP\n"
TRAILER_MAGIC = b"RKVBEND\n"
VERSION = 1
FORMAT = "raftkv-backup"
_PRE = struct.Struct("<8sHHI")
_U32 = struct.Struct("<I")
MAX_HEADER = 1 << 16
TRAILER_SIZE = len(TRAILER_MAGIC) + 32
_CHUNK = 1 << 20


class BackupError(ValueError):
    """A backup file is damaged, truncated or not a backup; the message names the problem."""


@dataclass(frozen=True, slots=True)
class BackupInfo:
    """What a verified backup holds (``snapshot status``)."""

    index: int
    term: int
    keys: int
    data_bytes: int
    size: int
    checksum: str  # hex SHA-256 of everything before the trailer
    cluster_id: str
    node: str
    created: str

    def to_json(self) -> dict[str, object]:
        return {
            "index": self.index, "term": self.term, "keys": self.keys,
            "data_bytes": self.data_bytes, "size": self.size, "checksum": self.checksum,
            "cluster_id": self.cluster_id, "node": self.node, "created": self.created,
        }  # fmt: skip


def build_header(
    *,
    index: int,
    term: int,
    keys: int,
    data_bytes: int,
    cluster_id: str,
    node: str,
    created: str,
) -> bytes:
    """Magic, version, the JSON header and its CRC: every byte that precedes the data."""
    meta = {
        "format": FORMAT, "index": index, "term": term, "keys": keys, "data_bytes": data_bytes,
        "cluster_id": cluster_id, "node": node, "created": created,
    }  # fmt: skip
    raw = json.dumps(meta, separators=(",", ":"), sort_keys=True).encode("utf-8")
    pre = _PRE.pack(BACKUP_MAGIC, VERSION, 0, len(raw)) + raw
    return pre + _U32.pack(zlib.crc32(pre))


def iter_backup(header: bytes, data: bytes, chunk: int = _CHUNK) -> Iterator[bytes]:
    """The whole file as chunks: header, data, then the trailer (its SHA-256 over both)."""
    digest = hashlib.sha256(header)
    yield header
    view = memoryview(data)
    for off in range(0, len(view), chunk):
        part = bytes(view[off : off + chunk])
        digest.update(part)
        yield part
    yield TRAILER_MAGIC + digest.digest()


def checksum_of(header: bytes, data: bytes) -> str:
    """The hex SHA-256 the trailer of ``header + data`` carries."""
    return hashlib.sha256(header + data).hexdigest()


def _read_exact(stream: BinaryIO, n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        part = stream.read(n - len(out))
        if not part:
            break
        out += part
    return bytes(out)


def _int_field(meta: dict[str, object], name: str) -> int:
    value = meta.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise BackupError(f"header field {name!r} is missing or not a non-negative integer")
    return value


def _parse_header(stream: BinaryIO) -> tuple[dict[str, object], bytes]:
    pre = _read_exact(stream, _PRE.size)
    if len(pre) < len(BACKUP_MAGIC) or pre[: len(BACKUP_MAGIC)] != BACKUP_MAGIC:
        if len(pre) < len(BACKUP_MAGIC) and BACKUP_MAGIC.startswith(pre):
            raise BackupError(f"truncated: the file ends inside the header ({len(pre)} bytes)")
        raise BackupError("not a raftkv backup file (bad magic in the header)")
    if len(pre) < _PRE.size:
        raise BackupError(f"truncated: the file ends inside the header ({len(pre)} bytes)")
    _magic, version, _reserved, hlen = _PRE.unpack(pre)
    if hlen > MAX_HEADER:
        raise BackupError(f"header corrupt: header length {hlen} exceeds {MAX_HEADER}")
    raw = _read_exact(stream, hlen)
    crc = _read_exact(stream, 4)
    if len(raw) < hlen or len(crc) < 4:
        raise BackupError("truncated: the file ends inside the header")
    (want,) = _U32.unpack(crc)
    if zlib.crc32(pre + raw) != want:
        raise BackupError("header corrupt: header checksum mismatch")
    if version != VERSION:
        raise BackupError(f"unsupported backup format version {version} (this raftkv reads 1)")
    try:
        meta = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BackupError(f"header corrupt: not JSON ({err})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise BackupError(f"header corrupt: format is not {FORMAT!r}")
    return meta, pre + raw + crc


def verify_backup(stream: BinaryIO, *, keep_data: bool = False) -> tuple[BackupInfo, bytes | None]:
    """Read and verify a backup from ``stream``; return its info (and data if ``keep_data``).

    Raises ``BackupError`` naming the first problem found.
    """
    meta, header = _parse_header(stream)
    index, term = _int_field(meta, "index"), _int_field(meta, "term")
    keys, dlen = _int_field(meta, "keys"), _int_field(meta, "data_bytes")
    digest = hashlib.sha256(header)
    kept = bytearray() if keep_data else None
    left = dlen
    while left:
        part = stream.read(min(left, _CHUNK))
        if not part:
            raise BackupError(f"truncated: the data ends after {dlen - left} of {dlen} bytes")
        digest.update(part)
        if kept is not None:
            kept += part
        left -= len(part)
    trailer = _read_exact(stream, TRAILER_SIZE)
    if len(trailer) < TRAILER_SIZE:
        raise BackupError(f"truncated: the trailer has {len(trailer)} of {TRAILER_SIZE} bytes")
    if trailer[: len(TRAILER_MAGIC)] != TRAILER_MAGIC:
        raise BackupError("trailer corrupt: bad trailer magic (data length or trailer damaged)")
    if trailer[len(TRAILER_MAGIC) :] != digest.digest():
        raise BackupError("data corrupt: SHA-256 checksum mismatch")
    if stream.read(1):
        raise BackupError("trailing bytes after the trailer (file damaged or concatenated)")
    data = bytes(kept) if kept is not None else None
    if data is not None:
        _check_data(data, keys)
    info = BackupInfo(
        index=index, term=term, keys=keys, data_bytes=dlen,
        size=len(header) + dlen + TRAILER_SIZE, checksum=digest.hexdigest(),
        cluster_id=str(meta.get("cluster_id", "")), node=str(meta.get("node", "")),
        created=str(meta.get("created", "")),
    )  # fmt: skip
    return info, data


def _check_data(data: bytes, keys: int) -> None:
    """The data decodes as a KV snapshot with the declared number of keys."""
    from raftkv.kv import KVStateMachine
    from raftkv.kv.statemachine import SnapshotDecodeError

    sm = KVStateMachine()
    try:
        sm.restore(data)
    except SnapshotDecodeError as err:
        raise BackupError(f"data corrupt: {err}") from None
    if len(sm) != keys:
        raise BackupError(f"data corrupt: header says {keys} keys, data holds {len(sm)}")


def read_backup(path: str) -> tuple[BackupInfo, bytes]:
    """Verify the backup file at ``path`` and return its info and data."""
    try:
        with open(path, "rb") as fh:
            info, data = verify_backup(fh, keep_data=True)
    except OSError as err:
        raise BackupError(f"cannot read {path}: {err.strerror or err}") from None
    assert data is not None
    return info, data

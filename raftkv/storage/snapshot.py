"""snapshot.py — snapshot files: layout, atomic write, verified read, chunked streaming.

A snapshot is ``snap/<index:020d>-<term:020d>.snap``; its bytes (also the streamed form, so a
follower receives exactly the file the leader holds)::

    8 bytes  magic  b"RKVSNAP\\n"
    u16      format version (1)
    u16      reserved (0)
    u64      index        last log index the snapshot covers
    u64      term         term of that entry
    u32      members_len  length of the membership: UTF-8 JSON, either an array of voter ids
                          (older snapshots) or {"members": [...], "membership": {voters,
                          learners, urls, removed, index}} (the whole configuration)
    u64      data_len     length of the state machine data
    u32      zlib.crc32 of the 40 header bytes above
    members (members_len bytes), data (data_len bytes)
    u32      zlib.crc32 of every byte before it (header, members, data)

Invariants:
- ``write_snapshot`` is atomic and durable: tmp file, fsync, rename, fsync the directory. A
  crash leaves either no file or a complete one (plus perhaps a ``*.tmp``, removed at open).
- ``read_snapshot`` verifies both checksums, the length and that the name matches the header,
  and raises ``StorageCorrupt(path, offset, why)`` otherwise: it never returns damaged data.
- ``SnapshotAssembler`` rebuilds a snapshot from chunks (in order, optionally with offsets) and
  verifies the checksum at the end, raising ``SnapshotStreamError`` (a ValueError) on damage.
"""

from __future__ import annotations

import json
import os
import re
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from raftkv.raft.errors import MessageDecodeError
from raftkv.raft.membership import membership_from_json, membership_to_json
from raftkv.raft.types import Membership, Snapshot, SnapshotMeta
from raftkv.storage.errors import StorageCorrupt
from raftkv.storage.fsutil import FILE_MODE, sync_dir, sync_file, write_all

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "SnapshotAssembler",
    "SnapshotFileInfo",
    "SnapshotStreamError",
    "encode_snapshot",
    "iter_file_chunks",
    "iter_snapshot_chunks",
    "list_snapshots",
    "read_snapshot",
    "snapshot_name",
    "write_snapshot",
]

SNAP_MAGIC = b"RKVSNAP\n"
SNAP_VERSION = 1
_HEAD = struct.Struct("<8sHHQQIQ")
_U32 = struct.Struct("<I")
HEADER_SIZE = _HEAD.size + 4
TRAILER_SIZE = 4
DEFAULT_CHUNK_SIZE = 1 << 20
MAX_MEMBERS_LEN = 1 << 20
_NAME_RE = re.compile(r"^(\d{20})-(\d{20})\.snap$")


class SnapshotStreamError(ValueError):
    """A streamed snapshot is malformed, out of order or fails its checksum."""


@dataclass(frozen=True, slots=True)
class SnapshotFileInfo:
    index: int
    term: int
    path: str


def snapshot_name(index: int, term: int) -> str:
    return f"{index:020d}-{term:020d}.snap"


def list_snapshots(snap_dir: str) -> list[SnapshotFileInfo]:
    """Every ``*.snap`` file in ``snap_dir`` (by name), oldest (lowest index) first."""
    out = []
    for name in os.listdir(snap_dir):
        m = _NAME_RE.match(name)
        if m:
            out.append(
                SnapshotFileInfo(int(m.group(1)), int(m.group(2)), os.path.join(snap_dir, name))
            )
    out.sort(key=lambda s: (s.index, s.term))
    return out


def _header(meta: SnapshotMeta, members: bytes, data_len: int) -> bytes:
    head = _HEAD.pack(SNAP_MAGIC, SNAP_VERSION, 0, meta.index, meta.term, len(members), data_len)
    return head + _U32.pack(zlib.crc32(head))


def _encode_parts(snapshot: Snapshot) -> list[bytes]:
    meta = snapshot.meta
    doc: object = list(meta.members)
    if meta.membership is not None:
        doc = {"members": list(meta.members), "membership": membership_to_json(meta.membership)}
    members = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode("utf-8")
    header = _header(snapshot.meta, members, len(snapshot.data))
    crc = zlib.crc32(snapshot.data, zlib.crc32(members, zlib.crc32(header)))
    return [header, members, snapshot.data, _U32.pack(crc)]


def encode_snapshot(snapshot: Snapshot) -> bytes:
    """The snapshot's complete file/stream bytes."""
    return b"".join(_encode_parts(snapshot))


def iter_snapshot_chunks(
    snapshot: Snapshot, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> Iterator[bytes]:
    """Stream an in-memory snapshot as chunks of at most ``chunk_size`` bytes."""
    if chunk_size < 1:
        raise ValueError("chunk_size must be >= 1")
    blob = memoryview(encode_snapshot(snapshot))
    for off in range(0, len(blob), chunk_size):
        yield bytes(blob[off : off + chunk_size])


def iter_file_chunks(path: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
    """Stream a snapshot file as chunks. The file is opened at the first ``next()``."""
    if chunk_size < 1:
        raise ValueError("chunk_size must be >= 1")
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            yield chunk


def write_snapshot(snap_dir: str, snapshot: Snapshot) -> str:
    """Write ``snapshot`` atomically and durably into ``snap_dir``; return its path."""
    path = os.path.join(snap_dir, snapshot_name(snapshot.meta.index, snapshot.meta.term))
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        write_all(fd, _encode_parts(snapshot))
        sync_file(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)
    sync_dir(snap_dir)
    return path


def _parse_header(buf: bytes) -> tuple[int, int, int, int]:
    """(index, term, members_len, data_len) of a header; raises ValueError with a reason."""
    magic, version, _reserved, index, term, mlen, dlen = _HEAD.unpack_from(buf, 0)
    (hcrc,) = _U32.unpack_from(buf, _HEAD.size)
    if magic != SNAP_MAGIC:
        raise ValueError("not a raftkv snapshot (bad magic)")
    if zlib.crc32(buf[: _HEAD.size]) != hcrc:
        raise ValueError("snapshot header checksum mismatch")
    if version != SNAP_VERSION:
        raise ValueError(f"unsupported snapshot format version {version}")
    if mlen > MAX_MEMBERS_LEN:
        raise ValueError(f"membership length {mlen} exceeds limit")
    return index, term, mlen, dlen


def _decode_members(raw: bytes) -> tuple[tuple[str, ...], Membership | None]:
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"membership is not JSON: {err}") from err
    membership = None
    members = doc
    if isinstance(doc, dict):
        if set(doc) != {"members", "membership"}:
            raise ValueError("membership object must hold members and membership")
        members = doc["members"]
        try:
            membership = membership_from_json(doc["membership"])
        except MessageDecodeError as err:
            raise ValueError(str(err)) from err
    if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
        raise ValueError("membership is not a JSON array of strings")
    return tuple(members), membership


def _decode(blob: bytes) -> Snapshot:
    """Decode + verify a whole snapshot blob, or raise ValueError.

    The ValueError's ``args[1]`` (when present) is the offset of the damage.
    """
    if len(blob) < HEADER_SIZE + TRAILER_SIZE:
        raise ValueError(f"snapshot truncated ({len(blob)} bytes)", 0)
    try:
        index, term, mlen, dlen = _parse_header(blob)
    except ValueError as err:
        raise ValueError(str(err), 0) from err
    expected = HEADER_SIZE + mlen + dlen + TRAILER_SIZE
    if len(blob) != expected:
        raise ValueError(f"snapshot is {len(blob)} bytes, header says {expected}", len(blob))
    body_end = expected - TRAILER_SIZE
    (crc,) = _U32.unpack_from(blob, body_end)
    if zlib.crc32(memoryview(blob)[:body_end]) != crc:
        raise ValueError("snapshot checksum mismatch", body_end)
    try:
        members, membership = _decode_members(blob[HEADER_SIZE : HEADER_SIZE + mlen])
    except ValueError as err:
        raise ValueError(str(err), HEADER_SIZE) from err
    data = blob[HEADER_SIZE + mlen : body_end]
    meta = SnapshotMeta(index=index, term=term, members=members, membership=membership)
    return Snapshot(meta=meta, data=data)


def read_snapshot(path: str) -> Snapshot:
    """Read and fully verify a snapshot file; raise StorageCorrupt naming the path and offset."""
    with open(path, "rb") as f:
        blob = f.read()
    try:
        snap = _decode(blob)
    except ValueError as err:
        offset = err.args[1] if len(err.args) > 1 else 0
        raise StorageCorrupt(path, int(offset), str(err.args[0])) from err
    m = _NAME_RE.match(os.path.basename(path))
    if m and (int(m.group(1)), int(m.group(2))) != (snap.meta.index, snap.meta.term):
        raise StorageCorrupt(
            path,
            0,
            f"file name does not match header index={snap.meta.index} term={snap.meta.term}",
        )
    return snap


class SnapshotAssembler:
    """Rebuild a snapshot from streamed chunks; ``finish()`` verifies it and returns it.

    ``write(chunk, offset)`` rejects a chunk whose ``offset`` is not the number of bytes received
    so far (a lost or repeated chunk), and a stream longer than its header declares.
    """

    def __init__(self, max_bytes: int = 1 << 34) -> None:
        self._buf = bytearray()
        self._expected: int | None = None
        self._max_bytes = max_bytes

    @property
    def received(self) -> int:
        return len(self._buf)

    @property
    def expected(self) -> int | None:
        """Total stream length, known once the header has arrived."""
        return self._expected

    def write(self, chunk: bytes, offset: int | None = None) -> None:
        if offset is not None and offset != len(self._buf):
            raise SnapshotStreamError(f"chunk at offset {offset}, expected offset {len(self._buf)}")
        self._buf += chunk
        if self._expected is None and len(self._buf) >= HEADER_SIZE:
            try:
                _i, _t, mlen, dlen = _parse_header(bytes(self._buf[:HEADER_SIZE]))
            except ValueError as err:
                raise SnapshotStreamError(str(err)) from err
            self._expected = HEADER_SIZE + mlen + dlen + TRAILER_SIZE
            if self._expected > self._max_bytes:
                raise SnapshotStreamError(f"snapshot of {self._expected} bytes exceeds limit")
        if self._expected is not None and len(self._buf) > self._expected:
            raise SnapshotStreamError(
                f"stream has {len(self._buf)} bytes, header declares {self._expected}"
            )

    def finish(self) -> Snapshot:
        if self._expected is None or len(self._buf) != self._expected:
            raise SnapshotStreamError(
                f"stream incomplete: {len(self._buf)} of {self._expected or '?'} bytes"
            )
        try:
            snap = _decode(bytes(self._buf))
        except ValueError as err:
            raise SnapshotStreamError(str(err.args[0])) from err
        return snap

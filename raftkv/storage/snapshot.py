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

Streaming (nothing bigger than a block or a chunk in memory; the same bytes as above):
- ``write_snapshot_stream(snap_dir, meta, write_data)`` writes ``<name>.stream.tmp`` with
  ``write_data(out)`` producing the data (of a length not known in advance): the header is
  written last (pwrite at offset 0) and the checksum combined (``crc32_combine``), then fsync.
  The caller renames it into place (``Storage.adopt_snapshot_file``).
- ``verify_snapshot_file(path)`` checks a file block by block and returns its meta and where
  its data lies; ``open_snapshot_data(path)`` does so and opens the data for reading.
- ``FileAssembler`` receives a streamed snapshot into a file, chunk by chunk at increasing
  offsets (resumable: ``received`` is where the next chunk must start), and verifies it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from raftkv.raft.errors import MessageDecodeError
from raftkv.raft.membership import membership_from_json, membership_to_json
from raftkv.raft.types import Membership, Snapshot, SnapshotMeta
from raftkv.storage.errors import StorageCorrupt
from raftkv.storage.fsutil import FILE_MODE, sync_dir, sync_file, write_all

__all__ = [
    "FileAssembler",
    "SnapshotFileInfo",
    "SnapshotStreamError",
    "crc32_combine",
    "encode_snapshot",
    "list_snapshots",
    "open_snapshot_data",
    "read_snapshot",
    "snapshot_name",
    "verify_snapshot_file",
    "write_snapshot",
    "write_snapshot_stream",
]

SNAP_MAGIC = b"RKVSNAP\n"
SNAP_VERSION = 1
_HEAD = struct.Struct("<8sHHQQIQ")
_U32 = struct.Struct("<I")
HEADER_SIZE = _HEAD.size + 4
TRAILER_SIZE = 4
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
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:  # Recursion: nesting
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


# ---------------------------------------------------------------------- streaming

_BLOCK = 1 << 20
STREAM_TMP_SUFFIX = ".stream.tmp"
RECV_TMP_SUFFIX = ".recv.tmp"


def _gf2_times(mat: list[int], vec: int) -> int:
    out = 0
    i = 0
    while vec:
        if vec & 1:
            out ^= mat[i]
        vec >>= 1
        i += 1
    return out


def _gf2_square(mat: list[int]) -> list[int]:
    return [_gf2_times(mat, mat[n]) for n in range(32)]


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """zlib's crc32_combine: the CRC-32 of A+B from crc(A), crc(B) and len(B) (zlib's
    algorithm: len2 zero bytes applied to crc1 through GF(2) matrix squaring)."""
    if len2 <= 0:
        return crc1
    odd = [0xEDB88320] + [1 << n for n in range(31)]  # the operator for one zero bit
    even = _gf2_square(odd)  # two zero bits
    odd = _gf2_square(even)  # four zero bits
    while True:
        even = _gf2_square(odd)  # first pass: one zero byte
        if len2 & 1:
            crc1 = _gf2_times(even, crc1)
        len2 >>= 1
        if not len2:
            break
        odd = _gf2_square(even)
        if len2 & 1:
            crc1 = _gf2_times(odd, crc1)
        len2 >>= 1
        if not len2:
            break
    return crc1 ^ crc2


def _members_bytes(meta: SnapshotMeta) -> bytes:
    doc: object = list(meta.members)
    if meta.membership is not None:
        doc = {"members": list(meta.members), "membership": membership_to_json(meta.membership)}
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode("utf-8")


class _CrcWriter:
    """File-like sink for the data: writes through, keeps the CRC and the length."""

    def __init__(self, fd: int, crc: int) -> None:
        self.fd = fd
        self.crc = crc
        self.length = 0

    def write(self, data: bytes) -> int:
        write_all(self.fd, [data])
        self.crc = zlib.crc32(data, self.crc)
        self.length += len(data)
        return len(data)


def write_snapshot_stream(
    snap_dir: str, meta: SnapshotMeta, write_data: Callable[[_CrcWriter], object]
) -> tuple[str, int]:
    """Write a snapshot whose data ``write_data(out)`` streams into ``out.write``; return the
    fsynced ``*.stream.tmp`` path (not yet in place) and the data length."""
    path = os.path.join(snap_dir, snapshot_name(meta.index, meta.term) + STREAM_TMP_SUFFIX)
    members = _members_bytes(meta)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.lseek(fd, HEADER_SIZE, os.SEEK_SET)
        out = _CrcWriter(fd, 0)
        out.write(members)
        write_data(out)
        data_len = out.length - len(members)
        header = _header(meta, members, data_len)
        crc = crc32_combine(zlib.crc32(header), out.crc, out.length)
        write_all(fd, [_U32.pack(crc)])
        os.pwrite(fd, header, 0)
        sync_file(fd)
    except BaseException:
        os.close(fd)
        fd = -1
        os.unlink(path)
        raise
    finally:
        if fd >= 0:
            os.close(fd)
    return path, data_len


@dataclass(frozen=True, slots=True)
class SnapshotFileLayout:
    """Where a verified snapshot file keeps its data."""

    meta: SnapshotMeta
    data_offset: int
    data_len: int
    size: int


def _verify_stream(f: BinaryIO, where: str) -> SnapshotFileLayout:
    head = f.read(HEADER_SIZE)
    if len(head) < HEADER_SIZE:
        raise StorageCorrupt(where, 0, f"snapshot truncated ({len(head)} bytes)")
    try:
        index, term, mlen, dlen = _parse_header(head)
    except ValueError as err:
        raise StorageCorrupt(where, 0, str(err)) from err
    size = HEADER_SIZE + mlen + dlen + TRAILER_SIZE
    raw_members = f.read(mlen)
    crc = zlib.crc32(raw_members, zlib.crc32(head))
    left = dlen
    while left > 0:
        block = f.read(min(_BLOCK, left))
        if not block:
            break
        crc = zlib.crc32(block, crc)
        left -= len(block)
    trailer = f.read(TRAILER_SIZE)
    extra = f.read(1)
    if len(raw_members) != mlen or left or len(trailer) != TRAILER_SIZE or extra:
        raise StorageCorrupt(
            where, size, f"snapshot size differs from the {size} bytes its header declares"
        )
    if _U32.unpack(trailer)[0] != crc:
        raise StorageCorrupt(where, size - TRAILER_SIZE, "snapshot checksum mismatch")
    try:
        members, membership = _decode_members(raw_members)
    except ValueError as err:
        raise StorageCorrupt(where, HEADER_SIZE, str(err)) from err
    meta = SnapshotMeta(index=index, term=term, members=members, membership=membership)
    return SnapshotFileLayout(meta, HEADER_SIZE + mlen, dlen, size)


def verify_snapshot_file(path: str, *, check_name: bool = True) -> SnapshotFileLayout:
    """Check a snapshot file block by block (both checksums, sizes, the name); raise
    ``StorageCorrupt`` naming the path and offset, else return its meta and data position."""
    with open(path, "rb") as f:
        layout = _verify_stream(f, path)
    m = _NAME_RE.match(os.path.basename(path))
    if (
        check_name
        and m
        and (int(m.group(1)), int(m.group(2))) != (layout.meta.index, layout.meta.term)
    ):
        raise StorageCorrupt(
            path,
            0,
            f"file name does not match header index={layout.meta.index} term={layout.meta.term}",
        )
    return layout


def open_snapshot_data(path: str) -> tuple[SnapshotFileLayout, BinaryIO]:
    """Verify ``path`` and return its layout and the file opened at the start of its data (the
    caller closes it; reads must stop after ``data_len`` bytes)."""
    layout = verify_snapshot_file(path)
    f = open(path, "rb")  # noqa: SIM115 - returned to the caller
    f.seek(layout.data_offset)
    return layout, f


class FileAssembler:
    """Receive a streamed snapshot into ``path`` chunk by chunk (at most one chunk in memory).

    ``write(offset, chunk)`` appends a chunk that starts at ``received`` (else
    ``SnapshotStreamError``, with ``received`` telling the sender where to resume); the header
    (first ``HEADER_SIZE`` bytes) fixes the total size. ``finish()`` fsyncs and verifies the
    file and returns its layout. Reopening an existing partial file resumes after its bytes.
    """

    def __init__(self, path: str, max_bytes: int = 1 << 40) -> None:
        self.path = path
        self._max_bytes = max_bytes
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        self.received = os.fstat(self._fd).st_size
        self.expected: int | None = None
        if self.received >= HEADER_SIZE:
            self._read_expected(os.pread(self._fd, HEADER_SIZE, 0))
        os.lseek(self._fd, self.received, os.SEEK_SET)

    def _read_expected(self, head: bytes) -> None:
        try:
            _i, _t, mlen, dlen = _parse_header(head)
        except ValueError as err:
            raise SnapshotStreamError(str(err)) from err
        self.expected = HEADER_SIZE + mlen + dlen + TRAILER_SIZE
        if self.expected > self._max_bytes:
            raise SnapshotStreamError(f"snapshot of {self.expected} bytes exceeds limit")

    def write(self, offset: int, chunk: bytes) -> None:
        if offset != self.received:
            raise SnapshotStreamError(f"chunk at offset {offset}, expected offset {self.received}")
        end = self.received + len(chunk)
        if self.expected is not None and end > self.expected:
            raise SnapshotStreamError(f"stream has {end} bytes, header declares {self.expected}")
        if self.expected is None and end >= HEADER_SIZE:
            head = os.pread(self._fd, self.received, 0) + chunk
            self._read_expected(head[:HEADER_SIZE])
            assert self.expected is not None
            if end > self.expected:
                raise SnapshotStreamError(
                    f"stream has {end} bytes, header declares {self.expected}"
                )
        write_all(self._fd, [chunk])
        self.received = end

    @property
    def complete(self) -> bool:
        return self.expected is not None and self.received == self.expected

    def finish(self) -> SnapshotFileLayout:
        if not self.complete:
            raise SnapshotStreamError(
                f"stream incomplete: {self.received} of {self.expected or '?'} bytes"
            )
        sync_file(self._fd)
        try:
            return verify_snapshot_file(self.path, check_name=False)
        except StorageCorrupt as err:
            raise SnapshotStreamError(str(err)) from err

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def discard(self) -> None:
        self.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

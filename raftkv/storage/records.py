"""records.py — byte layout of write-ahead-log records (framing + payloads). Pure: no I/O.

Frame (little-endian), 16 bytes then the payload::

    u32 length        payload length in bytes (<= MAX_PAYLOAD)
    u8  type          RecordType
    3 bytes zero      reserved
    u32 payload_crc   zlib.crc32 (CRC-32/ISO-HDLC) of the payload
    u32 header_crc    zlib.crc32 of the 12 bytes above: a flipped length is caught before it is
                      trusted (so a damaged length can never pass for a torn tail)

Payloads:

- STATE (1), first record of every segment:  HardState, then u64 snap_index, u64 snap_term —
  the hard state and newest snapshot when the segment was created, so that deleting older
  segments never loses either.
- BATCH (2), one per ``Storage.save`` call (so a save is all-or-nothing on disk):
  u8 flags (bit 0: a HardState follows), [HardState], u32 count, then ``count`` entries, each
  u64 index, u64 term, u8 kind, u32 data_len, data. Replay rule: if the first entry's index is
  <= the last index in the log, the log's suffix from that index is replaced.
- SNAP (3), written after a snapshot file is durable: u64 index, u64 term. Replay rule (Raft
  §7): if the log holds entry ``index`` with ``term``, entries up to it are dropped and the rest
  kept; otherwise the whole log is discarded and restarts after ``index``.

HardState: u64 term, u64 commit, u16 voted_for length (0xFFFF = None), voted_for UTF-8.

Decoders raise ``RecordError`` (a ValueError) on any malformed payload; callers turn it into
``StorageCorrupt`` with the file and offset.
"""

from __future__ import annotations

import enum
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from raftkv.raft.types import Entry, EntryKind, HardState

__all__ = [
    "FRAME_SIZE",
    "MAX_PAYLOAD",
    "Batch",
    "RecordError",
    "RecordType",
    "SnapMark",
    "StateRecord",
    "decode_batch",
    "decode_snap",
    "decode_state",
    "encode_batch",
    "encode_frame",
    "encode_snap",
    "encode_state",
    "parse_frame_header",
]

FRAME_SIZE = 16
MAX_PAYLOAD = 1 << 30  # 1 GiB: anything larger is treated as damage, not data

_HEAD = struct.Struct("<IB3xI")
_U32 = struct.Struct("<I")
_HS = struct.Struct("<QQH")
_ANCHOR = struct.Struct("<QQ")
_BATCH_HEAD = struct.Struct("<B")
_COUNT = struct.Struct("<I")
_ENTRY = struct.Struct("<QQBI")
_NO_VOTE = 0xFFFF
_KINDS = {int(k): k for k in EntryKind}


class RecordType(enum.IntEnum):
    STATE = 1
    BATCH = 2
    SNAP = 3


class RecordError(ValueError):
    """A record payload (whose checksum matched) does not decode."""


@dataclass(frozen=True, slots=True)
class StateRecord:
    hard_state: HardState
    snap_index: int
    snap_term: int


@dataclass(frozen=True, slots=True)
class Batch:
    hard_state: HardState | None
    entries: list[Entry]


@dataclass(frozen=True, slots=True)
class SnapMark:
    index: int
    term: int


def encode_frame(rtype: RecordType, payload: bytes) -> bytes:
    """The 16-byte frame header for ``payload`` (write it, then the payload)."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"record of {len(payload)} bytes exceeds the {MAX_PAYLOAD} byte limit")
    head = _HEAD.pack(len(payload), rtype, zlib.crc32(payload))
    return head + _U32.pack(zlib.crc32(head))


def parse_frame_header(buf: bytes | memoryview, off: int) -> tuple[int, int, int] | None:
    """Return (length, type, payload_crc) of the frame at ``off``, or None if its header CRC fails.

    The caller guarantees ``FRAME_SIZE`` bytes are available at ``off``.
    """
    length, rtype, pcrc = _HEAD.unpack_from(buf, off)
    (hcrc,) = _U32.unpack_from(buf, off + 12)
    if zlib.crc32(buf[off : off + 12]) != hcrc:
        return None
    return length, rtype, pcrc


def _encode_hs(hs: HardState) -> bytes:
    if hs.voted_for is None:
        return _HS.pack(hs.term, hs.commit, _NO_VOTE)
    vote = hs.voted_for.encode("utf-8")
    if len(vote) >= _NO_VOTE:
        raise ValueError("voted_for is too long")
    return _HS.pack(hs.term, hs.commit, len(vote)) + vote


def _decode_hs(buf: memoryview, off: int) -> tuple[HardState, int]:
    term, commit, vlen = _HS.unpack_from(buf, off)
    off += _HS.size
    if vlen == _NO_VOTE:
        return HardState(term=term, voted_for=None, commit=commit), off
    if off + vlen > len(buf):
        raise RecordError("voted_for runs past the end of the record")
    try:
        vote = bytes(buf[off : off + vlen]).decode("utf-8")
    except UnicodeDecodeError as err:
        raise RecordError("voted_for is not UTF-8") from err
    return HardState(term=term, voted_for=vote, commit=commit), off + vlen


def encode_state(hs: HardState, snap_index: int, snap_term: int) -> bytes:
    return _encode_hs(hs) + _ANCHOR.pack(snap_index, snap_term)


def decode_state(payload: bytes | memoryview) -> StateRecord:
    buf = memoryview(payload)
    try:
        hs, off = _decode_hs(buf, 0)
        snap_index, snap_term = _ANCHOR.unpack_from(buf, off)
    except struct.error as err:
        raise RecordError(f"truncated STATE record: {err}") from err
    if off + _ANCHOR.size != len(buf):
        raise RecordError("trailing bytes after STATE record")
    return StateRecord(hs, snap_index, snap_term)


def encode_batch(hs: HardState | None, entries: Sequence[Entry]) -> list[bytes]:
    """The payload of a BATCH record, as a list of parts to join or ``writev``."""
    parts: list[bytes] = []
    if hs is None:
        parts.append(b"\x00")
    else:
        parts.append(b"\x01")
        parts.append(_encode_hs(hs))
    parts.append(_COUNT.pack(len(entries)))
    pack = _ENTRY.pack
    for e in entries:
        parts.append(pack(e.index, e.term, e.kind, len(e.data)))
        parts.append(e.data)
    return parts


def decode_batch(payload: bytes | memoryview) -> Batch:
    buf = memoryview(payload)
    try:
        (flags,) = _BATCH_HEAD.unpack_from(buf, 0)
        off = 1
        if flags & ~1:
            raise RecordError(f"unknown BATCH flags {flags:#x}")
        hs: HardState | None = None
        if flags & 1:
            hs, off = _decode_hs(buf, off)
        (count,) = _COUNT.unpack_from(buf, off)
        off += _COUNT.size
        entries: list[Entry] = []
        unpack = _ENTRY.unpack_from
        esize = _ENTRY.size
        end = len(buf)
        for _ in range(count):
            index, term, kind, dlen = unpack(buf, off)
            off += esize
            if off + dlen > end:
                raise RecordError("entry data runs past the end of the record")
            k = _KINDS.get(kind)
            if k is None:
                raise RecordError(f"unknown entry kind {kind}")
            entries.append(Entry(index=index, term=term, kind=k, data=bytes(buf[off : off + dlen])))
            off += dlen
    except struct.error as err:
        raise RecordError(f"truncated BATCH record: {err}") from err
    if off != end:
        raise RecordError("trailing bytes after BATCH record")
    return Batch(hs, entries)


def encode_snap(index: int, term: int) -> bytes:
    return _ANCHOR.pack(index, term)


def decode_snap(payload: bytes | memoryview) -> SnapMark:
    if len(payload) != _ANCHOR.size:
        raise RecordError(f"SNAP record has {len(payload)} bytes, expected {_ANCHOR.size}")
    index, term = _ANCHOR.unpack_from(payload, 0)
    return SnapMark(index, term)

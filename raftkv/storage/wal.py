"""wal.py — segment files of the write-ahead log: naming, header, reading, appending.

A segment is ``wal/<seq:016d>.wal``: a 24-byte header then framed records (see records.py)::

    8 bytes  magic  b"RKVWAL\\r\\n"
    u16      format version (1)
    u16      reserved (0)
    u64      seq (equals the number in the file name; segments are numbered 1, 2, 3, ...)
    u32      zlib.crc32 of the 20 bytes above

Invariants:
- A segment is created complete or not at all: header + first record are written to
  ``<name>.tmp``, fsynced, renamed, and the directory fsynced (``create_segment``).
- Records are only ever appended to the newest ("active") segment; ``SegmentWriter.append``
  issues one ``writev`` and one ``fsync`` per call.
- ``scan_segment`` reads every record and classifies damage. Only the newest segment may end in
  a *torn tail* — the final record of a write cut short by a crash: a frame header cut off at
  EOF, a record whose declared length runs past EOF, nothing but zero bytes from some offset to
  EOF, or (like etcd) a final record with a bad checksum that contains an unwritten (all-zero)
  sector. Anything else — a bad checksum followed by more data, a damaged older segment, a bad
  header — raises ``StorageCorrupt`` naming the file and the byte offset.
"""

from __future__ import annotations

import os
import re
import struct
import zlib
from dataclasses import dataclass, field

from raftkv.storage.errors import StorageCorrupt
from raftkv.storage.fsutil import FILE_MODE, sync_dir, sync_file, write_all
from raftkv.storage.records import FRAME_SIZE, MAX_PAYLOAD, RecordType, parse_frame_header

__all__ = [
    "SEGMENT_HEADER_SIZE",
    "ScannedRecord",
    "SegmentScan",
    "SegmentWriter",
    "TornTail",
    "create_segment",
    "list_segments",
    "parse_segment_name",
    "scan_segment",
    "segment_name",
]

SEGMENT_MAGIC = b"RKVWAL\r\n"
SEGMENT_VERSION = 1
_SEG_HEAD = struct.Struct("<8sHHQ")
_U32 = struct.Struct("<I")
SEGMENT_HEADER_SIZE = _SEG_HEAD.size + 4
_NAME_RE = re.compile(r"^(\d{16})\.wal$")
_SECTOR = 512
_MIN_ZERO_TAIL = 32
_TYPES = {int(t): t for t in RecordType}


def segment_name(seq: int) -> str:
    return f"{seq:016d}.wal"


def parse_segment_name(name: str) -> int | None:
    m = _NAME_RE.match(name)
    return int(m.group(1)) if m else None


def list_segments(wal_dir: str) -> list[tuple[int, str]]:
    """(seq, path) of every segment file in ``wal_dir``, oldest first."""
    out = []
    for name in os.listdir(wal_dir):
        seq = parse_segment_name(name)
        if seq is not None:
            out.append((seq, os.path.join(wal_dir, name)))
    out.sort()
    return out


def encode_segment_header(seq: int) -> bytes:
    head = _SEG_HEAD.pack(SEGMENT_MAGIC, SEGMENT_VERSION, 0, seq)
    return head + _U32.pack(zlib.crc32(head))


@dataclass(frozen=True, slots=True)
class ScannedRecord:
    offset: int
    rtype: RecordType
    payload: memoryview


@dataclass(frozen=True, slots=True)
class TornTail:
    offset: int  # where the valid data ends (the file is cut back to here)
    size: int  # the file's size before repair
    why: str


@dataclass(slots=True)
class SegmentScan:
    path: str
    seq: int
    size: int
    records: list[ScannedRecord] = field(default_factory=list)
    valid_end: int = SEGMENT_HEADER_SIZE
    torn: TornTail | None = None


def _all_zero(buf: memoryview, start: int, end: int) -> bool:
    chunk = buf[start:end]
    return chunk.nbytes == 0 or bytes(chunk).count(0) == chunk.nbytes


def _has_zero_sector(buf: memoryview, start: int, end: int) -> bool:
    """True if [start, end) shows an unwritten sector: an all-zero chunk that is a whole
    512-byte-aligned sector, or the record's final chunk (>= 32 bytes) after the last boundary.

    Small chunks elsewhere are ignored: encoded integers are full of zero bytes.
    """
    pos = start
    while pos < end:
        nxt = min(end, (pos // _SECTOR + 1) * _SECTOR)
        whole = nxt - pos == _SECTOR
        final = nxt == end and nxt - pos >= _MIN_ZERO_TAIL
        if (whole or final) and _all_zero(buf, pos, nxt):
            return True
        pos = nxt
    return False


def scan_segment(path: str, seq: int, is_last: bool) -> SegmentScan:
    """Read and check one segment. Raises StorageCorrupt; returns the records and any torn tail."""
    with open(path, "rb") as f:
        data = f.read()
    buf = memoryview(data)
    size = len(data)
    scan = SegmentScan(path=path, seq=seq, size=size)
    if size < SEGMENT_HEADER_SIZE:
        raise StorageCorrupt(path, 0, f"segment header truncated ({size} bytes)")
    magic, version, _reserved, hseq = _SEG_HEAD.unpack_from(buf, 0)
    (hcrc,) = _U32.unpack_from(buf, _SEG_HEAD.size)
    if magic != SEGMENT_MAGIC:
        raise StorageCorrupt(path, 0, "not a raftkv WAL segment (bad magic)")
    if zlib.crc32(buf[: _SEG_HEAD.size]) != hcrc:
        raise StorageCorrupt(path, 0, "segment header checksum mismatch")
    if version != SEGMENT_VERSION:
        raise StorageCorrupt(path, 0, f"unsupported segment format version {version}")
    if hseq != seq:
        raise StorageCorrupt(path, 0, f"segment header says seq {hseq}, file name says {seq}")

    off = SEGMENT_HEADER_SIZE
    while off < size:
        torn_why: str | None = None
        corrupt_why: str | None = None
        if size - off < FRAME_SIZE:
            torn_why = "record header cut off at end of file"
        else:
            head = parse_frame_header(buf, off)
            if head is None:
                if _all_zero(buf, off, size):
                    torn_why = "zero-filled tail"
                else:
                    corrupt_why = "record header checksum mismatch"
            else:
                length, rtype, pcrc = head
                end = off + FRAME_SIZE + length
                if length > MAX_PAYLOAD:
                    corrupt_why = f"record length {length} exceeds limit"
                elif end > size:
                    torn_why = f"record of {length} bytes runs past end of file"
                elif zlib.crc32(buf[off + FRAME_SIZE : end]) != pcrc:
                    tail_clean = _all_zero(buf, end, size)
                    if tail_clean and _has_zero_sector(buf, off + FRAME_SIZE, end):
                        torn_why = "final record partly unwritten (zero sector, bad checksum)"
                    else:
                        corrupt_why = f"record checksum mismatch (type {rtype}, {length} bytes)"
                elif rtype not in _TYPES:
                    corrupt_why = f"unknown record type {rtype}"
                else:
                    scan.records.append(
                        ScannedRecord(off, _TYPES[rtype], buf[off + FRAME_SIZE : end])
                    )
                    off = end
                    continue
        if corrupt_why is not None or torn_why is None:
            raise StorageCorrupt(path, off, corrupt_why or "damaged record")
        if not is_last:
            raise StorageCorrupt(path, off, f"{torn_why} in a segment that is not the newest")
        scan.torn = TornTail(offset=off, size=size, why=torn_why)
        break
    scan.valid_end = off
    return scan


def create_segment(wal_dir: str, seq: int, first_record: list[bytes]) -> SegmentWriter:
    """Create segment ``seq`` atomically with ``first_record`` in it; return its writer."""
    path = os.path.join(wal_dir, segment_name(seq))
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        size = write_all(fd, [encode_segment_header(seq), *first_record])
        sync_file(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)
    sync_dir(wal_dir)
    return SegmentWriter.open_existing(path, seq, size)


class SegmentWriter:
    """Appends records to the active segment: one writev + one fsync per ``append``."""

    def __init__(self, fd: int, path: str, seq: int, size: int) -> None:
        self.fd = fd
        self.path = path
        self.seq = seq
        self.size = size

    @classmethod
    def open_existing(cls, path: str, seq: int, size: int) -> SegmentWriter:
        fd = os.open(path, os.O_WRONLY)
        os.lseek(fd, size, os.SEEK_SET)
        return cls(fd, path, seq, size)

    def append(self, parts: list[bytes]) -> None:
        self.size += write_all(self.fd, parts)
        sync_file(self.fd)

    def truncate(self, size: int) -> None:
        """Cut the file back to ``size`` bytes (durably) and continue writing there."""
        os.ftruncate(self.fd, size)
        sync_file(self.fd)
        os.lseek(self.fd, size, os.SEEK_SET)
        self.size = size

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

"""Fuzz the on-disk readers (raftkv/storage/): WAL record payload decoders, the segment scanner,
whole-directory recovery and the snapshot reader/assembler.

Property: for ANY bytes on disk, recovery either rebuilds a state or raises ``StorageCorrupt``
naming the file and offset — never another exception (which would crash the node at start with
a traceback instead of the one-line diagnosis ``raftkv check-data`` gives), never a hang.
Random bytes rarely get past the CRCs, so the generators also build records with VALID framing
and checksums around fuzzed payloads, and flip/truncate bytes of real files written by Storage."""

from __future__ import annotations

import os
import shutil
import struct
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

from hypothesis import given, strategies as st

from raftkv.raft.types import Entry, EntryKind, HardState, Snapshot, SnapshotMeta
from raftkv.storage import Storage
from raftkv.storage.errors import StorageCorrupt
from raftkv.storage.records import (
    RecordError,
    RecordType,
    decode_batch,
    decode_snap,
    decode_state,
    encode_batch,
    encode_state,
)
from raftkv.storage.recovery import SNAP_DIR, WAL_DIR, scan_data_dir
from raftkv.storage.snapshot import (
    FileAssembler,
    SnapshotStreamError,
    encode_snapshot,
    read_snapshot,
    snapshot_name,
)
from raftkv.storage.wal import encode_segment_header, segment_name

payloads = st.binary(max_size=200)


@contextmanager
def data_dir() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="raftkv-fuzz-")
    try:
        os.makedirs(os.path.join(d, WAL_DIR))
        os.makedirs(os.path.join(d, SNAP_DIR))
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _recover(d: str) -> None:
    """scan_data_dir must succeed or raise StorageCorrupt; so must a full Storage.open."""
    try:
        scan_data_dir(d)
    except StorageCorrupt as err:
        assert err.path and str(err)
        return
    try:
        st = Storage.open(d)
    except StorageCorrupt:
        return
    st.close()


@given(payloads)
def test_record_payload_decoders(blob: bytes) -> None:
    for decode in (decode_batch, decode_state, decode_snap):
        try:
            decode(blob)
        except RecordError as err:
            assert str(err)


def _frame(rtype: int, payload: bytes) -> bytes:
    head = struct.pack("<IB3xI", len(payload), rtype, zlib.crc32(payload))
    return head + struct.pack("<I", zlib.crc32(head)) + payload


hard_states = st.builds(
    HardState,
    term=st.integers(0, 2**64 - 1),
    voted_for=st.none() | st.text(max_size=8),
    commit=st.integers(0, 2**64 - 1),
)
entries = st.builds(
    Entry,
    index=st.integers(0, 2**64 - 1) | st.integers(1, 20),
    term=st.integers(0, 2**64 - 1) | st.integers(1, 5),
    kind=st.sampled_from(list(EntryKind)),
    data=st.binary(max_size=16),
)
framed_records = st.one_of(
    st.tuples(st.integers(0, 255), payloads).map(lambda t: _frame(*t)),
    st.tuples(hard_states, st.integers(0, 50), st.integers(0, 5)).map(
        lambda t: _frame(RecordType.STATE, encode_state(*t))
    ),
    st.tuples(st.none() | hard_states, st.lists(entries, max_size=4)).map(
        lambda t: _frame(RecordType.BATCH, b"".join(encode_batch(*t)))
    ),
    st.tuples(st.integers(0, 2**64 - 1) | st.integers(0, 30), st.integers(0, 5)).map(
        lambda t: _frame(RecordType.SNAP, struct.pack("<QQ", *t))
    ),
    st.binary(max_size=40),  # raw garbage between records
)


@given(st.lists(framed_records, max_size=6), st.integers(1, 3))
def test_segments_of_framed_records(records: list[bytes], seq: int) -> None:
    with data_dir() as d:
        path = os.path.join(d, WAL_DIR, segment_name(seq))
        with open(path, "wb") as f:
            f.write(encode_segment_header(seq) + b"".join(records))
        _recover(d)


def _real_data_dir(d: str) -> None:
    st = Storage.open(d, segment_bytes=4096)
    try:
        st.save(
            HardState(term=1, voted_for="a", commit=0),
            [Entry(index=i, term=1, data=b"x" * (i * 7 % 90)) for i in range(1, 40)],
        )
        st.save_snapshot(
            Snapshot(meta=SnapshotMeta(index=20, term=1, members=("a", "b")), data=b'{"v":1}')
        )
        st.save(
            HardState(term=2, voted_for="b", commit=30),
            [Entry(index=i, term=2, data=b"y" * 50) for i in range(40, 60)],
        )
    finally:
        st.close()


_TEMPLATE: dict[str, bytes] = {}


def _template_files() -> dict[str, bytes]:
    if not _TEMPLATE:
        with data_dir() as d:
            _real_data_dir(d)
            for sub in (WAL_DIR, SNAP_DIR):
                for name in sorted(os.listdir(os.path.join(d, sub))):
                    with open(os.path.join(d, sub, name), "rb") as f:
                        _TEMPLATE[f"{sub}/{name}"] = f.read()
    return _TEMPLATE


@given(st.data())
def test_damaged_real_data_dirs(data: st.DataObject) -> None:
    files = dict(_template_files())
    name = data.draw(st.sampled_from(sorted(files)))
    blob = bytearray(files[name])
    how = data.draw(st.sampled_from(["flip", "truncate", "splice", "drop"]))
    if how == "flip":
        for _ in range(data.draw(st.integers(1, 4))):
            pos = data.draw(st.integers(0, len(blob) - 1))
            blob[pos] ^= 1 << data.draw(st.integers(0, 7))
    elif how == "truncate":
        del blob[data.draw(st.integers(0, len(blob))) :]
    elif how == "splice":
        pos = data.draw(st.integers(0, len(blob)))
        blob[pos:pos] = data.draw(st.binary(min_size=1, max_size=64))
    if how == "drop":
        del files[name]
    else:
        files[name] = bytes(blob)
    with data_dir() as d:
        for rel, content in files.items():
            with open(os.path.join(d, rel), "wb") as f:
                f.write(content)
        _recover(d)


snapshot_blobs = st.builds(
    lambda i, t, m, data: encode_snapshot(
        Snapshot(meta=SnapshotMeta(index=i, term=t, members=tuple(m)), data=data)
    ),
    st.integers(0, 2**64 - 1),
    st.integers(0, 2**64 - 1),
    st.lists(st.text(max_size=6), max_size=4),
    st.binary(max_size=64),
)


@st.composite
def damaged_snapshots(draw: st.DrawFn) -> bytes:
    blob = bytearray(draw(snapshot_blobs))
    for _ in range(draw(st.integers(0, 3))):
        if blob:
            blob[draw(st.integers(0, len(blob) - 1))] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        del blob[draw(st.integers(0, len(blob))) :]
    return bytes(blob)


@given(damaged_snapshots() | st.binary(max_size=120))
def test_snapshot_reader(blob: bytes) -> None:
    with data_dir() as d:
        path = os.path.join(d, SNAP_DIR, snapshot_name(1, 1))
        with open(path, "wb") as f:
            f.write(blob)
        try:
            snap = read_snapshot(path)
        except StorageCorrupt as err:
            assert err.path == path
        else:
            assert encode_snapshot(snap) == blob  # accepted only if exactly what was written


@given(damaged_snapshots(), st.lists(st.integers(1, 50), max_size=8), st.integers(0, 3))
def test_snapshot_chunk_receiver(blob: bytes, cuts: list[int], skew: int) -> None:
    """The FileAssembler behind POST /raft/v1/snapshot, fed any bytes in any cuts (``skew``
    shifts one offset: a lost or repeated chunk): a clear SnapshotStreamError, or exactly the
    bytes that were sent, verified."""
    with data_dir() as d:
        asm = FileAssembler(os.path.join(d, SNAP_DIR, "x.recv.tmp"), max_bytes=1 << 16)
        pos = 0
        try:
            for i, n in enumerate([*cuts, len(blob)]):
                chunk = blob[pos : pos + n]
                asm.write(pos + (skew if i == 1 else 0), chunk)
                pos += len(chunk)
                if pos >= len(blob):
                    break
            asm.finish()
        except SnapshotStreamError as err:
            assert str(err)
        else:
            with open(asm.path, "rb") as f:
                assert f.read() == blob
            assert encode_snapshot(read_snapshot(asm.path)) == blob
        finally:
            asm.close()

"""The backup file format (raftkv/backup.py): round trip, damage in every region, truncation."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from raftkv.backup import (
    BACKUP_MAGIC,
    TRAILER_SIZE,
    BackupError,
    build_header,
    iter_backup,
    read_backup,
    verify_backup,
)
from raftkv.kv import KVStateMachine
from raftkv.kv.commands import Command, Op, encode_command


def _state(n: int = 50) -> tuple[bytes, int]:
    sm = KVStateMachine()
    with sm.lock:
        for i in range(1, n + 1):
            sm.apply(i, 2, encode_command(Command(op=Op.PUT, key=f"k{i}", value=f"v{i}" * 3)))
    return sm.snapshot(), len(sm)


def _file(n: int = 50) -> tuple[bytes, int, bytes]:
    data, keys = _state(n)
    header = build_header(
        index=n,
        term=2,
        keys=keys,
        data_bytes=len(data),
        cluster_id="abc",
        node="raft-0",
        created="2026-01-01T00:00:00Z",
    )
    return b"".join(iter_backup(header, data, chunk=7)), len(header), data


def test_round_trip(tmp_path: Path) -> None:
    blob, hlen, data = _file()
    path = tmp_path / "b.snapshot"
    path.write_bytes(blob)
    info, got = read_backup(str(path))
    assert got == data
    assert (info.index, info.term, info.keys, info.cluster_id, info.node) == (
        50,
        2,
        50,
        "abc",
        "raft-0",
    )
    assert info.size == len(blob) == hlen + len(data) + TRAILER_SIZE
    assert len(info.checksum) == 64
    sm = KVStateMachine()
    sm.restore(got)
    assert sm.get("k7") == ("v7v7v7", 7)


def test_empty_state_round_trips() -> None:
    blob = b"".join(
        iter_backup(
            build_header(
                index=0, term=0, keys=0, data_bytes=0, cluster_id="", node="n", created=""
            ),
            b"",
        )
    )
    info, data = verify_backup(io.BytesIO(blob), keep_data=False)
    assert info.keys == 0 and info.data_bytes == 0 and data is None


def _region(offset: int, hlen: int, size: int) -> str:
    if offset < hlen:
        return "header"
    if offset >= size - TRAILER_SIZE:
        return "trailer"
    return "data"


@pytest.mark.parametrize("step", [1, 3])
def test_a_flipped_byte_anywhere_is_refused_naming_the_problem(step: int) -> None:
    blob, hlen, _ = _file(5)
    for offset in range(0, len(blob), step):
        bad = bytearray(blob)
        bad[offset] ^= 0x41
        with pytest.raises(BackupError) as err:
            verify_backup(io.BytesIO(bytes(bad)), keep_data=True)
        msg = str(err.value)
        assert "\n" not in msg
        region = _region(offset, hlen, len(blob))
        if region == "header":
            assert any(w in msg for w in ("magic", "header", "version")), (offset, msg)
        elif region == "data":
            assert "data corrupt" in msg or "checksum" in msg, (offset, msg)
        else:
            assert "trailer" in msg or "checksum" in msg, (offset, msg)


def test_every_truncation_is_refused_as_truncated() -> None:
    blob, _, _ = _file(5)
    for cut in range(len(blob)):
        with pytest.raises(BackupError) as err:
            verify_backup(io.BytesIO(blob[:cut]), keep_data=True)
        msg = str(err.value)
        assert "truncated" in msg or (cut >= 8 and "magic" in msg), (cut, msg)
        if cut >= len(BACKUP_MAGIC):
            assert "truncated" in msg, (cut, msg)


def test_trailing_bytes_and_foreign_files_are_refused(tmp_path: Path) -> None:
    blob, _, _ = _file(3)
    with pytest.raises(BackupError, match="trailing bytes"):
        verify_backup(io.BytesIO(blob + b"x"))
    with pytest.raises(BackupError, match="not a raftkv backup"):
        verify_backup(io.BytesIO(b"RKVSNAP\n" + b"\0" * 100))
    with pytest.raises(BackupError, match="cannot read"):
        read_backup(str(tmp_path / "missing"))


def test_a_header_that_lies_about_the_key_count_is_refused() -> None:
    data, keys = _state(4)
    header = build_header(
        index=4, term=2, keys=keys + 1, data_bytes=len(data), cluster_id="c", node="n", created=""
    )
    blob = b"".join(iter_backup(header, data))
    with pytest.raises(BackupError, match="header says 5 keys, data holds 4"):
        verify_backup(io.BytesIO(blob), keep_data=True)

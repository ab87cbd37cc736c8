"""Durability ordering: every os call that persists is recorded, and the order is checked.

Rules (fsutil.py): data is fsynced before ``save`` returns; a file is fsynced before it is
renamed into place; its directory is fsynced after the rename and before the call returns.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from raftkv.storage import Storage
from tests.unit.storage.storage_testutil import ents, hs, snap


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.paths: dict[int, str] = {}

    def name(self, fd: int) -> str:
        return self.paths.get(fd, f"fd{fd}")

    def mark(self, what: str) -> None:
        self.calls.append(("mark", what))

    def since(self, what: str) -> list[tuple[str, str]]:
        i = max(k for k, c in enumerate(self.calls) if c == ("mark", what))
        return self.calls[i + 1 :]


@pytest.fixture
def rec(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    r = Recorder()
    real = {n: getattr(os, n) for n in ("open", "fsync", "rename", "writev", "unlink", "ftruncate")}

    def _open(path: Any, flags: int, mode: int = 0o777, **kw: Any) -> int:
        fd: int = real["open"](path, flags, mode, **kw)
        r.paths[fd] = os.fspath(path)
        return fd

    def _fsync(fd: int) -> None:
        r.calls.append(("fsync", r.name(fd)))
        real["fsync"](fd)

    def _rename(src: Any, dst: Any) -> None:
        r.calls.append(("rename", f"{os.fspath(src)} -> {os.fspath(dst)}"))
        real["rename"](src, dst)

    def _writev(fd: int, bufs: Any) -> int:
        r.calls.append(("writev", r.name(fd)))
        n: int = real["writev"](fd, bufs)
        return n

    def _unlink(path: Any) -> None:
        r.calls.append(("unlink", os.fspath(path)))
        real["unlink"](path)

    def _ftruncate(fd: int, size: int) -> None:
        r.calls.append(("ftruncate", r.name(fd)))
        real["ftruncate"](fd, size)

    monkeypatch.setattr(os, "open", _open)
    monkeypatch.setattr(os, "fsync", _fsync)
    monkeypatch.setattr(os, "rename", _rename)
    monkeypatch.setattr(os, "writev", _writev)
    monkeypatch.setattr(os, "unlink", _unlink)
    monkeypatch.setattr(os, "ftruncate", _ftruncate)
    yield r


def test_save_is_one_writev_then_one_fsync_of_the_segment(tmp_path: Path, rec: Recorder) -> None:
    d = str(tmp_path)
    with Storage.open(d) as st:
        seg = os.path.join(d, "wal", "0000000000000001.wal")
        for lo, n in ((1, 1), (2, 16), (18, 64), (82, 256)):
            rec.mark(f"save{n}")
            st.save(hs(1, "a", lo), ents(lo, lo + n - 1))
            assert rec.since(f"save{n}") == [("writev", seg), ("fsync", seg)]
        rec.mark("truncate")
        st.save(hs(2), ents(50, 60, term=2))  # conflicting suffix: still one record, one fsync
        assert rec.since("truncate") == [("writev", seg), ("fsync", seg)]


def _check_atomic_replace(calls: list[tuple[str, str]], final: str) -> None:
    """tmp written, tmp fsynced, renamed to ``final``, then its directory fsynced."""
    tmp = final + ".tmp"
    i_w = calls.index(("writev", tmp))
    i_f = calls.index(("fsync", tmp))
    i_r = calls.index(("rename", f"{tmp} -> {final}"))
    i_d = calls.index(("fsync", os.path.dirname(final)))
    assert i_w < i_f < i_r < i_d, calls


def test_fresh_open_creates_durably(tmp_path: Path, rec: Recorder) -> None:
    d = str(tmp_path / "new")
    rec.mark("open")
    Storage.open(d).close()
    calls = rec.since("open")
    assert ("fsync", str(tmp_path)) in calls  # the new data dir's entry is durable
    assert ("fsync", d) in calls  # wal/ and snap/ entries are durable
    _check_atomic_replace(calls, os.path.join(d, "wal", "0000000000000001.wal"))


def test_snapshot_is_atomic_and_durable_before_return(tmp_path: Path, rec: Recorder) -> None:
    d = str(tmp_path)
    with Storage.open(d, keep_snapshots=1) as st:
        st.save(hs(1), ents(1, 20))
        st.save_snapshot(snap(5, 1))
        rec.mark("snap")
        st.save_snapshot(snap(10, 1))
        calls = rec.since("snap")
    final = os.path.join(d, "snap", f"{10:020d}-{1:020d}.snap")
    _check_atomic_replace(calls, final)
    seg = os.path.join(d, "wal", "0000000000000001.wal")
    i_dir = calls.index(("fsync", os.path.join(d, "snap")))
    # then the WAL mark, fsynced, and only then the old snapshot is deleted
    i_mark = calls.index(("writev", seg), i_dir)
    i_mark_sync = calls.index(("fsync", seg), i_mark)
    old = os.path.join(d, "snap", f"{5:020d}-{1:020d}.snap")
    i_unlink = calls.index(("unlink", old))
    assert i_dir < i_mark < i_mark_sync < i_unlink
    assert calls[-1] == ("fsync", os.path.join(d, "snap"))  # the deletion is durable too


def test_rotation_and_pruning_order(tmp_path: Path, rec: Recorder) -> None:
    d = str(tmp_path)
    wal = os.path.join(d, "wal")
    with Storage.open(d, segment_bytes=4096) as st:
        lo = 1
        while st.segment_count < 3:
            rec.mark(f"save{lo}")
            st.save(None, ents(lo, lo + 9, size=64))
            lo += 10
        calls = rec.since(f"save{lo - 10}")
        new = os.path.join(wal, "0000000000000003.wal")
        _check_atomic_replace(calls, new)
        # the batch goes to the new segment only after it is durably in place
        assert calls[-2:] == [("writev", new), ("fsync", new)]
        rec.mark("prune")
        st.save_snapshot(snap(lo - 1, 1))
        calls = rec.since("prune")
        for seq in (1, 2):
            path = os.path.join(wal, f"{seq:016d}.wal")
            i = calls.index(("unlink", path))
            assert calls[i + 1] == ("fsync", wal)  # one dir fsync per deleted segment


def test_torn_tail_repair_is_durable(tmp_path: Path, rec: Recorder) -> None:
    d = str(tmp_path)
    with Storage.open(d) as st:
        st.save(None, ents(1, 5))
    seg = os.path.join(d, "wal", "0000000000000001.wal")
    with open(seg, "ab") as f:
        f.write(b"\x07" * 5)
    rec.mark("reopen")
    Storage.open(d).close()
    calls = rec.since("reopen")
    i = calls.index(("ftruncate", seg))
    assert calls[i + 1] == ("fsync", seg)

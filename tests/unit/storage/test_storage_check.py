"""``check-data``: report contents and exit codes (0 intact, 1 corrupt, 2 not a data dir)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from raftkv.storage import Storage
from raftkv.storage.check import run_check_data
from tests.unit.storage.storage_testutil import SMALL_SEGMENT, ents, hs, segments, snap


def run(path: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = run_check_data(path)
    cap = capsys.readouterr()
    assert cap.err == "" or code != 0
    return code, cap.out + cap.err


def populated(d: str) -> None:
    with Storage.open(d, segment_bytes=SMALL_SEGMENT) as st:
        for lo in range(1, 200, 10):
            st.save(hs(3, "raft-2", lo), ents(lo, lo + 9, term=3, size=64))
        st.save_snapshot(snap(150, 3, members=("raft-0", "raft-1", "raft-2")))


def test_report_of_an_intact_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = str(tmp_path)
    populated(d)
    before = {p: os.path.getsize(p) for p in segments(d)}
    code, out = run(d, capsys)
    assert code == 0, out
    assert "snapshot: index=150 term=3 members=raft-0,raft-1,raft-2" in out
    assert "hard-state: term=3 voted_for=raft-2 commit=191" in out
    assert "log: first_index=151 last_index=200 entries=50" in out
    assert f"segments: {len(before)}" in out
    for p in before:
        assert os.path.basename(p) in out
    assert out.rstrip().endswith("status: OK")
    assert {p: os.path.getsize(p) for p in segments(d)} == before  # read-only


def test_fresh_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = str(tmp_path)
    Storage.open(d).close()
    code, out = run(d, capsys)
    assert code == 0
    assert "snapshot: none" in out and "log: first_index=1 last_index=0 entries=0" in out


def test_corrupted_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = str(tmp_path)
    populated(d)
    seg = segments(d)[0]
    with open(seg, "r+b") as f:
        f.seek(300)
        b = f.read(1)
        f.seek(300)
        f.write(bytes([b[0] ^ 0x20]))
    code, out = run(d, capsys)
    assert code == 1
    line = next(ln for ln in out.splitlines() if ln.startswith("CORRUPT"))
    assert f"file={seg}" in line and "offset=" in line
    assert out.rstrip().endswith("status: CORRUPT")


def test_corrupt_older_snapshot_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = str(tmp_path)
    with Storage.open(d) as st:
        st.save(None, ents(1, 30))
        st.save_snapshot(snap(10, 1, data=b"a" * 100))
        st.save_snapshot(snap(20, 1))
    old = os.path.join(d, "snap", f"{10:020d}-{1:020d}.snap")
    with open(old, "r+b") as f:
        f.seek(80)
        f.write(b"B")
    code, out = run(d, capsys)
    assert code == 1 and f"file={old}" in out


def test_torn_tail_is_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = str(tmp_path)
    populated(d)
    seg = segments(d)[-1]
    size = os.path.getsize(seg)
    with open(seg, "ab") as f:
        f.write(b"\x01\x02\x03")
    code, out = run(d, capsys)
    assert code == 0
    assert f"WARNING: torn tail: file={seg} offset={size} bytes=3" in out
    assert os.path.getsize(seg) == size + 3  # not repaired by the check


def test_not_a_data_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(str(tmp_path / "missing"), capsys)
    assert code == 2 and "not a directory" in out
    code, out = run(str(tmp_path), capsys)
    assert code == 2 and "not a raftkv data directory" in out


def test_unreadable_file_is_an_error_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    d = str(tmp_path)
    populated(d)
    import raftkv.storage.check as check

    def vanished(path: str) -> None:
        raise FileNotFoundError(2, "No such file or directory", path)

    monkeypatch.setattr(check, "scan_data_dir", vanished)
    code, out = run(d, capsys)
    assert code == 1 and "cannot read" in out

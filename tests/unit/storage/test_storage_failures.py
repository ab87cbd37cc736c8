"""I/O failures make the Storage refuse further use; a real SIGKILL loses no acknowledged save."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from raftkv.raft.types import Entry
from raftkv.storage import Storage, StorageError, StorageFailed
from tests.unit.storage.storage_testutil import ents, hs, snap


def test_failed_write_is_fatal_and_the_partial_record_is_cut_at_reopen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = str(tmp_path)
    st = Storage.open(d)
    st.save(hs(1), ents(1, 5))
    real_writev = os.writev

    def half_then_enospc(fd: int, bufs: Any) -> int:
        data = b"".join(bytes(b) for b in bufs)
        os.write(fd, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "writev", half_then_enospc)
    with pytest.raises(StorageFailed, match="No space"):
        st.save(hs(2), ents(6, 10, term=2))
    monkeypatch.setattr(os, "writev", real_writev)
    with pytest.raises(StorageFailed, match="failed earlier"):
        st.save(None, ents(6, 6))
    st.close()
    with Storage.open(d) as st:
        assert st.recovered.entries == ents(1, 5)
        assert st.recovered.hard_state == hs(1)


def test_failed_fsync_is_fatal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    st = Storage.open(str(tmp_path))

    def eio(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", eio)
    with pytest.raises(StorageFailed):
        st.save(hs(1), ents(1, 1))
    monkeypatch.undo()
    with pytest.raises(StorageFailed):
        st.save_snapshot(snap(1, 1))
    st.close()


def test_unusable_data_dir_is_a_clear_error(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(StorageError, match="cannot open data directory"):
        Storage.open(str(f))


_WRITER = textwrap.dedent(
    """
    import sys
    from raftkv.raft.types import Entry, HardState
    from raftkv.storage import Storage
    st = Storage.open(sys.argv[1], segment_bytes=16384)
    i = 1
    while True:
        batch = [Entry(index=i + k, term=1, data=b"%d" % (i + k)) for k in range(7)]
        st.save(HardState(term=1, commit=i - 1), batch)
        i += 7
        print(i - 1, flush=True)   # acknowledged: save() returned
    """
)


def test_sigkill_never_loses_an_acknowledged_save(tmp_path: Path) -> None:
    d = str(tmp_path / "data")
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, d], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        acked = 0
        for line in proc.stdout:
            acked = int(line)
            if acked >= 7 * 300:
                break
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert acked >= 7 * 300
    with Storage.open(d, segment_bytes=16384) as st:
        got = st.recovered.entries
        assert len(got) >= acked
        assert got[:acked] == [Entry(index=i, term=1, data=b"%d" % i) for i in range(1, acked + 1)]
        assert st.segment_count > 1

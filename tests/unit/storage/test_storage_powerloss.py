"""Power loss at every system call: after the crash, exactly what was fsynced survives.

``PowerLossFS`` intercepts the calls storage makes (``os.open/writev/fsync/rename/unlink/
ftruncate``) and keeps the minimal POSIX durability model: a file's contents are durable as of
its last ``fsync``; a directory's entries (creations, renames, deletions) are durable as of the
directory's last ``fsync``. A scripted run is cut at system call k, for every k: the directory is
rolled back to its durable state (unsynced bytes and names vanish, unsynced deletions come back),
and recovery must yield the state after the last acknowledged operation or after the one that
was in flight — never anything else, never an error.
"""

from __future__ import annotations

import copy
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from raftkv.raft.types import Entry, HardState, Snapshot
from raftkv.storage import Storage
from tests.unit.storage.storage_testutil import Model, ents, hs, snap

SEGMENT_BYTES = 4096


_CALLS = ("open", "close", "writev", "fsync", "rename", "unlink", "ftruncate")


class Crash(Exception):
    """Raised instead of the k-th intercepted system call."""


class PowerLossFS:
    def __init__(self, root: str, crash_at: int | None) -> None:
        self.crash_at = crash_at
        self.calls = 0
        self._inode = 0
        self.names: dict[str, dict[str, int]] = {}  # directory -> name -> inode (current)
        self.durable_names: dict[str, dict[str, int]] = {}
        self.durable_data: dict[int, bytes] = {}
        self.fds: dict[int, tuple[str, int | str]] = {}  # fd -> ("dir", path) | ("file", inode)
        self.real = {n: getattr(os, n) for n in _CALLS}
        for dirpath, _dirs, files in os.walk(root):
            self.names[dirpath] = {}
            for name in files:
                ino = self._new_inode()
                self.names[dirpath][name] = ino
                with open(os.path.join(dirpath, name), "rb") as f:
                    self.durable_data[ino] = f.read()
            self.durable_names[dirpath] = dict(self.names[dirpath])

    def _new_inode(self) -> int:
        self._inode += 1
        return self._inode

    def _tick(self) -> None:
        self.calls += 1
        if self.calls == self.crash_at:
            raise Crash(f"power cut at system call {self.calls}")

    def _path_of(self, ino: int) -> str | None:
        for d, names in self.names.items():
            for name, i in names.items():
                if i == ino:
                    return os.path.join(d, name)
        return None

    # -- the intercepted calls
    def open(self, path: Any, flags: int, mode: int = 0o777, **kw: Any) -> int:
        self._tick()
        p = os.path.abspath(os.fspath(path))
        fd: int = self.real["open"](path, flags, mode, **kw)
        if flags & os.O_DIRECTORY:
            self.fds[fd] = ("dir", p)
            return fd
        d, name = os.path.split(p)
        names = self.names.setdefault(d, {})
        if name not in names:
            names[name] = self._new_inode()
            self.durable_data[names[name]] = b""
        self.fds[fd] = ("file", names[name])
        return fd

    def close(self, fd: int) -> None:
        self.fds.pop(fd, None)
        self.real["close"](fd)

    def writev(self, fd: int, bufs: Any) -> int:
        self._tick()
        n: int = self.real["writev"](fd, bufs)
        return n

    def fsync(self, fd: int) -> None:
        self._tick()
        self.real["fsync"](fd)
        kind, what = self.fds[fd]
        if kind == "dir":
            assert isinstance(what, str)
            self.durable_names[what] = dict(self.names.get(what, {}))
        else:
            assert isinstance(what, int)
            path = self._path_of(what)
            if path is not None:
                with open(path, "rb") as f:
                    self.durable_data[what] = f.read()

    def rename(self, src: Any, dst: Any) -> None:
        self._tick()
        self.real["rename"](src, dst)
        s, d = os.path.abspath(os.fspath(src)), os.path.abspath(os.fspath(dst))
        ino = self.names[os.path.dirname(s)].pop(os.path.basename(s))
        self.names.setdefault(os.path.dirname(d), {})[os.path.basename(d)] = ino

    def unlink(self, path: Any) -> None:
        self._tick()
        self.real["unlink"](path)
        p = os.path.abspath(os.fspath(path))
        self.names[os.path.dirname(p)].pop(os.path.basename(p))

    def ftruncate(self, fd: int, size: int) -> None:
        self._tick()
        self.real["ftruncate"](fd, size)

    def power_loss(self, torn: bool = False) -> None:
        """Close every descriptor and roll the directories back to their durable state.

        ``torn=False``: only what was fsynced survives (names as of each directory's last fsync).
        ``torn=True``: the other legal outcome — every rename/unlink/create reached the disk, and
        each file kept its fsynced bytes plus the first half of the bytes appended after.
        """
        for fd in list(self.fds):
            self.real["close"](fd)
        self.fds.clear()
        current: dict[int, bytes] = {}
        for d, names in self.names.items():
            for name, ino in names.items():
                with open(os.path.join(d, name), "rb") as f:
                    current[ino] = f.read()
        for d in self.durable_names:
            names = self.names[d] if torn else self.durable_names[d]
            for name in os.listdir(d):
                if os.path.isfile(os.path.join(d, name)):
                    self.real["unlink"](os.path.join(d, name))
            for name, ino in names.items():
                data = self.durable_data.get(ino, b"")
                now = current.get(ino, data)
                if torn and now.startswith(data):
                    data = now[: len(data) + (len(now) - len(data)) // 2]
                with open(os.path.join(d, name), "wb") as f:
                    f.write(data)


@pytest.fixture
def hook(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[PowerLossFS], None]]:
    def install(fs: PowerLossFS) -> None:
        for name in fs.real:
            monkeypatch.setattr(os, name, getattr(fs, name))

    yield install
    monkeypatch.undo()


Op = tuple[str, HardState | None, list[Entry] | Snapshot]

SCRIPT: list[Op] = [
    ("save", hs(1, "a", 0), ents(1, 10, term=1, size=64)),
    ("save", hs(1, "a", 5), ents(11, 60, term=1, size=64)),  # rotates segments
    ("save", hs(2, "b", 40), ents(55, 70, term=2, size=64)),  # replaces a suffix
    ("snap", None, snap(50, 1)),  # compaction: keeps 51..70, prunes covered segments
    ("save", None, ents(71, 80, term=2, size=64)),
    ("snap", None, snap(100, 3)),  # installed from a leader: discards the log
    ("save", hs(3, None, 100), ents(101, 105, term=3)),
]


def expected_states() -> list[Model]:
    m = Model()
    out = [copy.deepcopy(m)]
    for kind, h, arg in SCRIPT:
        if kind == "save":
            assert isinstance(arg, list)
            if h is not None:
                m.hs = h
            new = [e for e in arg if e.index > m.snap_index]
            if new:
                m.log = m.log[: new[0].index - m.snap_index - 1] + new
        else:
            assert isinstance(arg, Snapshot)
            m.apply_snapshot(arg)
        out.append(copy.deepcopy(m))
    return out


def run_script(d: str) -> int:
    """Open the storage and run SCRIPT; returns how many operations were acknowledged."""
    done = 0
    try:
        st = Storage.open(d, segment_bytes=SEGMENT_BYTES, keep_snapshots=2)
        for kind, h, arg in SCRIPT:
            if kind == "save":
                assert isinstance(arg, list)
                st.save(h, arg)
            else:
                assert isinstance(arg, Snapshot)
                st.save_snapshot(arg)
            done += 1
        st.close()
    except Crash:
        pass
    return done


def state_of(d: str) -> tuple[HardState, Snapshot | None, list[Entry]]:
    with Storage.open(d, segment_bytes=SEGMENT_BYTES, keep_snapshots=2) as st:
        r = st.recovered
        return r.hard_state, r.snapshot, r.entries


def test_power_loss_at_every_system_call(
    tmp_path: Path, hook: Callable[[PowerLossFS], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    states = [(m.hs, m.snapshot, m.log) for m in expected_states()]
    template = str(tmp_path / "template")
    Storage.open(template, segment_bytes=SEGMENT_BYTES).close()  # dirs + first segment, durable

    d = str(tmp_path / "dry")
    shutil.copytree(template, d)
    dry = PowerLossFS(d, crash_at=None)
    hook(dry)
    assert run_script(d) == len(SCRIPT)
    monkeypatch.undo()
    total = dry.calls
    assert total > 40
    assert state_of(d) == states[-1]

    for k in range(1, total + 1):
        for torn in (False, True):
            d = str(tmp_path / f"k{k}-{torn}")
            shutil.copytree(template, d)
            fs = PowerLossFS(d, crash_at=k)
            hook(fs)
            done = run_script(d)
            monkeypatch.undo()
            assert done < len(SCRIPT)
            fs.power_loss(torn=torn)
            where = f"crash at call {k} during op {done} (torn={torn})"
            after_crash = str(tmp_path / "after-crash")
            shutil.copytree(d, after_crash)
            got = state_of(d)
            assert got in (states[done], states[done + 1]), where
            assert state_of(d) == got, where  # stable: a second start sees the same state
            # and a power cut in the middle of recovery's own repairs changes nothing
            recovery_calls = _count_calls(after_crash, hook, monkeypatch)
            for j in range(1, recovery_calls + 1):
                d2 = str(tmp_path / "recovery-crash")
                shutil.copytree(after_crash, d2)
                fs2 = PowerLossFS(d2, crash_at=j)
                hook(fs2)
                with pytest.raises(Crash):
                    state_of(d2)
                monkeypatch.undo()
                fs2.power_loss()
                assert state_of(d2) == got, f"{where}, then at recovery call {j}"
                shutil.rmtree(d2)
            shutil.rmtree(after_crash)
            shutil.rmtree(d)


def _count_calls(
    d: str, hook: Callable[[PowerLossFS], None], monkeypatch: pytest.MonkeyPatch
) -> int:
    """System calls a recovery of (a copy of) ``d`` makes, up to and including its close."""
    probe = d + "-probe"
    shutil.copytree(d, probe)
    fs = PowerLossFS(probe, crash_at=None)
    hook(fs)
    try:
        state_of(probe)
    finally:
        monkeypatch.undo()
        shutil.rmtree(probe)
    return fs.calls

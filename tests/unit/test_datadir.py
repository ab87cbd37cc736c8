"""Offline data-dir tools (datadir.py, cli_datadir.py) and start-time identity (identity.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from raftkv.cli import main
from raftkv.config import load_config
from raftkv.datadir import DataDirError, materialize, recover_data_dir, restore_data_dir
from raftkv.errors import ConfigError
from raftkv.identity import derive_cluster_id, resolve_identity
from raftkv.kv import KVStateMachine
from raftkv.kv.commands import Command, Op, encode_command
from raftkv.raft.types import Entry, EntryKind, HardState
from raftkv.storage import Storage
from raftkv.storage.identity import (
    ForcedMembership,
    read_cluster_id,
    read_membership,
    write_cluster_id,
    write_membership,
)

PEERS = "raft-0=http://127.0.0.1:7001,raft-1=http://127.0.0.1:7002,raft-2=http://127.0.0.1:7003"


def _put(index: int, term: int, key: str, value: str) -> Entry:
    data = encode_command(Command(op=Op.PUT, key=key, value=value))
    return Entry(index=index, term=term, kind=EntryKind.NORMAL, data=data)


def _write_log(path: Path, n: int, commit: int) -> None:
    with Storage.open(str(path)) as st:
        ents = [Entry(index=1, term=1, kind=EntryKind.NOOP, data=b"")]
        ents += [_put(i, 1, f"k{i}", f"v{i}") for i in range(2, n + 1)]
        st.save(HardState(term=1, voted_for="raft-0", commit=commit), ents)


def _backup(tmp_path: Path, data_dir: Path) -> Path:
    out = tmp_path / "b.snapshot"
    assert main(["backup", "--data-dir", str(data_dir), "--out", str(out)]) == 0
    return out


def test_backup_then_restore_seeds_identical_members(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "src"
    _write_log(src, 10, commit=10)
    out = _backup(tmp_path, src)
    for i in range(3):
        d = tmp_path / f"new{i}"
        code = main(
            [
                "restore",
                "--data-dir",
                str(d),
                "--id",
                f"raft-{i}",
                "--snapshot",
                str(out),
                "--peers",
                PEERS,
            ]
        )
        assert code == 0, capsys.readouterr().err
        with Storage.open(str(d)) as st:
            snap = st.recovered.snapshot
            assert snap is not None and snap.meta.index == 10 and snap.meta.term == 1
            assert snap.meta.members == ("raft-0", "raft-1", "raft-2")
            assert st.hard_state.term == 1 and st.hard_state.commit == 10
            sm = KVStateMachine()
            sm.restore(snap.data)
            assert sm.get("k9") == ("v9", 9) and len(sm) == 9
    ids = {read_cluster_id(str(tmp_path / f"new{i}")) for i in range(3)}
    assert len(ids) == 1 and None not in ids  # every member agrees, without talking
    assert "restored" in capsys.readouterr().out


def test_restore_refuses_a_used_dir_a_damaged_file_and_a_stranger(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "src"
    _write_log(src, 4, commit=4)
    out = _backup(tmp_path, src)
    capsys.readouterr()
    with pytest.raises(DataDirError, match="not empty"):
        restore_data_dir(str(src), "raft-0", ("raft-0",), str(out), "c1")
    with pytest.raises(DataDirError, match="not among the members"):
        restore_data_dir(str(tmp_path / "x"), "raft-9", ("raft-0",), str(out), "c1")
    blob = out.read_bytes()
    out.write_bytes(blob[:-10])
    code = main(
        [
            "restore",
            "--data-dir",
            str(tmp_path / "n"),
            "--id",
            "raft-0",
            "--snapshot",
            str(out),
            "--peers",
            PEERS,
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "truncated" in err
    assert not (tmp_path / "n").exists()  # nothing written for a bad file


def test_recover_keeps_every_logged_entry_and_forces_one_voter(tmp_path: Path) -> None:
    d = tmp_path / "d"
    _write_log(d, 12, commit=5)  # entries 6..12 never known committed: they surface
    write_cluster_id(str(d), "keepme")
    st = recover_data_dir(str(d), "raft-0")
    assert (st.index, st.keys, st.commit_hint) == (12, 11, 5)
    assert read_membership(str(d)) == ForcedMembership(("raft-0",), 12, "recover")
    assert read_cluster_id(str(d)) == "keepme"
    again = materialize(str(d))
    assert again.index == 12 and again.data == st.data
    with Storage.open(str(d)) as s:
        assert s.hard_state.commit == 12 and s.snapshot_meta is not None
    cfg = load_config({"id": "raft-0", "peers": PEERS, "data_dir": str(d)}, {}, "h")
    cfg2, cid = resolve_identity(cfg)
    assert cid == "keepme" and cfg2.peer_ids == ("raft-0",)
    assert cfg2.peer_urls == {"raft-0": "http://127.0.0.1:7001"}


def test_recover_refuses_an_empty_or_missing_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["recover", "--data-dir", str(tmp_path / "none"), "--id", "raft-0"]) == 1
    assert "no such data directory" in capsys.readouterr().err
    os.makedirs(tmp_path / "empty")
    assert main(["recover", "--data-dir", str(tmp_path / "empty"), "--id", "raft-0"]) == 1
    assert "holds no data" in capsys.readouterr().err


def test_bootstrap_records_a_derived_id_and_the_flag_only_bootstraps(tmp_path: Path) -> None:
    cfg = load_config({"id": "raft-1", "peers": PEERS, "data_dir": str(tmp_path / "a")}, {}, "h")
    _, cid = resolve_identity(cfg)
    assert cid == derive_cluster_id(cfg.peers) == read_cluster_id(str(tmp_path / "a"))
    other = load_config(
        {"id": "raft-0", "peers": PEERS.replace("7003", "7004"), "data_dir": str(tmp_path / "b")},
        {},
        "h",
    )
    assert resolve_identity(other)[1] != cid  # another member list, another cluster
    flagged = load_config(
        {"id": "raft-1", "peers": PEERS, "data_dir": str(tmp_path / "a"), "cluster_id": "explicit"},
        {},
        "h",
    )
    assert resolve_identity(flagged)[1] == cid  # recorded id wins over the flag
    fresh = load_config(
        {"id": "raft-1", "peers": PEERS, "data_dir": str(tmp_path / "c"), "cluster_id": "explicit"},
        {},
        "h",
    )
    assert resolve_identity(fresh)[1] == "explicit"


def test_forced_membership_must_be_honourable(tmp_path: Path) -> None:
    d = str(tmp_path / "d")
    os.makedirs(d)
    write_membership(d, ForcedMembership(("raft-0",), 3))
    cfg = load_config({"id": "raft-1", "peers": PEERS, "data_dir": d}, {}, "h")
    with pytest.raises(ConfigError, match="not this node"):
        resolve_identity(cfg)
    write_membership(d, ForcedMembership(("raft-1", "raft-7"), 3))
    with pytest.raises(ConfigError, match="raft-7"):
        resolve_identity(cfg)


def test_serve_reports_bad_records_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = tmp_path / "d"
    d.mkdir()
    (d / "CLUSTER_ID").write_text("bad id with spaces\n")
    code = main(["serve", "--id", "raft-0", "--peers", PEERS, "--data-dir", str(d)])
    err = capsys.readouterr().err
    assert code == 1 and "not a valid cluster id" in err and err.strip().count("\n") == 0


def test_restore_from_the_environment_and_if_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "src"
    _write_log(src, 6, commit=6)
    out = _backup(tmp_path, src)
    # what the chart's init container gives it: RAFTKV_* only
    monkeypatch.setenv("RAFTKV_ID", "raft-1")
    monkeypatch.setenv("RAFTKV_DATA_DIR", str(tmp_path / "pod"))
    monkeypatch.setenv("RAFTKV_REPLICAS", "3")
    args = ["restore", "--if-empty", "--snapshot", str(out), "--cluster-id", "newid"]
    assert main(args) == 0
    assert "restored" in capsys.readouterr().out
    assert read_cluster_id(str(tmp_path / "pod")) == "newid"
    with Storage.open(str(tmp_path / "pod")) as st:
        snap = st.recovered.snapshot
        assert snap is not None and snap.meta.members == ("raft-0", "raft-1", "raft-2")
    assert main(args) == 0  # the next start of the pod: data present, nothing touched
    assert "skipped" in capsys.readouterr().out
    monkeypatch.delenv("RAFTKV_DATA_DIR")
    assert main(["restore", "--snapshot", str(out)]) == 2
    assert "RAFTKV_DATA_DIR" in capsys.readouterr().err


def test_check_data_shows_the_cluster_id_and_forced_voters(tmp_path: Path) -> None:
    import io

    from raftkv.storage.check import run_check_data

    d = tmp_path / "d"
    _write_log(d, 3, commit=3)
    out = io.StringIO()
    assert run_check_data(str(d), out=out) == 0
    assert "cluster-id: none (recorded at the next start)" in out.getvalue()
    write_cluster_id(str(d), "abc")
    recover_data_dir(str(d), "raft-0")
    out = io.StringIO()
    assert run_check_data(str(d), out=out) == 0
    text = out.getvalue()
    assert "cluster-id: abc" in text and "forced-voters: raft-0 index=3 reason=recover" in text


@pytest.mark.parametrize("entries_after_snapshot", [True, False])
def test_recover_forces_the_logged_configuration_down_to_the_survivor(
    tmp_path: Path,
    entries_after_snapshot: bool,
) -> None:
    import random

    from raftkv.raft import Config as RaftConfig, RaftNode, RestoredState, Role
    from raftkv.raft.membership import ChangeOp, ConfChange, encode_change
    from raftkv.raft.types import Membership, Snapshot, SnapshotMeta

    ids = ("raft-0", "raft-1", "raft-2")
    urls = tuple((i, f"http://h{i[-1]}:1") for i in ids)
    conf = Membership(voters=ids, urls=urls, removed=("old-9",), index=2)
    d = tmp_path / "d"
    with Storage.open(str(d)) as st:
        ents = [
            Entry(index=1, term=1, kind=EntryKind.NOOP, data=b""),
            Entry(
                index=2,
                term=1,
                kind=EntryKind.CONFIG,
                data=encode_change(ConfChange(op=ChangeOp.BOOTSTRAP), conf),
            ),
            _put(3, 1, "a", "1"),
            _put(4, 1, "b", "2"),
        ]
        st.save(HardState(term=1, voted_for="raft-0", commit=4), ents)
        if not entries_after_snapshot:  # the snapshot already covers the whole log
            sm = KVStateMachine()
            with sm.lock:
                sm.apply_noop(1, 1)
                sm.apply_noop(2, 1)
                sm.apply(3, 1, ents[2].data)
                sm.apply(4, 1, ents[3].data)
            st.save_snapshot(
                Snapshot(
                    meta=SnapshotMeta(index=4, term=1, members=ids, membership=conf),
                    data=sm.snapshot(),
                )
            )
    recover_data_dir(str(d), "raft-0")
    with Storage.open(str(d)) as st:
        rec = st.recovered
    assert rec.snapshot is not None and rec.snapshot.meta.index == 4
    forced = rec.snapshot.meta.membership
    assert forced is not None and forced.voters == ("raft-0",) and forced.learners == ()
    assert forced.removed == ("old-9", "raft-1", "raft-2")  # lost members never come back
    assert forced.urls == (("raft-0", "http://h0:1"),)
    # the core, started with the OLD flags (three peers), runs as the only voter and leads
    node = RaftNode(
        RaftConfig(id="raft-0", peers=ids, election_tick=5),
        rng=random.Random(1),
        restored=RestoredState(
            hard_state=rec.hard_state, snapshot=rec.snapshot, entries=tuple(rec.entries)
        ),
    )
    for _ in range(40):
        node.tick()
        while node.has_ready():
            node.advance(node.ready())
    st_ = node.status()
    assert st_.role is Role.LEADER and tuple(st_.members) == ("raft-0",)


def test_a_joining_node_records_no_id_at_start(tmp_path: Path) -> None:
    joining = load_config(
        {"id": "raft-3", "peers": PEERS, "data_dir": str(tmp_path / "j")}, {}, "h"
    )
    cfg, cid = resolve_identity(joining)
    assert cid is None and read_cluster_id(str(tmp_path / "j")) is None
    assert cfg.peer_ids == joining.peer_ids
    pinned = load_config(
        {"id": "raft-3", "peers": PEERS, "data_dir": str(tmp_path / "p"), "cluster_id": "known"},
        {},
        "h",
    )
    assert resolve_identity(pinned)[1] == "known"  # an explicit id is recorded at once

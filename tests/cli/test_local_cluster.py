"""raftctl against ONE real local cluster (real `raftkv serve` processes), shared by this module:
the CLI as a subprocess and through Typer's CliRunner. Tests run in file order."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from raftctl.backends.local.procs import proc_state
from tests.cli.localcluster import Local
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Local]:
    cluster = Local.new(tmp_path_factory.mktemp("raftctl-state"))
    try:
        cluster.first_up = cluster.sh("up", "--timeout", "90")  # type: ignore[attr-defined]
        yield cluster
    finally:
        cluster.teardown()


def _healthy(local: Local) -> bool:
    res = local.sh("status", "-o", "json")
    return res.returncode == 0 and json.loads(res.stdout)["healthy"]


def test_up_prints_progress_status_table_and_curl_examples(local: Local) -> None:
    res: subprocess.CompletedProcess[str] = local.first_up  # type: ignore[attr-defined]
    assert res.returncode == 0, res.stderr
    assert "starting supervisor and 3 replicas" in res.stderr
    assert "waiting for a leader" in res.stderr
    assert "★ leader" in res.stdout
    for rid in ("raft-0", "raft-1", "raft-2"):
        assert rid in res.stdout
    assert "curl -X PUT --data-binary 'hello' http://127.0.0.1:" in res.stdout
    state = local.root / local.name
    assert (state / "cluster.json").exists() and (state / "logs" / "raft-0.log").exists()


def test_up_again_is_idempotent(local: Local) -> None:
    before = local.pids()
    res = local.cli("up")
    assert res.exit_code == 0, res.stderr
    assert "already running" in res.stderr
    assert local.pids() == before
    assert len(before) == 4  # three replicas and the supervisor


def test_up_with_another_replica_count_is_refused(local: Local) -> None:
    res = local.cli("up", "--replicas", "5")
    assert res.exit_code == 2
    assert "already runs 3 replicas" in res.stderr


def test_status_table_and_json(local: Local) -> None:
    wait_until(lambda: _healthy(local), 30, "cluster healthy")
    res = local.cli("status")
    assert res.exit_code == 0, res.stderr
    assert "★ leader" in res.stdout and "healthy" in res.stdout
    for col in ("role", "term", "commit", "applied", "lag", "health"):
        assert col in res.stdout
    doc = local.json("status")
    assert doc["healthy"] is True and doc["leader"] in ("raft-0", "raft-1", "raft-2")
    leaders = [r for r in doc["replicas"] if r["role"] == "leader"]
    assert [r["id"] for r in leaders] == [doc["leader"]]
    assert all(
        r["lag"] is not None and r["url"].startswith("http://127.0.0.1:") for r in doc["replicas"]
    )


def test_status_watch_streams_json_documents(local: Local) -> None:
    env = {**os.environ, **local.env}
    proc = subprocess.Popen(
        [sys.executable, "-m", "raftctl", "status", "--watch", "--interval", "0.2", "-o", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        docs = [json.loads(proc.stdout.readline()) for _ in range(2)]
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert all(d["leader"] and len(d["replicas"]) == 3 for d in docs)
    assert docs[1]["time"] > docs[0]["time"]
    assert "Traceback" not in err and proc.returncode == 0


def test_put_get_delete_list(local: Local) -> None:
    res = local.cli("put", "fruit/apple", "red")
    assert res.exit_code == 0 and res.stdout.startswith("OK fruit/apple")
    assert "index=" in res.stdout and "leader=raft-" in res.stdout
    assert local.cli("put", "fruit/banana", "yellow").exit_code == 0
    got = local.sh("get", "fruit/apple")
    assert (got.returncode, got.stdout) == (0, "red\n")
    listed = local.json("list", "--prefix", "fruit/")
    assert [(i["key"], i["value"]) for i in listed["items"]] == [
        ("fruit/apple", "red"),
        ("fruit/banana", "yellow"),
    ]
    limited = local.json("list", "--prefix", "fruit/", "--limit", "1")
    assert limited["count"] == 1 and limited["truncated"] is True
    res = local.cli("list", "--prefix", "fruit/", "--limit", "1")
    assert "1 keys" in res.stdout and "raise --limit" in res.stderr
    assert local.cli("put", "fruit/apple", "green", "--prev-value", "red").exit_code == 0
    assert local.cli("get", "fruit/apple").stdout == "green\n"
    assert local.cli("delete", "fruit/banana").exit_code == 0
    assert local.json("list", "--prefix", "fruit/")["count"] == 1


def test_helpful_errors_are_one_line_exit_1(local: Local) -> None:
    for args, expected in (
        (("get", "no/such/key"), "error: key not found: no/such/key"),
        (("delete", "no/such/key"), "error: key not found: no/such/key"),
        (("chaos", "stop-node", "raft-7"), "error: unknown replica 'raft-7'"),
        (("logs", "raft-7"), "error: unknown replica 'raft-7'"),
        (
            ("put", "fruit/apple", "x", "--prev-value", "red"),
            "error: compare-and-set failed on fruit/apple: current value is 'green'",
        ),
    ):
        res = local.sh(*args)
        assert res.returncode == 1, (args, res.stderr)
        assert res.stdout == ""
        assert res.stderr.strip().startswith(expected), res.stderr
        assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr


def test_logs_show_the_replica_log(local: Local) -> None:
    res = local.sh("logs", "raft-1", "--tail", "3")
    assert res.returncode == 0
    assert len(res.stdout.splitlines()) == 3
    full = local.sh("logs", "raft-1").stdout
    assert "raftctl-supervisor: starting raft-1" in full and "node=raft-1" in full
    assert "event=replica-started" in local.sh("logs", "supervisor").stdout


def test_verify_sequential(local: Local) -> None:
    res = local.cli("verify", "--sequential")
    assert res.exit_code == 0, res.stdout + res.stderr
    lines = res.stdout.strip().splitlines()
    assert lines[-1].startswith("PASS: ")
    assert all(
        "index=" in ln and "term=" in ln and "leader=raft-" in ln
        for ln in lines
        if ln.startswith("[")
    )


def test_verify_in_endpoints_mode_like_the_client_pod(local: Local) -> None:
    urls = ",".join(r["url"] for r in local.json("status")["replicas"])
    res = local.sh("verify", "--sequential", "--endpoints", urls)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.strip().splitlines()[-1].startswith("PASS: ")


def test_bench_json(local: Local) -> None:
    doc = local.json("bench", "--duration", "2", "--clients", "4", "--read-ratio", "0.5")
    assert doc["ops"] > 0 and doc["writes"] > 0 and doc["reads"] > 0
    assert doc["ops_per_s"] > 0 and doc["write_latency_ms"]["p99"] is not None
    assert 1.5 < doc["duration_s"] < 10


def test_bench_table(local: Local) -> None:
    res = local.cli("bench", "--duration", "1", "--clients", "2")
    assert res.exit_code == 0, res.stderr
    assert "ops/s" in res.stdout and "p99 ms" in res.stdout and "writes" in res.stdout


def test_chaos_kill_leader(local: Local) -> None:
    assert local.cli("put", "survivor/kill", "before-kill").exit_code == 0
    wait_until(lambda: _healthy(local), 30, "cluster healthy")
    before = local.json("status")
    old_pids = local.pids()
    report = local.json("chaos", "kill-leader", "--timeout", "60")
    assert report["old_leader"] == before["leader"] and report["victim"] == before["leader"]
    assert report["new_leader"] is not None and report["new_leader"] != report["old_leader"]
    assert report["new_term"] > report["old_term"]
    assert 0 < report["election_s"] <= report["write_s"] + 5
    assert report["recovered_s"] is not None, report["notes"]
    # the supervisor brought the killed replica back: same id, new process
    new_pids = local.pids()
    assert new_pids[report["victim"]] != old_pids[report["victim"]]
    assert new_pids["supervisor"] == old_pids["supervisor"]
    assert local.cli("get", "survivor/kill").stdout == "before-kill\n"
    wait_until(lambda: _healthy(local), 30, "cluster healthy after kill-leader")


def test_chaos_kill_leader_table(local: Local) -> None:
    res = local.cli("chaos", "kill-leader")
    assert res.exit_code == 0, res.stderr
    for label in (
        "old leader",
        "new leader",
        "term change",
        "new leader elected after",
        "next acknowledged write after",
        "killed replica back and caught up after",
    ):
        assert label in res.stdout
    wait_until(lambda: _healthy(local), 30, "cluster healthy after kill-leader")


def test_chaos_stop_node_and_restore(local: Local) -> None:
    assert local.cli("put", "survivor/stop", "before-stop").exit_code == 0
    wait_until(lambda: _healthy(local), 30, "cluster healthy")
    pids = local.pids()
    report = local.json("chaos", "stop-node")
    victim = report["victim"]
    assert report["new_leader"] not in (None, victim) and report["new_term"] > report["old_term"]
    assert report["election_s"] is not None and report["write_s"] is not None
    # frozen, not restarted by the supervisor
    assert proc_state(pids[victim]) == "T" and local.pids()[victim] == pids[victim]
    doc = local.json("status")
    row = next(r for r in doc["replicas"] if r["id"] == victim)
    assert row["health"] == "frozen" and doc["leader"] != victim
    assert local.cli("put", "survivor/during-stop", "x").exit_code == 0

    restored = local.json("chaos", "restore")
    assert restored["restored"] == [victim]
    assert restored["caught_up_s"][victim] is not None
    assert proc_state(pids[victim]) != "T"
    wait_until(lambda: _healthy(local), 30, "cluster healthy after restore")
    for key, value in (
        ("survivor/stop", "before-stop"),
        ("survivor/during-stop", "x"),
        ("survivor/kill", "before-kill"),
    ):
        assert local.cli("get", key).stdout == value + "\n"
    # nothing left to restore
    assert "nothing to restore" in local.cli("chaos", "restore").stdout


def test_verify_sequential_chaos(local: Local) -> None:
    res = local.sh("verify", "--sequential", "--chaos", timeout=240)
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout
    assert "fault: kill the leader" in out and "fault: stop the leader node" in out
    assert "final read-back of every acknowledged value" in out
    assert out.strip().splitlines()[-1].startswith("PASS: ")
    wait_until(lambda: _healthy(local), 30, "cluster healthy after verify --chaos")

"""The CLI in --endpoints mode (the chart's client Pod) through Typer's CliRunner, on real nodes
(tests/cli/realnodes.py)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from raftctl.main import app
from tests.cli.realnodes import RealCluster

runner = CliRunner()


def run(nodes: RealCluster, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, [*args, "--endpoints", ",".join(nodes.urls)])
    return result.exit_code, result.stdout, result.stderr


def test_status_table_marks_leader_and_unreachable(nodes: RealCluster) -> None:
    nodes.take_down("raft-2")
    code, out, _ = run(nodes, "status")
    assert "★ leader" in out and "raft-0" in out
    assert "unreachable" in out
    assert "leader raft-0 in term 1" in out
    assert code == 0  # a leader and a healthy quorum (2 of 3)


def test_status_json_is_one_document(nodes: RealCluster) -> None:
    code, out, _ = run(nodes, "status", "--output", "json")
    doc = json.loads(out)
    assert code == 0 and doc["leader"] == "raft-0" and doc["healthy"] is True
    assert [r["id"] for r in doc["replicas"]] == ["raft-0", "raft-1", "raft-2"]
    assert {"role", "term", "commit_index", "last_applied", "lag", "health"} <= set(
        doc["replicas"][0]
    )


def test_status_without_leader_exits_1(nodes: RealCluster) -> None:
    nodes.elect(None)
    code, out, _ = run(nodes, "status")
    assert code == 1 and "no leader" in out


def test_kv_commands(nodes: RealCluster) -> None:
    assert run(nodes, "put", "greeting", "hello")[0] == 0
    code, out, _ = run(nodes, "get", "greeting")
    assert (code, out) == (0, "hello\n")
    code, out, _ = run(nodes, "get", "greeting", "-o", "json")
    assert json.loads(out)["value"] == "hello" and json.loads(out)["leader"] == "raft-0"
    code, out, _ = run(nodes, "list", "--output", "json")
    assert json.loads(out)["items"][0]["key"] == "greeting"
    assert run(nodes, "delete", "greeting")[0] == 0
    assert "greeting" not in nodes.store


def test_missing_key_is_one_line_exit_1(nodes: RealCluster) -> None:
    code, out, err = run(nodes, "get", "nope")
    assert code == 1 and out == ""
    assert err.strip() == "error: key not found: nope"
    assert "Traceback" not in err


def test_cas_failure_is_one_line(nodes: RealCluster) -> None:
    run(nodes, "put", "k", "v1")
    code, _, err = run(nodes, "put", "k", "v2", "--prev-value", "nope")
    assert code == 1 and err.strip() == "error: compare-and-set failed on k: current value is 'v1'"


def test_global_options_before_the_command_and_from_env(nodes: RealCluster) -> None:
    urls = ",".join(nodes.urls)
    result = runner.invoke(app, ["--endpoints", urls, "--output", "json", "status"])
    assert result.exit_code == 0 and json.loads(result.stdout)["leader"] == "raft-0"
    result = runner.invoke(app, ["get", "x"], env={"RAFTCTL_ENDPOINTS": urls})
    assert result.exit_code == 1 and "key not found: x" in result.stderr


def test_verify_endpoints_prints_index_term_leader_and_verdict(nodes: RealCluster) -> None:
    code, out, _ = run(nodes, "verify", "--sequential", "--prefix", "v")
    lines = out.strip().splitlines()
    assert code == 0, out
    assert lines[-1].startswith("PASS: ")
    ops = [ln for ln in lines if ln.startswith("[")]
    assert len(ops) >= 15
    for ln in ops:
        assert "index=" in ln and "term=" in ln and "leader=" in ln
    assert any(" CAS " in ln and "rejected" in ln for ln in ops)
    assert any("value-1-overwritten" in ln for ln in ops)


def test_verify_fails_with_exit_1_when_a_value_is_wrong(nodes: RealCluster) -> None:
    nodes.corrupt_reads("key-3", value="garbage")  # a node answering a wrong value
    code, out, _ = run(nodes, "verify", "--sequential")
    assert code == 1
    assert "FAIL" in out.splitlines()[-1]
    assert "expected 'value-3'" in out


def test_verify_json(nodes: RealCluster) -> None:
    code, out, _ = run(nodes, "verify", "--sequential", "-o", "json")
    doc = json.loads(out)
    assert code == 0 and doc["passed"] is True and doc["failed"] == 0
    assert all({"op", "key", "index", "term", "leader", "ok"} <= set(c) for c in doc["checks"])


@pytest.mark.parametrize(
    "args",
    [
        ["verify", "--chaos"],
        ["verify", "--restart"],
        ["verify", "--sequential", "--chaos"],
        ["chaos", "kill-leader"],
        ["up"],
        ["down"],
    ],
)
def test_fault_and_lifecycle_commands_need_a_target(nodes: RealCluster, args: list[str]) -> None:
    code, _, err = run(nodes, *args)
    assert code == 2
    assert "needs a target" in err and len(err.strip().splitlines()) == 1


def test_bench_json_reports_what_it_measured(nodes: RealCluster) -> None:
    code, out, _ = run(
        nodes, "bench", "--duration", "0.6", "--clients", "2", "--read-ratio", "0.5", "-o", "json"
    )
    doc = json.loads(out)
    assert code == 0
    assert doc["ops"] == doc["writes"] + doc["reads"] > 0
    assert doc["errors"] == 0
    assert doc["write_latency_ms"]["p50"] is not None and doc["read_latency_ms"]["p99"] is not None


def test_usage_errors_exit_2(nodes: RealCluster) -> None:
    assert runner.invoke(app, ["get"]).exit_code == 2
    assert runner.invoke(app, ["status", "--output", "yaml"]).exit_code == 2
    assert runner.invoke(app, ["bench", "--read-ratio", "2"]).exit_code == 2


def test_usage_errors_are_one_line_from_the_real_cli() -> None:
    import subprocess
    import sys

    for args, text in (
        (["get"], "Missing argument"),
        (["status", "--output", "yaml"], "'yaml' is not one of"),
        (["nosuch"], "No such command 'nosuch'"),
    ):
        res = subprocess.run(
            [sys.executable, "-m", "raftctl", *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert res.returncode == 2, args
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and text in lines[0], lines
    res = subprocess.run(
        [sys.executable, "-m", "raftctl", "--version"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert res.returncode == 0 and res.stdout.startswith("raftctl ")


def test_verify_stops_at_the_first_unanswered_request(nodes: RealCluster) -> None:
    for node in nodes.ids:
        nodes.take_down(node)
    code, out, _ = run(nodes, "verify", "--sequential", "--timeout", "1")
    lines = out.strip().splitlines()
    assert code == 1
    ops = [ln for ln in lines if ln.startswith("[")]
    assert len(ops) == 1 and ops[0].startswith("[  1] PUT")
    # every node took the PUT and dropped the connection: it may have been applied
    assert "unknown outcome" in ops[0] and "FAIL" in ops[0]
    assert any(ln.startswith("==> aborted: unknown outcome") for ln in lines)
    assert lines[-1] == "FAIL: 1 of 1 checks failed"

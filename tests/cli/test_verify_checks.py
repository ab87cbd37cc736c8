"""`raftctl verify` (the concurrent, checking one) against small real HTTP servers: it passes on a
correct server, fails (exit 1, the violating operations in words) on one that serves stale reads,
and its agreement check catches diverged replicas; reports render; bad flags are one line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from raftctl.agreement import check_agreement
from raftctl.backends.base import Replica
from raftctl.main import app
from tests.cli.tinykv import TinyKV

runner = CliRunner()


@pytest.fixture
def good() -> Iterator[TinyKV]:
    server = TinyKV().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def stale() -> Iterator[TinyKV]:
    server = TinyKV(stale_reads=True).start()
    try:
        yield server
    finally:
        server.stop()


def verify(url: str, *args: str) -> tuple[int, str, str]:
    res = runner.invoke(
        app,
        [
            "verify",
            "--endpoints",
            url,
            "--duration",
            "1.5",
            "--clients",
            "4",
            "--keys",
            "2",
            "--seed",
            "7",
            *args,
        ],
    )
    return res.exit_code, res.stdout, res.stderr


def test_a_correct_server_passes_with_figures(good: TinyKV, tmp_path: Path) -> None:
    report = tmp_path / "run.html"
    code, out, err = verify(good.url, "--report", str(report))
    assert code == 0, out + err
    assert "linearizable" in out and "yes (2 keys checked)" in out
    assert "availability" in out and "100.0% of operations acknowledged" in out
    assert "p50" in out and "p99" in out
    assert "agree: all 1 replicas hold the same state" in out
    assert "durability after a full restart not checked" in out
    assert out.strip().splitlines()[-1].startswith("PASS")
    page = report.read_text()
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "PASS" in page
    assert "<script" not in page and "http://" not in page.replace(
        'xmlns="http://www.w3.org/2000/svg"', ""
    )


def test_stale_reads_fail_with_the_operations_in_words(stale: TinyKV) -> None:
    code, out, err = verify(stale.url)
    assert code == 1, out + err
    assert "NO (2 keys checked)" in out
    assert "violation: key 'verify/" in out and "is not linearizable" in out
    assert "GET 'verify/" in out  # the stale read itself, in words
    assert "operations around it:" in out and "  >> op " in out
    assert out.strip().splitlines()[-1].startswith("FAIL")


def test_json_output_has_the_verdict_figures_and_history(stale: TinyKV) -> None:
    code, out, _ = verify(stale.url, "-o", "json")
    doc = json.loads(out)
    assert code == 1 and doc["passed"] is False and doc["linearizable"] is False
    assert doc["violation"]["culprit"].startswith("op ")
    assert doc["figures"]["ops"] == len(doc["history"]) - len(doc["durability"]["final_reads"])
    assert {
        "ok",
        "failed",
        "unknown",
        "availability",
        "longest_outage_s",
        "p50_ms",
        "p99_ms",
    } <= set(doc["figures"])
    assert doc["agreement"][0]["ok"] is True


def test_png_report(good: TinyKV, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    report = tmp_path / "run.png"
    code, out, err = verify(good.url, "--report", str(report))
    assert code == 0, out + err
    assert report.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_png_without_matplotlib_is_one_clear_line(
    good: TinyKV, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "matplotlib" else real(name, *a),
    )
    code, _, err = verify(good.url, "--report", str(tmp_path / "run.png"))
    assert code == 1
    assert err.strip().splitlines() == [
        "error: --report FILE.png needs matplotlib: pip install 'raftkv[plot]' (or write "
        "FILE.html, which needs nothing)"
    ]


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["--report", "x.pdf"], "--report must end in .html or .png"),
        (["--faults", "kill-leader,explode"], "--faults takes a comma-separated list"),
    ],
)
def test_bad_flags_are_one_line(good: TinyKV, args: list[str], text: str) -> None:
    code, _, err = verify(good.url, *args)
    assert code == 2 and text in err and len(err.strip().splitlines()) == 1


def test_agreement_catches_diverged_replicas(good: TinyKV) -> None:
    other = TinyKV("tiny-1").start()
    try:
        for server, value in ((good, "a"), (other, "b")):
            server.data["k"] = value
            server.applied = 5
        replicas = [Replica("tiny-0", good.url), Replica("tiny-1", other.url)]
        result = check_agreement(replicas, timeout=2)
        assert result.ok is False and "DIVERGED at the same applied index 5" in result.explanation
        other.data["k"] = "a"
        assert check_agreement(replicas, timeout=2).ok is True
        other.applied = 6  # never converges: nobody writes
        late = check_agreement(replicas, timeout=0.5)
        assert late.ok is False and "tiny-0=5, tiny-1=6 did not converge" in late.explanation
    finally:
        other.stop()


def test_a_reused_prefix_starts_from_the_keys_current_values(good: TinyKV) -> None:
    for _ in range(2):  # the second run finds the first run's values already there
        code, out, err = verify(good.url, "--prefix", "again")
        assert code == 0, out + err

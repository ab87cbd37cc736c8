"""Session-wide test policy: on CI (``CI=true`` or ``RAFTKV_STRICT_SKIPS=1``) an unexpected skip
fails the run.

A skipped safety test looks like a green one in a summary, so every skip must match one of the
reasons listed in ``EXPECTED_SKIPS``: a skip that is a deliberate opt-in (replaying one seed) or
that names a tool this machine legitimately lacks. On CI the container tier is required
(``RAFTKV_REQUIRE_CONTAINERS=1`` from run-tests.sh), so its skips are never expected there.
"""

from __future__ import annotations

import os
import platform
import re

import pytest
from hypothesis import HealthCheck, settings

# Property tests judge behaviour, not speed: no per-example deadline (a loaded 2-core machine
# made a fast example "too slow" now and then), and slow data generation is no failure either.
settings.register_profile("raftkv", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("raftkv")

# (pattern of the skip reason, why it is expected). Keep this list short and explained.
EXPECTED_SKIPS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"set RAFTKV_SIM_SEED=<n> to replay one seed"),
        "opt-in replay of one simulation seed",
    ),
) + (
    # atheris ships wheels for Linux x86_64 only (the test extra installs it there); elsewhere
    # the hypothesis fuzz tests still run and only the libFuzzer-driven runs are skipped.
    ()
    if (platform.system(), platform.machine()) == ("Linux", "x86_64")
    else ((re.compile(r"atheris is not installed"), "no atheris wheel for this platform"),)
)

_skips: list[tuple[str, str]] = []


def _strict() -> bool:
    ci = os.environ.get("CI", "").lower() == "true"
    return ci or os.environ.get("RAFTKV_STRICT_SKIPS") == "1"


def _reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        _skips.append((report.nodeid, _reason(report)))


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.skipped:
        _skips.append((report.nodeid, _reason(report)))  # type: ignore[arg-type]


def unexpected_skips() -> list[tuple[str, str]]:
    return [
        (node, why)
        for node, why in _skips
        if not any(pattern.search(why) for pattern, _ in EXPECTED_SKIPS)
    ]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    bad = unexpected_skips()
    if not bad or not _strict():
        return
    terminalreporter.section("unexpected skips (fail the run on CI)", red=True)
    for node, why in bad:
        terminalreporter.write_line(f"{node}: {why}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _strict() and unexpected_skips() and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED

"""verifyreport.py — draw a ``raftctl verify`` run: ``--report FILE.html`` or ``FILE.png``.

Contract: ``timeline(result)`` turns the run into what is drawn — acknowledged operations per
second and failed / unknown-outcome operations per bucket over time, the fault windows, and the
moments the observed leader or term changed. ``write_report`` renders it as a self-contained HTML
page (inline SVG, no scripts, no external files) with the verdict and figures, or as a PNG through
matplotlib (an optional extra: ``pip install 'raftkv[plot]'``; without it ``check_report_path``
says so before the run starts). Any other suffix is a usage error.
"""

from __future__ import annotations

import html
import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raftctl.errors import RaftctlError, UsageError
from raftctl.linearizability import Status, describe
from raftctl.recorder import ended_at
from raftctl.verifyrun import RunResult

__all__ = ["Timeline", "check_report_path", "timeline", "write_report"]

_SUFFIXES = (".html", ".htm", ".png")


def check_report_path(path: Path) -> None:
    """Fail fast (before the run) on a report the command could not write."""
    suffix = path.suffix.lower()
    if suffix not in _SUFFIXES:
        raise UsageError(f"--report must end in .html or .png, got {str(path)!r}")
    if suffix == ".png" and importlib.util.find_spec("matplotlib") is None:
        raise RaftctlError(
            "--report FILE.png needs matplotlib: pip install 'raftkv[plot]' "
            "(or write FILE.html, which needs nothing)"
        )
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"--report: directory {str(parent)!r} does not exist")


@dataclass(frozen=True)
class Timeline:
    bucket: float
    times: list[float]  # bucket starts, seconds since the run began
    ok_rate: list[float]  # acknowledged operations per second
    failed: list[int]  # per bucket
    unknown: list[int]  # per bucket
    faults: list[tuple[float, float, str]]  # (start, end, label)
    changes: list[tuple[float, str]]  # (time, "leader raft-1, term 3")
    span: float


def timeline(result: RunResult) -> Timeline:
    o = result.origin
    ops = [*result.operations, *result.final_reads]
    last = max(
        [
            result.end - o,
            *(ended_at(op) - o for op in ops),
            *((w.end or w.start) - o for w in result.faults),
        ],
        default=1.0,
    )
    span = max(last, 1.0)
    bucket = max(0.25, round(span / 80, 2))
    n = math.ceil(span / bucket) + 1
    ok, failed, unknown = [0] * n, [0] * n, [0] * n
    for op in ops:
        i = min(n - 1, max(0, int((ended_at(op) - o) / bucket)))
        if op.status is Status.OK:
            ok[i] += 1
        elif op.status is Status.FAILED:
            failed[i] += 1
        else:
            unknown[i] += 1
    faults = [
        (w.start - o, (w.end or w.start) - o, f"{w.kind} {w.victim}")
        for w in result.faults
        if w.error is None or w.kind == "restart-all"
    ]
    changes: list[tuple[float, str]] = []
    term, leader = -1, None
    for obs in result.observations:
        t = obs.term if obs.term is not None else term
        if t > term or (t == term and obs.leader and obs.leader != leader):
            if term != -1 or not changes:
                changes.append((obs.t - o, f"leader {obs.leader or '?'}, term {t}"))
            term, leader = t, obs.leader or leader
    return Timeline(
        bucket,
        [i * bucket for i in range(n)],
        [c / bucket for c in ok],
        failed,
        unknown,
        faults,
        changes,
        span,
    )


def write_report(result: RunResult, path: Path) -> None:
    check_report_path(path)
    tl = timeline(result)
    try:
        if path.suffix.lower() == ".png":
            _png(result, tl, path)
        else:
            path.write_text(_html(result, tl), encoding="utf-8")
    except OSError as err:
        raise RaftctlError(f"cannot write the report {str(path)!r}: {err.strerror}") from None


# -- SVG/HTML ---------------------------------------------------------------------------------
_W, _H, _L, _R, _T, _B = 960, 360, 60, 20, 30, 40


def _svg(tl: Timeline) -> str:
    pw, ph = _W - _L - _R, _H - _T - _B
    top = max([*tl.ok_rate, *(f + u for f, u in zip(tl.failed, tl.unknown, strict=True)), 1.0])
    top = _nice(top)

    def x(t: float) -> float:
        return _L + pw * t / tl.span

    def y(v: float) -> float:
        return _T + ph * (1 - v / top)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" '
        f'viewBox="0 0 {_W} {_H}" font-family="sans-serif" font-size="11">',
        f'<rect x="{_L}" y="{_T}" width="{pw}" height="{ph}" fill="#fff" stroke="#999"/>',
    ]
    for start, end, label in tl.faults:
        parts.append(
            f'<rect x="{x(start):.1f}" y="{_T}" width="{max(1.5, x(end) - x(start)):.1f}"'
            f' height="{ph}" fill="#f4a261" fill-opacity="0.25"><title>'
            f"{html.escape(label)}: {start:.2f}s..{end:.2f}s</title></rect>"
        )
        parts.append(
            f'<text x="{x(start) + 2:.1f}" y="{_T + 12}" fill="#b5651d">{html.escape(label)}</text>'
        )
    for i in range(5):
        v = top * i / 4
        parts.append(
            f'<line x1="{_L}" x2="{_L + pw}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
            f'stroke="#eee"/><text x="{_L - 6}" y="{y(v) + 4:.1f}" '
            f'text-anchor="end">{v:g}</text>'
        )
    step = _nice(tl.span / 10)
    t = 0.0
    while t <= tl.span + 1e-9:
        parts.append(f'<text x="{x(t):.1f}" y="{_T + ph + 16}" text-anchor="middle">{t:g}s</text>')
        t += step
    w = max(1.0, pw * tl.bucket / tl.span - 1)
    for t0, f, u in zip(tl.times, tl.failed, tl.unknown, strict=True):
        if f:
            parts.append(
                f'<rect x="{x(t0):.1f}" y="{y(f):.1f}" width="{w:.1f}" '
                f'height="{y(0) - y(f):.1f}" fill="#e63946"><title>{f} failed'
                f"</title></rect>"
            )
        if u:
            parts.append(
                f'<rect x="{x(t0):.1f}" y="{y(f + u):.1f}" width="{w:.1f}" '
                f'height="{y(f) - y(f + u):.1f}" fill="#9b5de5"><title>{u} unknown '
                f"outcome</title></rect>"
            )
    points = " ".join(
        f"{x(t0 + tl.bucket / 2):.1f},{y(r):.1f}"
        for t0, r in zip(tl.times, tl.ok_rate, strict=True)
    )
    parts.append(f'<polyline points="{points}" fill="none" stroke="#2a9d8f" stroke-width="1.8"/>')
    for t_change, label in tl.changes:
        parts.append(
            f'<line x1="{x(t_change):.1f}" x2="{x(t_change):.1f}" y1="{_T}" '
            f'y2="{_T + ph}" stroke="#264653" stroke-dasharray="4 3"><title>'
            f"{html.escape(label)} at {t_change:.2f}s</title></line>"
        )
        parts.append(
            f'<text x="{x(t_change) + 2:.1f}" y="{_T + ph - 4}" fill="#264653" '
            f'transform="rotate(-90 {x(t_change) + 2:.1f} {_T + ph - 4})">'
            f"{html.escape(label)}</text>"
        )
    legend = [
        ("#2a9d8f", "acknowledged ops/s"),
        ("#e63946", "failed (per bucket)"),
        ("#9b5de5", "unknown outcome (per bucket)"),
        ("#f4a261", "fault window"),
        ("#264653", "leader/term change"),
    ]
    lx = float(_L)
    for color, label in legend:
        parts.append(
            f'<rect x="{lx}" y="8" width="10" height="10" fill="{color}"/>'
            f'<text x="{lx + 14}" y="17">{label}</text>'
        )
        lx += 24 + 6.5 * len(label)
    parts.append("</svg>")
    return "\n".join(parts)


def _nice(v: float) -> float:
    if v <= 0:
        return 1.0
    exp = 10.0 ** math.floor(math.log10(v))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        if v <= m * exp:
            return m * exp
    return 10 * exp


def _html(result: RunResult, tl: Timeline) -> str:
    f = result.figures
    o = result.origin
    verdict = "PASS" if result.passed else "FAIL"
    color = "#2a9d8f" if result.passed else "#e63946"
    rows: list[tuple[str, Any]] = [
        ("target", result.target),
        ("operations", f"{f.ops} ({f.ok} ok, {f.failed} failed, {f.unknown} unknown outcome)"),
        ("clients / keys", f"{result.settings.clients} / {result.settings.keys}"),
        ("availability", f"{f.availability:.1%} of operations acknowledged"),
        ("longest outage", f"{f.longest_outage_s:.2f} s"),
        ("latency p50 / p99", f"{_fmt_ms(f.p50_ms)} / {_fmt_ms(f.p99_ms)}"),
        ("linearizable", "yes" if result.check.linearizable else "NO"),
        (
            "durable after restart",
            {None: "not checked", True: "yes", False: "NO"}[result.durability_ok],
        ),
    ]
    rows += [(f"replicas {when}", a.explanation) for when, a in result.agreements]
    table = "\n".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows
    )
    faults = (
        "\n".join(
            f"<li>{html.escape(w.kind)} {html.escape(w.victim)}: {w.start - o:.2f}s.."
            f"{(w.end or w.start) - o:.2f}s — {html.escape(w.action or w.error or '')}</li>"
            for w in result.faults
        )
        or "<li>none</li>"
    )
    violation = ""
    v = result.check.first_violation
    if v is not None:
        items = "\n".join(
            f"<li{' class=culprit' if op is v.culprit else ''}>{html.escape(describe(op, o))}</li>"
            for op in v.around
        )
        violation = (
            f"<h2>Violation</h2><p>{html.escape(v.explanation)}</p>"
            f"<p>Operations around it:</p><ol>{items}</ol>"
        )
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in result.notes)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>raftctl verify: {verdict}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
h1 span {{ color: {color}; }}
table {{ border-collapse: collapse; }} th, td {{ text-align: left; padding: 2px 12px 2px 0; }}
th {{ color: #555; font-weight: normal; }} li.culprit {{ color: #e63946; font-weight: bold; }}
</style></head><body>
<h1>raftctl verify: <span>{verdict}</span></h1>
<table>{table}</table>
<h2>Throughput and errors over time</h2>
{_svg(tl)}
<h2>Faults</h2><ul>{faults}</ul>
{violation}
{f"<h2>Notes</h2><ul>{notes}</ul>" if notes else ""}
</body></html>
"""


def _fmt_ms(v: float | None) -> str:
    return "—" if v is None else f"{v:.1f} ms"


# -- PNG --------------------------------------------------------------------------------------
def _png(result: RunResult, tl: Timeline, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(12, 4.5), dpi=100)
    try:
        for start, end, label in tl.faults:
            ax.axvspan(start, max(end, start + tl.bucket / 4), color="#f4a261", alpha=0.25)
            ax.text(
                start,
                1.0,
                label,
                transform=ax.get_xaxis_transform(),
                fontsize=8,
                color="#b5651d",
                va="top",
            )
        ax.bar(
            tl.times,
            tl.failed,
            width=tl.bucket,
            align="edge",
            color="#e63946",
            label="failed (per bucket)",
        )
        ax.bar(
            tl.times,
            tl.unknown,
            width=tl.bucket,
            align="edge",
            bottom=tl.failed,
            color="#9b5de5",
            label="unknown outcome (per bucket)",
        )
        ax.plot(
            [t + tl.bucket / 2 for t in tl.times],
            tl.ok_rate,
            color="#2a9d8f",
            label="acknowledged ops/s",
        )
        for t, label in tl.changes:
            ax.axvline(t, color="#264653", linestyle="--", linewidth=0.8)
            ax.text(
                t,
                0.02,
                label,
                rotation=90,
                transform=ax.get_xaxis_transform(),
                fontsize=7,
                color="#264653",
                va="bottom",
            )
        ax.set_xlim(0, tl.span)
        ax.set_xlabel("seconds since the run began")
        verdict = "PASS" if result.passed else "FAIL"
        f = result.figures
        ax.set_title(
            f"raftctl verify: {verdict} — {f.ops} ops, {f.ok} ok, {f.failed} failed, "
            f"{f.unknown} unknown; availability {f.availability:.1%}, "
            f"longest outage {f.longest_outage_s:.2f}s",
            fontsize=10,
        )
        ax.legend(loc="upper right", fontsize=8)
        fig.tight_layout()
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)

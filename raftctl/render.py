"""render.py — the ONE place raftctl prints.

Contract: results go to stdout, as a Rich table (default) or as JSON (``--output json``: exactly
one JSON document, nothing else on stdout). Progress, notes and errors go to stderr, so JSON
output stays parseable. An error is ONE line: ``error: <message>``. When stdout/stderr are not
terminals (pipes, tests) nothing animates and lines are not wrapped.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from enum import StrEnum
from types import TracebackType
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.status import Status
from rich.table import Table
from rich.text import Text

from raftctl.clusterview import ClusterView, ReplicaStatus
from raftctl.faults import FaultReport, RestoreReport
from raftctl.loadgen import BenchResult, BenchSnapshot
from raftctl.workload import Check

if TYPE_CHECKING:
    from pathlib import Path

    from raftctl.verifyrun import RunResult

__all__ = [
    "Output",
    "Steps",
    "bench_live",
    "bench_result",
    "chaos_report",
    "context_list",
    "context_show",
    "curl_examples",
    "emit_json",
    "error",
    "fields",
    "kv_list",
    "kv_reply",
    "line",
    "note",
    "restore_report",
    "status",
    "verify_check",
    "verify_run",
    "verify_verdict",
]


class Output(StrEnum):
    """--output formats."""

    table = "table"
    json = "json"


def _console(*, stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    tty = stream.isatty()
    return Console(
        file=stream,
        stderr=stderr,
        width=None if tty else 200,
        force_terminal=None if tty else False,
        highlight=False,
        soft_wrap=not tty,
    )


def emit_json(obj: Any, *, compact: bool = False) -> None:
    """One JSON document on stdout (``compact``: on one line, for streams of documents)."""
    text = json.dumps(obj, default=str) if compact else json.dumps(obj, indent=2, default=str)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def raw(text: str) -> None:
    """Text exactly as given (log lines) on stdout."""
    sys.stdout.write(text)
    sys.stdout.flush()


def error(message: str) -> None:
    """The one-line error for a failed command (stderr)."""
    flat = printable(" ".join(message.split()))
    _console(stderr=True).print(f"[bold red]error:[/] {escape(flat)}", soft_wrap=True)


def note(message: str) -> None:
    """A side remark on stderr (never mixed with JSON output)."""
    _console(stderr=True).print(escape(message), style="dim", soft_wrap=True)


def line(message: str, style: str | None = None) -> None:
    """A plain result line on stdout."""
    _console().print(escape(message), style=style, soft_wrap=True)


class Steps:
    """Progress for long operations on stderr: a spinner on a terminal, plain lines elsewhere.

    Implements ``backends.base.Reporter``.
    """

    def __init__(self, title: str) -> None:
        self.console = _console(stderr=True)
        self.title = title
        self.current: str | None = None
        self._status: Status | None = None

    def __enter__(self) -> Steps:
        if self.console.is_terminal:
            self._status = self.console.status(escape(self.title))
            self._status.start()
        return self

    def step(self, text: str) -> None:
        self._finish_current()
        self.current = text
        if self._status is not None:
            self._status.update(escape(text))
        else:
            self.console.print(f"• {escape(text)}", soft_wrap=True)

    def update(self, text: str) -> None:
        """Change the spinner's text without finishing the step (silent when not a terminal)."""
        if self._status is not None:
            self._status.update(escape(text))

    def _finish_current(self) -> None:
        if self.current is not None and self._status is not None:
            self.console.print(f"[green]✓[/] {escape(self.current)}")
        self.current = None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self._finish_current()
        if self._status is not None:
            self._status.stop()


# -- status -----------------------------------------------------------------------------------
_HEALTH_STYLE = {
    "healthy": "green",
    "lagging": "yellow",
    "no leader": "yellow",
    "unreachable": "bold red",
    "down": "bold red",
    "frozen": "bold magenta",
}


def _dash(value: object) -> str:
    return "—" if value is None else str(value)


def _yes(value: bool | None) -> str:
    return "?" if value is None else ("yes" if value else "no")


def status_table(view: ClusterView, *, title: str, kubernetes: bool) -> Table:
    table = Table(title=title, title_justify="left", show_lines=False)
    table.add_column("replica")
    if kubernetes:
        table.add_column("pod")
        table.add_column("node")
        table.add_column("pod IP")
        table.add_column("ready\npod/node")
    else:
        table.add_column("url", no_wrap=True, min_width=22)
    table.add_column("role")
    for name in ("term", "commit", "applied", "lag"):
        table.add_column(name, justify="right")
    table.add_column("health")
    for row in view.rows:
        style = "bold" if row.id == view.leader else None
        table.add_row(*_status_cells(row, kubernetes), style=style)
    return table


def _status_cells(row: ReplicaStatus, kubernetes: bool) -> list[str | Text]:
    r = row.replica
    cells: list[str | Text] = [r.id]
    if kubernetes:
        cells += [
            _dash(r.pod),
            _dash(r.node),
            _dash(r.pod_ip),
            Text(
                f"{_yes(r.pod_ready)}/{_yes(r.node_ready)}",
                style="" if r.pod_ready and r.node_ready else "yellow",
            ),
        ]
    else:
        cells.append(r.url)
    role = row.role or "—"
    cells.append(
        Text(
            f"★ {role}" if role == "leader" else role,
            style="bold green" if role == "leader" else "",
        )
    )
    cells += [_dash(row.term), _dash(row.commit_index), _dash(row.last_applied), _dash(row.lag)]
    detail = row.health
    if row.health in ("unreachable",) and row.error:
        detail = f"unreachable ({row.error})"
    cells.append(Text(detail, style=_HEALTH_STYLE.get(row.health, "")))
    return cells


def status(
    view: ClusterView,
    *,
    output: Output,
    title: str,
    kubernetes: bool,
    extra: dict[str, Any] | None = None,
) -> None:
    if output is Output.json:
        emit_json({**(extra or {}), **view.to_json()})
        return
    console = _console()
    console.print(status_table(view, title=title, kubernetes=kubernetes))
    if view.leader is None:
        console.print("[yellow]no leader[/] — the cluster cannot serve writes right now")
    else:
        console.print(
            f"leader [bold green]{escape(view.leader)}[/] in term {view.term}; "
            f"{view.healthy_voters}/{len(view.voters)} healthy"
            + (f"; learners (not in the quorum): {_learners(view)}" if view.learners else "")
        )


def _learners(view: ClusterView) -> str:
    return ", ".join(f"{escape(r.id)} {r.health}" for r in view.learners)


def status_watch(
    fetch: Callable[[], ClusterView],
    *,
    interval: float,
    output: Output,
    title: str,
    kubernetes: bool,
) -> None:
    """Refresh the status until Ctrl-C: a live table on a terminal, else one document per round."""
    console = _console()
    if output is Output.table and console.is_terminal:
        with Live(console=console, auto_refresh=False) as live:
            while True:
                view = fetch()
                stamp = time.strftime("%H:%M:%S")
                live.update(
                    status_table(view, title=f"{title} — {stamp}", kubernetes=kubernetes),
                    refresh=True,
                )
                time.sleep(interval)
    while True:
        view = fetch()
        if output is Output.json:
            emit_json({"time": time.time(), **view.to_json()}, compact=True)
        else:
            status(
                view,
                output=output,
                title=f"{title} — {time.strftime('%H:%M:%S')}",
                kubernetes=kubernetes,
            )
        time.sleep(interval)


def curl_examples(url: str | None, *, flags: str = "") -> None:
    """Copy-paste examples after `up` (curl against ``url`` when it is reachable from here)."""
    console = _console()
    console.print("\nTry it:")
    cmds = []
    if url:
        cmds += [
            f"curl -X PUT --data-binary 'hello' {url}/v1/kv/greeting",
            f"curl {url}/v1/kv/greeting",
            f"curl '{url}/v1/kv?prefix=gr'",
            f"curl {url}/v1/status",
        ]
    cmds += [
        f"raftctl put greeting hello{flags}",
        f"raftctl get greeting{flags}",
        f"raftctl chaos kill-leader{flags}",
        f"raftctl status{flags}",
    ]
    for cmd in cmds:
        console.print(f"  {escape(cmd)}", soft_wrap=True)


# -- KV -----------------------------------------------------------------------------------------
def printable(text: str) -> str:
    """Control characters (ESC included: keys may hold any) shown escaped, ``\\x1b``, so
    what a node stores can never drive the operator's terminal."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def shown_key(key: str) -> str:
    """A key for the terminal: ``printable`` and Rich-escaped."""
    return escape(printable(key))


def kv_reply(op: str, key: str, body: Any, meta: dict[str, Any], *, output: Output) -> None:
    """The result of put/get/delete."""
    data = dict(body) if isinstance(body, dict) else {}
    for k, v in meta.items():  # headers fill in what the body does not say
        if v is not None and data.get(k) is None:
            data[k] = v
    if output is Output.json:
        emit_json({"op": op, "key": key, **data})
        return
    if op == "get":
        _console().print(escape(str(data.get("value", ""))), soft_wrap=True)
        return
    bits = [f"{k}={data[k]}" for k in ("index", "term", "leader") if data.get(k) is not None]
    verb = {"put": "OK", "delete": "deleted"}.get(op, op)
    _console().print(f"{verb} {shown_key(key)}  " + " ".join(bits), soft_wrap=True)


def kv_list(
    items: Sequence[dict[str, Any]], *, output: Output, prefix: str, truncated: bool = False
) -> None:
    if output is Output.json:
        emit_json(
            {"prefix": prefix, "count": len(items), "truncated": truncated, "items": list(items)}
        )
        return
    table = Table(
        title=f"{len(items)} keys" + (f" with prefix {prefix!r}" if prefix else ""),
        title_justify="left",
    )
    table.add_column("key")
    table.add_column("value")
    table.add_column("index", justify="right")
    for it in items:
        table.add_row(
            shown_key(str(it.get("key"))), escape(str(it.get("value"))), _dash(it.get("index"))
        )
    _console().print(table)
    if truncated:
        note(f"showing the first {len(items)} keys; raise --limit to see more")


# -- chaos ----------------------------------------------------------------------------------------
def _secs(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f} s"


def chaos_report(report: FaultReport, *, output: Output) -> None:
    if output is Output.json:
        emit_json(report.to_json())
        return
    table = Table(title=f"chaos {report.fault}", title_justify="left", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("result")
    table.add_row("fault", escape(report.action))
    table.add_row("old leader", f"{report.old_leader} (term {_dash(report.old_term)})")
    table.add_row("new leader", f"{_dash(report.new_leader)} (term {_dash(report.new_term)})")
    table.add_row("term change", f"{_dash(report.old_term)} → {_dash(report.new_term)}")
    table.add_row("new leader elected after", _secs(report.election_s))
    table.add_row("next acknowledged write after", _secs(report.write_s))
    if report.fault == "stop-node":
        table.add_row("stopped replica back", "frozen until `raftctl chaos restore`")
    else:
        what = "killed replica" if report.fault == "kill-leader" else "deleted pod"
        table.add_row(f"{what} back and caught up after", _secs(report.recovered_s))
    console = _console()
    console.print(table)
    for extra in report.notes:
        if "stays frozen" not in extra:
            console.print(f"[yellow]note:[/] {escape(extra)}", soft_wrap=True)


def restore_report(report: RestoreReport, *, output: Output) -> None:
    if output is Output.json:
        emit_json(report.to_json())
        return
    console = _console()
    if not report.restored:
        console.print("nothing to restore: no replica is stopped")
        return
    table = Table(title="chaos restore", title_justify="left")
    table.add_column("restored")
    table.add_column("back and caught up after", justify="right")
    for rid in report.restored:
        table.add_row(rid, _secs(report.caught_up_s.get(rid)))
    console.print(table)
    for rid, why in report.pending.items():
        console.print(
            f"[yellow]still pending after {report.timeout_s or 0:.0f} s:[/] "
            f"{escape(rid)} ({escape(why)})",
            soft_wrap=True,
        )


# -- contexts -------------------------------------------------------------------------------------
def context_list(
    rows: Sequence[dict[str, Any]], *, path: str, exists: bool, output: Output
) -> None:
    if output is Output.json:
        emit_json({"config": path, "contexts": list(rows)})
        return
    if not rows:
        where = path if exists else f"{path} (no such file)"
        _console().print(f"no contexts defined in {escape(where)}")
        return
    table = Table(title=f"contexts ({escape(path)})", title_justify="left")
    for col in ("current", "context", "target", "name", "namespace", "endpoints", "token"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            "*" if r["current"] else "",
            escape(r["context"]),
            _dash(r["target"]),
            escape(_dash(r["name"])),
            escape(_dash(r["namespace"])),
            escape(",".join(r["endpoints"] or [])) or "—",
            _dash(r["token"]),
        )
    _console().print(table)


def context_show(
    name: str | None, fields: dict[str, Any], *, current: str | None, path: str, output: Output
) -> None:
    if output is Output.json:
        emit_json(
            {
                "context": name,
                "current": name is not None and name == current,
                "config": path,
                "fields": fields,
            }
        )
        return
    if name is None:
        _console().print(
            f"no context selected (none given, no current-context in "
            f"{escape(path)}): flags, RAFTCTL_* variables and defaults apply"
        )
        return
    mark = " (current)" if name == current else ""
    table = Table(
        show_header=False,
        title=f"context {escape(name)}{mark} ({escape(path)})",
        title_justify="left",
    )
    table.add_column("field")
    table.add_column("value")
    for key, value in fields.items():
        shown = ",".join(value) if isinstance(value, list) else value
        table.add_row(key, escape(_dash(shown)))
    _console().print(table)


# -- verify ---------------------------------------------------------------------------------------
def verify_check(n: int, check: Check) -> None:
    """One workload line as it happens: index, term, leader, verdict."""
    mark = "[green]ok[/]" if check.ok else "[bold red]FAIL[/]"
    meta = f"index={_dash(check.index)} term={_dash(check.term)} leader={_dash(check.leader)}"
    _console().print(
        f"[{n:3d}] {check.op:<6} {escape(check.key)} {escape(check.detail)}  {meta}  {mark}",
        soft_wrap=True,
    )


def verify_event(text: str) -> None:
    _console().print(f"[bold cyan]==>[/] {escape(text)}", soft_wrap=True)


def verify_verdict(
    passed: bool,
    total: int,
    failed: int,
    *,
    output: Output,
    checks: Sequence[Check],
    faults: Sequence[FaultReport],
) -> None:
    if output is Output.json:
        emit_json(
            {
                "passed": passed,
                "total": total,
                "failed": failed,
                "checks": [c.to_json() for c in checks],
                "faults": [f.to_json() for f in faults],
            }
        )
        return
    if passed:
        _console().print(f"[bold green]PASS[/]: {total}/{total} checks passed")
    else:
        _console().print(f"[bold red]FAIL[/]: {failed} of {total} checks failed")


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} ms"


def verify_run(result: RunResult, *, output: Output, report: Path | None = None) -> None:
    """The verdict of a concurrent `raftctl verify` run, with its figures (or one JSON doc)."""
    if output is Output.json:
        emit_json(result.to_json())
        return
    from raftctl.linearizability import describe

    con = _console()
    f = result.figures
    o = result.origin
    faults = [w for w in result.faults if w.error is None or w.kind == "restart-all"]
    table = Table(show_header=False, title="raftctl verify", title_justify="left")
    table.add_column("what")
    table.add_column("value")
    table.add_row("target", result.target)
    table.add_row(
        "operations",
        f"{f.ops} ({f.ok} ok, {f.failed} failed, {f.unknown} unknown "
        f"outcome) by {result.settings.clients} clients over {result.settings.keys} "
        f"keys in {result.end - o:.1f} s",
    )
    table.add_row(
        "faults", ", ".join(f"{w.kind} {w.victim} @{w.start - o:.1f}s" for w in faults) or "none"
    )
    table.add_row("availability", f"{f.availability:.1%} of operations acknowledged")
    table.add_row("longest outage", f"{f.longest_outage_s:.2f} s without an acknowledged op")
    table.add_row("latency (ok)", f"p50 {_ms(f.p50_ms)}, p99 {_ms(f.p99_ms)}")
    table.add_row("throughput", f"{f.throughput:.0f} acknowledged ops/s")
    lin = "[green]yes[/]" if result.check.linearizable else "[bold red]NO[/]"
    table.add_row("linearizable", f"{lin} ({len(result.check.keys)} keys checked)")
    dur = result.durability_ok
    table.add_row(
        "durable after restart",
        "[dim]not checked[/]" if dur is None else "[green]yes[/]" if dur else "[bold red]NO[/]",
    )
    for when, agreement in result.agreements:
        mark = (
            "[dim]skipped[/]"
            if agreement.ok is None
            else "[green]agree[/]"
            if agreement.ok
            else "[bold red]DISAGREE[/]"
        )
        table.add_row(f"replicas {when}", f"{mark}: {escape(agreement.explanation)}")
    con.print(table)
    violation = result.check.first_violation
    if violation is not None:
        con.print(f"[bold red]violation:[/] {escape(violation.explanation)}", soft_wrap=True)
        con.print("operations around it:")
        for op in violation.around:
            marker = "  >>" if op is violation.culprit else "    "
            con.print(f"{marker} {escape(describe(op, o))}", soft_wrap=True)
    for text in result.notes:
        con.print(f"[yellow]note:[/] {escape(text)}", soft_wrap=True)
    if report is not None:
        con.print(f"report: {escape(str(report))}")
    if result.passed:
        con.print(
            "[bold green]PASS[/]: linearizable, replicas agree"
            + (", acknowledged writes survived a full restart" if dur else "")
        )
    else:
        con.print("[bold red]FAIL[/]: see the violation above")


# -- bench ---------------------------------------------------------------------------------------
def _bench_line(s: BenchSnapshot) -> str:
    return (
        f"{s.elapsed:5.1f}/{s.duration:.0f}s  ops={s.writes + s.reads}  "
        f"{s.ops_per_s:,.0f} ops/s  writes={s.writes} reads={s.reads} errors={s.errors}"
    )


@contextmanager
def bench_live() -> Iterator[Any]:
    """Yields an ``on_tick(snapshot)`` callback showing live progress on stderr."""
    console = _console(stderr=True)
    if not console.is_terminal:
        last = [0.0]

        def plain(s: BenchSnapshot) -> None:
            if s.elapsed - last[0] >= 1.0:
                last[0] = s.elapsed
                console.print(_bench_line(s), soft_wrap=True)

        yield plain
        return
    with Live(console=console, refresh_per_second=4, transient=True) as live:
        yield lambda s: live.update(Text(_bench_line(s)))


def bench_result(result: BenchResult, *, output: Output) -> None:
    data = result.to_json()
    if output is Output.json:
        emit_json(data)
        return
    table = Table(
        title=f"bench: {result.clients} clients, {result.duration_s:.1f} s, "
        f"read ratio {result.read_ratio:g}, {result.value_size}-byte values",
        title_justify="left",
    )
    table.add_column("")
    table.add_column("ops", justify="right")
    table.add_column("ops/s", justify="right")
    for p in ("p50", "p90", "p99", "max"):
        table.add_column(f"{p} ms", justify="right")
    for kind, count, rate, lat in (
        ("writes", data["writes"], data["writes_per_s"], data["write_latency_ms"]),
        ("reads", data["reads"], data["reads_per_s"], data["read_latency_ms"]),
    ):
        table.add_row(
            kind, str(count), f"{rate:,.1f}", *(_dash(lat[p]) for p in ("p50", "p90", "p99", "max"))
        )
    table.add_row(
        "total", str(data["ops"]), f"{data['ops_per_s']:,.1f}", "", "", "", "", style="bold"
    )
    console = _console()
    console.print(table)
    if result.errors:
        console.print(
            f"[yellow]{result.errors} errors[/] (last: {escape(str(result.last_error))})",
            soft_wrap=True,
        )


# -- backup / restore / recover -------------------------------------------------------------------
def fields(title: str, values: dict[str, Any], *, output: Output) -> None:
    """A two-column table of ``values`` (JSON: the dict itself): snapshot status, recover."""
    if output is Output.json:
        emit_json(values)
        return
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for key, value in values.items():
        shown = ", ".join(map(str, value)) if isinstance(value, list) else _dash(value)
        table.add_row(key, shown or "-")
    _console().print(table)

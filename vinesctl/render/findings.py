"""Rich renderers for diagnostic findings, and the progress line shown while probing."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from rich.console import Group
from rich.table import Table
from rich.text import Text

from vinesctl.probes.findings import Finding, Progress, Report, Status, no_progress, summary

STYLE = {Status.OK: "green", Status.WARN: "yellow", Status.FAIL: "bold red", Status.SKIP: "dim"}
MARK = {Status.OK: "ok", Status.WARN: "warn", Status.FAIL: "FAIL", Status.SKIP: "skip"}


def status_text(status: Status) -> Text:
    return Text(MARK[status], style=STYLE[status])


def findings_table(
    findings: list[Finding],
    title: str | None = None,
    *,
    show_check: bool = True,
    show_target: bool = True,
) -> Table:
    table = Table(title=title, title_justify="left", show_lines=False, expand=False)
    table.add_column("", no_wrap=True)
    if show_check:
        table.add_column("check", no_wrap=True, style="cyan")
    if show_target:
        table.add_column("target", style="dim")
    table.add_column("finding", style="bold")
    table.add_column("detail")
    show_fix = any(f.fix for f in findings)
    if show_fix:
        table.add_column("fix", style="italic")
    for f in findings:
        row = [status_text(f.status)]
        if show_check:
            row.append(f.check)
        if show_target:
            row.append(f.target)
        row += [f.name, f.detail]
        if show_fix:
            row.append(f.fix)
        table.add_row(*row)
    return table


def summary_line(findings: list[Finding], strict: bool = False) -> Text:
    counts = summary(findings)
    text = Text()
    worst = Status.OK
    for f in findings:
        if f.status.rank > worst.rank:
            worst = f.status
    verdict = {
        Status.OK: ("all checks passed", "bold green"),
        Status.SKIP: ("all checks passed", "bold green"),
        Status.WARN: ("passed with warnings", "bold yellow"),
        Status.FAIL: ("problems found", "bold red"),
    }[worst]
    if strict and worst is Status.WARN:
        verdict = ("warnings fail with --strict", "bold red")
    text.append(verdict[0], style=verdict[1])
    parts = [f"{counts[s.value]} {s.value}" for s in Status if counts[s.value]]
    text.append(": " + ", ".join(parts) if parts else ": nothing checked")
    return text


def render_report(report: Report, strict: bool = False) -> Group:
    show_target = any(f.target for f in report.findings)
    return Group(
        findings_table(
            report.findings, f"{report.command} {report.subject}", show_target=show_target
        ),
        summary_line(report.findings, strict),
    )


@contextlib.contextmanager
def progress(enabled: bool, first: str = "probing") -> Iterator[Progress]:
    """A Rich status line on stderr while probing; silent when disabled (--json)."""
    if not enabled:
        yield no_progress
        return
    from vinesctl.output import console

    err = console(stderr=True)
    if not err.is_terminal:
        yield no_progress
        return
    lock = threading.Lock()
    with err.status(first) as status:

        def update(message: str) -> None:
            with lock:
                status.update(message)

        yield update

"""Rich renderers for `vinesctl dns` and `vinesctl tls` reports."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from vinesctl.probes.findings import Report
from vinesctl.render.findings import findings_table, summary_line

GRADE_STYLE = {
    "A": "bold green",
    "A-": "bold green",
    "B": "bold yellow",
    "C": "bold yellow",
    "F": "bold red",
}


def render_dns(report: Report, strict: bool = False) -> Group:
    parts: list = []
    for res in report.data.get("results", []):
        table = Table(
            title=f"{res.kind} targets for {res.domain} (in the order a client "
            f"tries them; resolver {res.resolver})",
            title_justify="left",
        )
        for col in ("#", "service", "prio", "weight", "target", "port", "mode", "addresses"):
            table.add_column(col)
        for i, t in enumerate(res.targets, 1):
            addrs = ", ".join(t.addresses) or Text(t.error or "unresolved", style="red")
            if t.cname and t.addresses:
                addrs = f"{', '.join(t.addresses)} (via CNAME {t.cname})"
            prio = "-" if t.source != "srv" else str(t.priority)
            weight = "-" if t.source != "srv" else str(t.weight)
            service = t.service if t.source == "srv" else f"{t.source} ({t.service})"
            table.add_row(str(i), service, prio, weight, t.host, str(t.port), t.mode, addrs)
        if not res.targets:
            table.add_row("-", "", "", "", Text("no targets", style="red"), "", "", "")
        parts.append(table)
    parts.append(
        findings_table(
            report.findings,
            f"findings for {report.subject}",
            show_target=any(f.target for f in report.findings),
        )
    )
    parts.append(summary_line(report.findings, strict))
    return Group(*parts)


def _cert_table(rep) -> Table:
    table = Table(
        title="certificate chain" + ("" if rep.chain_complete else " (leaf only)"),
        title_justify="left",
        show_lines=True,
    )
    for col in ("#", "subject", "issuer", "names", "key", "signature", "valid until"):
        table.add_column(col)
    for c in rep.chain:
        names = (
            c.dns_names
            + [f"SRV:{n}" for n in c.srv_names]
            + [f"xmppAddr:{n}" for n in c.xmpp_addrs]
        )
        style = "red" if c.days_left < 0 else ("yellow" if c.days_left < 30 else "")
        table.add_row(
            str(c.index),
            c.subject,
            c.issuer + (" (self-signed)" if c.self_signed else ""),
            "\n".join(names) or "-",
            f"{c.key_type} {c.key_bits}",
            c.signature_algorithm,
            Text(f"{c.not_after:%Y-%m-%d} ({c.days_left} d)", style=style),
        )
    return table


def render_tls(report: Report, strict: bool = False) -> Group:
    parts: list = []
    result = report.data.get("result")
    if result is not None:
        for rep in result.targets:
            hs = rep.handshake
            head = Text()
            head.append(f"{rep.target.label} ", style="bold")
            head.append(f"{rep.target.mode}", style="cyan")
            if hs.ok:
                head.append(f"  {hs.tls_version} {hs.cipher}")
                if hs.sasl_mechanisms:
                    head.append(f"  SASL: {' '.join(hs.sasl_mechanisms)}", style="dim")
            head.append("  grade ")
            head.append(rep.grade, style=GRADE_STYLE.get(rep.grade, "bold"))
            parts.append(head)
            for reason in rep.grade_reasons:
                parts.append(Text(f"  {reason}", style="dim"))
            if rep.chain:
                parts.append(_cert_table(rep))
        findings = report.findings
        parts.append(findings_table(findings, f"findings for {report.subject}", show_check=False))
        if result.targets:
            grade = Text("overall grade ")
            grade.append(result.grade, style=GRADE_STYLE.get(result.grade, "bold"))
            grade.append(" (the worst target's)", style="dim")
            parts.append(grade)
    parts.append(summary_line(report.findings, strict))
    return Group(*parts)

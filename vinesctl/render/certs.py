"""Rich renderer for `vinesctl cert show`."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table


def certificates_view(found: list[Any]) -> Group:
    tables = []
    for cert in found:
        table = Table(box=None, show_header=False, pad_edge=False, title_justify="left")
        table.title = f"[bold]{cert.domain}[/]"
        table.add_column(style="bold")
        table.add_column(overflow="fold")
        table.add_row("file", cert.certificate)
        table.add_row("key", cert.key)
        if cert.error:
            table.add_row("error", f"[red]{cert.error}[/]")
            tables.append(table)
            continue
        leaf = cert.leaf
        table.add_row("names", ", ".join(cert.names) or "-")
        match = cert.identity or "[red]does not name the domain[/]"
        table.add_row("identity", match)
        table.add_row("key type", f"{leaf.key_type} ({leaf.key_bits} bits)")
        left = f"{leaf.days_left} days left" if leaf.days_left >= 0 else "[red]expired[/]"
        table.add_row("expires", f"{leaf.not_after:%Y-%m-%d %H:%M} UTC ({left})")
        table.add_row("issuer", leaf.issuer + (" (self-signed)" if leaf.self_signed else ""))
        for info in cert.chain[1:]:
            table.add_row(
                f"chain {info.index}", f"{info.subject} (until {info.not_after:%Y-%m-%d})"
            )
        tables.append(table)
    return Group(*tables)

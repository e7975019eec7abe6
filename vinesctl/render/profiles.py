"""Rich renderers for profiles: data in, renderable out."""

from __future__ import annotations

from typing import Any

from rich.table import Table


def profile_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(box=None, pad_edge=False)
    for title in ("", "name", "jid", "server", "password", "config"):
        table.add_column(title, no_wrap=title in ("name", "jid"))
    for row in rows:
        password = "command" if row.get("password_command") else row["password"]
        table.add_row(
            "*" if row.get("default") else "",
            row["name"],
            row["jid"],
            row.get("server") or ("(running server)" if row.get("config") else "(DNS SRV)"),
            password,
            row.get("config") or "",
        )
    return table


def profile_details(data: dict[str, Any]) -> Table:
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    for key in ("name", "jid", "server", "ca", "config", "password", "password_command"):
        value = data.get(key)
        if key == "server" and not value:
            value = (
                "(the running server's port)"
                if data.get("config")
                else "(DNS SRV of the JID's domain)"
            )
        table.add_row(key, "" if value is None else str(value))
    table.add_row("default", "yes" if data.get("default") else "no")
    table.add_row("file", data.get("file", ""))
    return table

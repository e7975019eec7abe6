"""Rich renderers for the administration commands (results of `vinesctl.xmpp.admin`)."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text


def _yes(value: bool | None) -> str:
    return "?" if value is None else ("yes" if value else "")


def accounts_table(rows: list[Any]) -> Table:
    table = Table(box=None, pad_edge=False)
    table.add_column("jid", no_wrap=True)
    table.add_column("online")
    table.add_column("disabled")
    for row in rows:
        table.add_row(row.jid, _yes(row.online), _yes(row.disabled))
    return table


def online_table(users: list[Any]) -> Any:
    if not users:
        return Text("nobody is online", style="dim")
    details = any(u.details for u in users)
    table = Table(box=None, pad_edge=False)
    table.add_column("jid", no_wrap=True)
    if details:
        table.add_column("sessions")
    for user in users:
        if details:
            table.add_row(user.jid, "\n".join(user.details))
        else:
            table.add_row(user.jid)
    return table


def user_view(stats: Any) -> Group:
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("jid", stats.jid)
    if stats.disabled is not None:
        table.add_row("disabled", "[red]yes[/]" if stats.disabled else "no")
    table.add_row("online", "\n".join(stats.onlineresources) or "no")
    if stats.ipaddresses:
        table.add_row("addresses", "\n".join(stats.ipaddresses))
    if stats.rostersize is not None:
        table.add_row("roster size", str(stats.rostersize))
    if stats.lastlogin:
        table.add_row("last login", stats.lastlogin)
    if stats.stanzaspersecond:
        table.add_row("stanzas/s", stats.stanzaspersecond)
    if stats.loginsperminute:
        table.add_row("logins/min", stats.loginsperminute)
    for var, values in stats.other.items():
        table.add_row(var, "\n".join(values))
    parts: list[Any] = [table]
    if stats.roster:
        roster = Table(title="roster", title_justify="left", box=None, pad_edge=False)
        roster.add_column("contact", no_wrap=True)
        roster.add_column("name")
        roster.add_column("subscription")
        roster.add_column("groups")
        for item in stats.roster:
            roster.add_row(item.jid, item.name, item.subscription, ", ".join(item.groups))
        parts += [Text(""), roster]
    return Group(*parts)


def table_view(data: Any, empty: str = "nothing to show") -> Any:
    """A `Table` result (reported columns and item rows)."""
    if not data.rows:
        return Text(empty, style="dim")
    table = Table(pad_edge=False)
    for column in data.columns:
        table.add_column(column.label or column.var, overflow="fold")
    for row in data.rows:
        table.add_row(*(row.get(c.var, "") for c in data.columns))
    return table


def sessions_view(data: Any) -> Any:
    """Our sessions table, compact: TLS version and cipher in one column."""
    vars_ = [c.var for c in data.columns]
    if not data.rows or not {"jid", "tls_version", "cipher"} <= set(vars_):
        return table_view(data, "no sessions")
    table = Table(box=None, pad_edge=False)
    table.add_column("session", no_wrap=True)
    table.add_column("address", overflow="fold")
    table.add_column("TLS", overflow="fold")
    for var, title in (("mechanism", "SASL"), ("since", "since"), ("state", "state")):
        if var in vars_:
            table.add_column(title, overflow="fold")
    shown = {"jid", "ip", "tls_version", "cipher", "mechanism", "since", "state"}
    for row in data.rows:
        cells = [row.get("jid", ""), row.get("ip", ""),
                 f"{row.get('tls_version', '')} {row.get('cipher', '')}".strip()]  # fmt: skip
        cells += [row.get(v, "") for v in ("mechanism", "since", "state") if v in vars_]
        table.add_row(*cells)
    extra = [c for c in data.columns if c.var not in shown]
    if not extra:
        return table
    more = Table(box=None, pad_edge=False)
    more.add_column("session", no_wrap=True)
    for c in extra:
        more.add_column(c.label or c.var, overflow="fold")
    for row in data.rows:
        more.add_row(row.get("jid", ""), *(row.get(c.var, "") for c in extra))
    return Group(table, Text(""), more)


def stats_view(stats: Any) -> Group:
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    for value in stats.values:
        text = "\n".join(value.value) if isinstance(value.value, list) else value.value
        table.add_row(value.label, text)
    for kind, count in stats.counts.items():
        table.add_row(f"{kind} users", str(count))
    parts: list[Any] = [table]
    for t in stats.tables:
        parts += [Text(""), table_view(t)]
    if not stats.values and not stats.counts:
        parts.append(Text(f"{stats.domain} offers no statistics commands", style="yellow"))
    return Group(*parts)


def jid_list(data: dict[str, Any]) -> Any:
    """{'list': name, 'jids': [...]} as one JID per line."""
    if not data["jids"]:
        return Text(f"the {data['list']} list is empty", style="dim")
    return Text("\n".join(data["jids"]))


def motd_view(data: dict[str, Any]) -> Any:
    if not data.get("motd"):
        return Text("no message of the day", style="dim")
    return Text(data["motd"])

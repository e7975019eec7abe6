"""Rich renderers for the administration commands (results of `vinesctl.xmpp.admin`)."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text


def _yes(value: bool | None) -> str:
    return "?" if value is None else ("yes" if value else "")


def accounts_table(data: dict[str, Any]) -> Table:
    """{'accounts': [Account]}: a JID too long for the screen folds over lines (never cut: it
    names an account), so it cannot push the other columns off the table for every row."""
    rows = data["accounts"]
    table = Table(box=None, pad_edge=False)
    table.add_column("jid", overflow="fold")
    table.add_column("online", no_wrap=True)
    table.add_column("disabled", no_wrap=True)
    for row in rows:
        table.add_row(row.jid, _yes(row.online), _yes(row.disabled))
    return table


def session_line(session: dict[str, Any]) -> str:
    """One session of `online --details`: 'resource: ip 127.0.0.1, show away, priority 5'."""
    if "text" in session:
        return session["text"]
    cells = ", ".join(
        f"{k} {v}" for k, v in session.items() if k != "resource" and v not in (None, "")
    )
    return f"{session['resource']}: {cells}" if session.get("resource") else cells


def online_table(data: dict[str, Any]) -> Any:
    """{'users': [OnlineUser]}."""
    users = data["users"]
    if not users:
        return Text("nobody is online", style="dim")
    details = any(u.sessions for u in users)
    table = Table(box=None, pad_edge=False)
    table.add_column("jid", no_wrap=True)
    if details:
        table.add_column("sessions")
    for user in users:
        if details:
            table.add_row(user.jid, "\n".join(session_line(s) for s in user.sessions or []))
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
    if stats.stanzaspersecond is not None:
        table.add_row("stanzas/s", f"{stats.stanzaspersecond:g}")
    if stats.loginsperminute is not None:
        table.add_row("logins/min", f"{stats.loginsperminute:g}")
    for var, values in stats.other.items():
        table.add_row(var, "\n".join(values))
    parts: list[Any] = [table]
    if stats.roster:
        parts += [Text(""), roster_table(stats.roster, title="roster")]
    return Group(*parts)


def roster_table(items: list[Any], title: str | None = None) -> Table:
    roster = Table(title=title, title_justify="left", box=None, pad_edge=False)
    roster.add_column("contact", no_wrap=True)
    roster.add_column("name")
    roster.add_column("subscription")
    roster.add_column("groups")
    for item in items:
        roster.add_row(item.jid, item.name or "", item.subscription, ", ".join(item.groups))
    return roster


def roster_view(roster: Any) -> Any:
    """`vinesctl roster USER`."""
    if not roster.items:
        return Text(f"the roster of {roster.jid} is empty", style="dim")
    return roster_table(roster.items)


def table_view(data: Any, empty: str = "nothing to show") -> Any:
    """A `Table` result (reported columns and item rows)."""
    if not data.rows:
        return Text(empty, style="dim")
    table = Table(pad_edge=False)
    for column in data.columns:
        table.add_column(column.label or column.var, overflow="fold")
    for row in data.rows:
        table.add_row(*(row.get(c.var) or "" for c in data.columns))
    return table


def sessions_view(sessions: Any) -> Any:
    """Our sessions: one row each (TLS version and cipher in one column) when that fits the
    screen, else one block per session with every field on its own line. Nothing wraps inside
    a value: a cipher spread over four lines is unreadable."""
    data = sessions.table
    vars_ = [c.var for c in data.columns]
    if not data.rows or not {"jid", "tls_version", "cipher"} <= set(vars_):
        return table_view(data, "no sessions")
    return Fit(_sessions_rows(data), _sessions_blocks(data))


class Fit:
    """The wide renderable when the console is wide enough for it, else the narrow one."""

    def __init__(self, wide: Any, narrow: Any) -> None:
        self.wide, self.narrow = wide, narrow

    def __rich_console__(self, console: Any, options: Any) -> Any:
        from rich.measure import Measurement

        needed = Measurement.get(console, options.update(width=10_000), self.wide).maximum
        yield self.wide if needed <= options.max_width else self.narrow


def _sessions_rows(data: Any) -> Any:
    vars_ = [c.var for c in data.columns]
    table = Table(box=None, pad_edge=False)
    for title in ("session", "address", "TLS"):
        table.add_column(title, no_wrap=True)
    for var, title in (("mechanism", "SASL"), ("since", "since"), ("state", "state")):
        if var in vars_:
            table.add_column(title, no_wrap=True)
    shown = {"jid", "ip", "tls_version", "cipher", "mechanism", "since", "state"}
    for row in data.rows:
        cells = [row.get("jid") or "", row.get("ip") or "",
                 f"{row.get('tls_version') or ''} {row.get('cipher') or ''}".strip()]  # fmt: skip
        cells += [row.get(v) or "" for v in ("mechanism", "since", "state") if v in vars_]
        table.add_row(*cells)
    extra = [c for c in data.columns if c.var not in shown]
    if not extra:
        return table
    more = Table(box=None, pad_edge=False)
    more.add_column("session", no_wrap=True)
    for c in extra:
        more.add_column(c.label or c.var, no_wrap=True)
    for row in data.rows:
        more.add_row(row.get("jid") or "", *(row.get(c.var) or "" for c in extra))
    return Group(table, Text(""), more)


def _sessions_blocks(data: Any) -> Any:
    parts: list[Any] = []
    for row in data.rows:
        if parts:
            parts.append(Text(""))
        parts.append(Text(row.get("jid") or "", style="bold", overflow="fold"))
        fields = Table(box=None, show_header=False, pad_edge=False, padding=(0, 1, 0, 2))
        fields.add_column(style="dim", no_wrap=True)
        fields.add_column(overflow="fold")
        for c in data.columns:
            if c.var == "jid" or c.var == "cipher":
                continue
            value = row.get(c.var)
            if c.var == "tls_version":
                value = f"{value or ''} {row.get('cipher') or ''}".strip()
                fields.add_row("TLS", value)
            elif value:
                fields.add_row(c.label or c.var, value)
        parts.append(fields)
    return Group(*parts)


def stats_view(stats: Any) -> Group:
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    for value in stats.values:
        if isinstance(value.value, list):
            text = "\n".join(value.value)
        else:
            text = "" if value.value is None else str(value.value)
        table.add_row(value.label, text)
    for kind, count in stats.counts.items():
        table.add_row(f"{kind} users", str(count))
    parts: list[Any] = [table]
    for t in stats.tables:
        parts += [Text(""), table_view(t)]
    if stats.nodes:
        parts += [Text(""), nodes_table(stats.nodes)]
    if not stats.values and not stats.counts:
        parts.append(Text(f"{stats.domain} offers no statistics commands", style="yellow"))
    return Group(*parts)


NODE_TITLES = ("node", "address", "state", "heartbeat", "sessions", "load", "pid")


def nodes_table(nodes: list[Any]) -> Table:
    """The nodes serving the service, one row each (`vinesctl cluster`, stats, dashboard)."""
    table = Table(box=None, pad_edge=False)
    for title in NODE_TITLES:
        table.add_column(title, no_wrap=True, justify="right" if title == "sessions" else "left")
    for node in nodes:
        table.add_row(*node_cells(node))
    return table


def node_cells(node: Any) -> list[str]:
    state = "[green]alive[/]" if node.alive else "[red]gone[/]"
    beat = f"{node.heartbeat_age:.1f} s ago" if node.heartbeat_age is not None else "-"
    load = f"{node.load:.0f}% CPU" if node.load is not None else "-"
    pid = str(node.pid) if node.pid is not None else "-"
    return [node.name, node.address or "-", state, beat, str(node.sessions), load, pid]


def cluster_view(result: Any) -> Any:
    if not result.nodes:
        return Text("the server lists no nodes", style="dim")
    return nodes_table(result.nodes)


def jid_list(data: dict[str, Any]) -> Any:
    """{'list': name, 'jids': [...]} as one JID per line."""
    if not data["jids"]:
        return Text(f"the {data['list']} list is empty", style="dim")
    return Text("\n".join(data["jids"]))


def text_view(data: dict[str, str | None], what: str) -> Any:
    """{'motd': text} or {'welcome': text}; None: not set."""
    ((_key, text),) = data.items()
    return Text(f"no {what}", style="dim") if text is None else Text(text)


def s2s_view(streams: Any) -> Any:
    """Our s2s streams: one row each when that fits the screen, else one block per stream."""
    data = streams.table
    if not data.rows:
        return Text("no s2s streams", style="dim")
    return Fit(_s2s_rows(data), _s2s_blocks(data))


_S2S_WIDE = (("direction", "dir"), ("domain", "peer"), ("address", "address"), ("tls", "TLS"),
             ("auth", "auth"), ("certificate", "certificate"), ("since", "since"),
             ("queued", "queued"))  # fmt: skip


def _s2s_cells(row: dict[str, Any]) -> dict[str, str]:
    cells = {var: row.get(var) or "" for var, _ in _S2S_WIDE}
    cells["tls"] = f"{row.get('tls_version') or ''} {row.get('cipher') or ''}".strip()
    return cells


def _s2s_rows(data: Any) -> Any:
    table = Table(box=None, pad_edge=False)
    for _, title in _S2S_WIDE:
        table.add_column(title, no_wrap=True)
    for row in data.rows:
        cells = _s2s_cells(row)
        table.add_row(*(cells[var] for var, _ in _S2S_WIDE))
    return table


def _s2s_blocks(data: Any) -> Any:
    parts: list[Any] = []
    for row in data.rows:
        if parts:
            parts.append(Text(""))
        title = f"{row.get('direction') or ''} {row.get('domain') or ''}".strip()
        parts.append(Text(title, style="bold", overflow="fold"))
        fields = Table(box=None, show_header=False, pad_edge=False, padding=(0, 1, 0, 2))
        fields.add_column(style="dim", no_wrap=True)
        fields.add_column(overflow="fold")
        for var, label in _S2S_WIDE[2:]:
            value = _s2s_cells(row)[var]
            if value:
                fields.add_row(label, value)
        parts.append(fields)
    return Group(*parts)


def components_view(result: Any) -> Any:
    """Configured components: connected or not, where from, since, traffic, last load; one
    row each when that fits the screen, else one block each (nothing wraps inside a value)."""
    if not result.components:
        return Text("no components configured", style="dim")
    cells = [_component_cells(c) for c in result.components]
    table = Table(box=None, pad_edge=False)
    for title in COMPONENT_TITLES:
        table.add_column(title, no_wrap=True)
    for row in cells:
        table.add_row(*row)
    parts: list[Any] = []
    for row in cells:
        if parts:
            parts.append(Text(""))
        parts.append(Text(row[0], style="bold", overflow="fold"))
        fields = Table(box=None, show_header=False, pad_edge=False, padding=(0, 1, 0, 2))
        fields.add_column(style="dim", no_wrap=True)
        fields.add_column(overflow="fold")
        for title, value in zip(COMPONENT_TITLES[1:], row[1:], strict=True):
            if value:
                fields.add_row(title, value)
        parts.append(fields)
    return Fit(table, Group(*parts))


COMPONENT_TITLES = ("component", "name", "state", "address", "since", "in", "out", "load")


def _component_cells(c: Any) -> list[Any]:
    state = (c.show or "available") if c.connected else "disconnected"
    style = "green" if state == "available" else "yellow" if c.connected else "dim"
    load = " ".join(f"{k}={v}" for k, v in sorted((c.load or {}).items()))
    return [
        c.domain, c.name or "", Text(state, style=style), c.address or "", c.since or "",
        str(c.stanzas_in), str(c.stanzas_out), load,
    ]  # fmt: skip

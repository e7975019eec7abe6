"""Rich renderers for `vinesctl server status` and `vinesctl user list`."""

from __future__ import annotations

from typing import Any

from rich.table import Table


def status_view(data: dict[str, Any]) -> Table:
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("status", "[green]running[/]" if data["running"] else "[red]not running[/]")
    table.add_row("pid", str(data.get("pid") or "-"))
    if data.get("uptime") is not None:
        table.add_row("uptime", human_duration(data["uptime"]))
    if data.get("version"):
        table.add_row("version", data["version"])
    table.add_row("domains", ", ".join(data.get("domains") or []) or "-")
    nodes = data.get("nodes") or []
    node_set = len(nodes) > 1 or (nodes and nodes[0].get("index") is not None)
    for listener in data.get("listeners") or []:
        if not (node_set and listener.get("kind") == "metrics"):  # a set's: on each node's line
            table.add_row("listener", listener_line(listener))
    for cert in data.get("certificates") or []:
        if cert.get("not_after") is None:
            table.add_row("certificate", f"{cert['domain']}: [red]{cert.get('error')}[/]")
            continue
        days = cert["days_left"]
        left = f"{days} days left" if days >= 0 else "[red]expired[/]"
        if 0 <= days < 30:
            left = f"[yellow]{left}[/]"
        until = f"{cert['not_after']:%Y-%m-%d}"
        table.add_row("certificate", f"{cert['domain']}: until {until} ({left})")
    storage = data.get("storage")
    if storage:
        where = storage.get("dsn") or storage.get("path")
        table.add_row("storage", f"{storage['backend']} {where}" if where else storage["backend"])
    table.add_row("config", data.get("config") or "")
    if node_set:
        for node in nodes:  # a set started with --nodes: each process and its log
            table.add_row(f"node @{node['index']}", node_line(node))
    elif data.get("log"):
        table.add_row("log", data["log"])
    return table


def node_line(node: dict[str, Any]) -> str:
    """One process of a set: name, state, pid, uptime, log."""
    name = node.get("node") or "-"
    if not node.get("running"):
        return f"{name}  [red]not running[/]  log {node.get('log')}"
    uptime = human_duration(node["uptime"]) if node.get("uptime") is not None else "-"
    own = "".join(  # a node's own port; the others are shared by the set
        f"  {listener_line(x)}" for x in node.get("listeners") or [] if x.get("kind") == "metrics"
    )
    return f"{name}  [green]running[/]  pid {node['pid']}  up {uptime}{own}  log {node.get('log')}"


def listener_line(listener: dict[str, Any]) -> str:
    host = listener.get("host", "")
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{listener.get('port')} ({listener.get('kind')})"


def human_duration(seconds: float) -> str:
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days}d"] if days else []
    if days or hours:
        parts.append(f"{hours}h")
    if days or hours or minutes:
        parts.append(f"{minutes}m")
    parts.append(f"{secs}s")
    return " ".join(parts)


def users_table(users: list[dict[str, Any]]) -> Table:
    table = Table(box=None, pad_edge=False)
    table.add_column("jid", overflow="fold")  # see render.admin.accounts_table
    table.add_column("created", no_wrap=True)
    table.add_column("last login", no_wrap=True)
    table.add_column("disabled", no_wrap=True)
    for user in users:
        table.add_row(
            user["jid"],
            (user.get("created") or "")[:19],
            (user.get("last_login") or "")[:19] or "never",
            "yes" if user.get("disabled") else "",
        )
    return table


def account_view(user: dict[str, Any]) -> Table:
    """One account of a bundled server's store (`vinesctl user show --config`)."""
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("jid", user["jid"])
    table.add_row("disabled", "[red]yes[/]" if user.get("disabled") else "no")
    table.add_row("created", (user.get("created") or "")[:19] or "-")
    table.add_row("last login", (user.get("last_login") or "")[:19] or "never")
    table.add_row("last logout", (user.get("last_logout") or "")[:19] or "-")
    return table

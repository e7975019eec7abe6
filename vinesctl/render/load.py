"""Rich renderer for `vinesctl load`."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from vinesctl.output import counted
from vinesctl.render.servers import human_duration


def render_load(load: Any) -> Table:
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    capacity = f" of {load.capacity}" if load.capacity else ""
    users = counted(load.users, "user")
    table.add_row("online", f"{counted(load.online, 'session')}{capacity}, {users}")
    table.add_row("stanzas", f"{load.stanzas_in:g}/s in, {load.stanzas_out:g}/s out")
    table.add_row("cpu", f"{load.cpu:g}%")
    table.add_row("memory", f"{load.memory_kib / 1024:.1f} MiB")
    table.add_row("uptime", human_duration(load.uptime))
    for name, count in sorted(load.listeners.items()):
        table.add_row("listener", f"{name}: {counted(count, 'connection')}")
    return table

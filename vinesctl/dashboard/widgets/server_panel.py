"""The server panel: the load the server publishes as presence, with sparklines."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, Sparkline, Static

from vinesctl.dashboard.model import LoadHistory, LoadSample


def human_duration(seconds: int) -> str:
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h {minutes}m"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s"


def load_text(sample: LoadSample | None, source: str, nodes: Sequence[Any] = ()) -> str:
    """The panel's figures as markup-free lines; then one line per node of the service."""
    each = [node_line(n) for n in nodes]
    if sample is None:
        if source == "none":
            lines = ["load unavailable:", "the server does not publish it", "(urn:vinesctl:load:0)"]
            return "\n".join([*lines, *each])
        return "\n".join(["waiting for the server's load...", *each])
    capacity = f" / {sample.capacity}" if sample.capacity else ""
    lines = [
        f"online   {sample.online}{capacity} sessions",
        f"users    {sample.users}",
        f"stanzas  {sample.stanzas_in:g}/s in, {sample.stanzas_out:g}/s out",
        f"cpu      {sample.cpu:g}%",
        f"memory   {sample.memory_kib / 1024:.1f} MiB",
        f"uptime   {human_duration(sample.uptime)}",
    ]
    for name, count in sorted(sample.listeners.items()):
        lines.append(f"listener {name}: {count}")
    how = {"push": "pushed as presence", "poll": "polled"}.get(source, source)
    state = sample.show or "available"
    lines.append(f"presence {state} ({how})")
    return "\n".join([*lines, *each])


def node_line(node: Any) -> str:
    """One node of the service: name, alive, sessions, load (fits the side panel)."""
    if not node.alive:
        return f"node {node.name}: gone"
    load = f", {node.load:g}% cpu" if node.load is not None else ""
    return f"node {node.name}: {node.sessions} sessions{load}"


class ServerPanel(Vertical):
    def __init__(self, history: LoadHistory, **kwargs) -> None:
        super().__init__(**kwargs)
        self.history = history

    def compose(self) -> ComposeResult:
        yield Static(Text(load_text(None, "waiting")), id="load-figures")
        yield Label("online sessions", classes="spark-label")
        yield Sparkline([], id="spark-online")
        yield Label("stanzas/s", classes="spark-label")
        yield Sparkline([], id="spark-rate")

    def on_mount(self) -> None:
        self.show_load()  # a sample may have arrived before the panel was composed

    def show_load(self) -> None:
        if not self.is_mounted or not self.query("#load-figures"):
            return  # not composed yet: on_mount draws the history as it is then
        history = self.history
        figures = Text(load_text(history.current, history.source, history.nodes))
        self.query_one("#load-figures", Static).update(figures)
        self.query_one("#spark-online", Sparkline).data = list(history.online)
        self.query_one("#spark-rate", Sparkline).data = list(history.rate)
        if history.current is not None:
            peak = max(history.online, default=0)
            self.query_one(".spark-label", Label).update(
                f"online sessions (now {history.current.online}, peak {peak:g})"
            )

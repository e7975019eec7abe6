"""`vinesctl presence [--watch] [--json]`: who is online on the server, from the same presence
feed the dashboard uses (or the polling fallback), as lines or JSON lines for scripts."""

from __future__ import annotations

import sys

import click

from vinesctl.commands.remote import timeout_option
from vinesctl.connection import connect_options, settings_from
from vinesctl.output import emit, json_option


@click.command("presence")
@click.option("--watch", "-w", is_flag=True, help="Keep printing presence changes as they happen.")
@click.option(
    "--poll-interval",
    type=click.FloatRange(min=0.5, max=3600),
    default=3.0,
    show_default=True,
    metavar="SECONDS",
    help="How often to poll the online users list on servers without the presence feed.",
)
@timeout_option
@connect_options
@json_option
@click.pass_context
def command(
    ctx: click.Context,
    watch: bool,
    poll_interval: float,
    timeout: float,
    server: str | None,
    ca: str | None,
    insecure: bool,
    as_json: bool,
) -> None:
    """Show who is online (every session, with show, status, priority and client).

    With --watch, print each change as it happens: 'online', 'changed' and 'offline' lines
    (with --json: one JSON object per line, with event, jid, show, status, priority, client,
    time and phase: snapshot, delta or poll). Connection state goes to stderr. The bundled server
    pushes the changes (urn:vinesctl:presence-feed); other servers are polled with the XEP-0133
    online users list. Needs an administrator's account. Stop with Ctrl-C.
    """
    import asyncio
    import contextlib

    from vinesctl.dashboard.feed import Watcher
    from vinesctl.dashboard.model import Change, LoadSample

    settings = settings_from(ctx, server, ca, insecure)

    class Printer:
        def __init__(self) -> None:
            self.synced = asyncio.Event()

        def changes(self, changes: list[Change]) -> None:
            if watch:
                for change in changes:
                    if as_json:
                        import json

                        line = json.dumps(change.as_json())
                    else:
                        line = change.line()
                    sys.stdout.write(line + "\n")
                sys.stdout.flush()

        def status(self, state: str, text: str) -> None:
            if watch:
                click.echo(f"vinesctl: {text}", err=True)

        def load(self, sample: LoadSample | None) -> None:
            pass

        def note(self, text: str, level: str = "info") -> None:
            if watch and level != "info":
                click.echo(f"vinesctl: {text}", err=True)

    printer = Printer()
    watcher = Watcher(
        settings, printer, poll_interval=poll_interval, timeout=timeout, want_load=False
    )

    async def once():
        task = asyncio.ensure_future(watcher.run())
        synced = asyncio.ensure_future(watcher.synced.wait())
        await asyncio.wait({task, synced}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()  # the login failed: raise its error
        task.cancel()
        client = watcher.client
        if client is not None and watcher.mode == "live":
            from vinesctl.dashboard.feed import stop_feed

            await stop_feed(client, settings.domain)
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return watcher.board

    if watch:
        try:
            asyncio.run(watcher.run())
        except KeyboardInterrupt:
            return
        return
    board = asyncio.run(once())
    sessions = []
    for bare in board.matching():
        row = board.get(bare)
        for name, res in sorted(row.resources.items()):
            sessions.append(
                Change(
                    "online",
                    f"{bare}/{name}" if name else bare,
                    res.show,
                    res.status,
                    res.priority,
                    res.client,
                    res.since,
                    "snapshot",
                ).as_json()
            )
    emit({"sessions": sessions}, as_json, _render)


def _render(data: dict[str, list[dict]]):
    from datetime import datetime

    from rich.table import Table

    from vinesctl.dashboard.model import client_name, format_since

    sessions = data["sessions"]
    if not sessions:
        return "nobody is online"
    table = Table(box=None, pad_edge=False)
    for name in ("jid", "show", "status", "prio", "client", "since"):
        table.add_column(name, style="bold" if name == "jid" else None, no_wrap=name == "jid")
    for s in sessions:
        since = format_since(datetime.fromisoformat(s["time"].replace("Z", "+00:00")))
        status, client = s["status"] or "", client_name(s["client"] or "")
        row = (s["jid"], s["show"], status, str(s["priority"]), client)
        table.add_row(*row, since)
    return table

"""`vinesctl dashboard`: a live terminal view of who is online and of the server's load."""

from __future__ import annotations

import click

from vinesctl.commands.remote import timeout_option
from vinesctl.connection import connect_options, settings_from


@click.command("dashboard")
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
@click.pass_context
def command(
    ctx: click.Context,
    poll_interval: float,
    timeout: float,
    server: str | None,
    ca: str | None,
    insecure: bool,
) -> None:
    """Watch who is online, live: a table of users (JID, resources, show, status, client,
    since), the server's load with sparklines, and an event log.

    The bundled server pushes every presence change (urn:vinesctl:presence-feed) and its own
    load as presence; against other servers (Prosody, ejabberd) the XEP-0133 online users list
    is polled, and the status bar says so. Lost connections are retried with backoff.
    Keys: / filter, enter details, k kick, m message, a announce, ? help, q quit.
    Needs an administrator's account.
    """
    import sys

    from vinesctl.errors import UsageError

    if not sys.stdout.isatty():  # a full-screen app into a pipe or file is escape codes
        raise UsageError(
            "vinesctl dashboard needs a terminal (standard output is not one)",
            "run it in a terminal; for scripts use 'vinesctl presence --watch --json' "
            "or 'vinesctl load --json'",
        )
    from vinesctl.dashboard.app import Dashboard

    settings = settings_from(ctx, server, ca, insecure)
    app = Dashboard(settings, poll_interval=poll_interval, timeout=timeout)
    app.run()
    if app.error is not None:
        raise app.error

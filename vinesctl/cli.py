"""Root command group and the single error boundary.

Command modules import only click and the standard library at top level; slixmpp, textual and
dnspython load inside the commands that need them, and a command's module loads only when that
command is used (`COMMANDS`), so `vinesctl --help` stays fast and `vinesctl user add` pays for
the user commands alone.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn

from vinesctl import __version__, collector, quick_exit

with collector.loading():  # Click's import: ~3 ms of collections over objects kept until exit
    import click

    from vinesctl.errors import CheckFailed, VinesctlError
    from vinesctl.lazy_group import LazyGroup

# the variable through which a shell asks vinesctl for completions (Click's convention)
COMPLETE_VAR = "_VINESCTL_COMPLETE"

# every command: its module vinesctl/commands/<name>.py (exposing `command`) and its summary, the
# first sentence of its help. The root group imports a module only when its command is used, so
# `vinesctl --help` lists them from here (tests/cli/test_lazy_commands.py keeps both in step).
COMMANDS = {
    "adhoc": "List and run any server's ad-hoc commands (XEP-0050).",
    "admins": (
        "Show the service's administrators, or add/remove accounts of the profile's domain "
        "(XEP-0133 edit-admin)."
    ),
    "allowlist": (
        "Show the federation allowlist (the domains users may exchange stanzas with), or add/remove"
        " domains (XEP-0133 edit-whitelist)."
    ),
    "announce": (
        "Send TEXT (or standard input, or '-') to every user online on the profile's domain."
    ),
    "blocklist": (
        "Show the federation blocklist (domains refused outright), or add/remove domains (XEP-0133 "
        "edit-blacklist)."
    ),
    "cert": "Show, generate and import the bundled server's certificates.",
    "check": "Check everything about DOMAIN's XMPP service and print one table of findings.",
    "cluster": "List the server's cluster nodes: address, heartbeat age, alive, sessions, load.",
    "completion": "Print the completion script for SHELL.",
    "components": "List the server's components: connected, address, since, traffic, load.",
    "dashboard": (
        "Watch who is online, live: a table of users (JID, resources, show, status, client, since),"
        " the server's load with sparklines, and an event log."
    ),
    "disco": (
        "Show the identities, features, extended info and items of JID (default: your domain)."
    ),
    "dns": "Check the XMPP DNS records of DOMAIN and connect to every target.",
    "load": (
        "Print the server's current load: users online, stanza rates, CPU, memory, uptime, capacity"
        " and connections per listener (needs an administrator's account)."
    ),
    "motd": "The message of the day, sent to users when they log in.",
    "online": "List the users online on the profile's domain.",
    "presence": "Show who is online (every session, with show, status, priority and client).",
    "profile": "Manage connection profiles.",
    "roster": (
        "Show USER's roster (a localpart takes the profile's domain); 'add CONTACT' adds or updates"
        " an item, 'remove CONTACT' removes it and cancels the subscriptions (both need an admin of"
        " USER's domain)."
    ),
    "s2s": (
        "List the server's server-to-server streams with their TLS, authentication and certificate "
        "verdict (needs an operator: an admin listed in the server's vines.toml)."
    ),
    "send": "Send TEXT (or standard input, '-') to JID as a chat message.",
    "server": "Set up, start, stop and inspect the bundled server.",
    "sessions": "List the server's sessions with their TLS, SASL and address details.",
    "stats": "Show the server's statistics and user counts.",
    "tls": "Check the TLS of DOMAIN's XMPP service, target by target.",
    "unban": (
        "Let IP log in again after the server banned it for failed logins (needs an operator: an "
        "admin listed in the server's vines.toml)."
    ),
    "user": (
        "Manage accounts: over XMPP by default (XEP-0133; the profile's account must be an "
        "administrator), or on a bundled server's store with --config PATH."
    ),
    "welcome": "The welcome message, sent to each new account.",
}


def _complete_profile(ctx: click.Context, param: click.Parameter, incomplete: str) -> list:
    from vinesctl.commands.completion import profile_names

    return profile_names(ctx, param, incomplete)


@click.group(
    cls=LazyGroup,
    package="vinesctl.commands",
    lazy_commands=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option(
    "--profile",
    envvar="VINESCTL_PROFILE",
    metavar="NAME",
    shell_complete=_complete_profile,
    help="Connection profile to use (default: the default profile).",
)
@click.option("--debug", is_flag=True, help="Show tracebacks and XML traffic.")
@click.version_option(__version__, prog_name="vinesctl")
@click.pass_context
def cli(ctx: click.Context, profile: str | None, debug: bool) -> None:
    """Run, drive and diagnose XMPP servers."""
    ctx.ensure_object(dict)
    ctx.obj["profile"] = profile
    ctx.obj["debug"] = debug
    if debug:
        from vinesctl import trace

        trace.enable()


def main(argv: list[str] | None = None) -> None:
    """Entry point: runs the CLI; any VinesctlError becomes one line on stderr and its exit code
    (with --json, also an `{"error": ...}` object on stdout). As the process's entry point
    (no argv) after a remote command, the process ends without the interpreter's teardown."""
    args = argv if argv is not None else sys.argv[1:]
    try:
        _main(argv, args)
    except SystemExit as exc:
        if argv is None and "--debug" not in args:
            quick_exit.exit_now(exc.code)
        raise
    if argv is None and "--debug" not in args:
        quick_exit.exit_now(0)


def _main(argv: list[str] | None, args: list[str]) -> None:
    from vinesctl import output

    debug = "--debug" in args
    output.reset_json_requested()
    if COMPLETE_VAR in os.environ:  # a shell asking for completions, not a person
        from vinesctl.commands.completion import register_shells

        register_shells()

    def fail(error: VinesctlError, code: int) -> NoReturn:
        """One line on stderr; with --json also the error object on stdout; exit `code`."""
        # a usage error can stop Click before it reads --json: then the word in argv decides
        if output.json_requested() or "--json" in args[: _end_of_options(args)]:
            condition = getattr(error, "condition", None)
            output.emit_error(error.message, error.fix, code, condition)
        click.echo(f"vinesctl: {error.line()}", err=True)
        sys.exit(code)

    try:
        code = cli.main(args=argv, standalone_mode=False, prog_name="vinesctl")
        # without standalone mode Click returns the code of `ctx.exit(code)` instead of exiting
        # (commands return None, so an int here is that code)
        if isinstance(code, int) and not isinstance(code, bool) and code != 0:
            sys.exit(code)
    except CheckFailed as exc:  # the report (JSON or not) is already printed: it is the answer
        if debug:
            raise
        click.echo(f"vinesctl: {exc.line()}", err=True)
        sys.exit(exc.exit_code)
    except VinesctlError as exc:
        if debug:
            raise
        fail(exc, exc.exit_code)
    except click.exceptions.Abort:
        fail(VinesctlError("aborted"), 130)
    except click.ClickException as exc:
        if output.json_requested() or "--json" in args[: _end_of_options(args)]:
            output.emit_error(exc.format_message(), None, exc.exit_code)
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        fail(VinesctlError("interrupted"), 130)


def _end_of_options(args: list[str]) -> int:
    """Where options end (`--`): a `--json` after it is an argument, not the option."""
    return args.index("--") if "--" in args else len(args)

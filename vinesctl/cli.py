"""Root command group and the single error boundary.

Command modules import only click and the standard library at top level; slixmpp, textual and
dnspython load inside the commands that need them, so `vinesctl --help` stays fast.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import NoReturn

import click

from vinesctl import __version__
from vinesctl.errors import CheckFailed, VinesctlError

# the variable through which a shell asks vinesctl for completions (Click's convention)
COMPLETE_VAR = "_VINESCTL_COMPLETE"

# one module per command group in vinesctl/commands/, each exposing `command` (a click command)
COMMAND_MODULES = (
    "server",
    "user",
    "profile",
    "dns",
    "tls",
    "check",
    "disco",
    "completion",
    "dashboard",
    "presence",
    "load",
    "online",
    "sessions",
    "components",
    "cluster",
    "stats",
    "announce",
    "motd",
    "welcome",
    "admins",
    "allowlist",
    "blocklist",
    "adhoc",
    "unban",
    "cert",
    "s2s",
    "send",
    "roster",
)


def _complete_profile(ctx: click.Context, param: click.Parameter, incomplete: str) -> list:
    from vinesctl.commands.completion import profile_names

    return profile_names(ctx, param, incomplete)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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


for _name in COMMAND_MODULES:
    try:
        _module = importlib.import_module(f"vinesctl.commands.{_name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"vinesctl.commands.{_name}":
            raise
        continue
    cli.add_command(_module.command)


def main(argv: list[str] | None = None) -> None:
    """Entry point: runs the CLI; any VinesctlError becomes one line on stderr and its exit code
    (with --json, also an `{"error": ...}` object on stdout)."""
    from vinesctl import output

    args = argv if argv is not None else sys.argv[1:]
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

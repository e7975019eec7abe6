"""What the administration commands share: log in with the profile (spinner on stderr while
connecting, silent with --json), run one coroutine with the session, disconnect.

Not a command group itself (no `command`): the admin command modules import it. Only click and
the standard library at module level; slixmpp loads inside `run_remote`.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import click

from vinesctl.connection import connect_options
from vinesctl.errors import UsageError, VinesctlError

T = TypeVar("T")

timeout_option = click.option(
    "--timeout",
    type=click.FloatRange(min=0.5, max=600),
    default=20.0,
    show_default=True,
    metavar="SECONDS",
    help="Give up on the login or on one request after this long.",
)


class Spinner:
    """A Rich status line on stderr; nothing when disabled or stderr is not a terminal."""

    def __init__(self, enabled: bool, message: str) -> None:
        self.status: Any = None
        if not enabled or not _may_be_terminal():
            return
        from vinesctl.output import console

        err = console(stderr=True)
        if err.is_terminal:
            self.status = err.status(message, spinner="dots")
            self.status.start()

    def update(self, message: str) -> None:
        if self.status is not None:
            self.status.update(message)

    def stop(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None


def _may_be_terminal() -> bool:
    """Whether Rich could take stderr for a terminal: it is a tty, or the environment says so
    (Rich reads TTY_COMPATIBLE and FORCE_COLOR). Otherwise no spinner, and Rich (~17 ms to
    import) stays unloaded, as in scripts and pipes."""
    if os.environ.get("TTY_COMPATIBLE") or os.environ.get("FORCE_COLOR") is not None:
        return True
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stderr: Rich says no too
        return False


@contextlib.contextmanager
def spinner(enabled: bool, message: str) -> Iterator[Spinner]:
    s = Spinner(enabled, message)
    try:
        yield s
    finally:
        s.stop()


def settings(ctx: click.Context, server: str | None, ca: str | None, insecure: bool) -> Any:
    """ConnectionSettings; a bundled server's profile whose server is not running says so."""
    from vinesctl.connection import bundled_listener, settings_from
    from vinesctl.profiles import current

    if not server and not os.environ.get("VINESCTL_JID"):
        profile = current(ctx, required=False)
        if (
            profile is not None
            and not profile.server
            and profile.config
            and bundled_listener(profile.config) is None
        ):
            raise VinesctlError(
                f"the bundled server of profile {profile.name!r} is not running "
                f"(no listener recorded next to {profile.config})",
                f"start it with 'vinesctl server start --config {profile.config}', "
                "or pass --server HOST:PORT",
            )
    return settings_from(ctx, server, ca, insecure)


def run_remote(
    ctx: click.Context,
    server: str | None,
    ca: str | None,
    insecure: bool,
    as_json: bool,
    work: Callable[[Any, Any, Spinner], Awaitable[T]],
    timeout: float = 20.0,
) -> T:
    """Logs in, awaits `work(client, settings, spinner)`, logs out; returns what work returned."""
    return run_with(settings(ctx, server, ca, insecure), as_json, work, timeout)


def show_listing(
    ctx: click.Context,
    server: str | None,
    ca: str | None,
    insecure: bool,
    as_json: bool,
    timeout: float,
    query: str,
    view: str,
) -> Any:
    """One of the server's admin listings: `vinesctl.xmpp.admin.<query>(client, domain)` as the
    profile's account, printed by `vinesctl.render.admin.<view>` (a table, or --json); returns
    the result. Named rather than passed so that both modules load only when a command runs."""
    from vinesctl.output import emit

    async def work(client: Any, conn: Any, _s: Any) -> Any:
        from vinesctl.xmpp import admin

        return await getattr(admin, query)(client, conn.domain)

    from vinesctl.render import admin as views

    result = run_remote(ctx, server, ca, insecure, as_json, work, timeout)
    emit(result, as_json, getattr(views, view))
    return result


def run_with(
    conn: Any,
    as_json: bool,
    work: Callable[[Any, Any, Spinner], Awaitable[T]],
    timeout: float = 20.0,
    plugins: tuple[str, ...] = ("xep_0030",),
) -> T:
    """`run_remote` with settings already resolved (when a prompt must come first)."""
    from vinesctl import collector

    # importing asyncio and slixmpp and logging in: no automatic collection (see collector)
    resume_collection = collector.pause()
    try:
        return _run_session(conn, as_json, work, timeout, plugins, resume_collection)
    finally:
        resume_collection()


def _run_session(
    conn: Any,
    as_json: bool,
    work: Callable[[Any, Any, Spinner], Awaitable[T]],
    timeout: float,
    plugins: tuple[str, ...],
    logged_in: Callable[[], None],
) -> T:
    """The session of `run_with`; `logged_in()` is called as soon as the login succeeded."""
    import asyncio
    import gc
    import traceback

    from vinesctl import collector, quick_exit
    from vinesctl.xmpp.session import guarded, load_slixmpp, open_session

    load_slixmpp(conn)  # before the freeze below: its modules live until exit

    async def session() -> T:
        with spinner(not as_json, f"connecting to {conn.address} as {conn.jid}...") as s:
            async with open_session(conn, plugins, timeout) as client:
                logged_in()
                s.update(f"working on {conn.domain}...")
                return await guarded(client, work(client, conn, s))

    async def go() -> T:
        # slixmpp's client cleans up in __del__ through its loop: let it go while the loop
        # still runs (otherwise 'Event loop is closed' at exit), also when a traceback holds it.
        # What exists before the session (every imported module) outlives it: frozen, the
        # collector skips it and walks only the session's objects (a full pass costs ~8 ms).
        gc.freeze()
        try:
            return await session()
        except BaseException as exc:
            traceback.clear_frames(exc.__traceback__)
            raise
        finally:
            gc.collect()
            gc.unfreeze()
            collector.freeze_at_exit()  # the session's garbage is gone: the rest is live
            quick_exit.session_ended()

    return asyncio.run(go())


def user_jid(conn: Any, user: str) -> str:
    """A bare JID of an account on the profile's domain (the service every XEP-0133 command
    goes to); a bare localpart takes that domain."""
    from vinesctl.profiles import check_domain, check_jid

    user = user.strip()
    if "@" in user:
        jid = check_jid(user)
        domain = jid.rpartition("@")[2]
        if domain != check_domain(conn.domain):
            raise UsageError(
                f"{jid} is not on {conn.domain}: the commands of {conn.jid} manage the accounts "
                f"of {conn.domain} only",
                f"give an account of {conn.domain}, or use a profile of an admin of {domain} "
                "(--profile)",
            )
        return jid
    if not user or "/" in user:
        raise UsageError(f"{user!r} is not a user name", "give user@domain or a localpart")
    return check_jid(f"{user}@{conn.domain}")


def read_text(text: str | None, what: str) -> str:
    """TEXT from the argument, or from standard input when it is not a terminal."""
    if text is not None and text != "-":
        if not text.strip():
            raise UsageError(f"the {what} is empty", f"give the {what} text")
        return text
    try:
        interactive = sys.stdin.isatty()
    except (AttributeError, ValueError):
        interactive = False
    if interactive and text is None:
        raise UsageError(f"no {what} given", "give the text as an argument or pipe it ('-')")
    data = sys.stdin.read()
    if not data.strip():
        raise UsageError(f"the {what} read from standard input is empty", "pipe some text")
    return data.rstrip("\n")


def warn_notes(outcome: Any) -> None:
    """Warnings the server attached to a completed command, on stderr."""
    for note in getattr(outcome, "notes", []):
        if note.type == "warn" and note.text:
            click.echo(f"warning: {note.text}", err=True)


def make_list_group(name: str, which: str, doc: str, entry: str, domains: bool) -> click.Group:
    """`vinesctl NAME [add|remove ENTRY...]` over an XEP-0133 edit-* list (admin, whitelist,
    blacklist): without a subcommand it shows the list (the prefilled form, then canceled);
    add/remove read it, change it and submit the whole list."""
    from vinesctl.output import emit, json_option

    def normalize(conn: Any, value: str) -> str:
        """A domain (allowlist, blocklist) or an account on the profile's domain (admins)."""
        if not domains:
            return user_jid(conn, value)
        if "@" in value or "/" in value:
            domain = value.strip().rpartition("@")[2].partition("/")[0]
            raise UsageError(
                f"{value!r} is a JID: the {name} holds domains", f"give the domain, e.g. {domain}"
            )
        from vinesctl.profiles import check_domain

        return check_domain(value)

    def show(ctx: click.Context, server: Any, ca: Any, insecure: bool, timeout: float,
             as_json: bool) -> None:  # fmt: skip
        async def work(client: Any, conn: Any, _s: Any) -> Any:
            from vinesctl.xmpp import admin

            return {"list": name, "jids": await admin.get_list(client, conn.domain, which)}

        from vinesctl.render.admin import jid_list

        emit(run_remote(ctx, server, ca, insecure, as_json, work, timeout), as_json, jid_list)

    @click.group(name, invoke_without_command=True, help=doc)
    @timeout_option
    @connect_options
    @json_option
    @click.pass_context
    def group(ctx: click.Context, server: Any, ca: Any, insecure: bool, timeout: float,
              as_json: bool) -> None:  # fmt: skip
        ctx.ensure_object(dict)
        ctx.obj["list_options"] = (server, ca, insecure, timeout, as_json)
        if ctx.invoked_subcommand is None:
            show(ctx, server, ca, insecure, timeout, as_json)

    def change(ctx: click.Context, entries: tuple[str, ...], adding: bool, mine: tuple) -> None:
        # options given after the subcommand win over the group's
        group_opts = ctx.obj["list_options"]
        server, ca, insecure, timeout, as_json = (
            m if m not in (None, False) else g for m, g in zip(mine, group_opts, strict=True)
        )

        async def work(client: Any, conn: Any, _s: Any) -> Any:
            from vinesctl.xmpp import admin

            wanted = list(dict.fromkeys(normalize(conn, e) for e in entries))
            current = await admin.get_list(client, conn.domain, which)
            if adding:
                new = current + [e for e in wanted if e not in current]
            else:
                missing = [e for e in wanted if e not in current]
                if missing:  # nothing changes: say exactly which entries are the trouble
                    listed = [e for e in wanted if e in current]
                    raise VinesctlError(
                        f"nothing removed: {', '.join(missing)} "
                        f"{'is' if len(missing) == 1 else 'are'} not on the {name} list"
                        + (f" ({', '.join(listed)} still on it)" if listed else ""),
                        f"see 'vinesctl {name}', and run again with only entries on it",
                    )
                new = [e for e in current if e not in wanted]
            outcome = None
            if new != current:
                outcome = await admin.edit_list(client, conn.domain, which, new)
            final = await admin.get_list(client, conn.domain, which)
            # a server may keep entries it does not let us change (ours: those in its config)
            stuck = [e for e in wanted if (e in final) != adding]
            if stuck:
                why = outcome.text if outcome is not None and outcome.text else "kept by the server"
                raise VinesctlError(
                    f"{', '.join(stuck)} {'not added to' if adding else 'still on'} the {name} "
                    f"list ({why})",
                    "change the server's configuration file for entries set there",
                )
            return {"list": name, "jids": final}

        from vinesctl.render.admin import jid_list

        emit(run_remote(ctx, server, ca, insecure, as_json, work, timeout), as_json, jid_list)

    sub_timeout = click.option(
        "--timeout",
        type=click.FloatRange(min=0.5, max=600),
        default=None,
        metavar="SECONDS",
        help="Give up on the login or on one request after this long (default 20).",
    )

    @group.command("add", help=f"Add each {entry} to the {name} list, then show it.")
    @click.argument("entries", metavar=f"{entry.upper()}...", nargs=-1, required=True)
    @sub_timeout
    @connect_options
    @json_option
    @click.pass_context
    def add(ctx: click.Context, entries: tuple[str, ...], server: Any, ca: Any, insecure: bool,
            timeout: Any, as_json: bool) -> None:  # fmt: skip
        change(ctx, entries, True, (server, ca, insecure, timeout, as_json))

    @group.command("remove", help=f"Remove each {entry} from the {name} list, then show it.")
    @click.argument("entries", metavar=f"{entry.upper()}...", nargs=-1, required=True)
    @sub_timeout
    @connect_options
    @json_option
    @click.pass_context
    def remove(ctx: click.Context, entries: tuple[str, ...], server: Any, ca: Any,
               insecure: bool, timeout: Any, as_json: bool) -> None:  # fmt: skip
        change(ctx, entries, False, (server, ca, insecure, timeout, as_json))

    return group


def text_setting_commands(group: click.Group, key: str, what: str) -> None:
    """`show`, `set` and `delete` for a server message kept by XEP-0133 set-KEY / delete-KEY
    (the MOTD, the welcome message): the two groups differ only in the node and the words."""
    from vinesctl.output import emit, json_option

    @group.command("show", help=f"Show the current {what}.")
    @timeout_option
    @connect_options
    @json_option
    @click.pass_context
    def show(ctx: click.Context, timeout: float, server: str | None, ca: str | None,
             insecure: bool, as_json: bool) -> None:  # fmt: skip
        async def work(client: Any, conn: Any, _s: Any) -> Any:
            from vinesctl.xmpp import admin

            return {key: await getattr(admin, f"get_{key}")(client, conn.domain)}

        from vinesctl.render.admin import text_view

        result = run_remote(ctx, server, ca, insecure, as_json, work, timeout)
        emit(result, as_json, lambda data: text_view(data, what))

    @group.command("set", help=f"Set the {what} to TEXT (or standard input, or '-').")
    @click.argument("text", required=False)
    @timeout_option
    @connect_options
    @click.pass_context
    def set_(
        ctx: click.Context,
        text: str | None,
        timeout: float,
        server: str | None,
        ca: str | None,
        insecure: bool,
    ) -> None:
        message = read_text(text, what)

        async def work(client: Any, conn: Any, _s: Any) -> Any:
            from vinesctl.xmpp import admin

            return await getattr(admin, f"set_{key}")(client, conn.domain, message)

        warn_notes(run_remote(ctx, server, ca, insecure, False, work, timeout))
        click.echo(f"{what} set")

    @group.command("delete", help=f"Remove the {what}.")
    @timeout_option
    @connect_options
    @click.pass_context
    def delete(
        ctx: click.Context, timeout: float, server: str | None, ca: str | None, insecure: bool
    ) -> None:
        async def work(client: Any, conn: Any, _s: Any) -> Any:
            from vinesctl.xmpp import admin

            return await getattr(admin, f"delete_{key}")(client, conn.domain)

        warn_notes(run_remote(ctx, server, ca, insecure, False, work, timeout))
        click.echo(f"{what} deleted")

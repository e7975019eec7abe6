"""`vinesctl user add|passwd|delete|list|disable|enable|show|kick`.

Remote mode (the default): service administration over XMPP (XEP-0133) with the profile's
account, so the same commands drive our server, Prosody or ejabberd (for the nodes they offer).
Local mode (`--config PATH`, for add, passwd, delete, list, enable, disable and show): works
directly on the store of a bundled server, for bootstrap and recovery (like `prosodyctl
adduser`); the server may be running (SQLite serializes writers).

disable and delete refuse to lock the administrators out: the account the command runs as, or
the last enabled administrator of the domain, only with --force.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from vinesctl.commands.remote import (
    run_remote,
    run_with,
    settings,
    timeout_option,
    user_jid,
    warn_notes,
)
from vinesctl.connection import connect_options
from vinesctl.durations import AGE
from vinesctl.errors import UsageError, VinesctlError
from vinesctl.output import emit, json_option
from vinesctl.secrets import new_password, password_file_option


def local_config_option(f: Any) -> Any:
    return click.option(
        "--config",
        metavar="PATH",
        type=click.Path(dir_okay=False),
        help="Work on the store of the bundled server with this vines.toml (local mode).",
    )(f)


def inactive_option(help: str) -> Any:
    return click.option("--inactive", metavar="AGE", type=AGE, help=help)


def _inactive_since(account: Any, cutoff: datetime) -> bool:
    """No login (or, never logged in, no creation) since `cutoff`."""
    last = account.last_login or account.created
    return last is not None and last < cutoff


def _local_config(config: str) -> Any:
    from vinesctl.commands.server import load_config  # local mode only: keeps remote start-up light

    cfg = load_config(config)
    if cfg.storage.backend == "memory":
        raise UsageError(
            f"{cfg.path} uses storage.backend = 'memory', which lives only inside the server",
            "use the sqlite backend to manage users locally",
        )
    return cfg


def resolve_user(ctx: click.Context, user: str, cfg: Any) -> str:
    """A bare JID, or a localpart completed with the profile's domain (when the config hosts it)
    or else the config's first domain; the domain must be hosted by the config."""
    from vinesctl.profiles import check_jid, current

    if "@" in user:
        jid = check_jid(user)
    else:
        if not user or "/" in user:
            raise UsageError(f"{user!r} is not a user name", "give user@domain or a localpart")
        profile = current(ctx, required=False)
        domain = profile.domain if profile and profile.domain in cfg.domains else None
        jid = check_jid(f"{user}@{domain or next(iter(cfg.domains))}")
    domain = jid.rpartition("@")[2]
    if domain not in cfg.domains:
        hosted = ", ".join(sorted(cfg.domains))
        raise UsageError(
            f"{domain} is not hosted by {cfg.path} (hosted: {hosted})",
            "give a JID on a hosted domain",
        )
    return jid


def _run(cfg: Any, action: Any) -> Any:
    """Opens the configured store, awaits action(storage), closes it; StorageError -> one line."""
    import asyncio

    from vines_server.storage import AccountExists, NoSuchAccount, StorageError, open_storage

    async def go() -> Any:
        storage = open_storage(cfg.storage)
        await storage.open()
        try:
            return await action(storage)
        finally:
            await storage.close()

    try:
        return asyncio.run(go())
    except (AccountExists, NoSuchAccount):
        raise
    except StorageError as exc:
        if cfg.storage.backend == "postgresql":  # its errors name the database already
            raise VinesctlError(str(exc), "check [storage] dsn and the role's password") from None
        raise VinesctlError(
            f"store {cfg.storage.path}: {exc}", "check the file and its permissions"
        ) from None


def _credentials(cfg: Any, password: str) -> Any:
    from vines_server.xmpp.sasl.credentials import derive_all

    return derive_all(password, cfg.limits.pbkdf2_iterations)


def remote_options(f: Any) -> Any:
    """--server/--ca/--insecure and --timeout: what a remote subcommand connects with."""
    return timeout_option(connect_options(f))


@click.group("user")
def command() -> None:
    """Manage accounts: over XMPP by default (XEP-0133; the profile's account must be an
    administrator), or on a bundled server's store with --config PATH."""


# ---- add / passwd / delete: remote by default, local with --config ---------------------------


def _remote_password(
    ctx: click.Context,
    user: str,
    password_file: str | None,
    server: str | None,
    ca: str | None,
    insecure: bool,
    timeout: float,
    verb: str,
    update_profile: bool | None = False,
) -> None:
    """add and passwd over XEP-0133: both send an account JID and a new password."""
    conn = settings(ctx, server, ca, insecure)
    jid = user_jid(conn, user)
    adding = verb == "add_user"
    prompt = f"Password for {jid}" if adding else f"New password for {jid}"
    password = new_password(password_file, prompt=prompt)

    async def work(client: Any, conn: Any, _s: Any) -> Any:
        from vinesctl.xmpp import admin

        return await getattr(admin, verb)(client, conn.domain, jid, password)

    # raw XEP-0050 IQs only: no disco plugin to load
    warn_notes(run_with(conn, False, work, timeout, plugins=()))
    click.echo(f"created {jid}" if adding else f"password of {jid} changed")
    if not adding:
        _offer_profile_update(ctx, jid, password, update_profile)


def _offer_profile_update(ctx: click.Context, jid: str, password: str, update: bool | None) -> None:
    """The profile's own account got a new password: the profile's stored copy is now wrong.
    --update-profile stores it, a terminal is asked, otherwise a warning says what to do."""
    from vinesctl.profiles import ProfileStore, check_jid, selected_name
    from vinesctl.secrets import interactive

    store = ProfileStore.load()
    profile = store.find(selected_name(ctx))
    if profile is None or check_jid(profile.jid) != jid or update is False:
        return
    if profile.password_command:
        click.echo(
            f"note: profile {profile.name!r} reads its password from a command: "
            "make it print the new one",
            err=True,
        )
        return
    if not profile.password:
        return  # the password comes from VINESCTL_PASSWORD or a prompt: nothing stored
    if update is None:
        if not interactive():
            click.echo(
                f"warning: profile {profile.name!r} still holds the old password of {jid}: "
                "pass --update-profile to store the new one",
                err=True,
            )
            return
        update = click.confirm(
            f"Store the new password in profile {profile.name!r}?", default=True, err=True
        )
    if update:
        profile.password = password
        store.save()
        click.echo(f"profile {profile.name!r} updated")


@command.command("add")
@click.argument("user")
@local_config_option
@password_file_option
@remote_options
@click.pass_context
def add(
    ctx: click.Context,
    user: str,
    config: str | None,
    password_file: str | None,
    server: str | None,
    ca: str | None,
    insecure: bool,
    timeout: float,
) -> None:
    """Create the account USER (user@domain or a localpart)."""
    if not config:
        _remote_password(ctx, user, password_file, server, ca, insecure, timeout, "add_user")
        return
    cfg = _local_config(config)
    jid = resolve_user(ctx, user, cfg)
    password = new_password(password_file, prompt=f"Password for {jid}")
    credentials = _credentials(cfg, password)

    from vines_server.modules.announce import store_welcome
    from vines_server.storage import AccountExists
    from vines_server.xmpp.jid import JID

    async def create(storage: Any) -> None:
        await storage.create_account(jid, credentials)
        await store_welcome(storage, JID.parse(jid))  # as the server's add-user does

    try:
        _run(cfg, create)
    except AccountExists:
        raise VinesctlError(
            f"{jid} already exists", f"change its password with 'vinesctl user passwd {jid}'"
        ) from None
    click.echo(f"created {jid}")


@command.command("passwd")
@click.argument("user")
@local_config_option
@password_file_option
@click.option(
    "--update-profile/--keep-profile",
    default=None,
    help="When USER is the profile's own account: store the new password in the profile, or "
    "leave it (default: ask on a terminal).",
)
@remote_options
@click.pass_context
def passwd(
    ctx: click.Context,
    user: str,
    config: str | None,
    password_file: str | None,
    update_profile: bool | None,
    server: str | None,
    ca: str | None,
    insecure: bool,
    timeout: float,
) -> None:
    """Set a new password for USER."""
    if not config:
        _remote_password(
            ctx,
            user,
            password_file,
            server,
            ca,
            insecure,
            timeout,
            "change_user_password",
            update_profile,
        )
        return
    cfg = _local_config(config)
    jid = resolve_user(ctx, user, cfg)

    async def exists(storage: Any) -> bool:
        return await storage.get_account(jid) is not None

    if not _run(cfg, exists):
        raise _no_such(jid)
    password = new_password(password_file, prompt=f"New password for {jid}")
    credentials = _credentials(cfg, password)

    from vines_server.storage import NoSuchAccount

    try:
        _run(cfg, lambda s: s.set_credentials(jid, credentials))
    except NoSuchAccount:
        raise _no_such(jid) from None
    click.echo(f"password of {jid} changed")
    _offer_profile_update(ctx, jid, password, update_profile)


def _many(
    ctx: click.Context,
    users: tuple[str, ...],
    server: str | None,
    ca: str | None,
    insecure: bool,
    timeout: float,
    verb: str,
    done: str,
    force: bool = True,
) -> None:
    """Runs the XEP-0133 verb on every USER at once (accountjids is jid-multi); unless `force`,
    first refuses to lock the administrators out."""

    async def work(client: Any, conn: Any, _s: Any) -> Any:
        from vinesctl.xmpp import admin

        jids = [user_jid(conn, u) for u in users]
        if not force:
            await _remote_lockout(client, conn, jids, name_of(verb))
        outcome = await getattr(admin, verb)(client, conn.domain, jids)
        return jids, outcome

    jids, outcome = run_remote(ctx, server, ca, insecure, False, work, timeout)
    # a server names the accounts it could not act on: in warn notes (ours), or in an info
    # note after a line such as "The following accounts could not be deleted:" (Prosody)
    problems = [n.text for n in outcome.notes if n.type in ("warn", "error") and n.text]
    for note in outcome.notes:
        if note.type == "info":
            _, sep, tail = note.text.partition("could not")
            if sep:
                problems.append(f"could not{tail}".replace("\n", " "))
    failed = [jid for jid in jids if any(jid in text for text in problems)]
    for jid in jids:
        if jid not in failed:
            click.echo(f"{done} {jid}")
    if failed:
        raise VinesctlError("; ".join(problems), "see 'vinesctl user list'")
    warn_notes(outcome)


force_option = click.option(
    "--force",
    is_flag=True,
    help="Also the account this command runs as, or the last administrator.",
)


@command.command("delete")
@click.argument("users", metavar="USER...", nargs=-1)
@local_config_option
@inactive_option("Every account without a login for this long, e.g. 90d (local mode).")
@click.option("--dry-run", is_flag=True, help="With --inactive: list, delete nothing.")
@force_option
@remote_options
@json_option
@click.pass_context
def delete(
    ctx: click.Context,
    users: tuple[str, ...],
    config: str | None,
    inactive: timedelta | None,
    dry_run: bool,
    force: bool,
    server: str | None,
    ca: str | None,
    insecure: bool,
    timeout: float,
    as_json: bool,
) -> None:
    """Delete each USER with all its data (roster, offline messages, vCard, private storage),
    or with --inactive every account of a bundled server unused for that long."""
    if bool(users) == (inactive is not None):
        raise UsageError("give USER... or --inactive AGE", "one of them, not both")
    if (dry_run or as_json) and inactive is None:
        flag = "--dry-run" if dry_run else "--json"
        raise UsageError(f"{flag} goes with --inactive", "add --inactive AGE")
    if inactive is not None:
        if not config:
            raise UsageError("--inactive applies to local mode", "add --config PATH")
        _delete_inactive(ctx, _local_config(config), inactive, dry_run, force, as_json)
        return
    if not config:
        _many(ctx, users, server, ca, insecure, timeout, "delete_user", "deleted", force)
        return
    cfg = _local_config(config)
    jids = [resolve_user(ctx, user, cfg) for user in users]
    if not force:
        _local_lockout(ctx, cfg, jids, "delete")
    for jid in jids:
        if not _run(cfg, lambda s, jid=jid: s.delete_account(jid)):
            raise _no_such(jid)
        click.echo(f"deleted {jid}")


def _delete_inactive(
    ctx: click.Context, cfg: Any, age: timedelta, dry_run: bool, force: bool, as_json: bool
) -> None:
    cutoff = datetime.now(UTC) - age

    async def find(storage: Any) -> list[str]:
        found = []
        for jid in await storage.list_accounts():
            account = await storage.get_account(jid)
            if account is not None and _inactive_since(account, cutoff):
                found.append(jid)
        return found

    jids = _run(cfg, find)
    if jids and not dry_run and not force:
        _local_lockout(ctx, cfg, jids, "delete")
    deleted = []
    if not dry_run:
        for jid in jids:
            # a login between the listing and now makes it active again: keep it
            async def delete_if_still_inactive(storage: Any, jid: str = jid) -> bool:
                account = await storage.get_account(jid)
                if account is None or not _inactive_since(account, cutoff):
                    return False
                return await storage.delete_account(jid)

            if _run(cfg, delete_if_still_inactive):
                deleted.append(jid)
    data = {"inactive_since": cutoff, "dry_run": dry_run, "accounts": jids, "deleted": deleted}
    if as_json:
        emit(data, True)
        return
    for jid in jids:
        click.echo(f"would delete {jid}" if dry_run else f"deleted {jid}")
    if not jids:
        click.echo(f"no account without a login since {cutoff:%Y-%m-%d %H:%M} UTC")


# ---- no self-lockout -------------------------------------------------------------------------


def name_of(verb: str) -> str:
    return verb.split("_")[0]  # "disable_user" -> "disable"


def refuse_lockout(
    me: str | None, admins: list[str], disabled: set[str], targets: list[str], verb: str
) -> None:
    """UsageError when `verb` on `targets` would lock the administrators out: the account the
    console runs as (`me`), or every enabled administrator."""
    if me is not None and me in targets:
        raise UsageError(
            f"refusing to {verb} {me}: it is the account this command runs as",
            "log in as another administrator (--profile), or add --force",
        )
    enabled = [a for a in admins if a not in disabled]
    if enabled and all(a in targets for a in enabled):
        domain = enabled[0].rpartition("@")[2]
        raise UsageError(
            f"refusing to {verb} {', '.join(enabled)}: "
            f"no enabled administrator of {domain} would be left",
            "make another account an admin first ('vinesctl admins add JID'), or add --force",
        )


async def _remote_lockout(client: Any, conn: Any, jids: list[str], verb: str) -> None:
    from vinesctl.profiles import check_jid
    from vinesctl.xmpp import admin

    try:
        admins = await admin.get_list(client, conn.domain, "admin")
    except admin.AdminError:  # a server without edit-admin: only the own account is known
        admins = []
    try:
        disabled = {u.jid for u in await admin.users_list(client, conn.domain, "disabled")}
    except admin.AdminError:
        disabled = set()
    refuse_lockout(check_jid(conn.jid), admins, disabled, jids, verb)


def _local_lockout(ctx: click.Context, cfg: Any, jids: list[str], verb: str) -> None:
    """The administrators of the targets' domains: vines.toml's and the stored ones."""
    import json

    from vines_server.core.admins import KEYS

    from vinesctl.profiles import current

    async def read(storage: Any) -> tuple[list[str], set[str]]:
        stored = json.loads(await storage.get_setting(KEYS["admins"]) or "[]")
        admins = sorted({a.lower() for a in cfg.admins} | set(stored))
        disabled = set()
        for jid in admins:
            account = await storage.get_account(jid)
            if account is None or account.disabled:
                disabled.add(jid)
        return admins, disabled

    admins, disabled = _run(cfg, read)
    profile = current(ctx, required=False)
    me = profile.jid if profile is not None and profile.jid else None
    for domain in sorted({j.rpartition("@")[2] for j in jids}):
        mine = [a for a in admins if a.endswith("@" + domain)]
        refuse_lockout(me, mine, disabled, jids, verb)


# ---- remote only -----------------------------------------------------------------------------


def _bulk(name: str, verb: str, done: str, doc: str, disabled: bool | None = None) -> None:
    """disable, enable and kick differ only in the XEP-0133 verb they run; disable and enable
    also work on the store (`disabled` is what they set), and disable takes --force."""

    def run(
        ctx: click.Context,
        users: tuple[str, ...],
        server: str | None,
        ca: str | None,
        insecure: bool,
        timeout: float,
        config: str | None = None,
        force: bool = True,
    ) -> None:
        if not config:
            _many(ctx, users, server, ca, insecure, timeout, verb, done, force)
            return
        cfg = _local_config(config)
        jids = [resolve_user(ctx, user, cfg) for user in users]
        if not force:
            _local_lockout(ctx, cfg, jids, name)
        _local_set_disabled(cfg, jids, bool(disabled), done)

    run = click.pass_context(remote_options(run))
    if disabled is not None:
        run = local_config_option(run)
    if disabled:
        run = force_option(run)
    users = click.argument("users", metavar="USER...", nargs=-1, required=True)
    command.command(name, help=doc)(users(run))


def _local_set_disabled(cfg: Any, jids: list[str], disabled: bool, done: str) -> None:
    for jid in jids:  # every account checked first: nothing changes when one is missing
        if _run(cfg, lambda s, jid=jid: s.get_account(jid)) is None:
            raise _no_such(jid)
    for jid in jids:
        _run(cfg, lambda s, jid=jid: s.set_disabled(jid, disabled))
        click.echo(f"{done} {jid}")


_bulk(
    "disable",
    "disable_user",
    "disabled",
    "Disable each USER: live sessions close and logins are refused until 'user enable'.",
    disabled=True,
)
_bulk("enable", "reenable_user", "enabled", "Re-enable each disabled USER.", disabled=False)
_bulk(
    "kick", "end_user_session", "kicked", "End every session of each USER (they may log in again)."
)


@command.command("show")
@click.argument("user")
@local_config_option
@remote_options
@json_option
@click.pass_context
def show(
    ctx: click.Context,
    user: str,
    config: str | None,
    server: str | None,
    ca: str | None,
    insecure: bool,
    timeout: float,
    as_json: bool,
) -> None:
    """Show USER: online resources and addresses, roster, last login, whether disabled (local
    mode: whether disabled, creation time, last login and logout)."""
    if config:
        _local_show(ctx, user, config, as_json)
        return

    async def work(client: Any, conn: Any, _s: Any) -> Any:
        from vinesctl.xmpp import admin

        jid = user_jid(conn, user)
        stats = await admin.user_stats(client, conn.domain, jid)
        with contextlib.suppress(admin.Unsupported):
            stats.lastlogin = await admin.get_user_lastlogin(client, conn.domain, jid)
        with contextlib.suppress(admin.Unsupported):
            stats.roster = await admin.get_user_roster(client, conn.domain, jid)
        try:
            disabled = await admin.users_list(client, conn.domain, "disabled")
            stats.disabled = any(u.jid == jid for u in disabled)
        except admin.Unsupported:
            pass
        return stats

    from vinesctl.render.admin import user_view

    emit(run_remote(ctx, server, ca, insecure, as_json, work, timeout), as_json, user_view)


def _local_show(ctx: click.Context, user: str, config: str, as_json: bool) -> None:
    cfg = _local_config(config)
    jid = resolve_user(ctx, user, cfg)
    account = _run(cfg, lambda s: s.get_account(jid))
    if account is None:
        raise _no_such(jid)
    data = {
        "jid": jid,
        "disabled": account.disabled,
        "created": account.created,
        "last_login": account.last_login,
        "last_logout": account.last_logout,
    }
    from vinesctl.output import to_jsonable
    from vinesctl.render.servers import account_view

    emit(to_jsonable(data), as_json, account_view)


@command.command("list")
@local_config_option
@click.option("--domain", help="Only this domain's accounts (local mode).")
@inactive_option("Only accounts without a login for this long, e.g. 90d (local mode).")
@remote_options
@json_option
@click.pass_context
def list_(
    ctx: click.Context,
    config: str | None,
    domain: str | None,
    inactive: timedelta | None,
    server: str | None,
    ca: str | None,
    insecure: bool,
    timeout: float,
    as_json: bool,
) -> None:
    """List accounts: whether each is disabled and online (local mode: creation time and last
    login too)."""
    if not config:
        if domain is not None or inactive is not None:
            which = "--domain" if domain is not None else "--inactive"
            raise UsageError(f"{which} applies to local mode", "add --config PATH or drop it")

        async def work(client: Any, conn: Any, _s: Any) -> Any:
            from vinesctl.xmpp import admin

            return {"accounts": await admin.accounts(client, conn.domain)}

        result = run_remote(ctx, server, ca, insecure, as_json, work, timeout)
        if not as_json and not result["accounts"]:
            click.echo("no accounts")
            return
        from vinesctl.render.admin import accounts_table

        emit(result, as_json, accounts_table)
        return
    cfg = _local_config(config)
    if domain is not None:
        from vinesctl.profiles import domain_of

        domain = domain_of(domain)
        if domain not in cfg.domains:
            raise UsageError(
                f"{domain} is not hosted by {cfg.path}",
                f"hosted: {', '.join(sorted(cfg.domains))}",
            )

    cutoff = datetime.now(UTC) - inactive if inactive is not None else None

    async def collect(storage: Any) -> list[dict[str, Any]]:
        rows = []
        for jid in await storage.list_accounts(domain):
            account = await storage.get_account(jid)
            if account is None:  # deleted meanwhile
                continue
            if cutoff is not None and not _inactive_since(account, cutoff):
                continue
            rows.append(
                {
                    "jid": jid,
                    "disabled": account.disabled,
                    "created": account.created,
                    "last_login": account.last_login,
                    "last_logout": account.last_logout,
                }
            )
        return rows

    rows = _run(cfg, collect)
    if as_json:
        emit({"accounts": rows}, True)
        return
    if not rows:
        click.echo("no accounts")
        return
    from vinesctl.output import to_jsonable
    from vinesctl.render.servers import users_table

    emit(to_jsonable(rows), False, users_table)


@command.command("jid-changes")
@click.option(
    "--config",
    metavar="PATH",
    type=click.Path(dir_okay=False),
    required=True,
    help="The vines.toml of the bundled server whose store to read.",
)
@json_option
@click.pass_context
def jid_changes(ctx: click.Context, config: str, as_json: bool) -> None:
    """Account names the RFC 7622 upgrade changed: renamed to their prepared form, or kept
    apart (conflict: another account holds that form; invalid: refused now). Accounts the old
    rule casefolded (straße stored as strasse) still log in under the old spelling."""
    cfg = _local_config(config)

    async def nothing(_storage: Any) -> None:  # opening the store runs pending migrations
        return None

    _run(cfg, nothing)
    from vines_server.storage.migrations import jid_changes_at

    changes = jid_changes_at(cfg.storage.path)
    if as_json:
        emit({"changes": changes}, True)
        return
    if not changes:
        click.echo("no account names changed")
        return
    for change in changes:
        if change.status == "renamed":
            click.echo(f"renamed {change.old} -> {change.new}")
        elif change.status == "conflict":
            click.echo(
                f"conflict {change.old}: its RFC 7622 form {change.new} is another account; "
                "kept apart (recreate it under a free name)"
            )
        else:
            click.echo(f"invalid {change.old}: refused by RFC 7622; recreate it under a valid name")


def _no_such(jid: str) -> VinesctlError:
    return VinesctlError(f"no account {jid}", "see 'vinesctl user list'")

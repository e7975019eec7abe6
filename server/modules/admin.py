"""Service administration (XEP-0133): the account commands.

add-user, delete-user, disable-user, reenable-user, end-user-session, change-user-password,
get-user-roster, get-user-lastlogin and user-stats, each for the accounts of the domain the
command is sent to, run only by that domain's admins (`vines_server.core.admins`); an operator's
account is off limits to everyone but operators (`AdminState.guard_operators`). The retracted
get-user-password is not offered: passwords are stored only as SCRAM keys.

Provides "admins": the `AdminState` the other admin modules (userlists, announce, service,
stats) share. Fires `account/created` (jid) and `account/deleted` (jid).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from xml.etree.ElementTree import Element

from vines_server.core.admins import AdminState, admin_form, node, result_form
from vines_server.core.api import ModuleAPI
from vines_server.core.commands import (
    Command,
    CommandFailed,
    Context,
    Note,
    Result,
    bad_payload,
)
from vines_server.core.sessions import Session
from vines_server.core.turns import in_turns
from vines_server.modules.roster import item_element
from vines_server.storage.base import AccountExists
from vines_server.xmpp import ns
from vines_server.xmpp.errors import StanzaError, StreamError
from vines_server.xmpp.forms import Field
from vines_server.xmpp.jid import JID
from vines_server.xmpp.sasl.credentials import HASHES, Credentials, derive
from vines_server.xmpp.stanza import make, serialize


async def derive_credentials(password: str, iterations: int) -> Credentials:
    """The keys for every hash, each PBKDF2 in a worker thread of its own: hashlib releases the
    GIL, so they run at once and the administrator waits for one derivation, not one per hash."""
    names = list(HASHES)
    keys = await asyncio.gather(
        *(asyncio.to_thread(derive, password, name, iterations) for name in names)
    )
    return dict(zip(names, keys, strict=True))


def accounts(ctx: Context, values: Iterable[str], full: bool = False) -> list[JID]:
    """JIDs of accounts on the service's domain; any other domain is refused before any effect."""
    jids = []
    for value in values:
        jid = JID.parse(value)
        if jid.local is None:
            raise bad_payload(f"{value} is not an account JID (user@{ctx.service.domain})")
        if jid.domain != ctx.service.domain:
            raise StanzaError(
                "forbidden", f"{jid.bare} is not on {ctx.service.domain}", type="cancel"
            )
        jids.append(jid if full else jid.bare)
    return list(dict.fromkeys(jids))


def close_sessions(sessions: Iterable[Session], error: StreamError, requester: JID) -> int:
    """Close sessions; the requester's own one closes just after it has had the answer."""
    count = 0
    for session in sessions:
        count += 1
        if session.jid == requester:
            asyncio.get_running_loop().call_later(0.2, session.link.close, error)
        else:
            session.link.close(error)
    return count


def jids_field(var: str, label: str) -> Field:
    return Field(var, "jid-multi", label, required=True)


def account_field(label: str = "The Jabber ID of the account") -> Field:
    return Field("accountjid", "jid-single", label, required=True)


def setup(api: ModuleAPI) -> None:
    state = AdminState(api)
    api.provide("admins", state)
    registry = api.use("adhoc")
    storage = api.storage

    async def loaded(_session: Session) -> None:
        await state.load()  # `allowed` checks are synchronous: stored admins must be in memory

    api.on("session/bound", loaded, priority=100)

    def add(name: str, title: str, run, *stages) -> None:
        registry.add(Command(node(name), title, run, tuple(stages), state.allow_admin))

    def targets(ctx: Context, values: Iterable[str], full: bool = False) -> list[JID]:
        """The accounts a command acts on: on the service's domain, and an operator's only
        when the requester is an operator too."""
        jids = accounts(ctx, values, full)
        state.guard_operators(ctx.requester, jids)
        return jids

    async def existing(ctx: Context, jids: list[JID]) -> tuple[list[JID], list[str]]:
        found, missing = [], []
        for jid in jids:
            if await storage.get_account(str(jid.bare)):
                found.append(jid)
            else:
                missing.append(str(jid))
        return found, missing

    def missing_notes(jids: list[JID], missing: list[str]) -> list[Note]:
        if not missing:
            return []
        kind = "warn" if jids else "error"  # an error when nothing was done at all
        return [Note(kind, f"no such account: {', '.join(missing)}")]

    def summary(done: str, jids: list[JID], missing: list[str]) -> Result:
        result = Result()
        if jids:
            result.notes.append(Note("info", f"{done}: {', '.join(map(str, jids))}"))
        result.notes += missing_notes(jids, missing)
        return result

    # ---- add-user ------------------------------------------------------------------------

    def add_user_form(ctx: Context):
        return admin_form(
            "Adding a user",
            account_field("The Jabber ID for the account to be added"),
            Field("password", "text-private", "The password for this account", required=True),
            Field("password-verify", "text-private", "Retype password"),  # checked if given
            Field("email", "text-single", "Email address"),
            Field("given_name", "text-single", "Given name"),
            Field("surname", "text-single", "Family name"),
            instructions=f"Fill out this form to add a user to {ctx.service.domain}.",
        )

    async def add_user(ctx: Context) -> Result:
        v = ctx.values
        (jid,) = targets(ctx, [v["accountjid"]])
        if v["password-verify"] is not None and v["password"] != v["password-verify"]:
            raise bad_payload("field 'password-verify': the passwords do not match")
        creds = await derive_credentials(v["password"], api.config.limits.pbkdf2_iterations)
        try:
            await storage.create_account(str(jid), creds)
        except AccountExists:
            raise CommandFailed(f"{jid} already exists") from None
        vcard = _vcard(v.get("email"), v.get("given_name"), v.get("surname"))
        if vcard is not None:
            await storage.set_vcard(str(jid), serialize(vcard, None).decode())
        await api.fire("account/created", jid)
        return Result.info(f"{jid} was created")

    add("add-user", "Add a User", add_user, add_user_form)

    # ---- delete / disable / reenable / end sessions ----------------------------------------

    def accounts_form(title: str, label: str):
        return lambda ctx: admin_form(title, jids_field("accountjids", label))

    async def delete_user(ctx: Context) -> Result:
        jids, missing = await existing(ctx, targets(ctx, ctx.values["accountjids"]))
        await api.look_up(*jids)  # their sessions on other cluster nodes end too
        for jid in jids:
            await storage.delete_account(str(jid))
            await state.forget(str(jid))
            gone = StreamError("not-authorized", "this account was deleted")
            close_sessions(api.sessions.resources(jid), gone, ctx.requester)
            await api.fire("account/deleted", jid)
        return summary("deleted", jids, missing)

    async def disable_user(ctx: Context) -> Result:
        jids, missing = await existing(ctx, targets(ctx, ctx.values["accountjids"]))
        await api.look_up(*jids)  # their sessions on other cluster nodes end too
        for jid in jids:
            await storage.set_disabled(str(jid), True)
            off = StreamError("not-authorized", "this account was disabled")
            close_sessions(api.sessions.resources(jid), off, ctx.requester)
        return summary("disabled", jids, missing)

    async def reenable_user(ctx: Context) -> Result:
        jids, missing = await existing(ctx, targets(ctx, ctx.values["accountjids"]))
        for jid in jids:
            await storage.set_disabled(str(jid), False)
        return summary("re-enabled", jids, missing)

    async def end_session(ctx: Context) -> Result:
        closed = 0
        kick = StreamError("policy-violation", "your session was ended by an administrator")
        jids = targets(ctx, ctx.values["accountjids"], full=True)
        found, missing = await existing(ctx, jids)  # an unknown account is not "kicked"
        await api.look_up(*found)  # and its sessions on other cluster nodes
        for jid in found:
            if jid.resource is None:
                sessions = api.sessions.resources(jid)
            else:
                sessions = [s for s in [api.sessions.get(jid)] if s is not None]
            closed += close_sessions(sessions, kick, ctx.requester)
        result = Result.info(f"{closed} session{'s' if closed != 1 else ''} ended")
        result.notes += missing_notes(found, missing)
        return result

    add(
        "delete-user",
        "Delete a User",
        delete_user,
        accounts_form("Deleting a user", "The Jabber ID(s) to delete"),
    )
    add(
        "disable-user",
        "Disable a User",
        disable_user,
        accounts_form("Disabling a user", "The Jabber ID(s) to disable"),
    )
    add(
        "reenable-user",
        "Re-Enable a User",
        reenable_user,
        accounts_form("Re-enabling a user", "The Jabber ID(s) to re-enable"),
    )
    add(
        "end-user-session",
        "End User Session",
        end_session,
        accounts_form("Ending a user session", "The Jabber ID(s) whose sessions to end"),
    )

    # ---- change-user-password ------------------------------------------------------------

    def password_form(ctx: Context):
        return admin_form(
            "Changing a user password",
            account_field(),
            Field("password", "text-private", "The new password", required=True),
        )

    async def change_password(ctx: Context) -> Result:
        (jid,) = targets(ctx, [ctx.values["accountjid"]])
        if not await storage.get_account(str(jid)):
            raise CommandFailed(f"no such account: {jid}")
        iterations = api.config.limits.pbkdf2_iterations
        creds = await derive_credentials(ctx.values["password"], iterations)
        await storage.set_credentials(str(jid), creds)
        # other sessions authenticated with the old password must log in again (Prosody: reset)
        await api.look_up(jid)
        others = [s for s in api.sessions.resources(jid) if s.jid != ctx.requester]
        close_sessions(others, StreamError("reset", "the password was changed"), ctx.requester)
        return Result.info(f"the password of {jid} was changed")

    add("change-user-password", "Change User Password", change_password, password_form)

    # ---- get-user-roster / get-user-lastlogin / user-stats -------------------------------

    def one_account(title: str):
        return lambda ctx: admin_form(title, account_field())

    async def the_account(ctx: Context) -> JID:
        (jid,) = targets(ctx, [ctx.values["accountjid"]])
        if not await storage.get_account(str(jid)):
            raise CommandFailed(f"no such account: {jid}")
        return jid

    async def user_roster(ctx: Context) -> Result:
        jid = await the_account(ctx)
        query = make(ns.q(ns.ROSTER, "query"))
        async for item in in_turns(await storage.get_roster(str(jid))):
            query.append(item_element(item))
        form = result_form(
            "Roster of " + str(jid), Field("accountjid", "jid-single", values=[str(jid)])
        )
        form.extra.append(query)
        return Result(form=form)

    async def last_login(ctx: Context) -> Result:
        jid = await the_account(ctx)
        account = await storage.get_account(str(jid))
        when = account.last_login if account else None
        stamp = [when.strftime("%Y-%m-%dT%H:%M:%SZ")] if when else []
        return Result(
            form=result_form(
                "Last login",
                Field("accountjid", "jid-single", values=[str(jid)]),
                Field("lastlogin", "text-single", "Last login", values=stamp),
            )
        )

    async def user_stats(ctx: Context) -> Result:
        jid = await the_account(ctx)
        await api.look_up(jid)
        sessions = api.sessions.resources(jid)
        ips = sorted({str(s.info.get("ip")) for s in sessions if s.info.get("ip")})
        roster = await storage.get_roster(str(jid))
        return Result(
            form=result_form(
                "User statistics",
                Field("accountjid", "jid-single", values=[str(jid)]),
                Field("ipaddresses", "text-multi", "IP addresses", values=ips),
                Field("rostersize", "text-single", "Roster size", values=[str(len(roster))]),
                Field(
                    "onlineresources",
                    "text-multi",
                    "Online resources",
                    values=sorted(s.jid.resource or "" for s in sessions),
                ),
            )
        )

    add("get-user-roster", "Get User Roster", user_roster, one_account("Getting a user's roster"))
    add(
        "get-user-lastlogin",
        "Get User Last Login Time",
        last_login,
        one_account("Getting a user's last login"),
    )
    add("user-stats", "Get User Statistics", user_stats, one_account("Getting user statistics"))


def _vcard(email: str | None, given: str | None, family: str | None) -> Element | None:
    if not (email or given or family):
        return None
    vcard = make(ns.q(ns.VCARD, "vCard"))
    if given or family:
        n = make(ns.q(ns.VCARD, "N"))
        if family:
            n.append(make(ns.q(ns.VCARD, "FAMILY"), text=family))
        if given:
            n.append(make(ns.q(ns.VCARD, "GIVEN"), text=given))
        vcard.append(n)
        full = " ".join(p for p in (given, family) if p)
        vcard.append(make(ns.q(ns.VCARD, "FN"), text=full))
    if email:
        e = make(ns.q(ns.VCARD, "EMAIL"))
        e.append(make(ns.q(ns.VCARD, "INTERNET")))
        e.append(make(ns.q(ns.VCARD, "USERID"), text=email))
        vcard.append(e)
    return vcard

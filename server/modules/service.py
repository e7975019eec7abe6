"""Service administration (XEP-0133) of the service itself: edit-admin, edit-whitelist and
edit-blacklist (the federation allow and block lists of the domain), restart and shutdown; and
our own `urn:vinesctl:admin#reload`, which re-reads vines.toml, and `urn:vinesctl:admin#unban`,
which lifts the per-IP ban that follows repeated failed logins (XEP-0205).

The lists are kept in the store and merged with vines.toml: entries that come from vines.toml are
shown, cannot be removed here (the server never writes that file), and a note says so.
restart, shutdown, reload and unban act on the whole server, so only the operators listed in
`[server] admins` may run them. The main loop (`vines_server.main`) waits on
`server.shutdown_requested`; a restart sets `server.restart_requested` too and runs again.
"""

from __future__ import annotations

import asyncio
import ipaddress
from datetime import UTC, datetime

from vines_server.config import ConfigError
from vines_server.core.admins import AdminState, admin_form, node, result_form
from vines_server.core.api import ModuleAPI
from vines_server.core.commands import Command, CommandFailed, Context, Note, Result, bad_payload
from vines_server.modules.announce import broadcast, text
from vines_server.xmpp import ns
from vines_server.xmpp.forms import Field
from vines_server.xmpp.jid import JID

DELAYS = ("0", "30", "60", "90", "120", "180", "240", "300")  # seconds; 0 = now


def setup(api: ModuleAPI) -> None:
    state: AdminState = api.use("admins")
    registry = api.use("adhoc")

    def add(name: str, title: str, run, *stages, operator: bool = False, namespace=ns.ADMIN):
        allowed = state.allow_operator if operator else state.allow_admin
        registry.add(Command(node(name, namespace), title, run, tuple(stages), allowed))

    # ---- edit-admin ----------------------------------------------------------------------

    async def admin_list_form(ctx: Context):
        config, stored = await state.admins(ctx.service.domain)
        return admin_form(
            "Editing the admin list",
            Field("adminjids", "jid-multi", "The admin list", values=config + stored),
            instructions=f"Administrators of {ctx.service.domain}; "
            "those set in vines.toml stay in any case.",
        )

    async def edit_admin(ctx: Context) -> Result:
        domain = ctx.service.domain
        config, stored = await state.admins(domain)
        jids = []
        for value in ctx.values["adminjids"]:
            jid = JID.parse(value)
            if jid.local is None or jid.resource is not None or jid.domain != domain:
                raise bad_payload(
                    f"field 'adminjids': {value} is not an account on {domain} "
                    f"(admins of {domain} are its own accounts)"
                )
            # a new admin must be an account: a grant waiting for a future account is a trap
            known = str(jid) in config or str(jid) in stored
            if not known and await api.storage.get_account(str(jid)) is None:
                raise bad_payload(f"field 'adminjids': {jid} has no account: create it first")
            jids.append(str(jid))
        config, _ = await state.admins(domain)  # leaving an operator out is acting on it
        state.guard_operators(ctx.requester, [JID.parse(a) for a in config if a not in jids])
        await state.set_admins(domain, jids)
        return kept(state.configured(), jids, "admin list saved", "vines.toml")

    add("edit-admin", "Edit Admin List", edit_admin, admin_list_form)

    # ---- edit-whitelist / edit-blacklist -------------------------------------------------

    def peers_form(kind: str, var: str, title: str):
        async def build(ctx: Context):
            config, stored = await state.peers(kind, ctx.service.domain)
            verb = "allowed" if kind == "allow" else "refused"
            return admin_form(
                title,
                Field(var, "jid-multi", f"The {title.split()[-1]}", values=config + stored),
                instructions=f"Domains with which communication from {ctx.service.domain} is "
                f"{verb}.",
            )

        return build

    def edit_peers(kind: str, var: str):
        async def run(ctx: Context) -> Result:
            peers = []
            for value in ctx.values[var]:
                jid = JID.parse(value)
                if jid.local is not None or jid.resource is not None:
                    raise bad_payload(f"field '{var}': {value} is not a domain")
                peers.append(jid.domain)
            await state.set_peers(kind, ctx.service.domain, peers)
            # federation applies the stored list at once (and closes streams it no longer allows)
            _, stored = await state.peers(kind, ctx.service.domain)
            api.emit("federation/peers", kind, ctx.service.domain, stored)
            config = set(api.config.federation.allow) if kind == "allow" else set()
            return kept(config, peers, "list saved", "[federation] allow in vines.toml")

        return run

    add(
        "edit-whitelist",
        "Edit Whitelist",
        edit_peers("allow", "whitelistjids"),
        peers_form("allow", "whitelistjids", "Editing the whitelist"),
    )
    add(
        "edit-blacklist",
        "Edit Blacklist",
        edit_peers("block", "blacklistjids"),
        peers_form("block", "blacklistjids", "Editing the blacklist"),
    )

    # ---- restart / shutdown --------------------------------------------------------------

    def stop_form(title: str):
        def build(ctx: Context):
            return admin_form(
                title,
                Field(
                    "delay",
                    "list-single",
                    "Time delay before the server stops",
                    required=True,
                    values=["0"],
                    options=[("now" if d == "0" else f"{d} seconds", d) for d in DELAYS],
                ),
                Field("announcement", "text-multi", "Announcement to online users"),
            )

        return build

    def stop(restart: bool):
        async def run(ctx: Context) -> Result:
            server = api.operator
            if server.shutdown_requested.is_set():
                raise CommandFailed("the server is already stopping")
            delay = int(ctx.values["delay"])
            announcement = text(ctx.values.get("announcement"))
            if announcement:
                for domain in sorted(api.domains):
                    broadcast(api, domain, announcement, "Service announcement")
            server.restart_requested = restart

            async def later() -> None:
                await asyncio.sleep(delay + 0.2)  # +0.2 s: our answer leaves first
                api.log.warning(
                    "%s requested by %s", "restart" if restart else "shutdown", ctx.requester.bare
                )
                server.shutdown_requested.set()

            api.spawn(later())
            what = "restarts" if restart else "shuts down"
            return Result.info(f"the server {what} in {delay} seconds")

        return run

    add(
        "restart", "Restart Service", stop(True), stop_form("Restarting the service"), operator=True
    )
    add(
        "shutdown",
        "Shut Down Service",
        stop(False),
        stop_form("Shutting down the service"),
        operator=True,
    )

    # ---- reload (ours) -------------------------------------------------------------------

    async def reload(ctx: Context) -> Result:
        try:
            done = await api.operator.reload()
        except ConfigError as exc:
            raise CommandFailed(f"vines.toml was not reloaded: {exc}") from None
        notes = [Note("info", "reloaded; changed: " + (", ".join(done.changed) or "nothing"))]
        if done.restart:
            notes.append(Note("warn", "needs a restart to apply: " + ", ".join(done.restart)))
        form = result_form(
            "Configuration reloaded",
            Field("changed", "text-multi", "Applied", values=done.changed),
            Field("restart", "text-multi", "Needs a restart", values=done.restart),
            namespace=ns.VINES_ADMIN,
        )
        return Result(notes, form)

    api.on(
        "config/reloaded",
        lambda config: setattr(registry.sessions, "ttl", config.deadlines.adhoc_session),
    )
    add("reload", "Reload Configuration", reload, operator=True, namespace=ns.VINES_ADMIN)

    # ---- unban (ours) --------------------------------------------------------------------

    def unban_form(ctx: Context):
        bans = api.operator.bans()
        listed = ", ".join(
            f"{ip} (until {datetime.fromtimestamp(until, UTC).isoformat(timespec='seconds')})"
            for ip, until in sorted(bans.items())
        )
        return admin_form(
            "Lifting a ban",
            Field("ip", "text-single", "IP address", required=True),
            instructions=f"Banned now: {listed or 'none'}.",
        )

    async def unban(ctx: Context) -> Result:
        value = (ctx.values.get("ip") or "").strip()
        try:
            ip = str(ipaddress.ip_address(value))
        except ValueError:
            raise bad_payload(f"field 'ip': {value!r} is not an IP address") from None
        if not api.operator.unban(ip):
            raise CommandFailed(f"{ip} is not banned")
        api.log.warning("ban of %s lifted by %s", ip, ctx.requester.bare)
        return Result.info(f"{ip} unbanned")

    add("unban", "Lift an IP Ban", unban, unban_form, operator=True, namespace=ns.VINES_ADMIN)


def kept(config: set[str], submitted: list[str], done: str, where: str) -> Result:
    result = Result.info(done)
    missing = sorted(c for c in config if c not in submitted)
    if missing:
        result.notes.append(Note("warn", f"kept (set in {where}): {', '.join(missing)}"))
    return result

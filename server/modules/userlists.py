"""Service administration (XEP-0133): how many users, and which, of the domain the command is
sent to: registered, disabled, online, active and idle, each as a number and as a list.

Online: at least one bound session. Active: online with at least one available session whose
presence shows no `<show/>` or `chat`. Idle: online and not active (away, xa, dnd, or no
available presence yet). `get-online-users-list` has a `details` option (as in Prosody) that
adds one row per session: full JID, IP address, connected since, presence show and priority.
The list nodes are named as in XEP-0133: get-registered-users-list, get-disabled-users-list,
get-online-users-list, get-active-users and get-idle-users (whose list field is `idleuserjids`;
the XEP's example reuses `activeuserjids`, which we take to be a slip).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from vines_server.core.admins import AdminState, admin_form, node, result_form
from vines_server.core.api import ModuleAPI
from vines_server.core.commands import Command, Context, Result, bad_payload
from vines_server.core.sessions import Session
from vines_server.xmpp import ns
from vines_server.xmpp.forms import Field
from vines_server.xmpp.jid import JID

MAX_ITEMS = ("25", "50", "75", "100", "150", "200", "none")

Lister = Callable[[str], Awaitable[list[str]]]


def show(session: Session) -> str | None:
    if session.presence is None:
        return None
    return session.presence.findtext(ns.q(ns.CLIENT, "show")) or "online"


def is_active(session: Session) -> bool:
    return show(session) in ("online", "chat")


def setup(api: ModuleAPI) -> None:
    state: AdminState = api.use("admins")
    registry = api.use("adhoc")
    storage = api.storage

    async def online(domain: str) -> list[JID]:
        users = await api.online_users()  # every node's, in a cluster
        return sorted((j for j in users if j.domain == domain), key=str)

    async def registered(domain: str) -> list[str]:
        return await storage.list_accounts(domain)

    async def disabled(domain: str) -> list[str]:
        found = []
        for jid in await storage.list_accounts(domain):
            account = await storage.get_account(jid)
            if account is not None and account.disabled:
                found.append(jid)
        return found

    async def online_list(domain: str) -> list[str]:
        return [str(j) for j in await online(domain)]

    async def active(domain: str) -> list[str]:
        users = await online(domain)
        return [str(j) for j in users if any(map(is_active, api.sessions.resources(j)))]

    async def idle(domain: str) -> list[str]:
        users = await online(domain)
        return [str(j) for j in users if not any(map(is_active, api.sessions.resources(j)))]

    # (what, lister, num var, list node, list var, titles)
    kinds: list[tuple[str, Lister, str, str, str, str]] = [
        ("registered", registered, "registeredusersnum", "get-registered-users-list",
         "registereduserjids", "Registered Users"),
        ("disabled", disabled, "disabledusersnum", "get-disabled-users-list",
         "disableduserjids", "Disabled Users"),
        ("online", online_list, "onlineusersnum", "get-online-users-list",
         "onlineuserjids", "Online Users"),
        ("active", active, "activeusersnum", "get-active-users",
         "activeuserjids", "Active Users"),
        ("idle", idle, "idleusersnum", "get-idle-users",
         "idleuserjids", "Idle Users"),
    ]  # fmt: skip

    def add(name: str, title: str, run, *stages) -> None:
        registry.add(Command(node(name), title, run, tuple(stages), state.allow_admin))

    for what, lister, num_var, list_node, list_var, title in kinds:
        add(f"get-{what}-users-num", f"Get Number of {title}", number(lister, num_var, title))
        if what != "online":  # online users are listed with their sessions, below
            add(
                list_node, f"Get List of {title}", listing(lister, list_var, title), list_form(what)
            )
    add(
        "get-online-users-list",
        "Get List of Online Users",
        online_details(api, online),
        list_form("online"),
    )


def number(lister: Lister, var: str, title: str):
    async def run(ctx: Context) -> Result:
        count = len(await lister(ctx.service.domain))
        field = Field(var, "text-single", f"The number of {title.lower()}", values=[str(count)])
        return Result(form=result_form(f"Number of {title.lower()}", field))

    return run


def list_form(what: str):
    def build(ctx: Context):
        fields = [
            Field(
                "max_items",
                "list-single",
                "Maximum number of items to report",
                values=["none"],
                options=[(v, v) for v in MAX_ITEMS],
                open=True,  # other clients send e.g. 'all' (see `limit`)
            )
        ]
        if what == "online":
            fields.append(Field("details", "boolean", "Show details", values=["0"]))
        return admin_form(f"Requesting a list of {what} users", *fields)

    return build


def limit(values: list[str], ctx: Context) -> list[str]:
    """XEP-0133 offers 25...200 and 'none'; other clients send other values, and Prosody and
    ejabberd list everyone for them: a positive number is the limit, a word (e.g. 'all') means
    no limit, anything else (e.g. '-5', '2.5') is refused."""
    max_items = (ctx.values.get("max_items") or "none").strip()
    if re.fullmatch(r"[0-9]{1,9}", max_items) and int(max_items) > 0:
        return values[: int(max_items)]
    if max_items.isalpha():
        return values
    raise bad_payload(f"field 'max_items': {max_items!r} is not a number of items or 'none'")


def listing(lister: Lister, var: str, title: str):
    async def run(ctx: Context) -> Result:
        jids = limit(await lister(ctx.service.domain), ctx)
        field = Field(var, "jid-multi", f"The list of {title.lower()}", values=jids)
        return Result(form=result_form(f"List of {title.lower()}", field))

    return run


def online_details(api: ModuleAPI, online: Callable[[str], Awaitable[list[JID]]]):
    async def run(ctx: Context) -> Result:
        users = limit([str(j) for j in await online(ctx.service.domain)], ctx)
        field = Field("onlineuserjids", "jid-multi", "The list of online users", values=users)
        form = result_form("List of online users", field)
        if ctx.values.get("details"):
            form.reported = [
                Field("jid", "jid-single", "Session"),
                Field("ip", "text-single", "IP address"),
                Field("since", "text-single", "Connected since"),
                Field("show", "text-single", "Presence"),
                Field("priority", "text-single", "Priority"),
            ]
            for user in users:
                for s in sorted(api.sessions.resources(JID.parse(user)), key=lambda s: str(s.jid)):
                    cells = {
                        "jid": str(s.jid),
                        "ip": str(s.info.get("ip") or ""),
                        "since": s.since.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "show": show(s) or "unavailable",
                        "priority": str(s.priority),
                    }
                    form.items.append([Field(k, None, values=[v]) for k, v in cells.items()])
        return Result(form=form)

    return run

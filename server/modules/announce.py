"""Service administration (XEP-0133): announcements, the message of the day, the welcome message.

- announce: a headline from the domain to every session of the domain's users now online (on
  every node of a cluster).
- set-motd / edit-motd / delete-motd: the MOTD is kept in the store; it goes at once to the
  sessions online when it is set, and to each later session at its initial presence (once per
  session).
- set-welcome / delete-welcome: sent to each account created afterwards (add-user), as a normal
  message, so it waits in offline storage until the user first logs in. An account created
  on the store while the server is not involved (`vinesctl user add --config`) gets it through
  `store_welcome`, the same message put in the same place.
"""

from __future__ import annotations

import json
import weakref
from datetime import UTC, datetime
from typing import Any
from xml.etree.ElementTree import Element

from vines_server.core.admins import KEYS, AdminState, admin_form, node
from vines_server.core.api import ModuleAPI
from vines_server.core.commands import Command, Context, Result
from vines_server.core.sessions import Session
from vines_server.xmpp import ns
from vines_server.xmpp.forms import Field
from vines_server.xmpp.jid import JID
from vines_server.xmpp.ns import MESSAGE
from vines_server.xmpp.stanza import make, serialize


def message(domain: str, to: JID, body: str, subject: str | None, mtype: str) -> Element:
    msg = make(MESSAGE, {"type": mtype, "from": domain, "to": str(to)})
    if subject:
        msg.append(make(ns.q(ns.CLIENT, "subject"), text=subject))
    msg.append(make(ns.q(ns.CLIENT, "body"), text=body))
    return msg


def welcome_message(jid: JID, body: str) -> Element:
    return message(jid.domain, jid, body, "Welcome", "normal")


async def store_welcome(storage: Any, jid: JID) -> bool:
    """The domain's welcome message (if set) for the new account `jid`, put in its offline
    storage; for accounts created on the store directly. Returns whether there was one."""
    raw = await storage.get_setting(KEYS["welcome"])
    body = (json.loads(raw) if raw else {}).get(jid.domain)
    if not body:
        return False
    xml = serialize(welcome_message(jid, body)).decode()
    await storage.store_offline(str(jid.bare), xml, datetime.now(UTC))
    return True


def text(value: list[str] | None) -> str:
    return "\n".join(value or []).strip("\n")


def broadcast(
    api: ModuleAPI,
    domain: str,
    body: str,
    subject: str | None,
    sessions: list[Session] | None = None,
) -> int:
    """A headline to `sessions`, by default this node's sessions of the domain's users."""
    if sessions is None:
        sessions = [s for s in api.sessions if s.jid.domain == domain]
    for session in sessions:
        api.deliver(message(domain, session.jid, body, subject, "headline"), session)
    return len(sessions)


def setup(api: ModuleAPI) -> None:
    state: AdminState = api.use("admins")
    registry = api.use("adhoc")
    # the MOTD text each live session has had ("" = not yet, but its login check has begun)
    motd_sent: weakref.WeakKeyDictionary[Session, str] = weakref.WeakKeyDictionary()

    def add(name: str, title: str, run, *stages) -> None:
        registry.add(Command(node(name), title, run, tuple(stages), state.allow_admin))

    # ---- announce ------------------------------------------------------------------------

    def announce_form(ctx: Context):
        return admin_form(
            "Making an announcement",
            Field("subject", "text-single", "Subject"),
            Field("announcement", "text-multi", "Announcement", required=True),
            instructions=f"Fill out this form to send a message to everyone on "
            f"{ctx.service.domain} who is online now.",
        )

    async def announce(ctx: Context) -> Result:
        domain = ctx.service.domain
        users = [u for u in await api.online_users() if u.domain == domain]  # every node's
        sessions = [s for user in users for s in api.sessions.resources(user)]
        body = text(ctx.values["announcement"])
        count = broadcast(api, domain, body, ctx.values["subject"], sessions)
        return Result.info(f"announcement sent to {count} session{'s' if count != 1 else ''}")

    add("announce", "Send Announcement to Online Users", announce, announce_form)

    # ---- message of the day --------------------------------------------------------------

    async def motd_form(ctx: Context, prefill: bool):
        current = await state.text("motd", ctx.service.domain) if prefill else None
        return admin_form(
            "Setting the message of the day" if not prefill else "Editing the message of the day",
            Field(
                "motd",
                "text-multi",
                "Message of the day",
                required=True,
                values=current.split("\n") if current else [],
            ),
        )

    async def set_motd(ctx: Context) -> Result:
        domain, motd = ctx.service.domain, text(ctx.values["motd"])
        await state.set_text("motd", domain, motd)
        count = 0
        for session in list(api.sessions):
            if session.jid.domain == domain and motd_sent.get(session) != motd:
                motd_sent[session] = motd
                msg = message(domain, session.jid, motd, "Message of the day", "headline")
                api.deliver(msg, session)
                count += 1
        return Result.info(f"message of the day set; sent to {count} online session(s)")

    async def delete_motd(ctx: Context) -> Result:
        await state.set_text("motd", ctx.service.domain, None)
        return Result.info("message of the day deleted")

    add("set-motd", "Set Message of the Day", set_motd, lambda ctx: motd_form(ctx, False))
    add("edit-motd", "Edit Message of the Day", set_motd, lambda ctx: motd_form(ctx, True))
    add("delete-motd", "Delete Message of the Day", delete_motd)

    async def motd_at_login(session: Session) -> None:
        if session in motd_sent:
            return  # once per session, however often it becomes available again
        # a session is noted only once it got a message of the day (set-motd notes every
        # session it sends to): an entry each would cost 0.2 KiB of every idle session
        motd = await state.text("motd", session.jid.domain)
        if motd and motd_sent.get(session) != motd:  # set-motd may have sent it meanwhile
            motd_sent[session] = motd
            msg = message(session.jid.domain, session.jid, motd, "Message of the day", "headline")
            api.deliver(msg, session)

    api.on("presence/initial", motd_at_login)

    # ---- welcome message -----------------------------------------------------------------

    async def welcome_form(ctx: Context):
        current = await state.text("welcome", ctx.service.domain)
        return admin_form(
            "Setting the welcome message",
            Field(
                "welcome",
                "text-multi",
                "Welcome message",
                required=True,
                values=current.split("\n") if current else [],
            ),
        )

    async def set_welcome(ctx: Context) -> Result:
        await state.set_text("welcome", ctx.service.domain, text(ctx.values["welcome"]))
        return Result.info("welcome message set: new accounts receive it")

    async def delete_welcome(ctx: Context) -> Result:
        await state.set_text("welcome", ctx.service.domain, None)
        return Result.info("welcome message deleted")

    add("set-welcome", "Set Welcome Message", set_welcome, welcome_form)
    add("delete-welcome", "Delete Welcome Message", delete_welcome)

    async def welcome(jid: JID) -> None:
        body = await state.text("welcome", jid.domain)
        if body:
            await api.route(welcome_message(jid, body))  # online now, or kept offline

    api.on("account/created", welcome)

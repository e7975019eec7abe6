"""Our admin nodes for a user's roster, as ejabberdctl's add_rosteritem / delete_rosteritem:
`urn:vinesctl:admin#roster-add` and `#roster-remove`, for the admins of the account's domain
(an operator's account only for operators). Each change is pushed to the user's sessions that
fetched the roster (RFC 6121 2.1.6), as if the user had made it; a removal also cancels the
subscriptions both ways (RFC 6121 2.5.2)."""

from __future__ import annotations

from dataclasses import replace

from vines_server.core.admins import AdminState, admin_form, node
from vines_server.core.api import ModuleAPI
from vines_server.core.commands import Command, CommandFailed, Context, Result, bad_payload
from vines_server.modules.admin import account_field, accounts
from vines_server.modules.roster import cancel_subscriptions, push, put_item
from vines_server.storage.base import RosterItem
from vines_server.xmpp import ns
from vines_server.xmpp.forms import Field
from vines_server.xmpp.jid import JID, JIDError

SUBSCRIPTIONS = ("none", "to", "from", "both")
MAX_NAME = 1024  # as a client's roster set (roster.py)


def setup(api: ModuleAPI) -> None:
    state: AdminState = api.use("admins")
    registry = api.use("adhoc")

    def add(name: str, title: str, run, form) -> None:
        command = Command(node(name, ns.VINES_ADMIN), title, run, (form,), state.allow_admin)
        registry.add(command)

    async def account_and_contact(ctx: Context) -> tuple[JID, str]:
        (user,) = accounts(ctx, [ctx.values.get("accountjid") or ""])
        state.guard_operators(ctx.requester, [user])
        if not await api.storage.get_account(str(user)):
            raise CommandFailed(f"no such account: {user}")
        value = (ctx.values.get("contactjid") or "").strip()
        try:
            contact = JID.parse(value).bare
        except JIDError as exc:
            raise bad_payload(f"field 'contactjid': {value!r} is not a JID ({exc})") from None
        if contact == user:
            raise bad_payload("a roster does not hold its own account")
        return user, str(contact)

    def contact_form(title: str, *more: Field):
        return lambda ctx: admin_form(
            title,
            account_field("The account whose roster changes"),
            Field("contactjid", "jid-single", "The contact", required=True),
            *more,
        )

    async def roster_add(ctx: Context) -> Result:
        user, contact = await account_and_contact(ctx)
        name = (ctx.values.get("name") or "").strip() or None
        groups = tuple(dict.fromkeys(g.strip() for g in ctx.values.get("groups") or [] if g))
        subscription = ctx.values.get("subscription") or "none"
        if subscription not in SUBSCRIPTIONS:
            raise bad_payload(f"field 'subscription' must be one of {', '.join(SUBSCRIPTIONS)}")
        if (name and len(name) > MAX_NAME) or any(len(g) > MAX_NAME for g in groups):
            raise bad_payload(f"names and groups are at most {MAX_NAME} characters")
        existing = await api.storage.get_roster_item(str(user), contact)
        item = replace(
            existing or RosterItem(contact), name=name, groups=groups, subscription=subscription
        )
        await put_item(api, str(user), item)  # the roster size limit holds here too
        push(api, user, item)
        api.log.info("%s put %s in the roster of %s", ctx.requester.bare, contact, user)
        verb = "updated" if existing else "added"
        return Result.info(f"{contact} {verb} in the roster of {user} ({subscription})")

    async def roster_remove(ctx: Context) -> Result:
        user, contact = await account_and_contact(ctx)
        existing = await api.storage.get_roster_item(str(user), contact)
        if existing is None:
            raise CommandFailed(f"{contact} is not in the roster of {user}")
        await cancel_subscriptions(api, user, existing)
        await api.storage.delete_roster_item(str(user), contact)
        push(api, user, RosterItem(contact, subscription="remove"))
        api.log.info("%s removed %s from the roster of %s", ctx.requester.bare, contact, user)
        return Result.info(f"{contact} removed from the roster of {user}")

    options = [(None, s) for s in SUBSCRIPTIONS]
    add(
        "roster-add",
        "Add a Roster Item",
        roster_add,
        contact_form(
            "Adding a contact to a roster",
            Field("name", "text-single", "Name"),
            Field("groups", "text-multi", "Groups"),
            Field("subscription", "list-single", "Subscription", values=["none"], options=options),
        ),
    )
    add(
        "roster-remove",
        "Remove a Roster Item",
        roster_remove,
        contact_form("Removing a contact from a roster"),
    )

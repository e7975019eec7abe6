"""`vinesctl roster USER [add|remove CONTACT]`: a user's roster, shown through XEP-0133
get-user-roster (any server that offers it) and changed through our server's
`urn:vinesctl:admin#roster-add` / `#roster-remove` (as ejabberdctl's add_rosteritem); the user's
online sessions get the roster push."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import click

from vinesctl.commands.remote import run_remote, timeout_option, user_jid, warn_notes
from vinesctl.connection import connect_options
from vinesctl.errors import UsageError
from vinesctl.output import emit, json_option

SUBSCRIPTIONS = ("none", "to", "from", "both")


@click.command("roster")
@click.argument("user")
@click.argument("action", required=False, type=click.Choice(("add", "remove")))
@click.argument("contact", required=False)
@click.option("--name", help="add: the contact's name in the roster.")
@click.option("--group", "groups", multiple=True, help="add: a roster group (repeatable).")
@click.option(
    "--subscription",
    type=click.Choice(SUBSCRIPTIONS),
    help="add: the subscription state to set [default: none; both: each sees the other].",
)
@timeout_option
@connect_options
@json_option
@click.pass_context
def command(
    ctx: click.Context,
    user: str,
    action: str | None,
    contact: str | None,
    name: str | None,
    groups: tuple[str, ...],
    subscription: str | None,
    timeout: float,
    server: str | None,
    ca: str | None,
    insecure: bool,
    as_json: bool,
) -> None:
    """Show USER's roster (a localpart takes the profile's domain); 'add CONTACT' adds or
    updates an item, 'remove CONTACT' removes it and cancels the subscriptions (both need an
    admin of USER's domain). USER's online sessions get the roster push."""
    from vinesctl.commands.send import target_jid

    if action is None and (contact or name or groups or subscription):
        raise UsageError("CONTACT and the item options go with 'add' or 'remove'",
                         "e.g. vinesctl roster alice add bob@example.org --name Bob")  # fmt: skip
    if action is not None and not contact:
        raise UsageError(f"'{action}' needs a CONTACT", f"e.g. vinesctl roster {user} {action} "
                         "bob@example.org")  # fmt: skip
    if action == "remove" and (name or groups or subscription):
        raise UsageError("--name, --group and --subscription go with 'add'", "drop them")
    target = target_jid(contact) if contact else None

    async def work(client: Any, conn: Any, _s: Any) -> Any:
        from vinesctl.xmpp import admin

        jid = user_jid(conn, user)
        if action is None:
            from vinesctl.xmpp.admin_results import Roster

            return Roster(jid, await admin.get_user_roster(client, conn.domain, jid))
        if action == "add":
            done = await admin.roster_add(
                client, conn.domain, jid, target, name, list(groups), subscription or "none"
            )
        else:
            done = await admin.roster_remove(client, conn.domain, jid, target)
        return RosterChange(jid, target, "added" if action == "add" else "removed", done)

    result = run_remote(ctx, server, ca, insecure, as_json, work, timeout)
    if action is None:
        from vinesctl.render.admin import roster_view

        emit(result, as_json, roster_view)
        return
    warn_notes(result.outcome)
    emit(result, as_json, lambda r: r.outcome.text or f"{r.action} {r.contact}")


@dataclass
class RosterChange:
    jid: str
    contact: str
    action: str  # added | removed
    outcome: Any

    def to_json(self) -> dict[str, Any]:
        return {
            "jid": self.jid,
            "contact": self.contact,
            "action": self.action,
            "text": self.outcome.text,
        }

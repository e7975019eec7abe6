"""Our admin node `urn:vinesctl:admin#send-message`: a chat message from the domain itself to
one JID (`vinesctl send --from-server`), for the domain's admins. It is routed like any other
stanza: to a local account (offline storage when it is away), or refused with an error note
when the destination cannot take it."""

from __future__ import annotations

from vines_server.core.admins import AdminState, admin_form, node
from vines_server.core.api import ModuleAPI
from vines_server.core.commands import Command, Context, Result, bad_payload
from vines_server.modules.announce import message, text
from vines_server.xmpp import ns
from vines_server.xmpp.forms import Field
from vines_server.xmpp.jid import JID, JIDError


def setup(api: ModuleAPI) -> None:
    state: AdminState = api.use("admins")
    registry = api.use("adhoc")

    def form(ctx: Context):
        return admin_form(
            "Sending a message from the server",
            Field("to", "jid-single", "To", required=True),
            Field("body", "text-multi", "Message", required=True),
        )

    async def send(ctx: Context) -> Result:
        value = (ctx.values.get("to") or "").strip()
        try:
            to = JID.parse(value)
        except JIDError as exc:
            raise bad_payload(f"field 'to': {value!r} is not a JID ({exc})") from None
        body = text(ctx.values.get("body"))
        if not body:
            raise bad_payload("field 'body' is empty")
        domain = ctx.service.domain
        await api.route(message(domain, to, body, None, "chat"))
        api.log.info("%s sent a message from %s to %s", ctx.requester.bare, domain, to)
        return Result.info(f"sent from {domain} to {to}")

    registry.add(
        Command(
            node("send-message", ns.VINES_ADMIN), "Send a Message", send, (form,), state.allow_admin
        )
    )

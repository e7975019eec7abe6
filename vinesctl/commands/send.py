"""`vinesctl send JID TEXT`: a chat message from the profile's account, or from the server's
domain with --from-server (our server's `urn:vinesctl:admin#send-message`, for admins)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import click

from vinesctl.commands.remote import read_text, run_remote, timeout_option, warn_notes
from vinesctl.connection import connect_options
from vinesctl.errors import UsageError
from vinesctl.output import emit, json_option


@dataclass
class Sent:
    sender: str  # the account, or the domain with --from-server
    to: str

    def to_json(self) -> dict[str, Any]:
        return {"from": self.sender, "to": self.to}


def target_jid(value: str) -> str:
    from slixmpp.jid import JID, InvalidJID

    try:
        jid = JID(value.strip())
    except InvalidJID as exc:
        raise UsageError(f"{value!r} is not a JID ({exc})", "give e.g. alice@example.org") from None
    if not jid.domain:
        raise UsageError(f"{value!r} is not a JID", "give e.g. alice@example.org")
    return str(jid)


@click.command("send")
@click.argument("jid")
@click.argument("text", required=False)
@click.option(
    "--from-server",
    is_flag=True,
    help="Send from the profile's domain itself (needs an admin of that domain).",
)
@timeout_option
@connect_options
@json_option
@click.pass_context
def command(
    ctx: click.Context,
    jid: str,
    text: str | None,
    from_server: bool,
    timeout: float,
    server: str | None,
    ca: str | None,
    insecure: bool,
    as_json: bool,
) -> None:
    """Send TEXT (or standard input, '-') to JID as a chat message."""
    to = target_jid(jid)
    body = read_text(text, "message")

    async def work(client: Any, conn: Any, _s: Any) -> Sent:
        if from_server:
            from vinesctl.xmpp import admin

            warn_notes(await admin.send_message(client, conn.domain, to, body))
            return Sent(conn.domain, to)
        await _send(client, conn.domain, to, body, timeout)
        return Sent(str(client.boundjid.bare), to)

    sent = run_remote(ctx, server, ca, insecure, as_json, work, timeout)
    emit(sent, as_json, lambda s: f"sent to {s.to} from {s.sender}")


async def _send(client: Any, domain: str, to: str, body: str, timeout: float) -> None:
    """Send, then a round trip to our server: it handles one stream's stanzas in order, so a
    refusal of the message (an error bounce) has come back by the time the answer does."""
    import asyncio

    message_id = uuid.uuid4().hex
    refused: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    def on_error(msg: Any) -> None:
        if msg["id"] == message_id and not refused.done():
            refused.set_result(msg["error"])

    client.add_event_handler("message_error", on_error)
    try:
        msg = client.make_message(mto=to, mbody=body, mtype="chat")
        msg["id"] = message_id
        msg.send()
        await client.plugin["xep_0030"].get_info(jid=domain, timeout=timeout)
    finally:
        client.del_event_handler("message_error", on_error)
    if refused.done():
        from vinesctl.xmpp.admin import AdminError

        error = refused.result()
        text = error["text"] or error["condition"]
        raise AdminError(f"{to} refused the message: {text}", condition=error["condition"])

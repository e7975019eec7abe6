"""Our admin nodes for federation: `urn:vinesctl:admin#s2s` lists the server-to-server streams
(direction, peer domain, address, TLS, EXTERNAL or dialback, the certificate verdict, since,
queued stanzas) and `#s2s-close` closes every stream with one peer domain. Behind
`vinesctl s2s` and `vinesctl s2s close DOMAIN`; server-wide, so for operators."""

from __future__ import annotations

from datetime import UTC, datetime

from vines_server.core.admins import AdminState, admin_form, node, result_form
from vines_server.core.api import ModuleAPI
from vines_server.core.commands import Command, CommandFailed, Context, Result, bad_payload
from vines_server.xmpp import ns
from vines_server.xmpp.forms import Field
from vines_server.xmpp.jid import JID, JIDError

S2S = node("s2s", ns.VINES_ADMIN)
S2S_CLOSE = node("s2s-close", ns.VINES_ADMIN)

COLUMNS = [
    ("direction", "Direction"),
    ("domain", "Peer domain"),
    ("local", "Our domain"),
    ("address", "Address"),
    ("tls_version", "TLS version"),
    ("cipher", "TLS cipher"),
    ("auth", "Authentication"),
    ("certificate", "Certificate"),
    ("since", "Since"),
    ("queued", "Queued stanzas"),
]


def _cell(var: str, value: object) -> str:
    if value is None:
        return ""
    if var == "since" and isinstance(value, float):
        return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


def setup(api: ModuleAPI) -> None:
    state: AdminState = api.use("admins")
    registry = api.use("adhoc")

    def federation():
        try:
            return api.use("federation")
        except LookupError:
            return None  # a closed server: no federation, no streams

    async def streams(ctx: Context) -> Result:
        fed = federation()
        rows = fed.streams() if fed is not None else []
        form = result_form("Server-to-server streams", namespace=ns.VINES_ADMIN)
        form.reported = [Field(var, "text-single", label) for var, label in COLUMNS]
        for row in rows:
            form.items.append(
                [Field(var, None, values=[_cell(var, row.get(var))]) for var, _ in COLUMNS]
            )
        count = len(rows)
        text = f"{count} s2s stream{'s' if count != 1 else ''}"
        if fed is None:
            text += " (federation is not configured: [federation] allow is empty)"
        return Result.info(text, form)

    def close_form(ctx: Context):
        return admin_form(
            "Closing s2s streams", Field("domain", "text-single", "Peer domain", required=True)
        )

    async def close(ctx: Context) -> Result:
        value = (ctx.values.get("domain") or "").strip()
        try:
            jid = JID.parse(value)
        except JIDError:
            jid = None
        if jid is None or jid.local is not None or jid.resource is not None:
            raise bad_payload(f"field 'domain': {value!r} is not a domain")
        fed = federation()
        closed = fed.close_domain(jid.domain) if fed is not None else 0
        if not closed:
            raise CommandFailed(f"no s2s stream with {jid.domain}")
        api.log.warning("s2s streams with %s closed by %s", jid.domain, ctx.requester.bare)
        return Result.info(f"{closed} stream{'s' if closed != 1 else ''} with {jid.domain} closed")

    registry.add(Command(S2S, "List Server-to-Server Streams", streams, (), state.allow_operator))
    registry.add(
        Command(
            S2S_CLOSE, "Close Server-to-Server Streams", close, (close_form,), state.allow_operator
        )
    )

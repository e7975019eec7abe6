"""A slixmpp login that goes through SASL as a real client does: when a mechanism fails it tries
the next one it shares with the server (slixmpp prefers SCRAM-SHA-256), and reports which ones
failed and which one succeeded, with the roster it then sees."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any


async def login(domain: str, user: str, password: str, port: int, ca: Path, roster: dict
                ) -> dict[str, Any]:  # fmt: skip
    """Log in with slixmpp, optionally set roster items first; what it saw."""
    import slixmpp

    client = slixmpp.ClientXMPP(f"{user}@{domain}", password)
    client.ca_certs = str(ca)
    client.enable_direct_tls = False
    client.enable_plaintext = False
    failed: list[str] = []
    done: asyncio.Future[dict] = asyncio.get_running_loop().create_future()

    async def started(_event: Any) -> None:
        await client.get_roster()
        for jid, (name, groups) in roster.items():
            await client.update_roster(jid, name=name, groups=groups)
        items = {
            jid: (client.client_roster[jid]["name"], sorted(client.client_roster[jid]["groups"]))
            for jid in client.client_roster
        }
        mech = client.plugin["feature_mechanisms"]
        done.set_result({"roster": items, "failed": list(failed), "mechanism": mech.mech.name})

    def auth_failed(_stanza: Any) -> None:
        failed.append(client.plugin["feature_mechanisms"].mech.name)

    def gone(_event: Any) -> None:
        if not done.done():
            done.set_exception(ConnectionError(f"{user}: disconnected, failed {failed}"))

    client.add_event_handler("session_start", started)
    client.add_event_handler("failed_auth", auth_failed)
    client.add_event_handler("disconnected", gone)
    client.connect(host="127.0.0.1", port=port)
    try:
        return await asyncio.wait_for(done, 30)
    finally:
        client.del_event_handler("disconnected", gone)
        await client.disconnect()

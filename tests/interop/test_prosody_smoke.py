"""The Prosody harness works: a real Prosody starts on an ephemeral port with a generated
certificate, an account is created without the password in argv, and slixmpp logs in over
STARTTLS (verifying the certificate against the test CA) and pings the server."""

from __future__ import annotations

import asyncio
from contextlib import suppress
from typing import Any

import pytest

from tests.support.prosody import ProsodyInstance

pytestmark = pytest.mark.interop

PASSWORD = "smoke test pass phrase"


async def test_slixmpp_logs_in_and_pings_prosody(prosody: ProsodyInstance) -> None:
    import slixmpp

    prosody.register("alice", PASSWORD)
    client = slixmpp.ClientXMPP(f"alice@{prosody.domain}", PASSWORD)
    client.ca_certs = str(prosody.ca_file)
    client.enable_direct_tls = False
    client.enable_plaintext = False  # STARTTLS with certificate verification, or nothing
    client.register_plugin("xep_0199")
    started: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    def on_start(_event: Any) -> None:
        if not started.done():
            started.set_result(True)

    def on_fail(_event: Any) -> None:
        if not started.done():
            started.set_exception(AssertionError("prosody refused alice's password"))

    client.add_event_handler("session_start", on_start)
    client.add_event_handler("failed_auth", on_fail)
    client.connect(host=prosody.host, port=prosody.port)
    try:
        await asyncio.wait_for(started, 15)
        assert client.boundjid.bare == f"alice@{prosody.domain}"
        rtt = await client.plugin["xep_0199"].ping(jid=prosody.domain, timeout=5)
        assert rtt is not None and rtt >= 0
    finally:
        client.disconnect()
        with suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(client.disconnected, 5)
    assert "Authenticated as alice@prosody.test" in prosody.log_file.read_text()


def test_register_keeps_the_password_out_of_argv(prosody: ProsodyInstance) -> None:
    """adduser reads the password from stdin; the account file holds only SCRAM keys."""
    prosody.register("bob", PASSWORD)
    record = (prosody.data_dir / "prosody%2etest" / "accounts" / "bob.dat").read_text()
    assert PASSWORD not in record
    assert "stored_key" in record and "iteration_count" in record

"""Accounts imported from Prosody carry SCRAM-SHA-1 keys only. A client that prefers
SCRAM-SHA-256 (slixmpp does) fails that mechanism at every login, then logs in with SHA-1: the
failure cannot be a password guess (no password passes keys that do not exist), so it must not
count towards the per-IP ban, or an office behind one address would be banned after a few
logins. A wrong password on the same account still counts."""

from __future__ import annotations

import asyncio

import slixmpp
from vines_server.xmpp.sasl.credentials import derive

from tests.support.xmpp import DOMAIN, PASSWORD, TEST_ITERATIONS, disconnect, running_server

STRICT = {"auth_failures_per_ip": 2, "ban_exempt": []}  # loopback is exempt by default


async def add_sha1_only(h, local: str) -> str:
    jid = f"{local}@{DOMAIN}"
    keys = {"SHA-1": derive(PASSWORD, "SHA-1", TEST_ITERATIONS)}
    await h.server.storage.create_account(jid, keys)
    return jid


async def login(h, jid: str, password: str = PASSWORD) -> bool:
    """slixmpp's own login: it moves on to its next mechanism after a failure, and gives up
    only when every one failed ('failed_all_auth'). True when the session started."""
    client = slixmpp.ClientXMPP(jid, password)
    client.ca_certs = str(h.pki.ca_file)
    client.enable_direct_tls = False
    outcome: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    client.add_event_handler("session_start", lambda _: outcome.done() or outcome.set_result(True))
    for event in ("failed_all_auth", "disconnected"):
        client.add_event_handler(event, lambda _: outcome.done() or outcome.set_result(False))
    client.connect(host="127.0.0.1", port=h.port())
    try:
        return await asyncio.wait_for(outcome, 15)
    finally:
        await disconnect(client)


async def test_sha256_attempts_on_a_sha1_only_account_do_not_ban(tmp_path, pki):
    async with running_server(tmp_path, pki, limits=STRICT) as h:
        jid = await add_sha1_only(h, "migrated")
        for _ in range(4):  # twice the ban threshold
            assert await login(h, jid)
        assert h.server.bans() == {}


async def test_wrong_passwords_on_a_sha1_only_account_still_ban(tmp_path, pki):
    async with running_server(tmp_path, pki, limits=STRICT) as h:
        jid = await add_sha1_only(h, "migrated")
        assert not await login(h, jid, "wrong password")  # SHA-1 and PLAIN fail: two count
        assert "127.0.0.1" in h.server.bans()

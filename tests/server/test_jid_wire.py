# ruff: noqa: RUF001  (look-alike characters are what these tests are about)
"""RFC 7622 preparation on the wire: addresses and SASL user names take the one JID rule, and
accounts stored under the pre-PRECIS name stay reachable (issue 9)."""

from __future__ import annotations

import logging
import re

import pytest

from tests.server.test_admin import boss
from tests.server.test_hostile import scram
from tests.support.adhoc import admin, refused, run
from tests.support.xmpp import DOMAIN, PASSWORD, RawClient

__all__ = ["boss"]  # the administrator fixture of the neighbouring tests


async def connect(harness) -> RawClient:
    return await RawClient.connect(harness.port(), harness.pki.ca_file)


async def login(harness, user: str, password: str = PASSWORD) -> tuple[RawClient, str]:
    """Logs in with PLAIN and binds; returns the client and the JID the server bound."""
    client = await connect(harness)
    reply = await client.login(user, password)
    bound = re.search(rb"<jid>([^<]+)</jid>", reply)
    assert bound, reply
    return client, bound.group(1).decode()


async def plain_outcome(harness, user: str, password: str = PASSWORD) -> bytes:
    client = await connect(harness)
    try:
        await client.starttls()
        await client.auth_plain(user, password)
        return await client.read_until(rb"<success[^>]*/>|<success.*?</success>|</failure>")
    finally:
        client.close()


@pytest.mark.parametrize(
    "to", [f"😀@{DOMAIN}", f"bad&apos;q@{DOMAIN}", f"ﬁ@{DOMAIN}", "u@😀.test", "u@a_b.test"]
)
async def test_stanza_to_a_jid_precis_refuses_gets_jid_malformed(harness, to):
    client, _ = await login(harness, "alice")
    await client.send(f"<message id='m1' to='{to}'><body>x</body></message>")
    got = await client.read_until(rb"<message[^>]*type='error'.*?</message>")
    assert b"<jid-malformed xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>" in got
    await client.send(f"<iq id='i1' type='get' to='{to}'><ping xmlns='urn:xmpp:ping'/></iq>")
    got = await client.read_until(rb"<iq[^>]*type='error'.*?</iq>")
    assert b"<jid-malformed xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>" in got
    client.close()


async def test_fullwidth_and_uppercase_address_reach_the_same_account(harness):
    alice, _ = await login(harness, "alice")
    bob, bob_jid = await login(harness, "ｂｏｂ")  # width-mapped at login too
    assert bob_jid.startswith(f"bob@{DOMAIN}/")
    await bob.send("<presence/>")  # available: messages to the bare JID come to this session
    await bob.send(f"<iq id='sync' type='get' to='{DOMAIN}'><ping xmlns='urn:xmpp:ping'/></iq>")
    await bob.read_until(rb"<iq[^>]*id='sync'")  # the presence was handled before this
    for n, to in enumerate([f"ＢＯＢ@{DOMAIN}", f"Bob@{DOMAIN.upper()}"]):
        await alice.send(f"<message to='{to}' type='chat'><body>m{n}</body></message>")
        await bob.read_until(rf"<message[^>]*>.*?m{n}.*?</message>".encode())
    alice.close()
    bob.close()


async def test_strasse_and_strasse_with_sharp_s_are_two_accounts(harness):
    await harness.add_user("strasse", "pw-ss")
    await harness.add_user("straße", "pw-sharp-s")
    _, jid = await login(harness, "STRASSE", "pw-ss")
    assert jid.startswith(f"strasse@{DOMAIN}/")
    _, jid = await login(harness, "straße", "pw-sharp-s")
    assert jid.startswith(f"straße@{DOMAIN}/")
    # the old rule folded both names into one: one password must not open the other account
    assert b"<not-authorized/>" in await plain_outcome(harness, "straße", "pw-ss")


async def test_account_stored_under_the_legacy_name_still_logs_in(harness, caplog):
    # created as 'straße' before the PRECIS rule, so stored as 'strasse'
    await harness.add_user("strasse", "pw-ss")
    with caplog.at_level(logging.WARNING, logger="vines_server"):
        _, jid = await login(harness, "Straße", "pw-ss")
    assert jid.startswith(f"strasse@{DOMAIN}/")  # the account it really is
    assert any(
        "pre-PRECIS" in r.getMessage() and f"straße@{DOMAIN}" in r.getMessage()
        for r in caplog.records
    )
    assert b"<not-authorized/>" in await plain_outcome(harness, "straße", "wrong")


async def test_sasl_name_precis_refuses_is_malformed(harness):
    assert b"<malformed-request/>" in await plain_outcome(harness, "😀")


# ---- XEP-0133 from any admin client: account JIDs take the same rule ------------------------


async def test_admin_commands_prepare_account_jids(harness, boss):
    form = {"password": "x", "password-verify": "x"}
    err = await refused(run(boss, admin("add-user"), {"accountjid": f"😀@{DOMAIN}"} | form))
    assert err.condition == "bad-request" and "U+1F600 GRINNING FACE" in err.text
    done = await run(boss, admin("add-user"), {"accountjid": f"ＥＶＥ@{DOMAIN}"} | form)
    assert done.status == "completed"
    assert await harness.server.storage.get_account(f"eve@{DOMAIN}") is not None

    await harness.add_user("strasse")
    await run(boss, admin("delete-user"), {"accountjids": [f"straße@{DOMAIN}"]})
    assert await harness.server.storage.get_account(f"strasse@{DOMAIN}") is not None


async def test_legacy_name_logs_in_with_scram_too(harness):
    await harness.add_user("strasse", "pw-ss")
    client = await connect(harness)
    try:
        await client.starttls()
        _, _, _, answer = await scram(client, "straße", "pw-ss")
        assert b"<success" in answer, answer
    finally:
        client.close()

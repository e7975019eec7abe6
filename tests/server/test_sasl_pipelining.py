"""Pipelined SASL over real TLS (issue 8.1): a client that sends, in one write, its own valid
credentials and then an exchange naming someone else ends up as itself, never as the other
account; each exchange is answered in turn and each failed one counts. STARTTLS and direct TLS."""

from __future__ import annotations

import re

import pytest
from vines_server.xmpp.sasl.client import ScramClient

from tests.server.test_hostile import (  # no_tracebacks: autouse, no error line in the log
    FAILURE,
    assert_still_serving,
    connect,
    expect_error,
    expect_silence,
    no_tracebacks,  # noqa: F401
    serve,
    still_open,
)
from tests.support.c2s import ABORT, auth, bind, plain, stream_open
from tests.support.xmpp import DOMAIN, PASSWORD, Harness, RawClient

KINDS = ["c2s-starttls", "c2s-direct-tls"]
ALICE, ADMIN = f"alice@{DOMAIN}", f"admin@{DOMAIN}"
SUCCESS = rb"<success[^>]*/>|<success.*?</success>"


@pytest.fixture
async def server(tmp_path, pki):
    async with serve(tmp_path, pki) as h:
        await h.add_user("admin", "the admin's own secret")
        yield h


async def negotiated(h: Harness, kind: str) -> RawClient:
    """Encrypted and SASL features read: the next write may start authentication."""
    client = await connect(h, kind=kind)
    if kind == "c2s-starttls":
        await client.starttls()
    else:
        await client.open_stream()
    return client


async def bound_as(client: RawClient) -> str:
    """After <success/>: restart, bind, and return the bare JID the server bound."""
    await client.open_stream()
    await client.send(bind("who"))
    reply = await client.read_until(rb"</iq>")
    match = re.search(rb"<jid>([^/<]*)/", reply)
    assert match, reply
    return match.group(1).decode()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "between",
    [ABORT, auth("X-FOO"), stream_open(DOMAIN)],
    ids=["abort", "unknown-mechanism", "restart-after-success"],
)
async def test_own_credentials_then_plain_naming_admin_binds_as_self(server, kind, between):
    client = await negotiated(server, kind)
    await client.send(plain("alice", PASSWORD) + between + plain("admin", PASSWORD))
    answer = await client.read_until(SUCCESS)
    assert b"<failure" not in answer
    # the rest of the write predates the restart <success/> asks for: dropped, never answered
    assert await bound_as(client) == ALICE
    await expect_silence(client, FAILURE)
    await still_open(client)
    await assert_still_serving(server)


@pytest.mark.parametrize("kind", KINDS)
async def test_scram_start_then_plain_naming_admin_never_succeeds(server, kind):
    client = await negotiated(server, kind)
    scram = ScramClient("SHA-256", "alice", PASSWORD)
    first = auth(scram.mechanism, scram.first())
    await client.send(first + plain("admin", PASSWORD) * 2)
    answer = await client.read_until(rb"</challenge>.*?" + FAILURE + rb".*?" + FAILURE)
    assert answer.count(b"<not-authorized/>") == 2  # the SCRAM exchange, then admin's
    await expect_silence(client, SUCCESS)
    await client.auth_plain("alice", PASSWORD)  # still unauthenticated: a real login works
    await client.read_until(SUCCESS)
    assert await bound_as(client) == ALICE
    await assert_still_serving(server)


@pytest.mark.parametrize("kind", KINDS)
async def test_three_wrong_passwords_in_one_write_are_three_failures(server, kind):
    client = await negotiated(server, kind)
    await client.send(plain("alice", "wrong") * 3)
    data = await expect_error(client, "policy-violation")
    assert data.count(b"<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/>") == 3
    await assert_still_serving(server)


async def test_stanzas_pipelined_behind_bind_are_served_after_it(server):
    client = await negotiated(server, "c2s-starttls")
    await client.auth_plain("alice", PASSWORD)
    await client.read_until(SUCCESS)
    await client.open_stream()
    ping = f"<iq type='get' id='p1' to='{DOMAIN}'><ping xmlns='urn:xmpp:ping'/></iq>"
    await client.send(bind("b1", "desk") + "<presence/>" + ping)
    got = await client.read_until(rb"id='p1'")  # the ping's answer, after the bind result
    assert b"<jid>alice@vines.test/desk</jid>" in got
    await still_open(client)

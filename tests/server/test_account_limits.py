"""Per-account storage limits ([limits] roster_items, private_bytes, offline_bytes,
directed_presences) over real TLS: over a limit the request is refused with the precise stanza
error and a text naming the limit, and nothing is stored; a maximum-size roster fetch lets
other clients in between its chunks."""

from __future__ import annotations

import asyncio
import re

import pytest
from vines_server.config import Limits, parse
from vines_server.storage.base import RosterItem
from vines_server.xmpp.jid import JID

from tests.support.xmpp import DOMAIN, RawClient, raw_login, running_server

ALICE, BOB, CAROL, DAVE = (f"{u}@{DOMAIN}" for u in ("alice", "bob", "carol", "dave"))
STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"


def test_the_defaults():
    limits = Limits()
    assert (limits.roster_items, limits.private_bytes) == (2000, 1048576)
    assert (limits.offline_bytes, limits.directed_presences) == (10485760, 1000)
    raw = {"domains": {DOMAIN: {"certificate": "c", "key": "k"}}, "limits": {"roster_items": 5}}
    assert parse(raw).limits.roster_items == 5


@pytest.fixture
async def small(tmp_path, pki):
    limits = {
        "roster_items": 3,
        "private_bytes": 400,
        "offline_bytes": 600,
        "directed_presences": 2,
    }
    async with running_server(tmp_path, pki, limits=limits) as h:
        for local in ("alice", "bob", "carol"):
            await h.add_user(local)
        yield h


async def iq(raw: RawClient, iq_id: str, body: str, kind: str = "set") -> bytes:
    await raw.send(f"<iq type='{kind}' id='{iq_id}'>{body}</iq>")
    return await raw.read_until(rf"<iq[^>]*id='{iq_id}'[^>]*(/>|>.*?</iq>)")


def refusal(data: bytes, kind: str, condition: str, limit: str) -> None:
    assert f"<error type='{kind}'><{condition} xmlns='{STANZAS}'/>".encode() in data, data
    assert f"(limits.{limit})".encode() in data, data


def roster_set(jid: str, name: str = "") -> str:
    named = f" name='{name}'" if name else ""
    return f"<query xmlns='jabber:iq:roster'><item jid='{jid}'{named}/></query>"


async def test_a_full_roster_refuses_new_items_but_not_changes(small):
    alice = await raw_login(small, "alice")
    for i in range(3):
        assert b"type='result'" in await iq(alice, f"r{i}", roster_set(f"c{i}@example.org"))
    refusal(
        await iq(alice, "r3", roster_set("c3@example.org")),
        "modify",
        "not-acceptable",
        "roster_items",
    )
    assert b"type='result'" in await iq(alice, "r4", roster_set("c0@example.org", "Zero"))
    # a subscription request would add an item too: refused the same way, nothing sent
    await alice.send(f"<presence to='{BOB}' type='subscribe'/>")
    data = await alice.read_until(r"<presence[^>]*type='error'.*?</presence>")
    refusal(data, "modify", "not-acceptable", "roster_items")
    storage = small.server.storage
    assert len(await storage.get_roster(ALICE)) == 3
    assert await storage.get_pending_in(BOB) == []
    alice.close()


async def test_private_storage_is_bounded_per_account(small):
    alice = await raw_login(small, "alice")

    def private(ns: str, size: int) -> str:
        return f"<query xmlns='jabber:iq:private'><x xmlns='{ns}'>{'a' * size}</x></query>"

    assert b"type='result'" in await iq(alice, "p1", private("urn:a", 150))
    assert b"type='result'" in await iq(alice, "p2", private("urn:b", 150))
    refusal(
        await iq(alice, "p3", private("urn:c", 150)), "modify", "not-acceptable", "private_bytes"
    )
    assert b"type='result'" in await iq(alice, "p4", private("urn:a", 10))  # replacing shrinks
    assert b"type='result'" in await iq(alice, "p5", private("urn:c", 150))
    assert await small.server.storage.get_private(ALICE, "{urn:c}x") is not None
    alice.close()


async def test_offline_storage_is_bounded_in_bytes(small):
    alice = await raw_login(small, "alice")
    body = "b" * 150  # about 250 bytes stored: the second fits in 600, the third does not
    for i in range(3):
        await alice.send(f"<message to='{BOB}' id='m{i}' type='chat'><body>{body}</body></message>")
    data = await alice.read_until(r"<message[^>]*type='error'.*?</message>")
    assert b"id='m2'" in data
    refusal(data, "cancel", "service-unavailable", "offline_bytes")
    assert await small.server.storage.count_offline(BOB) == 2
    alice.close()


async def test_directed_presence_is_bounded_per_session(small):
    alice = await raw_login(small, "alice")
    await alice.send("<presence/>")
    for target in (BOB, CAROL, BOB):  # a repeat costs nothing
        await alice.send(f"<presence to='{target}'/>")
    await alice.send(f"<presence to='{DAVE}' id='z1'/>")
    data = await alice.read_until(r"<presence[^>]*type='error'.*?</presence>")
    assert b"id='z1'" in data
    refusal(data, "modify", "not-acceptable", "directed_presences")
    await alice.send(f"<presence to='{CAROL}' type='unavailable'/>")
    await alice.send(f"<presence to='{DAVE}' id='z2'/>")
    await alice.send(f"<iq type='get' id='ping' to='{DOMAIN}'><ping xmlns='urn:xmpp:ping'/></iq>")
    pong = await alice.read_until(r"<iq[^>]*id='ping'[^>]*/>")
    assert b"type='error'" not in pong  # z2 was accepted: y's slot was freed
    (session,) = small.server.sessions.resources(JID.parse(ALICE))
    assert session.directed == {BOB, DAVE}
    alice.close()


async def test_directed_presence_holds_no_set_until_one_is_sent(small):
    """Most sessions never send directed presence: they hold no set for it (memory per idle
    session, issue 14), and the broadcast unavailable still reaches the JIDs that got one."""
    alice, bob = await raw_login(small, "alice"), await raw_login(small, "bob")
    await bob.send("<presence/>")  # available: presence to the bare JID reaches it
    await alice.send("<presence/>")
    await alice.send(f"<presence to='{CAROL}' type='unavailable'/>")  # never given: no set
    await alice.send(f"<iq type='get' id='ping' to='{DOMAIN}'><ping xmlns='urn:xmpp:ping'/></iq>")
    await alice.read_until(r"<iq[^>]*id='ping'[^>]*/>")
    (session,) = small.server.sessions.resources(JID.parse(ALICE))
    assert not isinstance(session.directed, set) and not session.directed
    await alice.send(f"<presence to='{BOB}'/>")
    await bob.read_until(rf"<presence[^>]*from='{ALICE}/")
    assert session.directed == {BOB}
    await alice.send("<presence type='unavailable'/>")
    data = await bob.read_until(r"<presence[^>]*type='unavailable'[^>]*/>")
    assert f"from='{ALICE}/".encode() in data
    assert not isinstance(session.directed, set) and not session.directed
    alice.close()
    bob.close()


ROSTER_ITEMS = 4000


@pytest.fixture
async def full_roster(tmp_path, pki):
    # the memory backend: its reads do not leave the event loop, so only the module's own turns
    # can let the ping in
    async with running_server(
        tmp_path, pki, backend="memory", limits={"roster_items": ROSTER_ITEMS}
    ) as h:
        await h.add_user("alice")
        await h.add_user("bob")
        storage = h.server.storage
        for i in range(ROSTER_ITEMS):
            item = RosterItem(f"contact{i:05}@example.org", f"Contact {i}", "both", groups=("g",))
            await storage.put_roster_item(ALICE, item)
        yield h


async def test_a_ping_is_answered_during_a_maximum_size_roster_fetch(full_roster):
    alice = await raw_login(full_roster, "alice")
    bob = await raw_login(full_roster, "bob")
    await alice.send("<iq type='get' id='roster'><query xmlns='jabber:iq:roster'/></iq>")
    await bob.send(f"<iq type='get' id='ping' to='{DOMAIN}'><ping xmlns='urn:xmpp:ping'/></iq>")
    order: list[str] = []

    async def first_byte_of_roster() -> None:
        await alice.read_until(r"<iq[^>]*id='roster'", timeout=20)
        order.append("roster")

    async def pong() -> None:
        await bob.read_until(r"<iq[^>]*id='ping'", timeout=20)
        order.append("ping")

    await asyncio.gather(first_byte_of_roster(), pong())
    assert order == ["ping", "roster"]
    rest = await alice.read_until(r"</query></iq>", timeout=20)
    assert len(re.findall(rb"<item ", rest)) == ROSTER_ITEMS
    alice.close()
    bob.close()

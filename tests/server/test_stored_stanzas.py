"""What the server stores for an account (subscription requests, offline messages) can always be
read back and delivered, over real TLS: a stored stanza is several times its wire size once
re-escaped (`>` becomes `&gt;`), and reading it back under the wire limit once made every login
of the recipient end with internal-server-error, or lost every offline message after it. A
stanza that truly cannot be read back is skipped (or, for a subscription request, delivered
without its payload) with a log line, and never takes the others with it."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from xml.etree.ElementTree import fromstring

import pytest

from tests.support.xmpp import DOMAIN, RawClient, raw_login, running_server

BOB = f"bob@{DOMAIN}"
MALLORY = f"mallory@{DOMAIN}"
HUGE = ">" * 200_000  # 200 KB on the wire, 800 KB once stored as &gt;
PING = "<iq type='get' id='{id}' to='" + DOMAIN + "'><ping xmlns='urn:xmpp:ping'/></iq>"


@pytest.fixture
async def harness(tmp_path, pki):
    async with running_server(tmp_path, pki) as h:
        for local in ("alice", "bob", "mallory"):
            await h.add_user(local)
        yield h


async def settle(raw: RawClient, tag: str) -> None:
    """A ping answered after the stanzas sent before it: those were routed (one connection's
    stanzas are handled in order)."""
    await raw.send(PING.format(id=tag))
    await raw.read_until(
        f"<iq[^>]*id='{tag}'[^>]*type='result'|<iq[^>]*type='result'[^>]*id='{tag}'"
    )


async def alive(raw: RawClient) -> None:
    await settle(raw, "alive")
    assert not raw.closed


def element(data: bytes, tag: str):
    """The last complete <tag> in `data`, parsed (the stream's default namespace dropped)."""
    found = re.findall(rb"<" + tag.encode() + rb"\b.*?</" + tag.encode() + rb">", data, re.S)
    assert found, data[-500:]
    return fromstring(found[-1])


async def next_message(raw: RawClient):
    return element(await raw.read_until(rb"</message>", timeout=10), "message")


async def test_a_huge_subscription_request_never_breaks_the_recipients_login(harness):
    mallory = await raw_login(harness, "mallory")
    await mallory.send(f"<presence to='{BOB}' type='subscribe'><status>{HUGE}</status></presence>")
    await settle(mallory, "s1")
    stored = await harness.server.storage.get_pending_in(BOB)
    assert len(stored) == 1 and len(stored[0][1]) > 256 * 1024  # larger than the wire limit
    for attempt in range(2):  # every later login, not just the first
        bob = await raw_login(harness, "bob")
        await bob.send("<presence/>")
        data = await bob.read_until(rb"<presence[^>]*type='subscribe'.*?</presence>", timeout=10)
        request = element(data, "presence")
        assert request.get("from") == MALLORY, attempt
        assert request.findtext("status") == HUGE
        await alive(bob)
        bob.close()
    mallory.close()


async def test_a_huge_offline_message_does_not_take_the_others_with_it(harness):
    alice = await raw_login(harness, "alice")
    bodies = ["one", "two", "three", HUGE, "five", "six", "seven"]
    for i, body in enumerate(bodies):
        await alice.send(f"<message to='{BOB}' id='m{i}' type='chat'><body>{body}</body></message>")
    await settle(alice, "s1")
    assert await harness.server.storage.count_offline(BOB) == 7
    bob = await raw_login(harness, "bob")
    await bob.send("<presence/>")
    got = [await next_message(bob) for _ in bodies]
    assert [m.findtext("body") for m in got] == bodies
    assert [m.get("id") for m in got] == [f"m{i}" for i in range(7)]
    await alive(bob)
    assert await harness.server.storage.count_offline(BOB) == 0
    alice.close()
    bob.close()


async def test_an_unreadable_offline_message_is_skipped_with_a_log_line(harness, caplog):
    caplog.set_level(logging.WARNING, logger="vines_server")
    storage, now = harness.server.storage, datetime.now(UTC)
    await storage.store_offline(BOB, "<message id='a'><body>first</body></message>", now)
    await storage.store_offline(BOB, "<message id='b'><body>cut short", now)  # damaged
    await storage.store_offline(BOB, "<message id='c'><body>last</body></message>", now)
    bob = await raw_login(harness, "bob")
    await bob.send("<presence/>")
    got = [await next_message(bob) for _ in range(2)]
    assert [m.get("id") for m in got] == ["a", "c"]
    await alive(bob)
    assert any("cannot be read back" in r.getMessage() for r in caplog.records)
    bob.close()


async def test_an_unreadable_subscription_request_still_arrives(harness, caplog):
    caplog.set_level(logging.WARNING, logger="vines_server")
    await harness.server.storage.add_pending_in(BOB, MALLORY, "<presence type='subscribe'><st")
    bob = await raw_login(harness, "bob")
    await bob.send("<presence/>")
    data = await bob.read_until(rb"<presence[^>]*type='subscribe'[^>]*/>", timeout=10)
    assert f"from='{MALLORY}'".encode() in data
    await alive(bob)
    assert any("unreadable" in r.getMessage() for r in caplog.records)
    bob.close()


async def test_a_request_with_a_namespace_on_many_children_is_stored_compact_with_payload(harness):
    # Each child used to declare the long namespace again once serialized: 2 KB sent, 200 KB
    # stored. Now it is declared once, and the request keeps its payload.
    uri = "urn:x:" + "u" * 1_000
    children = "<p:c/>" * 200
    payload = f"<w xmlns='urn:w' xmlns:p='{uri}'>{children}</w>"
    mallory = await raw_login(harness, "mallory")
    await mallory.send(f"<presence to='{BOB}' type='subscribe'>{payload}</presence>")
    await settle(mallory, "s1")
    ((contact, xml),) = await harness.server.storage.get_pending_in(BOB)
    assert contact == MALLORY and len(xml) < 2 * len(payload) and xml.count(uri) == 1
    bob = await raw_login(harness, "bob")
    await bob.send("<presence/>")
    data = await bob.read_until(rb"<presence[^>]*type='subscribe'.*?</presence>", timeout=10)
    assert f"from='{MALLORY}'".encode() in data
    request = element(data, "presence")
    assert [c.tag for c in request[0]] == ["{" + uri + "}c"] * 200
    await alive(bob)
    mallory.close()
    bob.close()

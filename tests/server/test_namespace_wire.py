"""A namespace declared once and used by many children, over real TLS to a live server.

Each parsed name holds its whole namespace name, and serialize() used to declare the namespace
again on every child: one stanza under the wire limit (a 200 KB namespace, 1 000 prefixed
children) took 200 MB to parse and 200 MB more for each routed or stored copy. Now the parser
counts names against the stanza (policy-violation, stanza-too-big) and serialize() declares a
repeated namespace once, so what the recipient gets stays close to what was sent.
"""

from __future__ import annotations

import re
import tracemalloc
from xml.etree.ElementTree import fromstring

import pytest

from tests.support.xmpp import DOMAIN, RawClient, raw_login

BOB = f"bob@{DOMAIN}"
PING = "<iq type='get' id='{id}' to='" + DOMAIN + "'><ping xmlns='urn:xmpp:ping'/></iq>"


def message(uri: str, children: int) -> bytes:
    return (
        f"<message to='{BOB}' type='chat' id='ns1' xmlns:p='{uri}'><body>hi</body>".encode()
        + b"<p:x/>" * children
        + b"</message>"
    )


async def served(raw: RawClient, tag: str) -> None:
    """A ping answered: the stream is open and what was sent before it was handled."""
    await raw.send(PING.format(id=tag))
    await raw.read_until(
        f"<iq[^>]*id='{tag}'[^>]*type='result'|<iq[^>]*type='result'[^>]*id='{tag}'"
    )
    assert not raw.closed


async def test_the_blowup_stanza_is_refused_within_bounded_memory(harness):
    bob = await raw_login(harness, "bob")
    await bob.send("<presence/>")
    mallory = await raw_login(harness, "mallory")
    data = message("urn:long:" + "u" * 200_000, 1000)  # 206 KB sent, 200 MB as parsed names
    tracemalloc.start()
    try:
        await mallory.send(data)
        error = await mallory.expect_stream_error("policy-violation")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert b"<stanza-too-big xmlns='urn:xmpp:errors'/>" in error
    assert peak < 40 * len(data), f"{peak:,} bytes at the peak"  # unbounded: over 400 MB
    await served(bob, "bob-alive")
    assert b"<p:x" not in bob.buffer and b":x/>" not in bob.buffer
    alice = await raw_login(harness, "alice")  # a fresh login is served too
    await served(alice, "alice-alive")
    bob.close()
    alice.close()


@pytest.mark.parametrize("online", [True, False], ids=["online", "offline"])
async def test_a_namespace_on_many_children_reaches_the_recipient_compact(harness, online):
    # Within the parser's bounds (1 MB of names); the old serialize() wrote 1 MB per copy.
    uri = "urn:x:" + "u" * 994  # 1 000 characters
    data = message(uri, 1000)
    bob = None
    if online:
        bob = await raw_login(harness, "bob")
        await bob.send("<presence/>")
        await served(bob, "bob-ready")
    mallory = await raw_login(harness, "mallory")
    await mallory.send(data)
    await served(mallory, "sent")  # handled: delivered, or stored offline
    if bob is None:
        bob = await raw_login(harness, "bob")
        await bob.send("<presence/>")
    got = await bob.read_until(rb"<message[^>]*id='ns1'.*?</message>", timeout=10)
    received = re.search(rb"<message[^>]*id='ns1'.*</message>", got, re.S).group(0)
    assert len(received) < 2 * len(data), f"{len(received):,} bytes for {len(data):,} sent"
    assert received.count(uri.encode()) == 1
    # The default namespace is the stream's (jabber:client), declared in its header.
    el = fromstring(b"<w xmlns='jabber:client'>" + received + b"</w>")[0]
    assert el.get("from", "").startswith(f"mallory@{DOMAIN}/")
    tags = [c.tag for c in el if c.tag != "{urn:xmpp:delay}delay"]  # offline: stamped
    assert tags == ["{jabber:client}body"] + ["{" + uri + "}x"] * 1000
    await served(bob, "bob-alive")
    await served(mallory, "mallory-alive")
    bob.close()
    mallory.close()

"""The path of a client's stanzas through one connection, over the wire: a read is handled in
its callback until routing really waits (net/eager.py), and what arrives meanwhile waits its
turn, so a recipient gets one sender's stanzas in the order they were sent."""

from __future__ import annotations

import asyncio

from tests.server.test_sm import bodies, bound
from tests.support.xmpp import DOMAIN

HELD = "held"


def to_bob(text: str) -> str:
    return f"<message to='bob@{DOMAIN}/r' type='chat'><body>{text}</body></message>"


async def test_a_read_arriving_while_routing_waits_is_handled_after_it(harness):
    """A module holds the first message (as a store would); the second, in a later read, must
    not overtake it."""
    holding, release = asyncio.Event(), asyncio.Event()
    api = harness.server.host.api("holder")

    async def hold(stanza, to, origin):
        if stanza.findtext("{jabber:client}body") == HELD:
            holding.set()
            await release.wait()
        return False  # not claimed: the message module delivers it

    api.on("message/account", hold, priority=10)
    alice, bob = await bound(harness, "alice"), await bound(harness, "bob")
    await alice.send(to_bob(HELD))
    await holding.wait()
    await alice.send(to_bob("next"))
    # a round trip on bob's stream, begun after alice's bytes were in the kernel: the server's
    # loop has read them by the time it answers (epoll reports both sockets in one turn)
    await bob.send("<iq type='get' id='sync'><ping xmlns='urn:xmpp:ping'/></iq>")
    await bob.read_until(rb"id=.sync.")
    release.set()
    got = await bob.read_until(rb"<body>next</body>")
    assert bodies(got) == [HELD, "next"]
    alice.close()
    bob.close()

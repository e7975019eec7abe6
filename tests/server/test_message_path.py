"""The path of a client's stanzas through the server, over the wire: a read is handled in its
callback until routing really waits (net/eager.py), and what arrives meanwhile waits its turn,
so a recipient gets one sender's stanzas in the order they were sent; a message goes out with
its content as it came (stanza.Received) and its `from` stamped, unless its bytes depend on the
sender's stream."""

from __future__ import annotations

import asyncio
import re
from xml.etree import ElementTree

from tests.server.test_sm import bodies, bound
from tests.support.xmpp import DOMAIN, PASSWORD, RawClient

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


async def test_a_message_goes_out_as_it_came_with_the_server_stamping_from(harness):
    """The content as the sender wrote it (quotes, references), the sender's claimed `from` (its
    own bare JID, allowed) replaced by its full JID."""
    alice, bob = await bound(harness, "alice"), await bound(harness, "bob")
    content = (
        "<body x=\"1\">&#x41;&amp;</body><active xmlns='http://jabber.org/protocol/chatstates'/>"
    )
    await alice.send(f"<message to='bob@{DOMAIN}/r' from='alice@{DOMAIN}'>{content}</message>")
    got = await bob.read_until(rb"</message>")
    assert (
        f"<message to='bob@{DOMAIN}/r' from='alice@{DOMAIN}/r'>{content}</message>".encode() in got
    )
    alice.close()
    bob.close()


async def test_a_prefix_from_the_senders_stream_header_reaches_the_recipient_declared(harness):
    alice = await RawClient.connect(harness.port(), harness.pki.ca_file)
    await alice.starttls()
    await alice.auth_plain("alice", PASSWORD)
    await alice.read_until(rb"<success[^>]*/>|<success.*?</success>")
    await alice.send(  # the restarted stream's header binds one more prefix
        f"<stream:stream to='{DOMAIN}' version='1.0' xmlns='jabber:client' "
        "xmlns:stream='http://etherx.jabber.org/streams' xmlns:foo='urn:foo'>"
    )
    await alice.read_until(rb"</stream:features>")
    await alice.send("<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
    await alice.read_until(rb"</iq>")
    bob = await bound(harness, "bob")
    await alice.send(f"<message to='bob@{DOMAIN}/r'><foo:x foo:a='1'>t</foo:x></message>")
    got = await bob.read_until(rb"</message>")
    message = ElementTree.fromstring(re.search(rb"<message.*</message>", got, re.S)[0])
    (child,) = message
    assert (child.tag, child.attrib, child.text) == ("{urn:foo}x", {"{urn:foo}a": "1"}, "t")
    alice.close()
    bob.close()

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


def tls_records(ciphertext: bytes) -> int:
    """The TLS records in `ciphertext`, which holds whole ones (a 5-byte header each, whose
    last two bytes give the length of what follows)."""
    count = at = 0
    while at < len(ciphertext):
        at += 5 + int.from_bytes(ciphertext[at + 3 : at + 5], "big")
        count += 1
    assert at == len(ciphertext)
    return count


async def read_records(client: RawClient, pattern: bytes) -> tuple[bytes, int]:
    """Read until the plaintext matches `pattern`: (the plaintext, the TLS records it took)."""
    ciphertext = b""
    while not re.search(pattern, client.buffer):
        data = await asyncio.wait_for(client.reader.read(65536), 5)
        assert data, "closed by the server"
        ciphertext += data
        assert client.tls is not None
        client.buffer += client.tls.receive(data)
    return client.buffer, tls_records(ciphertext)


async def test_what_one_read_sends_a_recipient_goes_out_in_one_tls_record(harness):
    """Under load a read carries several stanzas, often to one recipient: they leave as one
    TLS record and one socket write, not one of each per stanza (issue 14)."""
    alice, bob = await bound(harness, "alice"), await bound(harness, "bob")
    bob.buffer = b""
    await alice.send("".join(to_bob(f"m{n}") for n in range(3)))  # one record, one read
    got, records = await read_records(bob, rb"<body>m2</body>")
    assert bodies(got) == ["m0", "m1", "m2"] and records == 1
    await alice.send(to_bob("alone"))
    got, records = await read_records(bob, rb"<body>alone</body>")
    assert records == 1
    alice.close()
    bob.close()


async def test_what_a_stream_writes_at_once_follows_what_it_held(harness):
    """A stanza held for its stream goes out before what the stream itself answers later in
    the same read (the session iq's result), and before a stream error that closes it."""
    alice = await bound(harness, "alice")
    to_self = f"<message to='alice@{DOMAIN}/r' type='chat'><body>first</body></message>"
    session = "<iq type='set' id='s1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>"
    await alice.send(to_self + session)
    got = await alice.read_until(rb"id=.s1.")
    assert bodies(got) == ["first"] and got.index(b"<body>first") < got.index(b"id='s1'")
    await alice.send(to_self.replace("first", "last") + "<unknown/>")
    got = await alice.read_until(rb"</stream:stream>")
    assert bodies(got) == ["last"] and b"unsupported-stanza-type" in got
    assert got.index(b"<body>last") < got.index(b"unsupported-stanza-type")
    assert await alice.closed_by_server()

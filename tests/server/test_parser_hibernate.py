"""An idle stream drops its Expat parser and gets a new one, primed with the stream header's
namespace declarations, at the next byte: what comes after must parse exactly as before."""

from __future__ import annotations

import asyncio

import pytest
from vines_server.xmpp.errors import StreamError
from vines_server.xmpp.parser import (
    DOZES,
    ParserLimits,
    Stanza,
    StreamClose,
    StreamOpen,
    StreamParser,
)
from vines_server.xmpp.stanza import serialize

HEADER = (
    b"<?xml version='1.0'?><stream:stream to='vines.test' version='1.0' xmlns='jabber:client' "
    b"xmlns:stream='http://etherx.jabber.org/streams' xmlns:x='urn:extra'>"
)
LATER = [
    b"<message to='a@vines.test'><body>hi &amp; bye</body><x:thing x:attr='1'/></message>",
    b"  ",  # a keepalive between stanzas
    b"<iq type='get' id='1'><query xmlns='urn:q'><item a='&lt;'/></query></iq>",
    b"</stream:stream>",
]


def events_of(parser: StreamParser, chunks: list[bytes], hibernate: bool) -> list:
    out = []
    for chunk in chunks:
        if hibernate:
            assert parser.hibernate()
        out += parser.feed(chunk)
    return out


def describe(events: list) -> list:
    return [serialize(e.element) if isinstance(e, Stanza) else type(e).__name__ for e in events]


def test_events_after_waking_equal_those_of_a_parser_that_never_slept():
    awake, sleepy = StreamParser(ParserLimits.post_auth()), StreamParser(ParserLimits.post_auth())
    first = awake.feed(HEADER)
    assert isinstance(first[0], StreamOpen)
    sleepy.feed(HEADER)
    expected = describe(events_of(awake, LATER, hibernate=False))
    got = describe(events_of(sleepy, LATER, hibernate=True))
    assert got == expected
    assert got[-1] == "StreamClose"
    assert b"xmlns='urn:extra'" in got[0]  # the header's prefix still resolves


def test_no_hibernation_while_a_stanza_is_in_flight():
    parser = StreamParser(ParserLimits.post_auth())
    parser.feed(HEADER)
    parser.feed(b"<message><body>half")
    assert not parser.hibernate()
    parser.feed(b"</body></message>")
    assert parser.hibernate()


def test_not_before_the_header():
    parser = StreamParser(ParserLimits.pre_auth())
    assert not parser.hibernate()


def test_limits_and_restrictions_hold_after_waking():
    parser = StreamParser(ParserLimits(10_000, 1024, 4, 64))
    parser.feed(HEADER)
    assert parser.hibernate()
    with pytest.raises(StreamError) as deep:
        parser.feed(b"<message><a><b><c><d/></c></b></a></message>")
    assert deep.value.condition == "policy-violation"
    parser = StreamParser(ParserLimits.post_auth())
    parser.feed(HEADER)
    assert parser.hibernate()
    with pytest.raises(StreamError) as restricted:
        parser.feed(b"<!-- hidden -->")
    assert restricted.value.condition == "restricted-xml"


def test_a_close_tag_that_does_not_match_the_header_is_not_well_formed():
    parser = StreamParser(ParserLimits.post_auth())
    parser.feed(HEADER)
    assert parser.hibernate()
    with pytest.raises(StreamError) as err:
        parser.feed(b"</other:stream>")
    assert err.value.condition == "not-well-formed"


def test_waking_twice_keeps_working():
    parser = StreamParser(ParserLimits.post_auth())
    parser.feed(HEADER)
    for _ in range(3):
        assert parser.hibernate()
        (event,) = parser.feed(b"<presence/>")
        assert isinstance(event, Stanza)
    assert parser.hibernate()
    assert isinstance(parser.feed(b"</stream:stream>")[-1], StreamClose)


def test_the_first_wakes_after_a_nap_parse_and_sleep_again_then_the_parser_stays_awake():
    parser = StreamParser(ParserLimits.post_auth())
    parser.feed(HEADER)
    assert parser.hibernate()
    for _ in range(DOZES):
        (event,) = parser.feed(b"<presence/>")
        assert isinstance(event, Stanza)
        assert parser._expat is None  # woken for one stanza: no parser held after it
    parser.feed(b"<presence/>")
    assert parser._expat is not None  # the stream keeps talking: it keeps its parser
    parser.feed(b"<presence/>")
    assert parser._expat is not None
    assert parser.hibernate()  # idle again: the next wakes doze off again
    parser.feed(b"<presence/>")
    assert parser._expat is None


def test_a_dozing_parser_stays_awake_while_a_stanza_is_unfinished():
    parser = StreamParser(ParserLimits.post_auth())
    parser.feed(HEADER)
    assert parser.hibernate()
    assert parser.feed(b"<message><body>half") == []
    assert parser._expat is not None
    (event,) = parser.feed(b"</body></message>")
    assert isinstance(event, Stanza) and event.element.findtext("{jabber:client}body") == "half"


def test_events_after_a_doze_equal_those_of_a_parser_that_never_slept():
    awake, dozing = StreamParser(ParserLimits.post_auth()), StreamParser(ParserLimits.post_auth())
    awake.feed(HEADER)
    dozing.feed(HEADER)
    assert dozing.hibernate()  # once: a doze, then woken again for the rest
    expected = describe(events_of(awake, LATER, hibernate=False))
    assert describe(events_of(dozing, LATER, hibernate=False)) == expected


async def test_an_idle_connection_sleeps_and_wakes_on_the_next_stanza(tmp_path, pki):
    from tests.support.xmpp import DOMAIN, RawClient, running_server

    async with running_server(tmp_path, pki, deadlines={"hibernate": 0.2}) as h:
        await h.add_user("alice")
        await h.add_user("bob")
        alice = await RawClient.connect(h.port(), pki.ca_file)
        await alice.login("alice")
        bob = await RawClient.connect(h.port(), pki.ca_file)
        await bob.login("bob")
        await bob.send("<presence/>")
        await asyncio.sleep(0.6)
        assert all(conn.stream._parser._expat is None for conn in h.server.connections)
        await alice.send(f"<message to='bob@{DOMAIN}'><body>after a nap</body></message>")
        assert b"after a nap" in await bob.read_until(rb"</message>")
        # one stanza after the nap: alice's stream is asleep again at once, not after 0.2 s
        assert all(conn.stream._parser._expat is None for conn in h.server.connections)
        alice.close()
        bob.close()


async def test_a_stream_busy_when_its_hibernate_deadline_passes_sleeps_once_it_is_done(
    tmp_path, pki
):
    """The deadline fires while the stream's worker awaits the store (a presence queued behind
    a burst): the parser is dropped after the work, not kept until the client's next read."""
    from tests.server.test_admin_process import wait_for
    from tests.support.hold import hold_call
    from tests.support.xmpp import RawClient, running_server

    async with running_server(tmp_path, pki, deadlines={"hibernate": 0.1}) as h:
        await h.add_user("alice")
        alice = await RawClient.connect(h.port(), pki.ca_file)
        await alice.login("alice")
        (conn,) = h.server.connections
        gate, entered = hold_call(h.server.storage, "get_roster")
        await alice.send("<presence/>")  # the parser is awake: login ended just now
        await entered.wait()
        await asyncio.sleep(0.3)  # the deadline passes (several times) while the store waits
        assert conn._worker is not None and conn.stream._parser._expat is not None
        gate.set()
        await wait_for(lambda: conn.stream._parser._expat is None, timeout=5)
        alice.close()

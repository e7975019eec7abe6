"""A parsed stanza keeps its content's bytes as they arrived (stanza.Received), and serialize()
writes them after a start tag made from its attributes as they are now, instead of writing its
children again; only while that is exactly what the element says, and only where the bytes
mean the same in any stream. Every case checks the result against the plain serializer's
reading of the same element."""

from __future__ import annotations

import copy

import pytest
from hypothesis import HealthCheck, given, settings
from vines_server.xmpp import ns
from vines_server.xmpp.parser import ParserLimits, StreamParser, parse_fragment
from vines_server.xmpp.stanza import Received, make, serialize

from tests.server.test_stanza import reparse, same, trees

HEADER = (
    "<?xml version='1.0'?><stream:stream to='vines.test' version='1.0' xmlns='jabber:client' "
    "xmlns:stream='http://etherx.jabber.org/streams'{extra}>"
)
CONTENT = "<body a=\"1\">hi &amp; &#x41;&apos;</body><x xmlns='urn:x'><y/></x></message>"
MESSAGE = f"<message to='bob@vines.test' type=\"chat\" from='bob@vines.test'>{CONTENT}"


def parsed(*chunks: str, extra: str = "") -> list[Received]:
    parser = StreamParser(ParserLimits.post_auth())
    parser.feed(HEADER.format(extra=extra).encode())
    return [e.element for chunk in chunks for e in parser.feed(chunk.encode())]


def as_plain(el) -> bytes:
    """What the element says, written by the plain serializer (a copy is a plain Element)."""
    return serialize(copy.deepcopy(el))


def same_tree(a: bytes, b: bytes) -> bool:
    """Both read back as the same element."""
    return as_plain(parse_fragment(a)) == as_plain(parse_fragment(b))


def test_the_content_goes_out_as_it_came_after_a_start_tag_with_the_stamped_from():
    (el,) = parsed(MESSAGE)
    el.set("from", "mallory@vines.test/r'<\"&")  # the server's stamp overwrites the claim
    out = serialize(el)
    assert out == (
        b"<message to='bob@vines.test' type='chat' "
        b"from='mallory@vines.test/r&apos;&lt;&quot;&amp;'>" + CONTENT.encode()
    )
    assert parse_fragment(out).get("from") == "mallory@vines.test/r'<\"&"
    assert same_tree(out, as_plain(el))


@pytest.mark.parametrize(
    "change",
    [
        lambda el: setattr(el[0], "text", "changed"),
        lambda el: el[0].set("a", "2"),
        lambda el: el.append(make(ns.q(ns.DELAY, "delay"), {"stamp": "2024-01-01T00:00:00Z"})),
        lambda el: el[1][0].append(make("{urn:x}z")),
        lambda el: setattr(el[1], "tail", " "),
        lambda el: setattr(el, "text", "x"),
        lambda el: el.remove(el[1]),
        lambda el: el.__setitem__(0, make(ns.q(ns.CLIENT, "body"), text="other")),
        lambda el: setattr(el, "tag", ns.q(ns.CLIENT, "iq")),
    ],
    ids=["text", "attr", "delay", "grandchild", "tail", "own-text", "removed", "replaced", "tag"],
)
def test_any_change_under_the_start_tag_writes_the_element_anew(change):
    (el,) = parsed(MESSAGE)
    change(el)
    assert el.content_as_parsed() is None
    assert serialize(el) == as_plain(el)


@pytest.mark.parametrize(
    ("stanza", "extra"),
    [
        # a prefix the stream header declared: the bytes alone would not say what it means
        ("<message to='b@vines.test'><foo:x/><body>1</body></message>", " xmlns:foo='urn:foo'"),
        ("<message to='b@vines.test'><x foo:a='1'/></message>", " xmlns:foo='urn:foo'"),
        # the stream prefix, used in the content (stored stanzas are read without it)
        ("<message to='b@vines.test'><x stream:a='1'/></message>", ""),
        # declarations on the start tag (written anew from the attributes, without them)
        ("<message xmlns='jabber:client' to='b@vines.test'><body>1</body></message>", ""),
        ("<message xmlns:p='urn:p' to='b@vines.test'><p:x/></message>", ""),
        # a prefixed stanza element
        ("<c:message xmlns:c='jabber:client' to='b@vines.test'><body/></c:message>", ""),
        ("<message to='b@vines.test'/>", ""),  # no content at all
    ],
    ids=["header-prefix", "header-prefix-attr", "stream-prefix", "xmlns", "start-prefix",
         "prefixed", "empty"],
)  # fmt: skip
def test_bytes_that_depend_on_where_they_came_from_are_not_kept(stanza: str, extra: str):
    (el,) = parsed(stanza, extra=extra)
    assert el.content_as_parsed() is None
    out = serialize(el)
    assert out == as_plain(el)
    assert as_plain(parse_fragment(out)) == out  # self-contained: it reads back alone


def test_a_stanza_cut_across_reads_is_written_anew_and_the_next_one_keeps_its_bytes():
    half = len(MESSAGE) // 2
    first, second = parsed(MESSAGE[:half], MESSAGE[half:] + MESSAGE)
    assert first.content_as_parsed() is None and serialize(first) == as_plain(first)
    assert second.content_as_parsed() == CONTENT.encode()


def test_several_stanzas_in_one_read_each_keep_their_bytes():
    # each finds its own start tag in the one chunk
    three = parsed(MESSAGE * 3, "<message to='b@vines.test'/>" + MESSAGE)
    kept = [el.content_as_parsed() for el in three]
    assert kept == [CONTENT.encode()] * 3 + [None, CONTENT.encode()]


def test_after_hibernation_the_offsets_still_find_the_stanza():
    parser = StreamParser(ParserLimits.post_auth())
    parser.feed(HEADER.format(extra="").encode())
    kept = []
    for _ in range(2):
        assert parser.hibernate()  # the woken parser is primed with a header of its own
        (event,) = parser.feed(MESSAGE.encode())
        kept.append(event.element.content_as_parsed())
    assert kept == [CONTENT.encode()] * 2


def test_a_copy_is_a_plain_element_and_stored_stanzas_keep_their_bytes_too():
    (el,) = parsed(MESSAGE)
    assert type(copy.deepcopy(el)) is not Received and type(copy.copy(el)) is not Received
    stored = serialize(el)
    again = parse_fragment(stored)  # as the offline store reads it back
    assert again.content_as_parsed() == CONTENT.encode() and serialize(again) == stored


def test_written_into_another_default_namespace_the_element_is_written_anew():
    (el,) = parsed(MESSAGE)
    assert serialize(el, ns.COMPONENT) == serialize(copy.deepcopy(el), ns.COMPONENT)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=trees())
def test_whatever_the_tree_its_kept_bytes_read_back_as_the_same_tree(tree):
    (el,) = parsed(serialize(tree).decode())
    el.set("from", "a@vines.test/r")  # stamped, as the server does
    tree.set("from", "a@vines.test/r")
    assert same(reparse(serialize(el)), tree)

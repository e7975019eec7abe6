"""Fuzzing the stream parser (security plan Z-01, Z-03): any chunking of a valid stream gives the
events of the whole input; arbitrary bytes raise nothing but StreamError; restricted XML is
always refused with restricted-xml, wherever it sits and however the bytes are cut."""

from __future__ import annotations

import itertools
import re
from xml.etree.ElementTree import Element

from hypothesis import strategies as st
from vines_server.xmpp.errors import STREAM_CONDITIONS, StreamError
from vines_server.xmpp.parser import ParserLimits, Stanza, StreamClose, StreamOpen, StreamParser

from tests.fuzz.budget import Target, ci_test
from tests.fuzz.xmltext import xml_text

POST = ParserLimits.post_auth()
HEADER = (
    b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
    b"xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0' xml:lang='en'>"
)


# Mostly the characters that matter to a tokenizer, plus any XML character.
text = xml_text("<>&'\"]]/ \t\r\n=;!?-x", max_size=16)
names = st.sampled_from(["message", "body", "x", "a", "b-c", "stream:stream", "q.1", "éé"])
namespaces = st.sampled_from([None, "urn:x", "jabber:x:data", "http://a/b?c=d&e"])


def _escape_text(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _escape_attr(s: str) -> str:
    return _escape_text(s).replace("'", "&apos;").replace('"', "&quot;")


@st.composite
def element_xml(draw: st.DrawFn, depth: int = 0) -> str:
    name = draw(names)
    if name == "stream:stream":  # a nested stream:stream is an ordinary child element
        name = "stream:stream" if depth else "message"
    attrs = draw(st.dictionaries(st.sampled_from(["id", "to", "type", "a", "xml:lang"]), text))
    parts = [f"<{name}"]
    uri = draw(namespaces)
    if uri is not None:
        parts.append(f" xmlns='{_escape_attr(uri)}'")
    for key, value in attrs.items():
        quote = draw(st.sampled_from("'\""))
        parts.append(f" {key}={quote}{_escape_attr(value)}{quote}")
    children = draw(st.integers(0, 2 if depth < 3 else 0))
    if not children and draw(st.booleans()):
        return "".join(parts) + "/>"
    parts.append(">")
    for _ in range(children):
        parts.append(_escape_text(draw(text)))
        if draw(st.integers(0, 5)) == 0:
            parts.append("<![CDATA[" + draw(text).replace("]]>", "]]") + "]]>")
        parts.append(draw(element_xml(depth + 1)))
    parts.append(_escape_text(draw(text)))
    parts.append(f"</{name}>")
    return "".join(parts)


@st.composite
def valid_stream(draw: st.DrawFn) -> tuple[bytes, int]:
    """(bytes of a header, stanzas and keepalives, maybe the close tag; number of stanzas)."""
    stanzas = draw(st.lists(element_xml(), max_size=4))
    body = "".join(draw(st.sampled_from(["", " ", "\n", "\r\n\t"])) + s for s in stanzas)
    close = draw(st.sampled_from(["", "</stream:stream>"]))
    return HEADER + (body + close).encode(), len(stanzas)


@st.composite
def cuts(draw: st.DrawFn, data: bytes) -> list[bytes]:
    """`data` cut at random offsets, sometimes one byte at a time."""
    if draw(st.integers(0, 9)) == 0:
        return [data[i : i + 1] for i in range(len(data))]
    offsets = sorted(draw(st.sets(st.integers(0, len(data)), max_size=20)))
    edges = [0, *offsets, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges) if b > a]


def canonical(el: Element) -> tuple:
    return (el.tag, sorted(el.attrib.items()), el.text, el.tail, [canonical(c) for c in el])


def canonical_events(events: list) -> list:
    out = []
    for e in events:
        if isinstance(e, Stanza):
            out.append(("stanza", canonical(e.element)))
        else:
            assert isinstance(e, StreamOpen | StreamClose), e
            out.append((type(e).__name__, e))
    return out


def feed_all(chunks: list[bytes], limits: ParserLimits = POST) -> list:
    p = StreamParser(limits)
    events = []
    for chunk in chunks:
        events += p.feed(chunk)
    return events


@st.composite
def chunked_stream(draw: st.DrawFn) -> tuple[bytes, int, list[bytes]]:
    data, count = draw(valid_stream())
    return data, count, draw(cuts(data))


def check_chunking(case: tuple[bytes, int, list[bytes]]) -> None:
    data, count, chunks = case
    whole = canonical_events(feed_all([data]))
    assert sum(1 for e in whole if e[0] == "stanza") == count, whole
    assert canonical_events(feed_all(chunks)) == whole


@st.composite
def hostile_bytes(draw: st.DrawFn) -> list[bytes]:
    """Random bytes, or a valid stream with random bytes spliced, flipped or cut off."""
    if draw(st.booleans()):
        data = draw(st.binary(max_size=600))
        if draw(st.booleans()):
            data = HEADER + data
    else:
        data = bytearray(draw(valid_stream())[0])
        for _ in range(draw(st.integers(1, 6))):
            at = draw(st.integers(0, len(data)))
            junk = draw(st.one_of(st.binary(max_size=8), st.sampled_from(TOKENS)))
            if draw(st.booleans()) and at < len(data):
                data[at : at + len(junk)] = junk
            else:
                data[at:at] = junk
        data = bytes(data)
    return draw(cuts(data))


TOKENS = [
    b"<",
    b">",
    b"</",
    b"/>",
    b"&",
    b"&#0;",
    b"&#xD800;",
    b"<!--",
    b"<!DOCTYPE s>",
    b"<?pi?>",
    b"<![CDATA[",
    b"]]>",
    b"\xc0\xaf",
    b"\xed\xa0\x80",
    b"\xff\xfe",
    b"\x00",
    b"xmlns:a='}'",
    b"}",
    b"</stream:stream>",
    b"<stream:stream>",
]


def check_only_stream_errors(chunks: list[bytes]) -> None:
    p = StreamParser(ParserLimits.pre_auth() if len(chunks) % 2 else POST)
    try:
        for chunk in chunks:
            p.feed(chunk)
    except StreamError as err:
        assert err.condition in STREAM_CONDITIONS
        try:  # errors are sticky: the dead parser raises the same error again
            p.feed(b"<x/>")
        except StreamError as again:
            assert again is err
        else:
            raise AssertionError("a failed parser accepted more input") from None


RESTRICTED = [
    b"<!-- c -->",
    b"<!---->",
    b"<?pi x?>",
    b"<?xml version='1.0'?>",
    b"<!DOCTYPE s>",
    b"<!DOCTYPE s [<!ENTITY a 'b'>]>",
    b"<!ENTITY x SYSTEM 'file:///etc/passwd'>",
    b"<!ELEMENT a ANY>",
    b"&undefined;",
    b"&lol;",
]


@st.composite
def stream_with_restricted(draw: st.DrawFn) -> list[bytes]:
    """A valid stream with a restricted construct between two tags (inside a stanza, between
    stanzas, or before the stream header), cut at random."""
    stanzas = draw(st.lists(element_xml(), min_size=1, max_size=4))
    token = draw(st.sampled_from(RESTRICTED))
    host = draw(st.integers(0, len(stanzas) - 1))
    text = stanzas[host].encode()
    # a tag boundary inside the chosen stanza: after any '>' but the last, except inside a
    # CDATA section (the only place a raw '>' is text; there a comment is text too)
    cdata = [m.span() for m in re.finditer(rb"<!\[CDATA\[.*?\]\]>", text, re.S)]
    boundaries = [
        i + 1
        for i, b in enumerate(text[:-1])
        if b == ord(">") and not any(a <= i < z - 1 for a, z in cdata)
    ]
    where = draw(st.sampled_from(["inside", "between", "prolog"] if boundaries else ["between"]))
    if where == "prolog" and not token.startswith(b"&"):  # before the stream header
        decl = len(b"<?xml version='1.0'?>")
        return draw(cuts(HEADER[:decl] + token + HEADER[decl:] + "".join(stanzas).encode()))
    if where == "inside":  # after a tag of the stanza: between elements, or in text
        at = draw(st.sampled_from(boundaries))
        stanzas[host] = (text[:at] + token + text[at:]).decode()
    else:
        if token.startswith(b"&"):  # at stream level an entity is text: wrap it in a stanza
            token = b"<message>" + token + b"</message>"
        stanzas.insert(host, token.decode())
    data = HEADER + "".join(stanzas).encode()
    return draw(cuts(data))


def check_restricted_refused(chunks: list[bytes]) -> None:
    p = StreamParser(POST)
    try:
        for chunk in chunks:
            p.feed(chunk)
    except StreamError as err:
        assert err.condition == "restricted-xml", (err, b"".join(chunks))
    else:
        raise AssertionError(f"restricted XML accepted: {b''.join(chunks)!r}")


TARGETS = [
    Target("parser-chunking", chunked_stream(), check_chunking),
    Target("parser-hostile-bytes", hostile_bytes(), check_only_stream_errors, examples=200),
    Target("parser-restricted", stream_with_restricted(), check_restricted_refused, examples=60),
]
test_parser_chunking, test_parser_hostile_bytes, test_parser_restricted = map(ci_test, TARGETS)

"""The sans-I/O stream parser: events, restricted XML, limits (security plan 5.1, X-01..X-16)."""

from __future__ import annotations

import random
import time
import tracemalloc

import pytest
from vines_server.xmpp import ns
from vines_server.xmpp.errors import StreamError
from vines_server.xmpp.parser import (
    HEADER_NAMESPACE_CHARS,
    NAMES_PER_BYTE,
    ParserLimits,
    Stanza,
    StreamClose,
    StreamOpen,
    StreamParser,
    parse_fragment,
)

PRE = ParserLimits.pre_auth()
POST = ParserLimits.post_auth()
HEADER = (
    b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
    b"xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0' xml:lang='en'>"
)
C = "{jabber:client}"


def opened(limits: ParserLimits = POST) -> StreamParser:
    p = StreamParser(limits)
    assert len(p.feed(HEADER)) == 1
    return p


def stanzas(events: list) -> list:
    return [e.element for e in events if isinstance(e, Stanza)]


def error_of(p: StreamParser, *chunks: bytes) -> StreamError:
    """Feed chunks until the parser raises; assert that no stanza got out before it."""
    delivered = []
    with pytest.raises(StreamError) as info:
        for chunk in chunks:
            delivered += stanzas(p.feed(chunk))
    assert delivered == [], "nothing of the offending stanza may be delivered"
    return info.value


def trickle(p: StreamParser, data: bytes) -> list:
    events = []
    for i in range(len(data)):
        events += p.feed(data[i : i + 1])
    return events


# ---- events ---------------------------------------------------------------------------------


def test_stream_open_event() -> None:
    p = StreamParser(PRE)
    [ev] = p.feed(HEADER)
    assert ev == StreamOpen(
        tag=f"{{{ns.STREAM}}}stream",
        attrs={"to": "localhost", "version": "1.0", f"{{{ns.XML}}}lang": "en"},
        default_ns=ns.CLIENT,
    )


def test_stanzas_keepalives_and_close() -> None:
    p = opened()
    events = p.feed(b" \n<message to='a@b' id='1'><body>hi <b>x</b> tail</body></message>\t ")
    [msg] = stanzas(events)
    assert msg.tag == C + "message"
    assert msg.attrib == {"to": "a@b", "id": "1"}
    body = msg.find(C + "body")
    assert body is not None and body.text == "hi " and body[0].text == "x"
    assert body[0].tail == " tail"
    assert p.feed(b"   ") == []  # whitespace keepalive


def test_close_event_and_empty_stanza() -> None:
    p = opened()
    events = p.feed(b"<presence/></stream:stream>")
    assert [type(e) for e in events] == [Stanza, StreamClose]
    assert events[0].element.tag == C + "presence"


def header_binding(uri: str) -> bytes:
    return HEADER.replace(b" to=", b" xmlns:p='" + uri.encode() + b"' to=")


def test_a_short_prefix_binding_on_the_header_applies_to_stanzas() -> None:
    p = StreamParser(POST)
    assert len(p.feed(header_binding("urn:example:x"))) == 1
    [el] = stanzas(p.feed(b"<message><p:x/></message>"))
    assert el[0].tag == "{urn:example:x}x"


def test_a_long_prefix_binding_on_the_header_is_refused() -> None:
    """Every stanza using a header prefix carries its namespace name when routed: a 7 KB one
    turned a 53-byte message into 7 KB for each recipient."""
    room = HEADER_NAMESPACE_CHARS - len(ns.STREAM)
    assert len(StreamParser(POST).feed(header_binding("u" * room))) == 1  # at the limit
    err = error_of(StreamParser(POST), header_binding("u" * (room + 1)))
    assert err.condition == "policy-violation"
    err = error_of(StreamParser(POST), header_binding("urn:long:" + "u" * 7000))
    assert err.condition == "policy-violation" and "stream header" in (err.text or "")


def test_namespaces_in_clark_notation() -> None:
    p = opened()
    [iq] = stanzas(
        p.feed(b"<iq type='get' xmlns:x='urn:x' x:a='1'><query xmlns='urn:q'><i/></query></iq>")
    )
    assert iq.get("{urn:x}a") == "1"
    assert iq[0].tag == "{urn:q}query" and iq[0][0].tag == "{urn:q}i"


def test_predefined_entities_and_char_refs_decode() -> None:  # X-03 positive control
    p = opened()
    [m] = stanzas(
        p.feed(
            b"<message a='&quot;&apos;'><body>&lt;&gt;&amp;&apos;&quot;&#x41;&#66;</body></message>"
        )
    )
    assert m[0].text == "<>&'\"AB"
    assert m.get("a") == "\"'"


def test_cdata_section_is_text_even_split_across_reads() -> None:
    p = opened()
    data = b"<message><body>a<![CDATA[<x> ]] ] > ']]>b</body></message>"
    events = trickle(p, data)
    [m] = stanzas(events)
    assert m[0].text == "a<x> ]] ] > 'b"


def test_nested_stream_stream_is_just_a_child() -> None:
    p = opened()
    events = p.feed(b"<message><stream:stream><x/></stream:stream></message>")
    assert [type(e) for e in events] == [Stanza]
    assert events[0].element[0].tag == f"{{{ns.STREAM}}}stream"
    assert p.feed(b"<presence/>")  # the stream goes on


# ---- restricted XML (X-01..X-03) ------------------------------------------------------------

LAUGHS = (
    b"<?xml version='1.0'?><!DOCTYPE s [<!ENTITY a 'aaaaaaaaaa'>"
    + b"".join(
        b"<!ENTITY %c '%s'>" % (c, (b"&" + bytes([c - 1]) + b";") * 10) for c in range(98, 108)
    )
    + b"]><s>&k;</s>"
)


def test_billion_laughs_before_header() -> None:
    t = time.process_time()
    assert error_of(StreamParser(PRE), LAUGHS).condition == "restricted-xml"
    assert time.process_time() - t < 0.05


def test_billion_laughs_inside_stanza_post_auth() -> None:
    p = opened()
    assert error_of(p, b"<message>" + LAUGHS[21:]).condition == "restricted-xml"


def test_doctype_aborts_before_internal_subset() -> None:
    # Rejected at '<!D', before any entity could be declared or expanded.
    assert error_of(StreamParser(PRE), b"<!D").condition == "restricted-xml"


@pytest.mark.parametrize(
    "data",
    [
        b"<!DOCTYPE s SYSTEM 'http://127.0.0.1:1/x.dtd'><s/>",
        b"<!DOCTYPE s [<!ENTITY x SYSTEM 'file:///etc/passwd'>]><s>&x;</s>",
        b"<!ENTITY x SYSTEM 'file:///etc/passwd'>",
    ],
)
def test_external_dtd_and_entities(data: bytes) -> None:
    assert error_of(StreamParser(PRE), data).condition == "restricted-xml"


@pytest.mark.parametrize(
    "data",
    [
        b"<!-- x -->",
        b"<message><!-- x --></message>",
        b"<?foo bar?>",
        b"<message><?foo bar?></message>",
        b"<?xml version='1.0'?>",
        b"<message><body>&foo;</body></message>",
        b"<message a='&foo;'/>",
    ],
)
def test_comment_pi_misplaced_decl_undefined_entity(data: bytes) -> None:
    assert error_of(opened(), data).condition == "restricted-xml"
    # Byte by byte, too: the scanner and Expat must agree.
    assert error_of(opened(), *[data[i : i + 1] for i in range(len(data))]).condition == (
        "restricted-xml"
    )


def test_comment_and_pi_before_header() -> None:
    assert error_of(StreamParser(PRE), b"<!-- x -->" + HEADER).condition == "restricted-xml"
    assert error_of(StreamParser(PRE), b" <?xml version='1.0'?>").condition == "restricted-xml"


def test_xml_declaration_after_utf8_bom_is_fine() -> None:
    p = StreamParser(PRE)
    assert isinstance(p.feed(b"\xef\xbb\xbf" + HEADER)[0], StreamOpen)
    events = trickle(StreamParser(PRE), b"\xef\xbb\xbf" + HEADER)
    assert isinstance(events[0], StreamOpen)


# ---- size limits (X-04, X-05, X-14) ---------------------------------------------------------


def message_of_size(size: int) -> bytes:
    head, tail = b"<message to='a@b'><body>", b"</body></message>"
    return head + b"x" * (size - len(head) - len(tail)) + tail


@pytest.mark.parametrize("read", [None, 1460, 4096])
def test_stanza_at_limit_is_accepted(read: int | None) -> None:  # X-04 boundary
    p = opened()
    data = message_of_size(POST.stanza_size)
    chunks = [data] if read is None else [data[i : i + read] for i in range(0, len(data), read)]
    events = []
    for chunk in chunks:
        events += p.feed(chunk)
    assert len(stanzas(events)) == 1
    assert not p.partial


@pytest.mark.parametrize("read", [None, 4096])
def test_stanza_over_limit_is_refused(read: int | None) -> None:
    p = opened()
    data = message_of_size(POST.stanza_size + 1)
    chunks = [data] if read is None else [data[i : i + read] for i in range(0, len(data), read)]
    err = error_of(p, *chunks)
    assert err.condition == "policy-violation"
    assert err.app == (ns.XMPP_ERRORS, "stanza-too-big")


def test_oversize_is_caught_before_the_end_of_the_stanza() -> None:
    # The bytes held back count: the error comes at limit + 1 byte, not at '</message>'.
    p = opened(PRE)
    p.feed(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>")
    p.feed(b"A" * (PRE.stanza_size - 48))
    with pytest.raises(StreamError) as info:
        p.feed(b"A" * 100)
    assert info.value.app == (ns.XMPP_ERRORS, "stanza-too-big")


def test_many_small_stanzas_in_one_read_are_not_one_big_one() -> None:
    p = opened(PRE)
    data = b"<presence/>" * 2000  # 22 KB in one read, each stanza tiny
    assert len(stanzas(p.feed(data))) == 2000


def header_of_size(size: int) -> bytes:
    pad = size - len(HEADER) - len(b" x=''")
    return HEADER[:-1] + b" x='" + b"p" * pad + b"'>"


def test_header_at_preauth_limit_is_accepted() -> None:  # X-05 boundary
    p = StreamParser(PRE)
    assert isinstance(p.feed(header_of_size(PRE.stanza_size))[0], StreamOpen)
    assert stanzas(p.feed(message_of_size(PRE.stanza_size)))


def test_header_over_preauth_limit() -> None:
    err = error_of(StreamParser(PRE), header_of_size(PRE.stanza_size + 1))
    assert (err.condition, err.app) == ("policy-violation", (ns.XMPP_ERRORS, "stanza-too-big"))


def test_preauth_stanza_over_limit_and_switch_to_post_auth() -> None:
    assert error_of(opened(PRE), message_of_size(PRE.stanza_size + 1)).condition == (
        "policy-violation"
    )
    p = opened(PRE)
    p.limits = POST
    assert stanzas(p.feed(message_of_size(PRE.stanza_size + 1)))


def test_huge_attribute() -> None:
    big = b"<message a='" + b"v" * 200 * 1024 + b"'/>"
    assert stanzas(opened(POST).feed(big))
    assert error_of(opened(PRE), big).app == (ns.XMPP_ERRORS, "stanza-too-big")


# ---- element, depth and attribute limits (X-06, X-07, X-14) ---------------------------------


def with_children(n: int) -> bytes:
    return b"<message>" + b"<a/>" * (n - 1) + b"</message>"


@pytest.mark.parametrize("limits", [PRE, POST])
def test_element_cap(limits: ParserLimits) -> None:
    assert stanzas(opened(limits).feed(with_children(limits.elements)))
    assert error_of(opened(limits), with_children(limits.elements + 1)).condition == (
        "policy-violation"
    )


def test_element_amplification_200k() -> None:
    assert error_of(opened(), with_children(50_000)).condition == "policy-violation"


def nested(depth: int) -> bytes:
    return b"<message>" + b"<a>" * (depth - 1) + b"</a>" * (depth - 1) + b"</message>"


def test_depth_cap() -> None:
    [m] = stanzas(opened().feed(nested(POST.depth)))
    assert m.tag == C + "message"
    assert error_of(opened(), nested(POST.depth + 1)).condition == "policy-violation"


@pytest.mark.parametrize(("limits", "depth"), [(POST, 10_000), (PRE, 1200)])
def test_deep_nesting_never_recurses(limits: ParserLimits, depth: int) -> None:
    err = error_of(opened(limits), nested(depth))
    assert err.condition == "policy-violation"


def with_attrs(n: int) -> bytes:
    return b"<message " + b" ".join(b"a%d='1'" % i for i in range(n)) + b"/>"


def test_attribute_cap() -> None:
    assert stanzas(opened().feed(with_attrs(POST.attributes)))
    assert error_of(opened(), with_attrs(POST.attributes + 1)).condition == "policy-violation"
    assert error_of(opened(), with_attrs(10_000)).condition == "policy-violation"


# Each parsed name holds its whole namespace name: `<p:x/>` in a 200 KB namespace is 200 KB.
SMALL = ParserLimits(10_000, 1024, 64, 64)  # names: up to 40 000 characters
KB_NS = "urn:long:" + "u" * 991  # 1 000 characters; each child's name is 1 002


def with_named_children(n: int) -> bytes:
    return f"<message xmlns:p='{KB_NS}'>".encode() + b"<p:x/>" * n + b"</message>"


def test_names_count_against_the_stanza_size() -> None:
    assert SMALL.name_chars == NAMES_PER_BYTE * SMALL.stanza_size == 40_000
    assert len(stanzas(opened(SMALL).feed(with_named_children(39)))) == 1  # 39 099 characters
    err = error_of(opened(SMALL), with_named_children(40))  # 40 101, in 2 KB on the wire
    assert (err.condition, err.app) == ("policy-violation", (ns.XMPP_ERRORS, "stanza-too-big"))
    attrs = " ".join(f"p:a{i}='1'" for i in range(40))
    err = error_of(opened(SMALL), f"<message xmlns:p='{KB_NS}' {attrs}/>".encode())
    assert err.app == (ns.XMPP_ERRORS, "stanza-too-big")


def test_a_long_namespace_on_many_children_is_refused_before_it_takes_memory() -> None:
    # 206 KB on the wire, 200 MB of names as parsed: refused at the first child past the bound.
    long_ns = "urn:long:" + "u" * 200_000
    data = f"<message xmlns:p='{long_ns}'>".encode() + b"<p:x/>" * 1000 + b"</message>"
    assert len(data) < POST.stanza_size
    tracemalloc.start()
    try:
        err = error_of(opened(), data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert err.app == (ns.XMPP_ERRORS, "stanza-too-big")
    assert peak < 8 * POST.stanza_size * NAMES_PER_BYTE, peak


def test_names_of_past_stanzas_are_not_kept() -> None:
    # Expat's intern dict kept every distinct name for the stream's life: 100 stanzas in fresh
    # 50 KB namespaces held 20 MB.
    p = opened()
    p.feed(b"<presence/>")
    tracemalloc.start()
    try:
        for i in range(100):
            uri = f"urn:{i}:" + "x" * 50_000
            assert len(stanzas(p.feed(f"<message xmlns:p='{uri}'><p:x/></message>".encode())))
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert held < 1_000_000, held


@pytest.mark.parametrize(
    "data",
    [b"<message a='1' a='2'/>", b"<message xmlns:x='u' xmlns:y='u' x:a='1' y:a='2'/>"],
)
def test_duplicate_attributes(data: bytes) -> None:
    assert error_of(opened(), data).condition == "not-well-formed"


# ---- encodings and malformed input (X-08, X-09, X-15, X-16) ---------------------------------

BAD_UTF8 = [b"\xc0\xaf", b"\x80", b"\xed\xa0\x80", b"\xe2\x82"]


@pytest.mark.parametrize("bad", BAD_UTF8)
@pytest.mark.parametrize(
    "template",
    [
        b"<message><body>x%sy</body></message>",
        b"<message a='x%sy'/>",
        b"<message><b%sx/></message>",
        b"<message><body>x%s</body></message>",  # truncated sequence at the end
    ],
)
def test_invalid_utf8(bad: bytes, template: bytes) -> None:
    assert error_of(opened(), template % bad).condition == "not-well-formed"


@pytest.mark.parametrize(
    "data",
    [
        b"<?xml version='1.0' encoding='ISO-8859-1'?>" + HEADER[21:],
        "\ufeff<stream:stream xmlns='jabber:client'>".encode("utf-16-le"),
        "\ufeff<stream:stream xmlns='jabber:client'>".encode("utf-16-be"),
        "<stream:stream xmlns='jabber:client'>".encode("utf-16-le"),
    ],
)
def test_other_encodings(data: bytes) -> None:
    assert error_of(StreamParser(PRE), data).condition == "unsupported-encoding"
    assert error_of(StreamParser(PRE), *[data[i : i + 1] for i in range(len(data))]).condition == (
        "unsupported-encoding"
    )


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS ClientHello
        b"<a><b></a>",
    ],
)
def test_garbage(data: bytes) -> None:
    assert error_of(StreamParser(PRE), data).condition == "not-well-formed"


@pytest.mark.parametrize("text", [b"hello", b"\xc2\xa0"])  # NBSP is not XML whitespace
def test_text_at_stream_level(text: bytes) -> None:
    assert error_of(opened(), b"<presence/>" + text).condition == "not-well-formed"


@pytest.mark.parametrize(
    "data",
    [
        b"<message xmlns='jabber:client}evil'/>",
        b"<message xmlns:x='urn:x}y' x:a='1'/>",
        b"<x:message/>",  # unbound prefix
    ],
)
def test_namespace_separator_smuggling(data: bytes) -> None:
    assert error_of(opened(), data).condition == "not-well-formed"


def test_random_input_only_ever_raises_stream_error() -> None:  # X-15 and a small fuzz
    rng = random.Random(5222)
    seed = (
        HEADER
        + b"<message to='a@b'><body>hi &amp; <![CDATA[x]]></body><x xmlns='u' a=\"1\"/></message>"
    )
    for _ in range(3000):
        data = bytearray(seed)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.choice(b"<>/'\"&;!?[]-= \x00\xff}x")
        p = StreamParser(PRE)
        step = rng.choice([1, 3, 7, len(data)])
        try:
            for i in range(0, len(data), step):
                p.feed(bytes(data[i : i + step]))
        except StreamError:
            continue
    p = StreamParser(PRE)
    with pytest.raises(StreamError):
        p.feed(rng.randbytes(64 * 1024))


def test_errors_are_sticky() -> None:
    p = opened()
    with pytest.raises(StreamError):
        p.feed(b"<!-- -->")
    with pytest.raises(StreamError):
        p.feed(b"<presence/>")


# ---- trickle, delivery, partial, reset -----------------------------------------------


def test_trickled_250k_attribute_costs_little_cpu() -> None:  # X-13, CVE-2023-52425
    p = opened()
    head = b"<message a='"
    p.feed(head)
    t = time.process_time()
    for _ in range(250 * 1024):
        assert p.feed(b"x") == []
        assert p.partial
    [m] = stanzas(p.feed(b"'/>"))  # delivered on the read that completes it
    cpu = time.process_time() - t
    print(f"\n250 KiB attribute trickled 1 byte per feed: {cpu:.3f} s CPU")
    assert len(m.get("a")) == 250 * 1024
    assert cpu < 1.0  # unmitigated Expat 2.5: ~18 s (security plan 1.12)
    # And past the limit the same trickle ends in policy-violation.
    with pytest.raises(StreamError) as info:
        p.feed(head)
        for _ in range(POST.stanza_size):
            p.feed(b"x")
    assert info.value.app == (ns.XMPP_ERRORS, "stanza-too-big")


def test_small_stanza_trickled_is_delivered_on_its_last_byte() -> None:
    p = opened()
    data = b"<message to='a@b' id='x'><body>hello &amp; bye</body><x xmlns='u' a='>'/></message>"
    for i in range(len(data) - 1):
        assert p.feed(data[i : i + 1]) == []
        assert p.partial
    assert len(stanzas(p.feed(data[-1:]))) == 1
    assert not p.partial


def test_big_start_tag_in_segments_is_delivered_on_the_last_segment() -> None:
    # Holding bytes back must never strand a complete stanza.
    p = opened()
    data = b"<message a='" + b"v" * 10_000 + b"'><body>x</body></message>"
    segments = [data[i : i + 1460] for i in range(0, len(data), 1460)]
    for seg in segments[:-1]:
        assert p.feed(seg) == []
    assert len(stanzas(p.feed(segments[-1]))) == 1


def test_partial_flag() -> None:
    p = StreamParser(PRE)
    assert not p.partial
    p.feed(HEADER[:10])
    assert p.partial  # a header in progress
    p.feed(HEADER[10:])
    assert not p.partial
    p.feed(b"  ")
    assert not p.partial  # keepalives are not a stanza
    p.feed(b"<mess")
    assert p.partial


def test_reset_discards_everything() -> None:
    p = opened(PRE)
    p.feed(b"<message><body>half")
    p.reset()
    assert not p.partial
    [ev] = p.feed(HEADER)  # a new XML declaration is fine at the start of the new stream
    assert isinstance(ev, StreamOpen)
    assert stanzas(p.feed(b"<presence/>"))


def test_parse_fragment() -> None:
    el = parse_fragment("<presence type='subscribe'><x xmlns='u'>a</x></presence>")
    assert el.tag == C + "presence" and el[0].tag == "{u}x"
    with pytest.raises(StreamError):
        parse_fragment("<a/><b/>")
    with pytest.raises(StreamError):
        parse_fragment("<a><!-- x --></a>")


STANZAS = [
    b"<presence/>",
    b"<message to='a@b' id='1'><body>hi &amp; bye &#x41;</body></message>",
    b"<iq type='get' id=\"q\"><query xmlns='urn:q' a='x/&gt;' b='>/'/></iq>",
    b"<message><body><![CDATA[ <not a tag/> ]] ]]></body></message>",
    b"<message a='" + b"v" * 3000 + b"'><b>" + b"t" * 3000 + b"</b></message>",
    b"<message><a><b><c/>x</b>y</a>z</message>",
    b"<message xml:lang='de'><stream:stream/></message>",
]


def test_any_chunking_delivers_each_stanza_on_its_last_byte() -> None:
    # The held-back bytes must never strand a complete stanza, however the bytes are cut.
    rng = random.Random(6120)
    for _ in range(200):
        chosen = [rng.choice(STANZAS) for _ in range(8)]
        ends, offset = [], 0
        for s in chosen:
            offset += len(s) + 1
            ends.append(offset)
        data = b"".join(s + b" " for s in chosen)
        p = opened()
        fed, got = 0, 0
        while fed < len(data):
            n = rng.choice([1, 1, 2, 5, 17, 300, 1460, 5000])
            got += len(stanzas(p.feed(data[fed : fed + n])))
            fed = min(fed + n, len(data))
            # every stanza whose last byte ('>', before its separating space) has arrived
            assert got == sum(1 for end in ends if end - 1 <= fed)
        assert not p.partial


@pytest.mark.parametrize("step", [1, 4096])
def test_memory_per_input_byte_is_bounded(step: int) -> None:  # report the ratio
    p = opened()
    size = 200 * 1024
    data = b"<message><body>" + b"y" * size + b"</body>" + b"<a/>" * 1000 + b"</message>"
    tracemalloc.start()
    try:
        for i in range(0, len(data), step):
            p.feed(data[i : i + step])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(f"\npeak memory per input byte (reads of {step}): {peak / len(data):.2f}")
    assert peak < 10 * len(data)

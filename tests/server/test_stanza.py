"""Serialization (round trip through our parser), stream framing and error replies."""

from __future__ import annotations

import random
import re
from xml.etree.ElementTree import Element

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vines_server.xmpp import ns
from vines_server.xmpp import stanza as stanza_module
from vines_server.xmpp.errors import StanzaError, StreamError
from vines_server.xmpp.parser import (
    ParserLimits,
    Stanza,
    StreamOpen,
    StreamParser,
    parse_fragment,
)
from vines_server.xmpp.stanza import (
    STREAM_CLOSE,
    Prewritten,
    error_reply,
    make,
    serialize,
    stream_error,
    stream_header,
    tag_name,
)

C = "{jabber:client}"
XML_LANG = f"{{{ns.XML}}}lang"


def reparse(data: bytes, default_ns: str = ns.CLIENT) -> Element:
    p = StreamParser(ParserLimits.post_auth())
    p.feed(stream_header(from_="x", to=None, id_="1", default_ns=default_ns))
    [ev] = p.feed(data)
    assert isinstance(ev, Stanza)
    return ev.element


def same(a: Element, b: Element) -> bool:
    """Iterative tree equality (tag, attributes, text, tail)."""
    todo = [(a, b, True)]
    while todo:
        x, y, top = todo.pop()
        if (x.tag, x.attrib, x.text or "") != (y.tag, y.attrib, y.text or ""):
            return False
        if not top and (x.tail or "") != (y.tail or ""):
            return False
        if len(x) != len(y):
            return False
        todo.extend((cx, cy, False) for cx, cy in zip(x, y, strict=True))
    return True


def test_compact_output_with_default_namespace() -> None:
    msg = make(
        C + "message",
        {"to": "a@b", XML_LANG: "en"},
        children=[make(C + "body", text="1 < 2 & 3 > 2"), make("{urn:x}x", {"a": "'\"<&>"})],
    )
    assert serialize(msg) == (
        b"<message to='a@b' xml:lang='en'><body>1 &lt; 2 &amp; 3 &gt; 2</body>"
        b"<x xmlns='urn:x' a='&apos;&quot;&lt;&amp;&gt;'/></message>"
    )


def test_namespace_only_declared_where_it_changes() -> None:
    q = make("{urn:q}query", children=[make("{urn:q}item"), make(C + "back")])
    iq = make(C + "iq", {"type": "result"}, children=[q])
    assert serialize(iq) == (
        b"<iq type='result'><query xmlns='urn:q'><item/><back xmlns='jabber:client'/></query></iq>"
    )
    assert serialize(iq, default_ns=ns.SERVER) == (
        b"<iq xmlns='jabber:client' type='result'><query xmlns='urn:q'><item/>"
        b"<back xmlns='jabber:client'/></query></iq>"
    )


def test_namespaced_attributes_get_a_prefix() -> None:
    el = make(C + "message", {"{urn:a}x": "1", "{urn:a}y": "2", "{urn:b}z": "3"})
    out = serialize(el)
    assert reparse(out).attrib == el.attrib


def test_no_namespace_child_inside_default_namespace() -> None:
    el = make(C + "message", children=[make("plain")])
    assert serialize(el) == b"<message><plain xmlns=''/></message>"
    assert same(reparse(serialize(el)), el)


def test_top_level_tail_is_not_written() -> None:
    el = make(C + "presence")
    el.tail = "junk"
    assert serialize(el) == b"<presence/>"


def random_tree(rng: random.Random) -> Element:
    namespaces = [ns.CLIENT, "urn:x", "urn:y", "", ns.XMPP_ERRORS]
    texts = ["", "plain", "a & b < c > d", "quotes ' \"", "é 日本 \U0001f600", " \n\t ", "]]>"]
    root = make(C + rng.choice(["message", "iq", "presence"]), {"id": "r"})
    nodes = [root]
    for _ in range(rng.randint(0, 30)):
        parent = rng.choice(nodes)
        uri = rng.choice(namespaces)
        tag = ("{" + uri + "}" if uri else "") + rng.choice(["a", "b", "stream", "body"])
        attrs = {}
        for _ in range(rng.randint(0, 3)):
            key = rng.choice(["k", "{urn:attr}k", XML_LANG, "v"])
            attrs[key] = rng.choice(texts) + "\r\n\t"
        child = make(tag, attrs, rng.choice([None, *texts]) or None)
        child.tail = rng.choice([None, *texts]) or None
        parent.append(child)
        nodes.append(child)
    return root


def test_round_trip_property() -> None:
    rng = random.Random(7622)
    for _ in range(500):
        tree = random_tree(rng)
        assert same(reparse(serialize(tree)), tree), serialize(tree)


def test_round_trip_at_depth_cap_and_deep_trees_do_not_recurse() -> None:
    root = make(C + "message")
    node = root
    for _ in range(63):
        node.append(make("{urn:x}a"))
        node = node[0]
    assert same(reparse(serialize(root)), root)  # depth 64: still routable
    for _ in range(5000):
        node.append(make("{urn:x}a"))
        node = node[0]
    assert serialize(root).count(b"<a") == 5063  # no RecursionError


def test_stream_header_and_close() -> None:
    header = stream_header(from_="example.com", to="u@example.com", id_="s1", default_ns=ns.CLIENT)
    assert header.startswith(b"<?xml version='1.0'?><stream:stream ")
    p = StreamParser(ParserLimits.pre_auth())
    [ev] = p.feed(header)
    assert ev == StreamOpen(
        f"{{{ns.STREAM}}}stream",
        {
            "from": "example.com",
            "to": "u@example.com",
            "id": "s1",
            "version": "1.0",
            XML_LANG: "en",
        },
        ns.CLIENT,
    )
    assert STREAM_CLOSE == b"</stream:stream>"
    bare = stream_header(from_=None, to=None, id_=None, default_ns=ns.SERVER)
    assert b"from=" not in bare and b"id=" not in bare and b"xmlns='jabber:server'" in bare


def test_stream_error_bytes() -> None:
    err = StreamError("policy-violation", "too big", app=(ns.XMPP_ERRORS, "stanza-too-big"))
    assert stream_error(err) == (
        b"<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
        b"<text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>too big</text>"
        b"<stanza-too-big xmlns='urn:xmpp:errors'/></stream:error>"
    )
    assert stream_error(StreamError("restricted-xml")) == (
        b"<stream:error><restricted-xml xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
        b"</stream:error>"
    )
    # It parses as a stream-level element in the streams namespace.
    p = StreamParser(ParserLimits.pre_auth())
    p.feed(stream_header(from_="x", to=None, id_=None, default_ns=ns.CLIENT))
    [ev] = p.feed(stream_error(err))
    assert ev.element.tag == f"{{{ns.STREAM}}}error"
    assert ev.element[0].tag == f"{{{ns.STREAMS_ERR}}}policy-violation"


def test_error_reply_swaps_addresses_and_does_not_echo() -> None:
    msg = make(
        C + "message",
        {"from": "a@x/r", "to": "b@y", "id": "m1", "type": "chat"},
        children=[make(C + "body", text="x" * 10_000)],
    )
    reply = error_reply(msg, StanzaError("service-unavailable", "nobody home"))
    assert reply.tag == C + "message"
    assert reply.attrib == {"type": "error", "id": "m1", "to": "a@x/r", "from": "b@y"}
    assert serialize(reply) == (
        b"<message type='error' id='m1' to='a@x/r' from='b@y'><error type='cancel'>"
        b"<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
        b"<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>nobody home</text>"
        b"</error></message>"
    )


def test_error_reply_app_condition_and_missing_addresses() -> None:
    iq = make(C + "iq", {"type": "set"})
    err = StanzaError(
        "resource-constraint", type="cancel", app=(ns.XMPP_ERRORS, "resource-limit-exceeded")
    )
    reply = error_reply(iq, err)
    assert reply.attrib == {"type": "error"}
    error = reply[0]
    assert error.tag == C + "error" and error.get("type") == "cancel"
    assert [tag_name(c) for c in error] == [
        (ns.STANZAS_ERR, "resource-constraint"),
        (ns.XMPP_ERRORS, "resource-limit-exceeded"),
    ]


@pytest.mark.parametrize(
    ("tag", "expected"), [(C + "iq", (ns.CLIENT, "iq")), ("plain", ("", "plain"))]
)
def test_tag_name(tag: str, expected: tuple[str, str]) -> None:
    assert tag_name(make(tag)) == expected


def test_make() -> None:
    el = make("{u}a", {"k": "v"}, "t", [make("{u}b")])
    assert (el.tag, el.attrib, el.text, len(el)) == ("{u}a", {"k": "v"}, "t", 1)


def test_prewritten_content_is_copied_as_is_and_matches_serializing_the_children():
    children = [make(ns.q(ns.ROSTER, "item"), {"jid": f"c{i}@x"}, text="a>b") for i in range(3)]
    whole = make(ns.q(ns.ROSTER, "query"), children=children)
    query = Prewritten(ns.q(ns.ROSTER, "query"))
    query.content = "".join(serialize(c, ns.ROSTER).decode() for c in children)
    iq = make(ns.q(ns.CLIENT, "iq"), {"type": "result"}, children=[query])
    assert serialize(iq) == serialize(
        make(ns.q(ns.CLIENT, "iq"), {"type": "result"}, children=[whole])
    )
    empty = Prewritten(ns.q(ns.ROSTER, "query"))
    assert serialize(empty) == b"<query xmlns='jabber:iq:roster'/>"


# ---- namespaces repeated on many elements: written once, with a prefix -----------------------

LONG = "urn:long:" + "u" * 200_000


def blowup_stanza() -> tuple[Element, int]:
    """A 200 KB namespace declared once on the stanza with a prefix, used by 1 000 children: the
    tree and the size of its wire form (which the plain form would write out 1 000 times)."""
    tag = "{" + LONG + "}x"  # one string for all children, as one parsed name
    children = [make(tag) for _ in range(1000)]
    wire = f"<message to='bob@x' xmlns:p='{LONG}'>" + "<p:x/>" * 1000 + "</message>"
    return make(C + "message", {"to": "bob@x"}, children=children), len(wire)


@pytest.fixture(params=["plain", "prefixed"])
def form(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both forms on the same trees: with no allowance, every repeat takes a prefix."""
    if request.param == "prefixed":
        monkeypatch.setattr(stanza_module, "REPEAT_ALLOWANCE", 0)
    return request.param


def test_a_namespace_repeated_on_many_children_is_written_once() -> None:
    el, wire_size = blowup_stanza()
    out = serialize(el)
    assert len(out) <= 2 * wire_size  # the plain form: 200 MB
    assert out.count(LONG.encode()) == 1
    assert out.startswith(b"<message xmlns:n0='" + LONG.encode() + b"' to='bob@x'><n0:x/>")
    assert same(parse_fragment(out, limits=ParserLimits(len(out), 1024, 64, 64, 10**9)), el)


def test_small_repeats_keep_the_plain_form_byte_for_byte() -> None:
    x = "{urn:x}x"
    el = make(C + "message", children=[make(x, {"{urn:a}k": "1"}), make(x, {"{urn:a}k": "2"})])
    assert serialize(el) == (
        b"<message><x xmlns='urn:x' xmlns:a0='urn:a' a0:k='1'/>"
        b"<x xmlns='urn:x' xmlns:a0='urn:a' a0:k='2'/></message>"
    )


def test_past_the_allowance_repeats_take_one_prefix_on_the_top_element() -> None:
    uri = "urn:x:" + "x" * stanza_module.REPEAT_ALLOWANCE
    attr = "{" + uri + "}k"
    el = make(
        C + "message",
        children=[
            make("{urn:once}a", {attr: "1"}),
            make(ns.q(uri, "b"), children=[make(C + "body", text="hi")]),
        ],
    )
    assert (
        serialize(el)
        == (
            f"<message xmlns:n0='{uri}'><a xmlns='urn:once' n0:k='1'/>"
            "<n0:b><body>hi</body></n0:b></message>"
        ).encode()
    )


def test_the_content_namespace_is_never_prefixed(form: str) -> None:
    # RFC 6120 4.8.5: no prefixes on jabber:client elements; inside another namespace each
    # one declares it again (a bounded cost: one short declaration per element).
    inner = make("{urn:w}w", children=[make(C + "body") for _ in range(3)])
    el = make(C + "message", children=[inner, make("{urn:w}w", children=[make(C + "body")])])
    out = serialize(el)
    assert b":body" not in out and b":message" not in out
    assert same(reparse(out), el)


def test_xml_namespace_elements_are_written_with_the_xml_prefix(form: str) -> None:
    # xmlns='http://www.w3.org/XML/1998/namespace' is refused by every parser (ours too): the
    # recipient's stream would end and a stored message could not be read back.
    el = make(
        C + "message",
        children=[make(ns.q(ns.XML, "x"), {XML_LANG: "en"}, children=[make(C + "body", text="t")])],
    )
    out = serialize(el)
    assert out == b"<message><xml:x xml:lang='en'><body>t</body></xml:x></message>"
    assert same(reparse(out), el)


def tricky_trees() -> list[Element]:
    a, b = "urn:a", "urn:b"
    nested = make(
        C + "message",
        children=[
            make(
                ns.q(a, "x"),
                children=[
                    make(
                        ns.q(b, "y"), children=[make(ns.q(a, "z"), children=[make(ns.q(b, "w"))])]
                    ),
                    make(ns.q(a, "x2"), {ns.q(b, "k"): "v", ns.q(a, "k"): "w", "k": "plain"}),
                ],
            ),
            make(ns.q(b, "y"), children=[make("plain", children=[make(ns.q(a, "deep"))])]),
            make(ns.q(a, "x"), {XML_LANG: "fr"}, text="t"),
        ],
    )
    depths = make(C + "iq", {"type": "result"})
    node = depths
    for i in range(10):  # the same namespace at different depths, others in between
        child = make(ns.q(a if i % 3 else b, f"d{i}"), {ns.q(a, "i"): str(i)}, text=f"{i}<")
        child.tail = f"tail{i}&"
        node.append(child)
        node = child
    client_inside = make(
        C + "message",
        children=[
            make(ns.q(a, "wrap"), children=[make(C + "body", text="x"), make("", text="none")]),
            make(ns.q(a, "wrap"), children=[make(ns.q(ns.XML, "x"))]),
        ],
    )
    client_inside[0][1].tag = "none"
    return [nested, depths, client_inside]


@pytest.mark.parametrize("index", range(3))
def test_round_trip_of_tricky_trees(form: str, index: int) -> None:
    tree = tricky_trees()[index]
    out = serialize(tree)
    assert same(reparse(out), tree), out
    if form == "prefixed":
        assert declared_again(out) <= {b"", b"jabber:client"}, out


def declared_again(out: bytes) -> set[bytes]:
    """Namespaces declared more than once (in tags: text escapes `<`, values escape `>`)."""
    tags = b"".join(re.findall(rb"<[^>]*>", out))
    declared = re.findall(rb" xmlns(?::\w+)?='([^']*)'", tags)
    return {uri for uri in declared if declared.count(uri) > 1}


def test_prewritten_content_inside_a_prefixed_stanza(form: str) -> None:
    items = [make(ns.q(ns.ROSTER, "item"), {"jid": f"c{i}@x"}) for i in range(3)]
    query = Prewritten(ns.q(ns.ROSTER, "query"))
    query.content = "".join(serialize(item, ns.ROSTER).decode() for item in items)
    extra = [make(ns.q(ns.ROSTER, "mark")), make(ns.q(ns.ROSTER, "mark"))]
    iq = make(C + "iq", {"type": "result"}, children=[extra[0], query, extra[1]])
    whole = make(
        C + "iq",
        {"type": "result"},
        children=[extra[0], make(ns.q(ns.ROSTER, "query"), children=items), extra[1]],
    )
    out = serialize(iq)
    assert b"<query xmlns='jabber:iq:roster'><item jid='c0@x'/>" in out
    assert same(reparse(out), whole)


def test_deep_prefixed_trees_do_not_recurse(form: str) -> None:
    root = make(C + "message")
    node = root
    for i in range(5000):
        node.append(make(ns.q("urn:a" if i % 2 else "urn:b", "a")))
        node = node[0]
    assert serialize(root).count(b"a") >= 5000  # no RecursionError


URIS = st.sampled_from([ns.CLIENT, "", "urn:a", "urn:b", "urn:a:" + "x" * 300, ns.ROSTER, ns.XML])
LOCALS = st.sampled_from(["a", "b", "body", "x-y", "n0", "a0"])
# Characters XML can carry (no C0 controls but tab, newline and CR; no surrogates, no U+FFFE).
XML_TEXT = st.text(
    st.one_of(
        st.sampled_from("\t\n\r<>&'\"]"),
        st.characters(codec="utf-8", exclude_categories=["Cs", "Cc", "Cn"]),
    )
)
TEXTS = st.one_of(st.none(), XML_TEXT)


@st.composite
def trees(draw: st.DrawFn) -> Element:
    root = make(C + draw(st.sampled_from(["message", "iq", "presence"])), {"id": "r"})
    nodes = [root]
    for _ in range(draw(st.integers(0, 25))):
        parent = draw(st.sampled_from(nodes))
        uri = draw(URIS)
        attrs = {}
        for _ in range(draw(st.integers(0, 3))):
            attr_uri = draw(st.sampled_from(["", "urn:a", "urn:c", ns.XML, ns.CLIENT]))
            key = ("{" + attr_uri + "}" if attr_uri else "") + draw(LOCALS)
            attrs[key] = draw(XML_TEXT)
        child = make(("{" + uri + "}" if uri else "") + draw(LOCALS), attrs, draw(TEXTS) or None)
        child.tail = draw(TEXTS) or None
        parent.append(child)
        nodes.append(child)
    return root


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=trees(), allowance=st.sampled_from([0, stanza_module.REPEAT_ALLOWANCE]))
def test_round_trip_of_random_trees_with_random_namespaces(tree: Element, allowance: int) -> None:
    saved = stanza_module.REPEAT_ALLOWANCE
    stanza_module.REPEAT_ALLOWANCE = allowance
    try:
        out = serialize(tree)
    finally:
        stanza_module.REPEAT_ALLOWANCE = saved
    assert same(reparse(out), tree), out
    if allowance == 0:
        assert declared_again(out) <= {b"", b"jabber:client"}, out

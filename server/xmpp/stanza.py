"""Stanza serialization and small helpers, all iterative.

ElementTree's own serializer recurses (RecursionError near depth 1000) and invents `ns0:`
prefixes; XMPP wants default-namespace elements and exact bytes, so we write our own.
"""

from __future__ import annotations

from collections.abc import Iterable
from xml.etree.ElementTree import Element

from . import ns
from .errors import StanzaError, StreamError

STREAM_CLOSE = b"</stream:stream>"

_XML_PREFIX = "{" + ns.XML + "}"
_TEXT_ESC = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#xD;"})
# Attribute values also keep quotes and whitespace characters exact (XML normalizes raw ones).
_ATTR_ESC = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        "'": "&apos;",
        '"': "&quot;",
        "\r": "&#xD;",
        "\n": "&#xA;",
        "\t": "&#x9;",
    }
)


def tag_name(el: Element) -> tuple[str, str]:
    """'{ns}local' -> (ns, local); a tag without namespace gives ('', local)."""
    tag = el.tag
    if tag[:1] == "{":
        uri, _, local = tag[1:].partition("}")
        return uri, local
    return "", tag


def make(
    tag: str,
    attrs: dict[str, str] | None = None,
    text: str | None = None,
    children: Iterable[Element] = (),
) -> Element:
    el = Element(tag, attrs or {})
    el.text = text
    el.extend(children)
    return el


class Prewritten(Element):
    """An element whose content is already serialized: `content` is the XML of its children,
    written with this element's namespace as the default (serialize(child, that namespace)).
    A large answer (a full roster) is written out in chunks between turns of the event loop,
    and serialize() then only copies it."""

    content: str = ""


def _attrs(el: Element, out: list[str]) -> None:
    prefixes: dict[str, str] = {}
    for key, value in el.attrib.items():
        if key.startswith(_XML_PREFIX):
            name = "xml:" + key[len(_XML_PREFIX) :]
        elif key[:1] == "{":
            uri, _, local = key[1:].partition("}")
            prefix = prefixes.get(uri)
            if prefix is None:
                prefix = prefixes[uri] = f"a{len(prefixes)}"
                out.append(f" xmlns:{prefix}='{uri.translate(_ATTR_ESC)}'")
            name = f"{prefix}:{local}"
        else:
            name = key
        out.append(f" {name}='{value.translate(_ATTR_ESC)}'")


def serialize(el: Element, default_ns: str | None = ns.CLIENT) -> bytes:
    """Compact XML for `el`, written inside a stream whose default namespace is `default_ns`.

    Each element whose namespace differs from its parent's declares it with xmlns='...'.
    """
    out: list[str] = []
    # Work items: (element, inherited default namespace) to open, or a str to write as is.
    todo: list[tuple[Element, str | None] | str] = [(el, default_ns)]
    while todo:
        item = todo.pop()
        if isinstance(item, str):
            out.append(item)
            continue
        node, inherited = item
        uri, local = tag_name(node)
        out.append("<" + local)
        if uri != (inherited or ""):
            out.append(f" xmlns='{uri.translate(_ATTR_ESC)}'")
        _attrs(node, out)
        # The top element's tail is not part of it.
        tail = node.tail.translate(_TEXT_ESC) if node.tail and node is not el else ""
        if isinstance(node, Prewritten) and node.content:
            out.append(f">{node.content}</{local}>{tail}")
            continue
        if node.text is None and not len(node):
            out.append("/>" + tail)
            continue
        out.append(">")
        if node.text:
            out.append(node.text.translate(_TEXT_ESC))
        todo.append(f"</{local}>{tail}")
        todo.extend((child, uri) for child in reversed(node))
    return "".join(out).encode("utf-8")


def stream_header(
    *,
    from_: str | None,
    to: str | None,
    id_: str | None,
    default_ns: str,
    version: str = "1.0",
    lang: str = "en",
) -> bytes:
    attrs = [f" xmlns='{default_ns}' xmlns:stream='{ns.STREAM}'"]
    for name, value in (("from", from_), ("to", to), ("id", id_), ("version", version)):
        if value is not None:
            attrs.append(f" {name}='{value.translate(_ATTR_ESC)}'")
    attrs.append(f" xml:lang='{lang.translate(_ATTR_ESC)}'")
    return f"<?xml version='1.0'?><stream:stream{''.join(attrs)}>".encode()


def stream_error(err: StreamError) -> bytes:
    children = [make(ns.q(ns.STREAMS_ERR, err.condition))]
    if err.text:
        children.append(make(ns.q(ns.STREAMS_ERR, "text"), {_XML_PREFIX + "lang": "en"}, err.text))
    if err.app:
        children.append(make(ns.q(*err.app)))
    body = b"".join(serialize(child, None) for child in children)
    return b"<stream:error>" + body + b"</stream:error>"


def error_reply(stanza: Element, err: StanzaError) -> Element:
    """A type='error' reply to `stanza`: addresses swapped, same id, payload not echoed."""
    uri, _ = tag_name(stanza)
    attrs = {"type": "error"}
    for src, dst in (("id", "id"), ("from", "to"), ("to", "from")):
        value = stanza.get(src)
        if value is not None:
            attrs[dst] = value
    error = make(ns.q(uri, "error") if uri else "error", {"type": err.type or "cancel"})
    error.append(make(ns.q(ns.STANZAS_ERR, err.condition)))
    if err.text:
        error.append(make(ns.q(ns.STANZAS_ERR, "text"), {_XML_PREFIX + "lang": "en"}, err.text))
    if err.app:
        error.append(make(ns.q(*err.app)))
    return make(stanza.tag, attrs, children=[error])

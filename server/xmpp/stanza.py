"""Stanza serialization and small helpers, all iterative.

ElementTree's own serializer recurses (RecursionError near depth 1000) and invents `ns0:`
prefixes; XMPP wants default-namespace elements and exact bytes, so we write our own.
"""

from __future__ import annotations

import re
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


# str.translate looks every character up in its table (a few µs for a JID): most values have
# nothing to escape, which one regex scan tells (issue 14: a fifth of a message's serializing)
_ATTR_SPECIAL = re.compile("[&<>'\"\r\n\t]").search
_TEXT_SPECIAL = re.compile("[&<>\r]").search


def _attr_escape(value: str) -> str:
    return value.translate(_ATTR_ESC) if _ATTR_SPECIAL(value) else value


def _text_escape(value: str) -> str:
    return value.translate(_TEXT_ESC) if _TEXT_SPECIAL(value) else value


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


class Received(Element):
    """A stanza as parsed from a stream, which may keep its content as it arrived: the bytes
    after its start tag through its end tag. serialize() then writes a start tag from its
    attributes as they are now (a stamped `from`, a changed `to`) followed by those bytes,
    instead of writing its children out again, as long as nothing under the start tag changed
    since: the same tag and text, and the same children, each with the same tag, text, tail,
    attributes and children. The parser keeps them only when they mean the same in any stream
    (`StreamParser._keep_content`). Copies (copy.copy, deepcopy) are plain Elements."""

    __slots__ = ("_content", "_shape")

    def keep_content(self, content: bytes) -> None:
        self._content = content
        self._shape = _content_shape(self)

    def content_as_parsed(self) -> bytes | None:
        """The content's bytes as they arrived, if it is still what they say."""
        content = getattr(self, "_content", None)
        if content is None or _content_shape(self) != self._shape:
            return None
        return content


def _content_shape(el: Element) -> tuple:
    """What the bytes after `el`'s start tag stand for (its attributes are not in them)."""
    nodes = el.iter()
    next(nodes)  # `el` itself (cheaper than islice, twice per routed stanza)
    inside = [(n, n.tag, n.text, n.tail, len(n), n.items()) for n in nodes]
    return el.tag, el.text, len(el), inside


# The plain form declares a namespace on each element whose parent is in another one (and on
# each element with attributes in it, as xmlns:a0): a stanza that declares a long namespace once,
# with a prefix, and uses it on many children would be written many times over (a 200 KB
# namespace on 1 000 children: 200 MB). Repeats that cost up to this many bytes in all keep the
# plain form, so ordinary stanzas keep their exact bytes (an error's condition and text, Jingle's
# payload types); past it, each repeated namespace is declared once, with a prefix, on the top
# element.
REPEAT_ALLOWANCE = 4096


def _prefixable(node: Element, uri: str, default_ns: str) -> bool:
    """Whether `node` may be written with a prefix: not the stream's content namespace (RFC 6120
    4.8.5), not the empty namespace (no prefix can name it), not a Prewritten element (its content
    is written with its namespace as the default), and not xml: (predeclared)."""
    return uri not in ("", default_ns, ns.XML) and not isinstance(node, Prewritten)


def _attr_uris(el: Element) -> set[str]:
    return {key[1:].partition("}")[0] for key in el.attrib if key[:1] == "{"} - {ns.XML}


def _attrs(
    el: Element, out: list[str], prefixes: dict[str, str] | None, seen: set[str] | None
) -> int:
    """Write `el`'s attributes; namespaced ones take a prefix from `prefixes` or one declared on
    `el`. Returns the bytes of declarations of namespaces already in `seen` (which it updates)."""
    repeats = 0
    own: dict[str, str] = {}
    for key, value in el.attrib.items():
        if key[:1] != "{":
            name = key
        elif key.startswith(_XML_PREFIX):
            name = "xml:" + key[len(_XML_PREFIX) :]
        else:
            uri, _, local = key[1:].partition("}")
            prefix = own.get(uri) or (prefixes.get(uri) if prefixes else None)
            if prefix is None:
                prefix = own[uri] = f"a{len(own)}"
                out.append(f" xmlns:{prefix}='{uri.translate(_ATTR_ESC)}'")
                if seen is not None:
                    if uri in seen:
                        repeats += len(uri) + 12
                    seen.add(uri)
            name = f"{prefix}:{local}"
        out.append(f" {name}='{_attr_escape(value)}'")
    return repeats


def _repeated_namespaces(el: Element, default_ns: str) -> dict[str, str]:
    """A prefix for each namespace that the plain form of `el` would declare more than once."""
    counts: dict[str, int] = {}
    todo = [(el, default_ns)]
    while todo:
        node, inherited = todo.pop()
        uri, _ = tag_name(node)
        scope = uri
        if uri != inherited:
            if uri == ns.XML:
                scope = inherited
            elif _prefixable(node, uri, default_ns):
                counts[uri] = counts.get(uri, 0) + 1
        for attr_uri in _attr_uris(node):
            counts[attr_uri] = counts.get(attr_uri, 0) + 1
        if not (isinstance(node, Prewritten) and node.content):
            todo.extend((child, scope) for child in reversed(node))
    repeated = [uri for uri, count in counts.items() if count > 1]
    return {uri: f"n{i}" for i, uri in enumerate(repeated)}


def serialize(el: Element, default_ns: str | None = ns.CLIENT) -> bytes:
    """Compact XML for `el`, written inside a stream whose default namespace is `default_ns`.

    Each element whose namespace differs from its parent's declares it with xmlns='...', unless
    that would repeat declarations past REPEAT_ALLOWANCE bytes: then each namespace that would be
    declared more than once is declared once on `el` with a prefix. Only namespaces never written
    with a prefix (the content namespace, the empty one, a Prewritten element's) may still be
    declared again: once per element at most, and the first two are short.
    """
    scope = default_ns or ""
    if type(el) is Received and (content := el.content_as_parsed()) is not None:
        uri, local = tag_name(el)
        if uri == scope:  # its content's default namespace, as where it came from
            out = ["<" + local]
            _attrs(el, out, None, None)
            return ("".join(out) + ">").encode("utf-8") + content
    out = _write(el, scope, None)
    if out is None:
        out = _write(el, scope, _repeated_namespaces(el, scope))
        assert out is not None
    return "".join(out).encode("utf-8")


def _write(el: Element, default_ns: str, prefixes: dict[str, str] | None) -> list[str] | None:
    """The plain form (`prefixes` None), or None once its repeats pass REPEAT_ALLOWANCE; or the
    form with `prefixes` declared on `el` and used for their namespaces."""
    out: list[str] = []
    seen: set[str] | None = set() if prefixes is None else None
    spare = REPEAT_ALLOWANCE
    # Work items: (element, in-scope default namespace) to open, or a str to write as is.
    todo: list[tuple[Element, str] | str] = [(el, default_ns)]
    while todo:
        item = todo.pop()
        if isinstance(item, str):
            out.append(item)
            continue
        node, inherited = item
        uri, local = tag_name(node)
        name, scope = local, uri
        if uri == inherited:
            out.append("<" + local)
        elif uri == ns.XML:  # predeclared: declaring it is an error
            name, scope = "xml:" + local, inherited
            out.append("<" + name)
        elif prefixes and uri in prefixes and _prefixable(node, uri, default_ns):
            name, scope = f"{prefixes[uri]}:{local}", inherited
            out.append("<" + name)
        else:
            if seen is not None and _prefixable(node, uri, default_ns):
                if uri in seen:
                    spare -= len(uri) + 9
                    if spare < 0:
                        return None
                seen.add(uri)
            out.append(f"<{local} xmlns='{uri.translate(_ATTR_ESC)}'")
        if prefixes and node is el:
            out.extend(f" xmlns:{p}='{u.translate(_ATTR_ESC)}'" for u, p in prefixes.items())
        if node.attrib:
            spare -= _attrs(node, out, prefixes, seen)
            if spare < 0:
                return None
        # The top element's tail is not part of it.
        tail = _text_escape(node.tail) if node.tail and node is not el else ""
        if isinstance(node, Prewritten) and node.content:
            out.append(f">{node.content}</{name}>{tail}")
            continue
        if node.text is None and not len(node):
            out.append("/>" + tail)
            continue
        out.append(">")
        if node.text:
            out.append(_text_escape(node.text))
        todo.append(f"</{name}>{tail}")
        todo.extend((child, scope) for child in reversed(node))
    return out


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

"""Incremental XMPP stream parser: bytes in, events out (sans-I/O, on pyexpat).

Two layers work on every byte:

* a small byte scanner (`_Scanner`) that knows just enough XML to find tag boundaries. It
  enforces the size limit on bytes we still hold back, refuses comments, DOCTYPE and processing
  instructions the moment they start, and tells us when the held-back bytes complete a token;
* Expat, which does the real parsing. Its handlers build stanzas without recursion and enforce
  the element, depth and attribute limits.

Why hold bytes back: Expat 2.5 re-parses an incomplete token from its start on every Parse()
call (CVE-2023-52425), so a 250 KiB attribute trickled one byte per read costs seconds of CPU.
We give Expat the buffered bytes only when they complete a token (or are text, which Expat
consumes without re-parsing), or when there are at least as many of them as Expat has been fed
since a handler last fired. The second rule grows the chunks geometrically, so re-parsing costs
linear time in total; the first keeps ordinary stanzas flowing on the read that completes them.
"""

from __future__ import annotations

import functools
import pyexpat
import re
from dataclasses import dataclass
from pyexpat import errors as expat_errors
from xml.etree.ElementTree import Element

from . import ns
from .errors import StreamError
from .stanza import Received

# '}' can never be in a namespace name: Expat rejects a URI holding the separator unless it is a
# legal URI character (it is not), and it makes Clark notation a single prefix: "{" + name.
_SEP = "}"

_BOM_UTF8 = b"\xef\xbb\xbf"
_XML_WS = " \t\r\n"


# Expat error codes that mean "restricted XML" (RFC 6120 section 11.1) rather than malformed XML.
def _codes(*names: str) -> frozenset[int]:
    return frozenset(expat_errors.codes[getattr(expat_errors, name)] for name in names)


_RESTRICTED_CODES = _codes(
    "XML_ERROR_UNDEFINED_ENTITY",
    "XML_ERROR_MISPLACED_XML_PI",
    "XML_ERROR_RECURSIVE_ENTITY_REF",
    "XML_ERROR_BINARY_ENTITY_REF",
    "XML_ERROR_ASYNC_ENTITY",
    "XML_ERROR_EXTERNAL_ENTITY_HANDLING",
    "XML_ERROR_ENTITY_DECLARED_IN_PE",
    "XML_ERROR_NOT_STANDALONE",
)
_ENCODING_CODES = _codes("XML_ERROR_UNKNOWN_ENCODING", "XML_ERROR_INCORRECT_ENCODING")


# Parsed names may take this many characters per byte of the stanza size: namespaced attributes
# such as xml:lang take about three times their wire size, a repeated long namespace far more.
NAMES_PER_BYTE = 4
# Characters of namespace names a stream header may bind to prefixes (the `stream` prefix
# included: 'http://etherx.jabber.org/streams' is 32); see the header check in _start.
HEADER_NAMESPACE_CHARS = 256


@dataclass(frozen=True)
class ParserLimits:
    """Per-stanza limits; the stream header counts as a stanza for `stanza_size`."""

    stanza_size: int
    elements: int
    depth: int  # the stanza element itself is depth 1
    attributes: int  # per element
    # Characters of element and attribute names in one stanza, namespace names included: each
    # parsed name holds its whole namespace name, so `<p:x/>` in a 200 KB namespace holds 200 KB.
    # None: NAMES_PER_BYTE times stanza_size.
    names: int | None = None

    @functools.cached_property  # asked at every element of every stanza
    def name_chars(self) -> int:
        return NAMES_PER_BYTE * self.stanza_size if self.names is None else self.names

    @classmethod
    def pre_auth(cls) -> ParserLimits:
        return cls(stanza_size=8 * 1024, elements=32, depth=64, attributes=64)

    @classmethod
    def post_auth(cls) -> ParserLimits:
        return cls(stanza_size=256 * 1024, elements=1024, depth=64, attributes=64)


@dataclass(frozen=True)
class StreamOpen:
    tag: str
    attrs: dict[str, str]
    default_ns: str | None


@dataclass(frozen=True)
class Stanza:
    element: Element


@dataclass(frozen=True)
class StreamClose:
    pass


Event = StreamOpen | Stanza | StreamClose


def _too_big() -> StreamError:
    return StreamError("policy-violation", "stanza too big", app=(ns.XMPP_ERRORS, "stanza-too-big"))


# Wakes of a hibernated parser that drop it again right after parsing (see hibernate): an
# idle client's few sparse stanzas (SM enable, presence, a ping, an ack) each wake briefly.
DOZES = 4

# The stream header's usual prefix, namespaces and root, one shared string each: every stream's
# parser keeps them for the stream's life (issue 14: ~0.2 KiB per idle session as copies).
_HEADER_NAMES = {
    name: name
    for name in (
        "stream",
        ns.CLIENT,
        ns.SERVER,
        ns.COMPONENT,
        ns.STREAM,
        "{" + ns.STREAM + "}stream",
    )
}


def _clark(name: str) -> str:
    # Expat gives "uri}local" for namespaced names; Clark notation is "{uri}local".
    return "{" + name if _SEP in name else name


# Scanner states.
_TEXT, _LT, _BANG, _TAG, _SQ, _DQ, _REF, _CDATA = range(8)
_TEXT_STOP = re.compile(rb"[<&]")
_TAG_STOP = re.compile(rb"['\">]")
# A whole start, end or empty-element tag (quoted values may hold '>'), not a comment, CDATA,
# DOCTYPE or PI: in the text state the scanner takes such a tag in one step instead of one
# state change per quote. Anything else (a tag cut by the end of a read) takes the slow path.
_WHOLE_TAG = re.compile(rb"<(/?)[^!?<>'\"][^<>'\"]*(?:(?:'[^'<]*'|\"[^\"<]*\")[^<>'\"]*)*>")
# Text up to the next '<' (no reference in it) and the whole tag there: one match per tag on
# the fast path (a search for '<' then a match cost two calls per tag, a third of a message's
# scanning). Group 1 is the tag, group 2 its '/' if it is an end tag.
_TEXT_THEN_TAG = re.compile(rb"[^<&]*(" + _WHOLE_TAG.pattern + rb")")
_LT_B, _GT_B, _SLASH_B = ord("<"), ord(">"), ord("/")
_NAME_END = b" \t\r\n>"  # what may follow an element's name in its start tag ('/': empty)


class _Scanner:
    """Finds tag boundaries and measures the unit (header or stanza) in progress.

    It is not a validator: on malformed input it may be wrong, but Expat then reports the error.
    On well-formed input it agrees with Expat, and it never loops per byte in Python except at
    token edges.
    """

    def __init__(self) -> None:
        self.pos = 0  # stream offset of the next byte
        self.state = _TEXT
        self.depth = 0  # XML depth: the stream element is depth 1
        self.unit_open = True  # the stream header is the first unit
        self.unit_start = 0
        self.tag_at = 0  # offset of the '<' of the current tag
        self.kind = ""  # "start" | "end" | "pi"
        self.last = 0  # last byte scanned (for '/>' across reads)
        self.cdata_tail = b""  # last bytes of a CDATA section, to find ']]>' across reads
        self.head = b""  # the first 3 bytes of the stream (a UTF-8 BOM may precede <?xml)

    def scan(self, data: bytes, limit: int) -> bool:
        """Advance over `data`; return True if it completes a token or carries text."""
        base, n, i = self.pos, len(data), 0
        if base < 3:
            self.head += data[: 3 - base]
        boundary = False
        while i < n:
            st = self.state
            if st == _TEXT:
                boundary = True  # Expat consumes text at once: no re-parse risk
                # the fast path: each next tag is complete in `data`
                while (tag := _TEXT_THEN_TAG.match(data, i)) is not None:
                    self.tag_at = base + tag.start(1)
                    if self.depth == 1:
                        self.unit_open, self.unit_start = True, self.tag_at
                    self.kind = "end" if tag.group(2) else "start"
                    i = tag.end()
                    self._close_tag(data[i - 2] == _SLASH_B, base + i, limit)
                m = _TEXT_STOP.search(data, i)
                if m is None:
                    break
                j = m.start()
                if data[j] == _LT_B:
                    self.state, self.tag_at = _LT, base + j
                    if self.depth == 1:  # a stanza (or the stream close) begins
                        self.unit_open, self.unit_start = True, self.tag_at
                else:
                    self.state = _REF
                i = j + 1
            elif st == _REF:
                j = data.find(b";", i)
                if j < 0:
                    break
                self.state, i = _TEXT, j + 1
            elif st == _LT:
                c = data[i]
                if c == ord("!"):
                    self.state, i = _BANG, i + 1
                    continue
                if c == ord("?"):
                    # Only the XML declaration, only at the very start of the stream.
                    if self.tag_at != (3 if self.head == _BOM_UTF8 else 0):
                        raise StreamError("restricted-xml", "processing instruction")
                    self.kind, i = "pi", i + 1
                else:
                    self.kind = "end" if c == _SLASH_B else "start"
                self.state = _TAG
            elif st == _BANG:
                if data[i] != ord("["):
                    raise StreamError("restricted-xml", "comment, DOCTYPE or declaration")
                self.state, self.cdata_tail, i = _CDATA, b"", i + 1
                if self.depth == 1:  # text at stream level, not a stanza (Expat judges it)
                    self.unit_open = False
            elif st == _TAG:
                m = _TAG_STOP.search(data, i)
                if m is None:
                    break
                j = m.start()
                c = data[j]
                if c != _GT_B:
                    self.state, i = (_SQ if c == ord("'") else _DQ), j + 1
                    continue
                before = data[j - 1] if j > 0 else self.last
                self._close_tag(before == _SLASH_B, base + j + 1, limit)
                self.state, i, boundary = _TEXT, j + 1, True
            elif st in (_SQ, _DQ):
                j = data.find(b"'" if st == _SQ else b'"', i)
                if j < 0:
                    break
                self.state, i = _TAG, j + 1
            else:  # _CDATA: Expat reports its content at once, like text
                boundary = True
                head = self.cdata_tail + data[i : i + 2]
                k = head.find(b"]]>")
                if k >= 0:
                    j = i + k - len(self.cdata_tail) + 2
                else:
                    j = data.find(b"]]>", i)
                    j = j + 2 if j >= 0 else -1
                if j < 0:
                    self.cdata_tail = (self.cdata_tail + data[max(i, n - 2) :])[-2:]
                    break
                self.state, i = _TEXT, j + 1
        if n:
            self.last = data[-1]
        self.pos = base + n
        self.check(limit)
        return boundary

    def _close_tag(self, empty: bool, end: int, limit: int) -> None:
        if self.kind == "start" and not empty:
            self.depth += 1
            done = self.depth == 1  # the stream header
        elif self.kind == "end":
            self.depth -= 1
            done = self.depth <= 1  # a stanza, or the stream itself, closed
        else:
            done = self.depth == 1 and self.kind == "start"  # an empty top-level element
        if done and self.unit_open:
            if end - self.unit_start > limit:
                raise _too_big()
            self.unit_open = False

    def check(self, limit: int) -> None:
        if self.unit_open and self.pos - self.unit_start > limit:
            raise _too_big()

    @property
    def partial(self) -> bool:
        return self.unit_open and self.pos > self.unit_start


class StreamParser:
    """Feed bytes, get events. Raises StreamError; after that the parser is dead.

    A caller that restarts the stream (STARTTLS, SASL success) after some event must call
    reset() and drop the events that followed it in the same list: bytes sent before the
    restart must never be read as part of the new stream.
    """

    def __init__(self, limits: ParserLimits) -> None:
        self.limits = limits
        self.reset()

    def reset(self) -> None:
        """Start a fresh stream: new Expat parser; no bytes, text or state carried over."""
        self._expat = self._new_expat()
        self._scanner = _Scanner()
        self._pending = bytearray()  # received, not yet given to Expat
        self._fed = 0  # bytes given to Expat
        self._last_event = 0  # stream offset of the last handler call
        self._events: list[Event] = []
        self._depth = 0
        self._stack: list[Element] = []
        self._text: list[str] = []
        self._count = 0  # elements in the current stanza
        self._names = 0  # characters of its element and attribute names, namespaces included
        self._default_ns: str | None = None
        self._header_ns: dict[str | None, str] = {}  # the stream header's declarations
        self._root: str | None = None  # the stream element, Clark notation
        self._error: StreamError | None = None
        self._head = b""  # first bytes of the stream, to spot UTF-16
        self._chunk = b""  # what Expat parses now (only during Parse)
        self._stanza_at = 0  # Expat's offset of the current stanza's start tag
        # the header binds no prefix but `stream`: a stanza's bytes may keep their meaning alone
        self._header_plain = False
        # wakes left that parse what came and sleep again (see hibernate)
        self._dozes = 0

    def _new_expat(self) -> pyexpat.XMLParserType:
        # Forced UTF-8: a declared encoding is checked. No interning (intern=None): Expat's
        # intern dict keeps every distinct name for the parser's life, so a client could grow
        # it by a namespace name per stanza for as long as it keeps its stream busy.
        p = pyexpat.ParserCreate("UTF-8", _SEP, intern=None)
        # Text arrives in pieces of at most 1 KiB (joined later): Expat's default 8 KiB text
        # buffer would cost 7 KiB more per connection, which adds up over 10 000 idle sessions.
        p.buffer_size = 1024
        p.buffer_text = True
        p.SetParamEntityParsing(pyexpat.XML_PARAM_ENTITY_PARSING_NEVER)
        p.StartElementHandler = self._start
        p.EndElementHandler = self._end
        p.CharacterDataHandler = self._chars
        p.StartNamespaceDeclHandler = self._ns_decl
        p.XmlDeclHandler = self._xml_decl
        p.StartCdataSectionHandler = self._fired
        p.EndCdataSectionHandler = self._fired
        for name in (
            "StartDoctypeDeclHandler",
            "EntityDeclHandler",
            "UnparsedEntityDeclHandler",
            "NotationDeclHandler",
            "ElementDeclHandler",
            "AttlistDeclHandler",
            "CommentHandler",
            "ProcessingInstructionHandler",
            "ExternalEntityRefHandler",
            "SkippedEntityHandler",
        ):
            setattr(p, name, self._restricted)
        return p

    # --- hibernation ------------------------------------------------------------------------

    def hibernate(self) -> bool:
        """Drop the Expat parser of an idle stream (about 13 KiB) between stanzas; the next
        feed() builds a new one, primed with the stream header's namespace declarations.
        Returns whether the stream is without a parser now: False (and keeps it) when a stanza
        or held-back bytes are in flight.

        The first DOZES wakes after this call only doze: once what arrived is parsed, the
        parser is dropped again; the next wake keeps it until the next hibernate(). A burst of
        single stanzas from many idle streams (SM enable and initial presence after a mass
        login, a keepalive round) thus never holds thousands of parsers at once, and the
        long-lived state those stanzas leave (a stored presence) is not scattered between
        parsers' freed memory, which no allocator gives back (issue 14). A stream that starts
        talking again pays DOZES wakes (~20 us each)."""
        if self._expat is None:
            self._dozes = DOZES
            return True
        if not self._at_rest():
            return False
        self._expat = None
        self._dozes = DOZES
        return True

    def _at_rest(self) -> bool:
        """Between stanzas of a live stream: a new Expat primed with the header parses on."""
        return not (
            self._error is not None
            or self._depth != 1
            or self._pending
            or self._text
            or self._scanner.partial
            or self._root is None
        )

    def close(self) -> None:
        """The stream is over: Expat (about 13 KiB) goes at once. Its handlers are this parser's
        methods, a cycle that only the collector's next full pass would otherwise free."""
        self._expat = None

    def _wake(self) -> None:
        """A new Expat positioned inside the stream element, as the old one was."""
        uri, _, local = self._root[1:].partition("}") if "}" in self._root else ("", "", self._root)
        prefix = next((p for p, u in self._header_ns.items() if u == uri and p), None)
        qname = f"{prefix}:{local}" if prefix else local  # the client's close tag must match
        decls = "".join(
            f" xmlns:{p}='{_attr_escape(u)}'" if p else f" xmlns='{_attr_escape(u)}'"
            for p, u in self._header_ns.items()
        )
        primer = f"<{qname}{decls}>".encode()
        self._expat = self._new_expat()
        depth, events = self._depth, self._events
        self._depth, self._events = -1, []  # -1: handlers record nothing while priming
        try:
            self._expat.Parse(primer, False)
        finally:
            self._depth, self._events = depth, events
        self._fed = self._last_event = len(primer)

    @property
    def partial(self) -> bool:
        """True while a header or stanza is partly received (held back bytes included)."""
        return self._scanner.partial

    def feed(self, data: bytes) -> list[Event]:
        if self._error is not None:
            raise self._error
        try:
            return self._feed(data)
        except StreamError as err:
            self._error = err
            raise

    def _feed(self, data: bytes) -> list[Event]:
        if not data:
            return []
        if len(self._head) < 2:
            self._head += data[: 2 - len(self._head)]
            if self._head[:1] in (b"\xff", b"\xfe") or b"\x00" in self._head:
                raise StreamError("unsupported-encoding", "only UTF-8 is allowed")
        boundary = self._scanner.scan(data, self.limits.stanza_size)
        stalled = self._fed - self._last_event
        if not boundary and len(self._pending) + len(data) < stalled:
            self._pending += data
            return []  # a long token is still arriving: wait for more (see module doc)
        if self._pending:
            self._pending += data
            chunk = bytes(self._pending)
            self._pending.clear()
        else:  # nothing held back, as nearly always: the read itself, not two copies of it
            chunk = bytes(data)
        dozing = False
        if self._expat is None:
            self._wake()
            dozing = self._dozes > 0
            self._dozes -= dozing
        self._fed += len(chunk)
        self._events = []
        self._chunk = chunk
        try:
            self._expat.Parse(chunk, False)
        except pyexpat.ExpatError as e:
            raise _expat_error(e) from None
        finally:
            self._chunk = b""
        events, self._events = self._events, []
        if dozing and self._at_rest():
            self._expat = None  # woken for what just came after a nap: asleep again
        return events

    # --- Expat handlers -------------------------------------------------------------------

    def _fired(self, *_: object) -> None:
        self._last_event = self._expat.CurrentByteIndex

    def _restricted(self, *_: object) -> None:
        raise StreamError("restricted-xml", "DTD, entity, comment or processing instruction")

    def _xml_decl(self, version: str, encoding: str | None, standalone: int) -> None:
        self._fired()
        if encoding is not None and encoding.lower() not in ("utf-8", "utf8"):
            raise StreamError("unsupported-encoding", "only UTF-8 is allowed")

    def _ns_decl(self, prefix: str | None, uri: str) -> None:
        self._fired()
        if self._depth == 0:
            uri = _HEADER_NAMES.get(uri, uri)
            self._header_ns[_HEADER_NAMES.get(prefix, prefix) if prefix else prefix] = uri
            if prefix is None:
                self._default_ns = uri

    def _attrs(self, attrs: dict[str, str]) -> dict[str, str]:
        if len(attrs) > self.limits.attributes:
            raise StreamError("policy-violation", "too many attributes")
        # Expat gives each call a dict of its own: kept as it is unless a name is namespaced
        # (rare on stanzas; one join of the names tells, where a comprehension costs a call
        # per attribute)
        if _SEP in "".join(attrs):
            return {_clark(k): v for k, v in attrs.items()}
        return attrs

    def _flush_text(self) -> None:
        if self._text:
            text = "".join(self._text)
            self._text = []
            parent = self._stack[-1]
            if len(parent):
                last = parent[-1]
                last.tail = (last.tail or "") + text
            else:
                parent.text = (parent.text or "") + text

    def _start(self, name: str, attrs: dict[str, str]) -> None:
        self._last_event = at = self._expat.CurrentByteIndex  # _fired(), on every element
        depth = self._depth
        if depth < 0:  # priming a woken parser with the stream header
            return
        if depth == 0:
            # A prefix declared on the header applies to every later stanza, and is written out
            # in full each time such a stanza is routed: a long one would turn a few bytes in
            # into kilobytes out, per stanza and per recipient. Keep such declarations small.
            declared = sum(len(uri) for prefix, uri in self._header_ns.items() if prefix)
            if declared > HEADER_NAMESPACE_CHARS:
                raise StreamError(
                    "policy-violation",
                    f"namespace declarations on the stream header exceed "
                    f"{HEADER_NAMESPACE_CHARS} characters",
                )
            self._depth = 1
            self._root = _HEADER_NAMES.get(_clark(name), _clark(name))
            self._header_plain = self._header_ns.keys() <= {None, "stream"}
            self._events.append(StreamOpen(_clark(name), self._attrs(attrs), self._default_ns))
            return
        limits = self.limits
        if depth > limits.depth:  # the new element would sit at stanza depth `depth`
            raise StreamError("policy-violation", "stanza nested too deeply")
        names = len(name) + sum(map(len, attrs)) if attrs else len(name)
        self._names = names if depth == 1 else self._names + names
        if self._names > limits.name_chars:
            raise _too_big()
        tag = "{" + name if _SEP in name else name  # _clark(name), on every element
        if depth == 1:
            self._count = 1
            self._stanza_at = at
            el = Received(tag, self._attrs(attrs))
        else:
            self._count += 1
            if self._count > limits.elements:
                raise StreamError("policy-violation", "too many elements in one stanza")
            if self._text:
                self._flush_text()
            el = Element(tag, self._attrs(attrs))
            self._stack[-1].append(el)
        self._stack.append(el)
        self._depth = depth + 1

    def _end(self, name: str) -> None:
        self._last_event = self._expat.CurrentByteIndex  # _fired(), on every element
        self._depth = depth = self._depth - 1
        if depth == 0:
            self._events.append(StreamClose())
            return
        if self._text:
            self._flush_text()
        el = self._stack.pop()
        if depth == 1:
            self._keep_content(el)
            self._events.append(Stanza(el))

    def _keep_content(self, el: Received) -> None:
        """Let `el` keep its content's bytes (serialized again, they would say the same) when
        they are in the chunk being parsed and mean the same in any stream: no namespace
        declaration on its start tag and no prefix on its name (its children inherit exactly
        the stream's default namespace), and no prefix the stream header declared (only
        `stream` is allowed there, and the bytes may not say 'stream:'). Otherwise serialize()
        writes the element as usual."""
        chunk = self._chunk
        base = self._fed - len(chunk)
        start, end = self._stanza_at - base, self._last_event - base  # _end() just fired
        if start < 0 or end > len(chunk) or not self._header_plain:
            return
        tag = _WHOLE_TAG.match(chunk, start)
        if tag is None or (head_end := tag.end()) > end or chunk[head_end - 2] == _SLASH_B:
            return  # cut across reads, or empty (`<message/>`: nothing to keep)
        # the start tag's bytes, looked at where they are (no copy)
        local = el.tag.rpartition("}")[2].encode()
        name_end = start + 1 + len(local)
        if (
            chunk.find(b"xmlns", start, head_end) >= 0
            or not chunk.startswith(local, start + 1)
            or chunk[name_end] not in _NAME_END
        ):
            return
        content = chunk[head_end : chunk.find(b">", end) + 1]
        if b"stream:" not in content:
            el.keep_content(content)

    def _chars(self, data: str) -> None:
        self._last_event = self._expat.CurrentByteIndex  # _fired(), on every text
        if self._depth >= 2:
            self._text.append(data)
            if len(self._text) > 1024:
                # Text trickled a byte per read comes as one tiny str per byte (~50 bytes of
                # memory each): fold them so memory stays near the size of the text itself.
                self._text = ["".join(self._text)]
        elif data.strip(_XML_WS):
            # Only whitespace (keepalives) may sit between stanzas.
            raise StreamError("not-well-formed", "text outside a stanza")


def _expat_error(e: pyexpat.ExpatError) -> StreamError:
    if e.code in _RESTRICTED_CODES:
        return StreamError("restricted-xml", expat_errors.messages[e.code])
    if e.code in _ENCODING_CODES:
        return StreamError("unsupported-encoding", expat_errors.messages[e.code])
    return StreamError("not-well-formed", expat_errors.messages[e.code])


def parse_fragment(
    xml: str | bytes, default_ns: str = ns.CLIENT, limits: ParserLimits | None = None
) -> Element:
    """Parse one element written by stanza.serialize() (e.g. from storage), with the same rules.

    Raises StreamError if it is not exactly one well-formed, restricted-XML element.
    """
    data = xml.encode("utf-8") if isinstance(xml, str) else xml
    parser = StreamParser(limits or ParserLimits.post_auth())
    events = parser.feed(b"<fragment xmlns='" + default_ns.encode() + b"'>" + data + b"</fragment>")
    stanzas = [e.element for e in events if isinstance(e, Stanza)]
    if len(stanzas) != 1 or not isinstance(events[-1], StreamClose):
        raise StreamError("not-well-formed", "expected exactly one element")
    return stanzas[0]


def _attr_escape(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace("'", "&apos;")

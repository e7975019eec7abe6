"""What every stream kind shares (RFC 6120 section 4), as a sans-I/O base: c2s today, s2s and
component streams next.

Bytes go in through `receive()`; actions come out (`vines_server.xmpp.actions`). The base owns
the parser and its limits, the stream header (our header first, so that any error can follow
it; the namespace checks; the restart count), the features element, restarts (the parser starts
over and whatever was pipelined behind the restart is dropped), stream errors (`fail()`), and
one thing at a time (design decision 11): once an element asks for an answer from outside
(`_request()`), nothing later is handled until `_answered()` takes that very answer; what was
pipelined meanwhile waits, bounded (a few elements, one stanza limit of bytes; more is a
policy-violation), and is handled by the call that delivers the answer (`_resume()`).

A kind says what its header must carry (`_check_header`), which features it offers
(`_features`) and what each first-level element does in each state (`_handle`).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, ClassVar
from xml.etree.ElementTree import Element

from vines_server.xmpp import ns, tokens
from vines_server.xmpp.actions import Action, Close, Request, Send
from vines_server.xmpp.errors import StreamError
from vines_server.xmpp.jid import JID, JIDError
from vines_server.xmpp.parser import (
    Event,
    ParserLimits,
    Stanza,
    StreamClose,
    StreamOpen,
    StreamParser,
)
from vines_server.xmpp.stanza import STREAM_CLOSE, serialize, stream_error, stream_header

_STREAM_PREFIX = "{" + ns.STREAM + "}"


class State(Enum):
    """The chain of states (Vines: Start -> TLS -> Auth -> Bind -> Ready); a kind uses the
    ones it needs (a component stream: Start -> Auth -> Ready)."""

    START = "start"  # waiting for a stream header
    TLS = "tls"  # header seen, STARTTLS required
    HANDSHAKE = "handshake"  # <proceed/> sent, TLS handshake in progress
    AUTH = "auth"  # encrypted, waiting for authentication
    SASL = "sasl"  # inside a SASL exchange
    BIND = "bind"  # authenticated, resource not yet bound
    BINDING = "binding"  # bind request handed to the server
    READY = "ready"
    CLOSED = "closed"

    # Members are singletons compared by identity: the identity hash is a C slot, where Enum's
    # own hashes the name in Python (a stream looks its handler up by state for every element)
    __hash__ = object.__hash__


@dataclass(frozen=True)
class StreamSettings:
    domains: frozenset[str]
    preauth_limits: ParserLimits
    limits: ParserLimits
    stream_restarts: int = 32
    # Elements a peer may pipeline behind one that waits for an answer (bytes: one stanza
    # limit); a legitimate peer sends a few (presence, roster get after bind), never more.
    pipelined: int = 16


@dataclass
class Stream:
    settings: Any  # a StreamSettings (or a kind's subclass of it)
    state: State = State.START
    domain: str | None = None  # fixed by the first header; may not change across restarts
    stream_id: str = ""
    _parser: StreamParser = field(init=False)
    _header_sent: bool = False
    _restarts: int = 0
    _exchanges: int = 0  # numbers each request, so an answer names the one it answers
    _awaiting: Request | None = None  # the request whose answer must come before anything else
    # parsed, not handled yet; () while there are none (an idle stream holds no deque block)
    _events: deque[Event] | tuple[()] = ()
    _unparsed: bytearray = field(default_factory=bytearray)  # received, not parsed yet

    DEFAULT_NS: ClassVar[str] = ns.CLIENT

    def __post_init__(self) -> None:
        self._parser = StreamParser(self.settings.preauth_limits)

    # ---- what a kind provides --------------------------------------------------------------

    def _check_header(self, attrs: dict[str, str], domain: str | None) -> StreamError | None:
        """The kind's rules for a header (after the namespace checks); None accepts it."""
        raise NotImplementedError

    def _features(self) -> Element | None:
        """The <stream:features/> to offer now (may advance the state); None sends none."""
        raise NotImplementedError

    def _handle(self, el: Element) -> list[Action]:
        """A first-level element in the current state; may raise StreamError."""
        raise NotImplementedError

    # ---- inputs ----------------------------------------------------------------------------

    @property
    def negotiating(self) -> bool:
        return self.state not in (State.READY, State.CLOSED)

    @property
    def partial(self) -> bool:
        """A stanza is half received (the connection runs the stanza deadline meanwhile)."""
        return self._parser.partial

    def hibernate(self) -> bool:
        """An idle, ready stream lets go of its XML parser until the next byte (memory)."""
        return self.state is State.READY and self._parser.hibernate()

    def release(self) -> None:
        """The connection is gone: the parser lets go of Expat now (StreamParser.close)."""
        self._parser.close()

    def receive(self, data: bytes) -> list[Action]:
        if self.state in (State.CLOSED, State.HANDSHAKE):
            # During the handshake only TLS records may come; plaintext pipelined behind
            # <starttls/> is never parsed as if it had been protected.
            return []
        self._unparsed += data
        if self._awaiting is not None:
            return self._check_pipelined()
        return self._run()

    def fail(self, err: StreamError) -> list[Action]:
        """Server-initiated end: header if none was sent yet, the error, the close tag."""
        if self.state is State.CLOSED:
            return []
        self._drop_pipelined()
        self._awaiting = None
        out: list[Action] = []
        if not self._header_sent:
            out.append(Send(self._header_bytes(self._default_domain())))
        out.append(Send(stream_error(err) + STREAM_CLOSE))
        out.append(Close(err))
        self.state = State.CLOSED
        return out

    # ---- one element at a time -------------------------------------------------------------

    def _run(self) -> list[Action]:
        """Handle what was received, in order, until it is used up or an answer is awaited."""
        out: list[Action] = []
        parser = self._parser
        try:
            while self._awaiting is None:
                if self._events:
                    out += self._on_event(self._events.popleft())
                    if self.state in (State.CLOSED, State.HANDSHAKE):
                        self._drop_pipelined()
                        return out
                elif self._unparsed:
                    # Feed at most one stanza limit at a time, so the first error in byte order
                    # wins: 64 KiB of garbage before the header is not-well-formed, not "stanza
                    # too big"; and an await holds at most that much parsed.
                    step = parser.limits.stanza_size
                    if len(self._unparsed) <= step:  # nearly always: one copy, not two
                        chunk = bytes(self._unparsed)
                        self._unparsed.clear()
                    else:
                        chunk = bytes(self._unparsed[:step])
                        del self._unparsed[:step]
                    self._events = deque(parser.feed(chunk))
                else:
                    self._events = ()
                    return out
        except StreamError as err:
            return out + self.fail(err)
        request = self._awaiting
        refused = self._check_pipelined()
        if refused:  # the connection must not act on a request nobody waits for any more
            out = [action for action in out if action is not request]
        return out + refused

    def _on_event(self, event: Event) -> list[Action]:
        if isinstance(event, StreamOpen):
            return self._on_header(event)
        if isinstance(event, Stanza):
            return self._on_element(event.element)
        assert isinstance(event, StreamClose)
        return self._close_clean()

    def _request(self, request: Request) -> list[Action]:
        """Hand `request` to the connection; nothing more is handled until it is answered."""
        self._awaiting = request
        return [request]

    def _next_exchange(self) -> int:
        self._exchanges += 1
        return self._exchanges

    def _answered(self, request: Request) -> bool:
        """Take an answer only for the request the stream waits for (same kind, same exchange):
        a late or repeated answer is ignored, whatever it says."""
        if self.state is State.CLOSED or self._awaiting is None or request != self._awaiting:
            return False
        self._awaiting = None
        return True

    def _resume(self, out: list[Action]) -> list[Action]:
        """After an answer: the elements pipelined behind the request get their turn."""
        if self.state is State.CLOSED or self._awaiting is not None:
            return out
        return out + self._run()

    def _check_pipelined(self) -> list[Action]:
        """What waits behind a request is bounded: a few elements, one stanza limit of bytes."""
        held, unparsed = len(self._events), len(self._unparsed)
        if held <= self.settings.pipelined and unparsed <= self._parser.limits.stanza_size:
            return []
        text = "too much pipelined while waiting for an answer"
        return self.fail(StreamError("policy-violation", text))

    def _drop_pipelined(self) -> None:
        self._events = ()
        self._unparsed.clear()

    # ---- stream header ---------------------------------------------------------------------

    def _on_header(self, event: StreamOpen) -> list[Action]:
        attrs = event.attrs
        to = attrs.get("to")
        # Send our header first so that any error below can follow it (RFC 6120 4.9.1.2).
        try:
            domain = JID.parse(to).domain if to else None
        except JIDError:
            domain = None
        self.stream_id = tokens.token_hex(8)
        header = self._header_bytes(self._reply_from(domain))
        self._header_sent = True

        if event.tag != ns.q(ns.STREAM, "stream") or event.default_ns != self.DEFAULT_NS:
            return [Send(header), *self.fail(StreamError("invalid-namespace"))]
        refused = self._check_header(attrs, domain)
        if refused is not None:
            return [Send(header), *self.fail(refused)]
        self._restarts += 1
        if self._restarts > self.settings.stream_restarts:
            return [Send(header), *self.fail(StreamError("policy-violation", "too many restarts"))]
        self.domain = domain
        features = self._offer()
        if features is None:  # a kind without features (XEP-0114 component streams)
            return [Send(header)]
        return [Send(header + b"<stream:features>" + features + b"</stream:features>")]

    def _offer(self) -> bytes | None:
        """The serialized children of `_features()` (None: no features element). A kind whose
        offer depends on a few inputs may serve it from a cache instead."""
        offered = self._features()
        if offered is None:
            return None
        return b"".join(serialize(child) for child in offered)

    def _reply_from(self, domain: str | None) -> str:
        """Our header's `from`: the domain asked for when we host it, else one we host."""
        if domain in self.settings.domains:
            return domain
        return self.domain if self.domain is not None else self._default_domain()

    def _default_domain(self) -> str:
        return next(iter(sorted(self.settings.domains)))

    def _header_bytes(self, from_: str) -> bytes:
        return stream_header(from_=from_, to=None, id_=self.stream_id, default_ns=self.DEFAULT_NS)

    def _restart(self, state: State) -> None:
        # After <starttls/> or an authentication success the stream starts over: anything
        # pipelined behind it predates the new stream and is dropped, never parsed as if it
        # had been protected or authenticated.
        self._drop_pipelined()
        self._parser.reset()
        self._header_sent = False
        self.state = state

    def _close_clean(self) -> list[Action]:
        self.state = State.CLOSED
        return [Send(STREAM_CLOSE), Close(None)]

    # ---- first-level elements --------------------------------------------------------------

    def _on_element(self, el: Element) -> list[Action]:
        if self.state is State.START:  # nothing may arrive before a header
            raise StreamError("not-well-formed")
        for child in el.iter():
            # A stream-namespace element (e.g. <stream:stream>) nested in a stanza would be
            # forwarded to the recipient as stream-level markup: refuse it.
            if child is not el and child.tag.startswith(_STREAM_PREFIX):
                raise StreamError("not-well-formed", "stream element inside a stanza")
        return self._handle(el)

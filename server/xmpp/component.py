"""External component streams (XEP-0114, jabber:component:accept) as a sans-I/O state machine on
the stream base (`stream.py`: parser limits, header, errors, one thing at a time).

The chain is Start -> Auth -> Ready. The header names the component's domain in `to` (no
`version` is required: slixmpp's ComponentXMPP sends none); our header always carries an `id`,
because the component's `<handshake>` is the hex SHA-1 of that id and the shared secret
(compared in constant time). A correct handshake asks the connection to claim the domain
(`ClaimDomain`: a second connection for it is refused or replaces the first); the success
`<handshake/>` goes out only once the claim is answered (`claimed()`).

Once ready, each stanza must say `to` and a `from` that is the component's domain or a JID on
it; it is handed on in the client namespace (`ComponentStanza`), so the router and the modules
see one namespace whatever stream a stanza came by.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element

from vines_server.xmpp import ns
from vines_server.xmpp.actions import Action, AuthFailed, Send
from vines_server.xmpp.errors import StanzaError, StreamError
from vines_server.xmpp.jid import JID, JIDError
from vines_server.xmpp.stanza import error_reply, serialize
from vines_server.xmpp.stream import State, Stream, StreamSettings

_COMPONENT_PREFIX = "{" + ns.COMPONENT + "}"
STANZA_TAGS = frozenset(ns.q(ns.COMPONENT, t) for t in ("message", "presence", "iq"))
HANDSHAKE = ns.q(ns.COMPONENT, "handshake")


@dataclass(frozen=True)
class ComponentSettings(StreamSettings):
    # component domain -> shared secret (`domains` holds the same names, for the header)
    secrets: dict[str, str] = field(default_factory=dict, repr=False)


@dataclass
class ClaimDomain:
    """The handshake is right: may this stream serve `domain`? Answer with claimed()."""

    domain: str
    exchange: int


@dataclass
class ComponentStanza:
    """A stanza from the ready component, checked and in the client namespace."""

    element: Element


def handshake_digest(stream_id: str, secret: str) -> str:
    """XEP-0114 section 3: hex SHA-1 of the stream id followed by the secret."""
    return hashlib.sha1((stream_id + secret).encode("utf-8")).hexdigest()


@dataclass
class ComponentStream(Stream):
    settings: ComponentSettings
    tls: bool = False  # True on a direct-TLS component listener
    _claim: ClaimDomain | None = None

    DEFAULT_NS = ns.COMPONENT

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.tls:  # direct TLS: nothing is read until the handshake is done
            self.state = State.HANDSHAKE

    # ---- answers from outside ----------------------------------------------------------------

    def tls_established(self, channel_bindings: dict[str, bytes]) -> list[Action]:
        if self.state is State.HANDSHAKE:
            self.state = State.START
        return []

    def claimed(self, request: ClaimDomain, refusal: StreamError | None) -> list[Action]:
        """The answer to `request`: None when this stream now serves the domain."""
        if not self._answered(request):
            return []
        if refusal is not None:
            return self.fail(refusal)
        self.state = State.READY
        self._parser.limits = self.settings.limits
        return self._resume([Send(b"<handshake/>")])

    # ---- header and features -----------------------------------------------------------------

    def _check_header(self, attrs: dict[str, str], domain: str | None) -> StreamError | None:
        to = attrs.get("to")
        if not to or domain is None or "@" in to or "/" in to:
            return StreamError("improper-addressing")
        if domain not in self.settings.secrets:
            return StreamError("host-unknown")
        if self._restarts:  # a component stream never restarts
            return StreamError("policy-violation", "one stream header per component stream")
        return None

    def _features(self) -> None:
        self.state = State.AUTH  # XEP-0114 streams offer no features: the handshake is next
        return None

    def _reply_from(self, domain: str | None) -> str:
        return domain if domain in self.settings.secrets else self._default_domain()

    # ---- first-level elements ----------------------------------------------------------------

    def _handle(self, el: Element) -> list[Action]:
        if self.state is State.AUTH:
            if el.tag != HANDSHAKE:
                raise StreamError("not-authorized", "send the handshake first")
            return self._handshake(el)
        if self.state is State.READY:
            if el.tag == HANDSHAKE:
                raise StreamError("policy-violation", "already authenticated")
            if el.tag not in STANZA_TAGS:
                raise StreamError("unsupported-stanza-type")
            return self._stanza(el)
        raise StreamError("not-authorized", "the handshake is in progress")

    def _handshake(self, el: Element) -> list[Action]:
        assert self.domain is not None
        expected = handshake_digest(self.stream_id, self.settings.secrets[self.domain])
        given = (el.text or "").strip().lower()
        if not hmac.compare_digest(given.encode("ascii", "replace"), expected.encode("ascii")):
            # counted against the peer's IP like a failed login: guessing a secret costs a ban
            return [AuthFailed("not-authorized"), *self.fail(StreamError("not-authorized"))]
        self.state = State.BINDING
        self._claim = ClaimDomain(self.domain, self._next_exchange())
        return self._request(self._claim)

    def _stanza(self, el: Element) -> list[Action]:
        assert self.domain is not None
        claimed = el.get("from")
        try:
            sender = JID.parse(claimed) if claimed else None
        except JIDError:
            raise StreamError("invalid-from") from None
        if sender is not None and sender.domain != self.domain:
            raise StreamError("invalid-from", f"a component may send only from {self.domain}")
        to_client_namespace(el)
        if sender is None or not el.get("to"):
            # XEP-0114: a component addresses both ends of every stanza (Prosody: bad-request)
            if el.get("type") == "error":
                return []
            err = StanzaError("bad-request", "a component's stanza needs 'from' and 'to'")
            return [Send(serialize(error_reply(el, err)))]
        return [ComponentStanza(el)]


def to_client_namespace(el: Element) -> None:
    """A component's stanza (and its children in the stream namespace) in jabber:client, the
    namespace routing and modules read; serializing it again on any stream restores the
    stream's own default namespace."""
    for node in el.iter():
        if node.tag.startswith(_COMPONENT_PREFIX):
            node.tag = ns.q(ns.CLIENT, node.tag[len(_COMPONENT_PREFIX) :])

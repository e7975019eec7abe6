"""Server-to-server streams (RFC 6120, XEP-0178, XEP-0220) as sans-I/O state machines on the
stream base (`stream.py`: parser limits, header, restarts, stream errors, one thing at a time).

Two kinds, one per direction (RFC 6120 streams are one-way for stanzas):

- `S2SInStream`: a peer server connected to us. STARTTLS is required; after TLS the connection
  hands us a judge of the peer's certificate (`tls_established(judge)`, pure CPU: the chain and
  the RFC 6125 names), and the features depend on its verdict for the header's `from`: SASL
  EXTERNAL only when it verified (XEP-0178), the dialback feature (with `<errors/>`) only for a
  peer that opted into it, and neither: `not-authorized` naming the reason. After
  authentication, stanzas from a domain not authenticated on this stream are `invalid-from`,
  to a domain we do not host `host-unknown`.
- `S2SOutStream`: we connect to a peer. We open, require its STARTTLS, judge its certificate for
  its domain, use EXTERNAL when offered and it verified, else dialback when the peer opted in,
  else fail.

Policy (allowlist/blocklist, who may use dialback) is a `Policy` the connection keeps current,
so that run-time edits apply to the next header or dialback request at once. Dialback answers
are taken only when they correlate with a request this server made (`dialback.Correlation`,
one table per server, passed in).

Stanzas cross in the `jabber:server` namespace; inside the server they are `jabber:client`
elements like any other (`to_client`), and `serialize(el)` writes a client element without a
namespace declaration, which a `jabber:server` stream reads as its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol
from xml.etree.ElementTree import Element

from vines_server.xmpp import ns
from vines_server.xmpp.actions import Action, Close, Send, StanzaIn, StartTLS
from vines_server.xmpp.dialback import Answer, Correlation, DialbackError, check_key, make_key
from vines_server.xmpp.errors import StreamError
from vines_server.xmpp.jid import JID, JIDError
from vines_server.xmpp.parser import StreamOpen
from vines_server.xmpp.sasl import PayloadError, decode_payload, encode_payload
from vines_server.xmpp.stanza import STREAM_CLOSE, make, serialize, stream_header
from vines_server.xmpp.stream import State, Stream, StreamSettings

__all__ = [
    "DIALBACK",
    "DIALBACK_FEATURES",
    "DialbackVerified",
    "DialbackVerify",
    "Judge",
    "OutboundFailed",
    "OutboundReady",
    "PeerAuthenticated",
    "Policy",
    "S2SInStream",
    "S2SOutStream",
    "S2SSettings",
    "to_client",
]

DIALBACK = "jabber:server:dialback"
DIALBACK_FEATURES = "urn:xmpp:features:dialback"
_SERVER_PREFIX = "{" + ns.SERVER + "}"
STANZA_TAGS = frozenset(ns.q(ns.SERVER, t) for t in ("message", "presence", "iq"))


class Policy(Protocol):
    """Who may federate with whom, kept current by the connection layer (run-time edits)."""

    def allows(self, local: str, remote: str) -> bool: ...

    def dialback(self, remote: str) -> bool: ...


class VerdictLike(Protocol):
    @property
    def verified(self) -> bool: ...

    @property
    def reason(self) -> str: ...


Judge = Callable[[str], VerdictLike]
"""The peer's certificate judged for a domain (`peercert.verify_peer` bound to its chain)."""


@dataclass(frozen=True)
class S2SSettings(StreamSettings):
    policy: Policy | None = None
    secret: bytes = b""  # the dialback secret (XEP-0185), kept in the store


# ---- actions of s2s streams -----------------------------------------------------------------


@dataclass
class PeerAuthenticated:
    """Inbound: `domain` may now send stanzas on this stream (how: EXTERNAL or dialback)."""

    domain: str
    mechanism: str


@dataclass
class DialbackVerify:
    """Inbound, receiving-server role: ask `remote`'s authoritative server whether `key` is
    its key for (local, remote, stream_id), by sending `element` on an outbound stream to it.
    The answer comes back through `S2SOutStream` as `DialbackVerified`."""

    local: str
    remote: str
    stream_id: str
    element: Element


@dataclass
class DialbackVerified:
    """Outbound: the authoritative server answered a db:verify we sent (correlated): hand it to
    the inbound stream `stream_id` (`S2SInStream.dialback_verified`)."""

    local: str
    remote: str
    stream_id: str
    valid: bool


@dataclass
class OutboundReady:
    """Outbound: authenticated for (local, remote) by `mechanism`; stanzas may flow."""

    mechanism: str


@dataclass
class OutboundFailed:
    """Outbound: the stream cannot be authenticated (`reason` for logs and bounces)."""

    reason: str


def to_client(el: Element) -> Element:
    """A stanza read from an s2s stream, renamed from `jabber:server` to `jabber:client` (in
    place) so the rest of the server sees one namespace."""
    for node in el.iter():
        if node.tag.startswith(_SERVER_PREFIX):
            node.tag = ns.q(ns.CLIENT, node.tag[len(_SERVER_PREFIX) :])
    return el


def _stream_error_text(el: Element) -> str:
    """'policy-violation (a.test does not federate with b.test)' from a <stream:error/>."""
    condition, text = "undefined-condition", ""
    for child in el:
        name = child.tag.rpartition("}")[2]
        if name == "text":
            text = (child.text or "").strip()
        elif child.tag.startswith("{" + ns.STREAMS_ERR + "}"):
            condition = name
    return f"{condition} ({text})" if text else condition


def _domain(value: str | None) -> str | None:
    """A bare domain from an attribute, or None when absent or not a domain."""
    if not value:
        return None
    try:
        jid = JID.parse(value)
    except JIDError:
        return None
    return jid.domain if jid.local is None and jid.resource is None else None


def _db(tag: str, attrs: dict[str, str], text: str | None = None, error: str | None = None):
    el = make(ns.q(DIALBACK, tag), attrs, text)
    if error is not None:
        cond_type = "auth" if error in ("not-authorized", "forbidden") else "cancel"
        err = make(ns.q(DIALBACK, "error"), {"type": cond_type})
        err.append(make(ns.q(ns.STANZAS_ERR, error)))
        el.append(err)
    return el


def _header(from_: str, to: str | None, id_: str | None) -> bytes:
    header = stream_header(from_=from_, to=to, id_=id_, default_ns=ns.SERVER)
    # Declared for servers that look for it before they offer or use dialback (XEP-0220 2.4).
    return header.replace(b"<stream:stream ", f"<stream:stream xmlns:db='{DIALBACK}' ".encode(), 1)


# ---- inbound ----------------------------------------------------------------------------------


@dataclass
class S2SInStream(Stream):
    settings: S2SSettings
    dialback: Correlation = field(default_factory=Correlation)
    tls: bool = False  # True from the start on a direct-TLS listener (XEP-0368)
    remote: str | None = None  # the header's `from`, fixed by the first header
    verdict: VerdictLike | None = None
    authenticated: set[str] = field(default_factory=set)  # domains that may send here
    mechanism: str | None = None
    _judge: Judge | None = None

    DEFAULT_NS = ns.SERVER

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.tls:
            self.state = State.HANDSHAKE

    @property
    def policy(self) -> Policy:
        assert self.settings.policy is not None
        return self.settings.policy

    # ---- answers from outside ----------------------------------------------------------------

    def tls_established(self, judge: Judge) -> list[Action]:
        if self.state is not State.HANDSHAKE:
            return []
        self.tls = True
        self._judge = judge
        self._restart(State.START)
        return []

    def dialback_verified(self, remote: str, valid: bool) -> list[Action]:
        """The authoritative server's answer (already correlated) to our db:verify for `remote`
        on this stream: tell the peer, and let `remote` send stanzas when valid."""
        if self.state is State.CLOSED or self.domain is None:
            return []
        attrs = {"from": self.domain, "to": remote}
        if not valid:
            # XEP-0220 2.3.2: an invalid key ends the stream after the answer
            answer = serialize(_db("result", {**attrs, "type": "invalid"}), None)
            return [Send(answer), *self.fail(StreamError("not-authorized", "dialback key invalid"))]
        self.authenticated.add(remote)
        self.mechanism = self.mechanism or "dialback"
        if self.state is not State.READY:
            self.state = State.READY
            self._parser.limits = self.settings.limits
        answer = serialize(_db("result", {**attrs, "type": "valid"}), None)
        return [Send(answer), PeerAuthenticated(remote, "dialback")]

    # ---- header and features ---------------------------------------------------------------

    def _header_bytes(self, from_: str) -> bytes:
        return _header(from_, self.remote, self.stream_id)

    def _on_header(self, event: StreamOpen) -> list[Action]:
        # the reply header names the peer as `to` when it gave a usable `from`
        self.remote = self.remote or _domain(event.attrs.get("from"))
        return super()._on_header(event)

    def _check_header(self, attrs: dict[str, str], domain: str | None) -> StreamError | None:
        version = attrs.get("version", "")
        if not version or version.split(".")[0] != "1":
            return StreamError("unsupported-version")
        to, from_ = attrs.get("to"), _domain(attrs.get("from"))
        if not to or domain is None or "@" in to or "/" in to or from_ is None:
            return StreamError("improper-addressing", "a server stream names both domains")
        if domain not in self.settings.domains:
            return StreamError("host-unknown")
        if (self.domain is not None and domain != self.domain) or from_ != self.remote:
            return StreamError("not-authorized", "domain changed")
        if not self.policy.allows(domain, from_):
            return StreamError("policy-violation", f"{domain} does not federate with {from_}")
        if self.tls and self.state is not State.READY and self.verdict is None:
            assert self._judge is not None
            self.verdict = self._judge(from_)
            if not self.verdict.verified and not self.policy.dialback(from_):
                return StreamError("not-authorized", self.verdict.reason)
        return None

    def _features(self) -> Element:
        features = make(ns.q(ns.STREAM, "features"))
        if not self.tls:
            starttls = make(ns.q(ns.TLS, "starttls"), children=[make(ns.q(ns.TLS, "required"))])
            features.append(starttls)
            self.state = State.TLS
        elif self.authenticated:
            self.state = State.READY  # after SASL EXTERNAL: nothing more to negotiate
        else:
            assert self.verdict is not None and self.remote is not None
            if self.verdict.verified:
                mechs = make(ns.q(ns.SASL, "mechanisms"))
                mechs.append(make(ns.q(ns.SASL, "mechanism"), text="EXTERNAL"))
                features.append(mechs)
            if self.policy.dialback(self.remote):
                dialback = make(ns.q(DIALBACK_FEATURES, "dialback"))
                dialback.append(make(ns.q(DIALBACK_FEATURES, "errors")))
                features.append(dialback)
            self.state = State.AUTH
        return features

    # ---- first-level elements ----------------------------------------------------------------

    def _handle(self, el: Element) -> list[Action]:
        if self.state is State.TLS:
            if el.tag == ns.q(ns.TLS, "starttls"):
                self.state = State.HANDSHAKE
                return [Send(serialize(make(ns.q(ns.TLS, "proceed")))), StartTLS()]
            raise StreamError("policy-violation", "STARTTLS is required")
        if el.tag == ns.q(DIALBACK, "verify"):
            return self._db_verify(el)
        if el.tag == ns.q(DIALBACK, "result"):
            return self._db_result(el)
        if self.state is State.AUTH:
            if el.tag == ns.q(ns.SASL, "auth"):
                return self._external(el)
            raise StreamError("not-authorized", "authenticate first")
        if self.state is State.READY and el.tag in STANZA_TAGS:
            return self._stanza(el)
        if el.tag == ns.q(ns.SASL, "auth"):
            raise StreamError("policy-violation", "already authenticated")
        raise StreamError("unsupported-stanza-type")

    def _external(self, el: Element) -> list[Action]:
        assert self.remote is not None and self.verdict is not None
        if el.get("mechanism") != "EXTERNAL" or not self.verdict.verified:
            return self._sasl_failure(
                "invalid-mechanism" if self.verdict.verified else "not-authorized"
            )
        try:
            authzid = decode_payload(el.text or "=").decode("utf-8")
        except (PayloadError, UnicodeDecodeError):
            return self._sasl_failure("incorrect-encoding")
        if authzid and _domain(authzid) != self.remote:
            return self._sasl_failure("invalid-authzid")
        self.authenticated.add(self.remote)
        self.mechanism = "EXTERNAL"
        success = serialize(make(ns.q(ns.SASL, "success")))
        self._restart(State.START)
        self._parser.limits = self.settings.limits
        return [Send(success), PeerAuthenticated(self.remote, "EXTERNAL")]

    def _sasl_failure(self, condition: str) -> list[Action]:
        failure = make(ns.q(ns.SASL, "failure"), children=[make(ns.q(ns.SASL, condition))])
        out: list[Action] = [Send(serialize(failure))]
        assert self.remote is not None
        if not self.policy.dialback(self.remote):
            # XEP-0178: without dialback, a failed EXTERNAL leaves nothing else to try
            out += self.fail(StreamError("not-authorized", condition))
        return out

    def _db_result(self, el: Element) -> list[Action]:
        """Receiving-server role: the peer claims `from` with a key; ask its authoritative
        server (XEP-0220 2.1.2), or answer with a dialback error."""
        local, remote = _domain(el.get("to")), _domain(el.get("from"))
        if el.get("type") is not None:  # an answer on an inbound stream: nobody asked here
            return []
        attrs = {"from": el.get("to", ""), "to": el.get("from", "")}
        if local is None or remote is None:
            raise StreamError("improper-addressing", "dialback names both domains")
        if local not in self.settings.domains:
            return [
                Send(
                    serialize(
                        _db("result", {**attrs, "type": "error"}, error="item-not-found"), None
                    )
                )
            ]
        if not self.policy.allows(local, remote):
            return [
                Send(
                    serialize(
                        _db("result", {**attrs, "type": "error"}, error="policy-violation"), None
                    )
                )
            ]
        if not self.policy.dialback(remote):
            return [
                Send(serialize(_db("result", {**attrs, "type": "error"}, error="forbidden"), None))
            ]
        key = (el.text or "").strip()
        try:
            self.dialback.expect_verify(local, remote, self.stream_id)
        except DialbackError:
            return [
                Send(
                    serialize(
                        _db("result", {**attrs, "type": "error"}, error="not-acceptable"), None
                    )
                )
            ]
        verify = _db("verify", {"from": local, "to": remote, "id": self.stream_id}, key)
        return [DialbackVerify(local, remote, self.stream_id, verify)]

    def _db_verify(self, el: Element) -> list[Action]:
        """Authoritative-server role: the receiving server asks whether a key is ours for
        (it, us, the stream id it gave our outbound stream)."""
        if el.get("type") is not None:
            return []  # answers come back on outbound streams only
        receiving, originating = _domain(el.get("from")), _domain(el.get("to"))
        attrs = {"from": el.get("to", ""), "to": el.get("from", ""), "id": el.get("id", "")}
        if originating not in self.settings.domains or receiving is None:
            return [
                Send(
                    serialize(
                        _db("verify", {**attrs, "type": "error"}, error="item-not-found"), None
                    )
                )
            ]
        valid = check_key(
            self.settings.secret, receiving, originating, el.get("id", ""), el.text or ""
        )
        answer = _db("verify", {**attrs, "type": "valid" if valid else "invalid"})
        return [Send(serialize(answer, None))]

    def _stanza(self, el: Element) -> list[Action]:
        from_, to = el.get("from"), el.get("to")
        if not from_ or not to:
            raise StreamError("improper-addressing", "a server stanza names both ends")
        try:
            sender, recipient = JID.parse(from_), JID.parse(to)
        except JIDError:
            raise StreamError("improper-addressing", "a malformed address") from None
        if sender.domain not in self.authenticated:
            raise StreamError("invalid-from", f"{sender.domain} is not authenticated here")
        if recipient.domain not in self.settings.domains:
            raise StreamError("host-unknown", f"{recipient.domain} is not hosted here")
        if not self.policy.allows(recipient.domain, sender.domain):
            raise StreamError(
                "policy-violation", f"{recipient.domain} does not federate with {sender.domain}"
            )
        return [StanzaIn(to_client(el))]

    def _close_clean(self) -> list[Action]:
        self.dialback.stream_closed(self.stream_id)
        return super()._close_clean()

    def fail(self, err: StreamError) -> list[Action]:
        if self.stream_id:
            self.dialback.stream_closed(self.stream_id)
        return super().fail(err)


# ---- outbound ---------------------------------------------------------------------------------


@dataclass
class S2SOutStream(Stream):
    """We initiate: `open()` first, then feed what the peer sends."""

    settings: S2SSettings
    local: str = ""
    remote: str = ""
    dialback: Correlation = field(default_factory=Correlation)
    tls: bool = False  # direct TLS: the connection did the handshake before open()
    verdict: VerdictLike | None = None
    mechanism: str | None = None
    peer_stream_id: str = ""  # the id in the peer's header (dialback keys are over it)
    _judge: Judge | None = None
    _started: bool = False
    _db_sent: bool = False
    _verifies: list[Element] = field(default_factory=list)  # db:verify waiting for features

    DEFAULT_NS = ns.SERVER

    def open(self, judge: Judge | None = None) -> list[Action]:
        """Our header (also after each restart). On direct TLS pass the judge here."""
        if judge is not None:
            self.tls = True
            refused = self._judged(judge)
            if refused:
                return refused
        self._header_sent = True
        self.state = State.START
        return [Send(_header(self.local, self.remote, None))]

    def tls_established(self, judge: Judge) -> list[Action]:
        if self.state is not State.HANDSHAKE:
            return []
        self.tls = True
        refused = self._judged(judge)
        if refused:
            return refused
        self._restart(State.START)
        return self.open()

    def _judged(self, judge: Judge) -> list[Action]:
        """Judge the peer's certificate for its domain; refuse it unless it verified or the
        peer opted into dialback."""
        assert self.settings.policy is not None
        self.verdict = judge(self.remote)
        if not self.verdict.verified and not self.settings.policy.dialback(self.remote):
            return self._give_up(f"{self.remote}: {self.verdict.reason}")
        return []

    def send_verify(self, element: Element) -> list[Action]:
        """Send a db:verify (receiving-server role) once the stream is encrypted."""
        if self.state is State.CLOSED:
            return []
        if self.tls and self.state in (State.AUTH, State.READY):
            return [Send(serialize(element, None))]
        self._verifies.append(element)
        return []

    # ---- peer input ----------------------------------------------------------------------

    def _header_bytes(self, from_: str) -> bytes:
        return _header(self.local, self.remote, None)

    def _on_header(self, event: StreamOpen) -> list[Action]:
        if event.tag != ns.q(ns.STREAM, "stream") or event.default_ns != ns.SERVER:
            return self.fail(StreamError("invalid-namespace"))
        version = event.attrs.get("version", "")
        if not version or version.split(".")[0] != "1":
            return self.fail(StreamError("unsupported-version"))
        if _domain(event.attrs.get("from")) not in (None, self.remote):
            return self.fail(StreamError("invalid-from", "the peer answered for another domain"))
        self.peer_stream_id = event.attrs.get("id", "")
        self.state = State.TLS if not self.tls else State.AUTH
        return []

    def _handle(self, el: Element) -> list[Action]:
        if el.tag == ns.q(ns.STREAM, "features"):
            return self._on_features(el)
        if el.tag == ns.q(ns.STREAM, "error"):
            return self._give_up("the peer closed the stream: " + _stream_error_text(el))
        if el.tag == ns.q(ns.TLS, "proceed") and self.state is State.TLS:
            self.state = State.HANDSHAKE
            return [StartTLS()]
        if el.tag == ns.q(ns.SASL, "success") and self.state is State.SASL:
            self.mechanism = "EXTERNAL"
            self._restart(State.START)
            self._parser.limits = self.settings.limits
            return self.open()
        if el.tag == ns.q(ns.SASL, "failure") and self.state is State.SASL:
            return self._dialback_or_fail("SASL EXTERNAL refused")
        if el.tag == ns.q(DIALBACK, "result") and el.get("type") is not None:
            return self._on_result(el)
        if el.tag == ns.q(DIALBACK, "verify") and el.get("type") is not None:
            return self._on_verify(el)
        raise StreamError("unsupported-stanza-type")

    def _on_features(self, el: Element) -> list[Action]:
        if not self.tls:
            if el.find(ns.q(ns.TLS, "starttls")) is None:
                return self._give_up("the peer does not offer STARTTLS")
            return [Send(serialize(make(ns.q(ns.TLS, "starttls"))))]
        out: list[Action] = [Send(serialize(v, None)) for v in self._verifies]
        self._verifies.clear()
        if self.mechanism is not None:  # the features after SASL: nothing more to negotiate
            self.state = State.READY
            return [*out, OutboundReady(self.mechanism)]
        self.state = State.AUTH
        mechs = el.find(ns.q(ns.SASL, "mechanisms"))
        offered = (
            {(m.text or "").strip() for m in mechs.findall(ns.q(ns.SASL, "mechanism"))}
            if mechs is not None
            else set()
        )
        assert self.verdict is not None
        if "EXTERNAL" in offered and self.verdict.verified:
            self.state = State.SASL
            auth = make(
                ns.q(ns.SASL, "auth"), {"mechanism": "EXTERNAL"}, encode_payload(b"") or "="
            )
            return [*out, Send(serialize(auth))]
        return out + self._dialback_or_fail("the peer does not offer SASL EXTERNAL")

    def _dialback_or_fail(self, why: str) -> list[Action]:
        assert self.settings.policy is not None
        if not self.settings.policy.dialback(self.remote):
            return self._give_up(why + f" and dialback is not enabled for {self.remote}")
        if self._db_sent or not self.peer_stream_id:
            return self._give_up(why + " and dialback is not possible")
        try:
            self.dialback.expect_result(self.local, self.remote)
            key = make_key(self.settings.secret, self.remote, self.local, self.peer_stream_id)
        except DialbackError as exc:
            return self._give_up(str(exc))
        self._db_sent = True
        self.state = State.AUTH
        result = _db("result", {"from": self.local, "to": self.remote}, key)
        return [Send(serialize(result, None))]

    def _on_result(self, el: Element) -> list[Action]:
        if _domain(el.get("from")) != self.remote or _domain(el.get("to")) != self.local:
            return []  # not our pair: ignored like any uncorrelated answer
        answer = self.dialback.answer_result(self.local, self.remote, el.get("type"))
        if answer is None:
            if el.get("type") == "error" and self._db_sent:
                return self._give_up("dialback refused by the peer")
            return []
        if answer is Answer.VALID:
            self.mechanism = "dialback"
            self.state = State.READY
            self._parser.limits = self.settings.limits
            return [OutboundReady("dialback")]
        return self._give_up("the peer found our dialback key invalid")

    def _on_verify(self, el: Element) -> list[Action]:
        local, remote = _domain(el.get("to")), _domain(el.get("from"))
        if local is None or remote is None:
            return []
        answer = self.dialback.answer_verify(local, remote, el.get("id"), el.get("type"))
        if answer is None:
            return []
        return [DialbackVerified(local, remote, el.get("id", ""), answer is Answer.VALID)]

    def _give_up(self, reason: str) -> list[Action]:
        self.dialback.outbound_closed(self.local, self.remote)
        if self.state is State.CLOSED:
            return []
        self.state = State.CLOSED
        return [Send(STREAM_CLOSE), OutboundFailed(reason), Close(None)]

    def _close_clean(self) -> list[Action]:
        self.dialback.outbound_closed(self.local, self.remote)
        return super()._close_clean()

    def fail(self, err: StreamError) -> list[Action]:
        self.dialback.outbound_closed(self.local, self.remote)
        return super().fail(err)

"""Client-to-server stream negotiation as a sans-I/O state machine (RFC 6120).

Bytes go in through `receive()`; what the connection must do comes out as a list of actions.
The chain of states follows Vines: Start -> TLS -> Auth -> Bind -> Ready. Each state handles
the first-level elements it understands; anything else is the precise stream error.

Answers the machine needs from outside (an account lookup, a bind decision, the end of a TLS
handshake) come back through `tls_established()`, `account()`, `bound()` and `bind_failed()`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any
from xml.etree.ElementTree import Element

from vines_server.xmpp import ns, sasl
from vines_server.xmpp.errors import StanzaError, StreamError
from vines_server.xmpp.jid import JID, JIDError, legacy_localpart
from vines_server.xmpp.parser import ParserLimits, Stanza, StreamClose, StreamOpen, StreamParser
from vines_server.xmpp.sasl import Challenge, Failure, NeedCredentials, Success
from vines_server.xmpp.stanza import (
    STREAM_CLOSE,
    error_reply,
    make,
    serialize,
    stream_error,
    stream_header,
)

STANZA_TAGS = frozenset(ns.q(ns.CLIENT, t) for t in ("message", "presence", "iq"))
_STREAM_PREFIX = "{" + ns.STREAM + "}"
SUBSCRIPTION_TYPES = frozenset(("subscribe", "subscribed", "unsubscribe", "unsubscribed"))


# ---- actions -------------------------------------------------------------------------------


@dataclass
class Send:
    data: bytes


@dataclass
class StartTLS:
    """Switch the transport to TLS now (after <proceed/> went out); then call tls_established()."""


@dataclass
class LookupAccount:
    """Fetch the account (or None) for this bare JID and pass it to account()."""

    jid: JID


@dataclass
class Authenticated:
    jid: JID  # bare
    mechanism: str
    # the name the client gave, when the account was found through its pre-PRECIS form
    legacy_name: str | None = None


@dataclass
class BindRequest:
    """The client asks for a resource (None: the server picks); answer with bound() or
    bind_failed()."""

    resource: str | None
    iq_id: str


@dataclass
class StanzaIn:
    """A message, presence or iq from a bound client, `from` already stamped."""

    element: Element


@dataclass
class AuthFailed:
    """A SASL exchange failed (counted per IP by the connection, XEP-0205 / A-03)."""

    condition: str


@dataclass
class Close:
    """Close the connection (after the bytes already sent). `error` is for logs and metrics."""

    error: StreamError | None = None


Action = (
    Send | StartTLS | LookupAccount | Authenticated | AuthFailed | BindRequest | StanzaIn | Close
)


class State(Enum):
    START = "start"  # waiting for a stream header
    TLS = "tls"  # header seen, STARTTLS required
    HANDSHAKE = "handshake"  # <proceed/> sent, TLS handshake in progress
    AUTH = "auth"  # encrypted, waiting for SASL
    SASL = "sasl"  # inside a SASL exchange
    BIND = "bind"  # authenticated, resource not yet bound
    BINDING = "binding"  # bind request handed to the server
    READY = "ready"
    CLOSED = "closed"


@dataclass(frozen=True)
class C2SSettings:
    domains: frozenset[str]
    preauth_limits: ParserLimits
    limits: ParserLimits
    auth_failures: int = 3
    stream_restarts: int = 32
    iterations: int = 10_000  # what new accounts get; unknown users are answered alike
    fake_secret: bytes | None = None  # stable fake salts for unknown users across restarts


@dataclass
class C2SStream:
    settings: C2SSettings
    tls: bool = False  # True from the start on a direct-TLS listener
    state: State = State.START
    domain: str | None = None  # fixed by the first header; may not change across restarts
    jid: JID | None = None  # bare after SASL, full after bind
    mechanism: str | None = None
    stream_id: str = ""
    _parser: StreamParser = field(init=False)
    _header_sent: bool = False
    _restarts: int = 0
    _auth_failures: int = 0
    _cb_data: dict[str, bytes] = field(default_factory=dict)
    _sasl: Any = None
    _account: Any = None
    _session_established: bool = False
    _pending_jid: JID | None = None
    _legacy_jid: JID | None = None  # where to look next when _pending_jid has no account
    _legacy_name: str | None = None
    _generation: int = 0  # bumped at every stream restart

    def __post_init__(self) -> None:
        self._parser = StreamParser(self.settings.preauth_limits)

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

    def receive(self, data: bytes) -> list[Action]:
        if self.state is State.CLOSED:
            return []
        out: list[Action] = []
        parser = self._parser
        generation = self._generation
        # Feed at most one stanza limit at a time, so the first error in byte order wins:
        # 64 KiB of garbage before the header is not-well-formed, not "stanza too big".
        step = parser.limits.stanza_size
        try:
            for start in range(0, len(data), step):
                for event in parser.feed(data[start : start + step]):
                    if isinstance(event, StreamOpen):
                        out += self._on_header(event)
                    elif isinstance(event, Stanza):
                        out += self._on_element(event.element)
                    elif isinstance(event, StreamClose):
                        out += self._close_clean()
                    if self.state in (State.CLOSED, State.HANDSHAKE):
                        return out
                    if generation != self._generation:
                        # After <starttls/> or a SASL success the stream starts over: anything
                        # pipelined behind it predates the new stream and is dropped, never
                        # parsed as if it had been protected or authenticated.
                        return out
        except StreamError as err:
            out += self.fail(err)
        return out

    def tls_established(self, channel_bindings: dict[str, bytes]) -> list[Action]:
        self.tls = True
        self._cb_data = dict(channel_bindings)
        self._restart(State.START)
        return []

    def account(self, account: Any) -> list[Action]:
        """The answer to LookupAccount: a storage Account or None when unknown."""
        if self.state is not State.SASL:
            return []
        if account is None and self._legacy_jid is not None:
            # accounts created before the PRECIS rule are stored under the old casefolded
            # name ('straße' as 'strasse'): found there so the upgrade locks nobody out
            assert self._pending_jid is not None
            self._legacy_name = str(self._pending_jid)
            self._pending_jid, self._legacy_jid = self._legacy_jid, None
            return [LookupAccount(self._pending_jid)]
        if account is None:
            self._legacy_name = None
        self._account = account
        return self._sasl_step(self._sasl.credentials(account.credentials if account else None))

    def bound(self, full: JID, iq_id: str) -> list[Action]:
        self.jid = full
        self.state = State.READY
        self._parser.limits = self.settings.limits
        result = make(ns.q(ns.CLIENT, "iq"), {"type": "result", "id": iq_id})
        bind = make(ns.q(ns.BIND, "bind"), children=[make(ns.q(ns.BIND, "jid"), text=str(full))])
        result.append(bind)
        return [Send(serialize(result))]

    def bind_failed(self, iq_id: str, err: StanzaError) -> list[Action]:
        self.state = State.BIND
        iq = make(ns.q(ns.CLIENT, "iq"), {"type": "set", "id": iq_id})
        return [Send(serialize(error_reply(iq, err)))]

    def fail(self, err: StreamError) -> list[Action]:
        """Server-initiated end: header if none was sent yet, the error, the close tag."""
        if self.state is State.CLOSED:
            return []
        out: list[Action] = []
        if not self._header_sent:
            out.append(Send(self._header_bytes(next(iter(sorted(self.settings.domains))))))
        out.append(Send(stream_error(err) + STREAM_CLOSE))
        out.append(Close(err))
        self.state = State.CLOSED
        return out

    # ---- stream header ---------------------------------------------------------------------

    def _on_header(self, event: StreamOpen) -> list[Action]:
        attrs = event.attrs
        to = attrs.get("to")
        # Send our header first so that any error below can follow it (RFC 6120 4.9.1.2).
        try:
            domain = JID.parse(to).domain if to else None
        except JIDError:
            domain = None
        reply_from = domain if domain in self.settings.domains else self.domain
        if reply_from is None:
            reply_from = next(iter(sorted(self.settings.domains)))
        self.stream_id = secrets.token_hex(8)
        header = self._header_bytes(reply_from)
        self._header_sent = True

        if event.tag != ns.q(ns.STREAM, "stream"):
            return [Send(header), *self.fail(StreamError("invalid-namespace"))]
        if event.default_ns != ns.CLIENT:
            return [Send(header), *self.fail(StreamError("invalid-namespace"))]
        version = attrs.get("version", "")
        if not version or version.split(".")[0] != "1":
            return [Send(header), *self.fail(StreamError("unsupported-version"))]
        if not to or domain is None or "@" in to or "/" in to:
            return [Send(header), *self.fail(StreamError("improper-addressing"))]
        if domain not in self.settings.domains:
            return [Send(header), *self.fail(StreamError("host-unknown"))]
        if self.domain is not None and domain != self.domain:
            # CVE-2018-10847: the identity negotiated so far belongs to the first domain.
            return [Send(header), *self.fail(StreamError("not-authorized", "domain changed"))]
        self._restarts += 1
        if self._restarts > self.settings.stream_restarts:
            return [Send(header), *self.fail(StreamError("policy-violation", "too many restarts"))]
        self.domain = domain
        features = b"".join(serialize(child) for child in self._features())
        return [Send(header + b"<stream:features>" + features + b"</stream:features>")]

    def _header_bytes(self, from_: str) -> bytes:
        return stream_header(from_=from_, to=None, id_=self.stream_id, default_ns=ns.CLIENT)

    def _features(self) -> Element:
        features = make(ns.q(ns.STREAM, "features"))
        if not self.tls:
            features.append(
                make(ns.q(ns.TLS, "starttls"), children=[make(ns.q(ns.TLS, "required"))])
            )
            self.state = State.TLS
        elif self.jid is None:
            cb_types = sorted(self._cb_data)
            mechs = make(ns.q(ns.SASL, "mechanisms"))
            for name in sasl.offered(True, cb_types):
                mechs.append(make(ns.q(ns.SASL, "mechanism"), text=name))
            features.append(mechs)
            if cb_types:
                cb = make(ns.q(ns.SASL_CB, "sasl-channel-binding"))
                for t in cb_types:
                    cb.append(make(ns.q(ns.SASL_CB, "channel-binding"), {"type": t}))
                features.append(cb)
            self.state = State.AUTH
        else:
            features.append(make(ns.q(ns.BIND, "bind")))
            session = make(
                ns.q(ns.SESSION, "session"), children=[make(ns.q(ns.SESSION, "optional"))]
            )
            features.append(session)
            self.state = State.BIND
        return features

    def _restart(self, state: State) -> None:
        self._generation += 1
        self._parser.reset()
        self._header_sent = False
        self.state = state

    def _close_clean(self) -> list[Action]:
        self.state = State.CLOSED
        return [Send(STREAM_CLOSE), Close(None)]

    # ---- first-level elements --------------------------------------------------------------

    def _on_element(self, el: Element) -> list[Action]:
        handler = _HANDLERS.get(self.state)
        if handler is None:  # START or HANDSHAKE: nothing may arrive here
            raise StreamError("not-well-formed")
        for child in el.iter():
            # A stream-namespace element (e.g. <stream:stream>) nested in a stanza would be
            # forwarded to the recipient as stream-level markup: refuse it.
            if child is not el and child.tag.startswith(_STREAM_PREFIX):
                raise StreamError("not-well-formed", "stream element inside a stanza")
        return handler(self, el)

    def _in_tls(self, el: Element) -> list[Action]:
        if el.tag == ns.q(ns.TLS, "starttls"):
            self.state = State.HANDSHAKE
            return [Send(serialize(make(ns.q(ns.TLS, "proceed")))), StartTLS()]
        if el.tag == ns.q(ns.SASL, "auth"):
            return [Send(_sasl_failure("encryption-required"))]
        raise StreamError("policy-violation", "STARTTLS is required")

    def _in_auth(self, el: Element) -> list[Action]:
        if el.tag == ns.q(ns.TLS, "starttls"):
            return [Send(serialize(make(ns.q(ns.TLS, "failure")))), *self._close_abrupt()]
        if el.tag == ns.q(ns.SASL, "auth"):
            return self._sasl_start(el)
        if el.tag in (ns.q(ns.SASL, "response"), ns.q(ns.SASL, "abort")):
            return self._sasl_failed("not-authorized")
        raise StreamError("not-authorized", "authenticate first")

    def _in_sasl(self, el: Element) -> list[Action]:
        if el.tag == ns.q(ns.SASL, "response"):
            try:
                data = sasl.decode_payload(el.text or "")
            except sasl.PayloadError:
                return self._sasl_failed("incorrect-encoding")
            return self._sasl_step(self._sasl.step(data))
        if el.tag == ns.q(ns.SASL, "abort"):
            return self._sasl_failed("aborted")
        if el.tag == ns.q(ns.SASL, "auth"):
            return self._sasl_failed("not-authorized")
        raise StreamError("not-authorized", "authenticate first")

    def _in_bind(self, el: Element) -> list[Action]:
        if el.tag == ns.q(ns.CLIENT, "iq"):
            bind = el.find(ns.q(ns.BIND, "bind"))
            if bind is not None and el.get("type") == "set":
                res_el = bind.find(ns.q(ns.BIND, "resource"))
                resource = (res_el.text or "").strip() if res_el is not None else ""
                self.state = State.BINDING
                return [BindRequest(resource or None, el.get("id", ""))]
            if el.find(ns.q(ns.SESSION, "session")) is not None:
                return [Send(self._session_result(el))]
        if el.tag == ns.q(ns.SASL, "auth"):
            raise StreamError("policy-violation", "already authenticated")
        if el.tag not in STANZA_TAGS:
            # e.g. <compress/> (XEP-0138 negotiates it here; we never offer it): X-17
            raise StreamError("unsupported-stanza-type")
        raise StreamError("not-authorized", "bind a resource first")

    def _in_binding(self, el: Element) -> list[Action]:
        raise StreamError("policy-violation", "wait for the bind result")

    def _in_ready(self, el: Element) -> list[Action]:
        if el.tag not in STANZA_TAGS:
            if el.tag == ns.q(ns.SASL, "auth"):
                raise StreamError("policy-violation", "already authenticated")
            raise StreamError("unsupported-stanza-type")
        if el.tag == ns.q(ns.CLIENT, "iq") and el.get("type") == "set":
            if el.find(ns.q(ns.SESSION, "session")) is not None:
                return [Send(self._session_result(el))]
            if el.find(ns.q(ns.BIND, "bind")) is not None:
                err = StanzaError("not-allowed", "a resource is already bound")
                return [Send(serialize(error_reply(el, err)))]
        self._stamp_from(el)
        return [StanzaIn(el)]

    # ---- SASL ------------------------------------------------------------------------------

    def _sasl_start(self, el: Element) -> list[Action]:
        name = el.get("mechanism", "")
        if name not in sasl.offered(True, sorted(self._cb_data)):
            return self._sasl_failed("invalid-mechanism")
        try:
            initial = sasl.decode_payload(el.text) if el.text else None
        except sasl.PayloadError:
            return self._sasl_failed("incorrect-encoding")
        try:
            self._sasl = sasl.create(
                name,
                cb_data=self._cb_data,
                plus_offered=bool(self._cb_data),
                domain=self.domain,
                iterations=self.settings.iterations,
                fake_secret=self.settings.fake_secret,
            )
        except sasl.Failure as failure:
            return self._sasl_failed(failure.condition, failure.text)
        self.mechanism = name
        self.state = State.SASL
        return self._sasl_step(self._sasl.start(initial))

    def _sasl_step(self, step: Any) -> list[Action]:
        if isinstance(step, Challenge):
            text = sasl.encode_payload(step.data)
            return [Send(serialize(make(ns.q(ns.SASL, "challenge"), text=text)))]
        if isinstance(step, NeedCredentials):
            try:
                jid = JID.parse(f"{step.username}@{self.domain}")
            except JIDError:
                return self._sasl_step(self._sasl.credentials(None))
            self._pending_jid = jid
            self._legacy_jid = _legacy_jid(jid)
            self._legacy_name = None
            return [LookupAccount(jid)]
        if isinstance(step, Success):
            if self._account is None:  # a mechanism must never succeed without an account
                return self._sasl_failed("not-authorized")
            if self._account.disabled:
                return self._sasl_failed("account-disabled")
            self.jid = self._pending_jid.bare
            self._auth_failures = 0
            payload = sasl.encode_payload(step.data) if step.data else None
            success = serialize(make(ns.q(ns.SASL, "success"), text=payload))
            self._restart(State.START)
            self._parser.limits = self.settings.limits
            legacy, self._legacy_name = self._legacy_name, None
            return [Send(success), Authenticated(self.jid, self.mechanism or "", legacy)]
        assert isinstance(step, Failure)
        return self._sasl_failed(step.condition, step.text)

    def _sasl_failed(self, condition: str, text: str | None = None) -> list[Action]:
        self._sasl = None
        self._account = None
        self.state = State.AUTH
        self._auth_failures += 1
        out: list[Action] = [AuthFailed(condition), Send(_sasl_failure(condition, text))]
        if self._auth_failures >= self.settings.auth_failures:
            out += self.fail(StreamError("policy-violation", "too many failed authentications"))
        return out

    # ---- helpers ---------------------------------------------------------------------------

    def _close_abrupt(self) -> list[Action]:
        self.state = State.CLOSED
        return [Send(STREAM_CLOSE), Close(StreamError("policy-violation", "STARTTLS twice"))]

    def _session_result(self, iq: Element) -> bytes:
        self._session_established = True
        return serialize(make(ns.q(ns.CLIENT, "iq"), {"type": "result", "id": iq.get("id", "")}))

    def _stamp_from(self, el: Element) -> None:
        """The server owns `from` (RFC 6120 8.1.2.1): stamp it, refuse anyone else's."""
        assert self.jid is not None
        claimed = el.get("from")
        if claimed:
            try:
                claimed_jid = JID.parse(claimed)
            except JIDError:
                raise StreamError("invalid-from") from None
            if claimed_jid not in (self.jid, self.jid.bare):
                raise StreamError("invalid-from")
        bare_only = el.tag == ns.q(ns.CLIENT, "presence") and el.get("type") in SUBSCRIPTION_TYPES
        el.set("from", str(self.jid.bare if bare_only else self.jid))


def _legacy_jid(jid: JID) -> JID | None:
    """The account name the pre-PRECIS rule gave this JID, where it differs and is still valid."""
    assert jid.local is not None
    try:
        legacy = JID.parse(f"{legacy_localpart(jid.local)}@{jid.domain}")
    except JIDError:
        return None
    return legacy if legacy != jid else None


_HANDLERS: dict[State, Callable[[C2SStream, Element], list[Action]]] = {
    State.TLS: C2SStream._in_tls,
    State.AUTH: C2SStream._in_auth,
    State.SASL: C2SStream._in_sasl,
    State.BIND: C2SStream._in_bind,
    State.BINDING: C2SStream._in_binding,
    State.READY: C2SStream._in_ready,
}


def _sasl_failure(condition: str, text: str | None = None) -> bytes:
    failure = make(ns.q(ns.SASL, "failure"), children=[make(ns.q(ns.SASL, condition))])
    if text:
        failure.append(make(ns.q(ns.SASL, "text"), text=text))
    return serialize(failure)

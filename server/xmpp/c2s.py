"""Client-to-server stream negotiation as a sans-I/O state machine (RFC 6120), on the stream
base every kind shares (`stream.py`: header, features, restarts, errors, one thing at a time).

Bytes go in through `receive()`; what the connection must do comes out as a list of actions
(`actions.py`). The chain of states follows Vines: Start -> TLS -> Auth -> Bind -> Ready. Each
state handles the first-level elements it understands; anything else is the precise stream error.

Answers the machine needs from outside (an account lookup, a bind decision, the end of a TLS
handshake) come back through `tls_established()`, `account()`, `bound()` and `bind_failed()`.

One thing at a time (design decision 11, RFC 6120 6.4): once an element asks for an answer from
outside, no later element is handled until that answer is in. What the client pipelined behind
it waits (a few elements, one stanza limit of bytes; more is a policy-violation) and is handled
in order by the call that delivers the answer, which returns those elements' actions too. Each
request carries the number of its exchange and an answer is taken only with the request it
answers, so an answer can never complete a later exchange. A stream restart (STARTTLS, SASL
success) drops whatever was pipelined behind it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from xml.etree.ElementTree import Element

from vines_server.xmpp import ns, sasl, sm
from vines_server.xmpp.actions import (
    Action,
    Authenticated,
    AuthFailed,
    BindRequest,
    Close,
    DeriveKey,
    LookupAccount,
    Request,
    ResumeRequest,
    Send,
    SendConfirming,
    SmAck,
    SmEnable,
    StanzaIn,
    StartTLS,
)
from vines_server.xmpp.errors import StanzaError, StreamError
from vines_server.xmpp.jid import JID, JIDError, legacy_localpart
from vines_server.xmpp.ns import IQ, MESSAGE, PRESENCE
from vines_server.xmpp.sasl import Challenge, Failure, NeedCredentials, NeedDerivation, Success
from vines_server.xmpp.stanza import STREAM_CLOSE, error_reply, make, serialize
from vines_server.xmpp.stream import State, Stream, StreamSettings

# re-exported: the connection and the tests name the actions through this module
__all__ = [
    "Action",
    "AuthFailed",
    "Authenticated",
    "BindRequest",
    "C2SSettings",
    "C2SStream",
    "Close",
    "DeriveKey",
    "LookupAccount",
    "Request",
    "ResumeRequest",
    "Send",
    "SendConfirming",
    "SmAck",
    "SmEnable",
    "StanzaIn",
    "StartTLS",
    "State",
]

STANZA_TAGS = frozenset((MESSAGE, PRESENCE, IQ))
SM_PREFIX = "{" + ns.SM + "}"
SUBSCRIPTION_TYPES = frozenset(("subscribe", "subscribed", "unsubscribe", "unsubscribed"))


@dataclass(frozen=True)
class C2SSettings(StreamSettings):
    auth_failures: int = 3
    iterations: int = 10_000  # what new accounts get; unknown users are answered alike
    fake_secret: bytes | None = None  # stable fake salts for unknown users across restarts


@dataclass
class C2SStream(Stream):
    settings: C2SSettings
    tls: bool = False  # True from the start on a direct-TLS listener
    jid: JID | None = None  # bare after SASL, full after bind
    mechanism: str | None = None
    _auth_failures: int = 0
    _cb_data: dict[str, bytes] = field(default_factory=dict)
    _sasl: Any = None
    _account: Any = None
    _session_established: bool = False
    _lookup: LookupAccount | None = None  # the current SASL exchange's latest account lookup
    _legacy_jid: JID | None = None  # where to look next when _lookup's JID has no account
    _legacy_name: str | None = None
    sm_in: sm.Inbound | None = None  # stream management (XEP-0198) once enabled: the server's h

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.tls:  # direct TLS: nothing is read until the handshake is done
            self.state = State.HANDSHAKE

    # ---- answers from outside ----------------------------------------------------------------

    def tls_established(self, channel_bindings: dict[str, bytes]) -> list[Action]:
        if self.state is not State.HANDSHAKE:
            return []
        self.tls = True
        self._cb_data = dict(channel_bindings)
        self._restart(State.START)
        return []

    def account(self, request: LookupAccount, account: Any) -> list[Action]:
        """The answer to `request`: a storage Account or None when unknown. Also returns the
        actions of the elements that waited behind the lookup."""
        if not self._answered(request):
            return []
        if account is None and self._legacy_jid is not None:
            # accounts created before the PRECIS rule are stored under the old casefolded
            # name ('straße' as 'strasse'): found there so the upgrade locks nobody out. A
            # request of its own: the answer to the first lookup cannot stand for it.
            self._legacy_name = str(request.jid)
            self._lookup = LookupAccount(self._legacy_jid, self._next_exchange())
            self._legacy_jid = None
            return self._request(self._lookup)
        if account is None:
            self._legacy_name = None
        self._account = account
        step = self._sasl.credentials(account.credentials if account else None)
        return self._resume(self._sasl_step(step))

    def derived(self, request: DeriveKey, salted: bytes) -> list[Action]:
        """The answer to `request`: the salted password. Also returns the actions of the
        elements that waited behind the derivation."""
        if not self._answered(request):
            return []
        return self._resume(self._sasl_step(self._sasl.derived(salted)))

    def bound(self, request: BindRequest, full: JID) -> list[Action]:
        if not self._answered(request):
            return []
        self.jid = full
        self.state = State.READY
        self._parser.limits = self.settings.limits
        result = make(IQ, {"type": "result", "id": request.iq_id})
        bind = make(ns.q(ns.BIND, "bind"), children=[make(ns.q(ns.BIND, "jid"), text=str(full))])
        result.append(bind)
        return self._resume([Send(serialize(result))])

    def resumed(self, request: ResumeRequest, full: JID, inbound: sm.Inbound) -> list[Action]:
        """The session `request` named is this stream's now, with its counter of handled
        stanzas; the connection sends the unacknowledged stanzas again after this."""
        if not self._answered(request):
            return []
        self.jid = full
        self.state = State.READY
        self._parser.limits = self.settings.limits
        self.sm_in = inbound
        return self._resume([Send(sm.resumed(request.previd, inbound.handled))])

    def resume_failed(self, request: ResumeRequest, condition: str) -> list[Action]:
        """Unknown, expired or another account's session: bind a new one instead."""
        if not self._answered(request):
            return []
        self.state = State.BIND
        return self._resume([Send(sm.failed(condition))])

    def bind_failed(self, request: BindRequest, err: StanzaError) -> list[Action]:
        if not self._answered(request):
            return []
        self.state = State.BIND
        iq = make(IQ, {"type": "set", "id": request.iq_id})
        return self._resume([Send(serialize(error_reply(iq, err)))])

    # ---- the stream header and features of a client stream ---------------------------------

    def _check_header(self, attrs: dict[str, str], domain: str | None) -> StreamError | None:
        to = attrs.get("to")
        version = attrs.get("version", "")
        if not version or version.split(".")[0] != "1":
            return StreamError("unsupported-version")
        if not to or domain is None or "@" in to or "/" in to:
            return StreamError("improper-addressing")
        if domain not in self.settings.domains:
            return StreamError("host-unknown")
        if self.domain is not None and domain != self.domain:
            # CVE-2018-10847: the identity negotiated so far belongs to the first domain.
            return StreamError("not-authorized", "domain changed")
        return None

    def _offer(self) -> bytes:
        """The features for this stage, from `_offer_bytes`: three headers a login, each offer
        serialized once per process rather than rebuilt from elements every time (issue 14)."""
        if not self.tls:
            self.state = State.TLS
            return _offer_bytes("starttls")
        if self.jid is None:
            self._end_exchange()  # a restart in the middle of an exchange abandons it
            self.state = State.AUTH
            return _offer_bytes(tuple(sorted(self._cb_data)))
        self.state = State.BIND
        return _offer_bytes("bound")

    # ---- first-level elements --------------------------------------------------------------

    def _handle(self, el: Element) -> list[Action]:
        handler = _HANDLERS.get(self.state)
        if handler is None:  # nothing may arrive in this state
            raise StreamError("not-well-formed")
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
        if el.tag == IQ:
            bind = el.find(ns.q(ns.BIND, "bind"))
            if bind is not None and el.get("type") == "set":
                res_el = bind.find(ns.q(ns.BIND, "resource"))
                resource = (res_el.text or "").strip() if res_el is not None else ""
                self.state = State.BINDING
                return self._request(
                    BindRequest(resource or None, el.get("id", ""), self._next_exchange())
                )
            if el.find(ns.q(ns.SESSION, "session")) is not None:
                return [Send(self._session_result(el))]
        if el.tag == ns.q(ns.SM, "resume"):
            self.state = State.BINDING
            previd = el.get("previd", "")
            return self._request(
                ResumeRequest(previd, sm.parse_h(el.get("h")), self._next_exchange())
            )
        if el.tag.startswith(SM_PREFIX):  # enable before bind, r and a before enable
            return [Send(sm.failed("unexpected-request", text="bind a resource first"))]
        if el.tag == ns.q(ns.SASL, "auth"):
            raise StreamError("policy-violation", "already authenticated")
        if el.tag not in STANZA_TAGS:
            # e.g. <compress/> (XEP-0138 negotiates it here; we never offer it): X-17
            raise StreamError("unsupported-stanza-type")
        raise StreamError("not-authorized", "bind a resource first")

    def _in_ready(self, el: Element) -> list[Action]:
        if el.tag.startswith(SM_PREFIX):
            return self._stream_management(el)
        if self.sm_in is not None and el.tag in STANZA_TAGS:
            self.sm_in.count()  # every stanza counts (XEP-0198 4), answered or routed
        if el.tag not in STANZA_TAGS:
            if el.tag == ns.q(ns.SASL, "auth"):
                raise StreamError("policy-violation", "already authenticated")
            raise StreamError("unsupported-stanza-type")
        if el.tag == IQ and el.get("type") == "set":
            if el.find(ns.q(ns.SESSION, "session")) is not None:
                return [Send(self._session_result(el))]
            if el.find(ns.q(ns.BIND, "bind")) is not None:
                err = StanzaError("not-allowed", "a resource is already bound")
                return [Send(serialize(error_reply(el, err)))]
        self._stamp_from(el)
        return [StanzaIn(el)]

    def _stream_management(self, el: Element) -> list[Action]:
        name = el.tag[len(SM_PREFIX) :]
        if name == "enable" and self.sm_in is None:
            self.sm_in = sm.Inbound()
            return [SmEnable(el.get("resume") in ("true", "1"))]
        if self.sm_in is None or name not in ("r", "a"):
            # enable twice, resume once bound, r or a before enable: XEP-0198 3 and 5
            if self.sm_in is None:
                return [Send(sm.failed("unexpected-request"))]
            return [SendConfirming(sm.failed("unexpected-request", self.sm_in.handled))]
        if name == "r":
            # handled here, after every earlier stanza was routed: the connection runs the
            # actions in order, so this h only covers stanzas whose routing completed, and
            # sends it once their messages are committed
            return [SendConfirming(sm.answer(self.sm_in.handled))]
        return [SmAck(sm.parse_h(el.get("h")))]

    # ---- SASL ------------------------------------------------------------------------------

    def _sasl_start(self, el: Element) -> list[Action]:
        name = el.get("mechanism", "")
        if name not in sasl.offered(True, sorted(self._cb_data)):
            return self._sasl_failed("invalid-mechanism")
        try:
            initial = sasl.decode_payload(el.text) if el.text else None
        except sasl.PayloadError:
            return self._sasl_failed("incorrect-encoding")
        self._end_exchange()
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
        self.mechanism = sys.intern(name)  # one of the few offered: the session keeps it shared
        self.state = State.SASL
        return self._sasl_step(self._sasl.start(initial))

    def _sasl_step(self, step: Any) -> list[Action]:
        if isinstance(step, Challenge):
            text = sasl.encode_payload(step.data)
            return [Send(serialize(make(ns.q(ns.SASL, "challenge"), text=text)))]
        if isinstance(step, NeedCredentials):
            jid = self._jid(step.username)
            if jid is None:
                return self._sasl_step(self._sasl.credentials(None))
            self._legacy_jid = _legacy_jid(jid)
            self._legacy_name = None
            self._lookup = LookupAccount(jid, self._next_exchange())
            return self._request(self._lookup)
        if isinstance(step, NeedDerivation):
            return self._request(
                DeriveKey(
                    step.hash_name, step.salt, step.iterations, step.password, self._next_exchange()
                )
            )
        if isinstance(step, Success):
            lookup = self._lookup
            # A mechanism must never succeed without the account of this exchange's lookup,
            # and the identity is the one whose credentials were verified, nothing else.
            named = self._jid(step.username)
            if (
                self._account is None
                or lookup is None
                or named is None
                or lookup.jid not in (named, _legacy_jid(named))
            ):
                return self._sasl_failed("not-authorized")
            if self._account.disabled:
                return self._sasl_failed("account-disabled")
            self.jid = lookup.jid.bare
            self._auth_failures = 0
            payload = sasl.encode_payload(step.data) if step.data else None
            success = serialize(make(ns.q(ns.SASL, "success"), text=payload))
            self._restart(State.START)
            self._parser.limits = self.settings.limits
            legacy = self._legacy_name
            # SASL is over for this stream: let go of the mechanism, the account record and
            # the binding data (about 1.5 KiB a session, for as long as the session lasts)
            self._end_exchange()
            self._cb_data = {}
            return [Send(success), Authenticated(self.jid, self.mechanism or "", legacy)]
        assert isinstance(step, Failure)
        return self._sasl_failed(step.condition, step.text)

    def _jid(self, username: str) -> JID | None:
        try:
            return JID.parse(f"{username}@{self.domain}")
        except JIDError:
            return None

    def _end_exchange(self) -> None:
        self._sasl = self._lookup = self._account = None
        self._legacy_jid = self._legacy_name = None

    def _sasl_failed(self, condition: str, text: str | None = None) -> list[Action]:
        counts = not _keyless(self._account, self.mechanism)
        self._end_exchange()
        self.state = State.AUTH
        self._auth_failures += 1
        out: list[Action] = [AuthFailed(condition, counts), Send(_sasl_failure(condition, text))]
        if self._auth_failures >= self.settings.auth_failures:
            out += self.fail(StreamError("policy-violation", "too many failed authentications"))
        return out

    # ---- helpers ---------------------------------------------------------------------------

    def _close_abrupt(self) -> list[Action]:
        self.state = State.CLOSED
        return [Send(STREAM_CLOSE), Close(StreamError("policy-violation", "STARTTLS twice"))]

    def _session_result(self, iq: Element) -> bytes:
        self._session_established = True
        return serialize(make(IQ, {"type": "result", "id": iq.get("id", "")}))

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
        bare_only = el.tag == PRESENCE and el.get("type") in SUBSCRIPTION_TYPES
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
    State.READY: C2SStream._in_ready,
}


@lru_cache(maxsize=8)  # keys: the stages, and SASL's with each set of binding types TLS gives
def _offer_bytes(stage: str | tuple[str, ...]) -> bytes:
    """The serialized <stream:features/> children of a stage: "starttls" before TLS (required),
    "bound" once authenticated (bind, session, stream management), else SASL with this tuple
    of channel-binding types (sorted; -PLUS mechanisms only when there are some)."""
    if stage == "starttls":
        features = [make(ns.q(ns.TLS, "starttls"), children=[make(ns.q(ns.TLS, "required"))])]
    elif stage == "bound":
        session = make(ns.q(ns.SESSION, "session"), children=[make(ns.q(ns.SESSION, "optional"))])
        features = [make(ns.q(ns.BIND, "bind")), session, sm.feature()]
    else:
        mechs = make(ns.q(ns.SASL, "mechanisms"))
        assert isinstance(stage, tuple)
        for name in sasl.offered(True, stage):
            mechs.append(make(ns.q(ns.SASL, "mechanism"), text=name))
        features = [mechs]
        if stage:
            cb = make(ns.q(ns.SASL_CB, "sasl-channel-binding"))
            for t in stage:
                cb.append(make(ns.q(ns.SASL_CB, "channel-binding"), {"type": t}))
            features.append(cb)
    return b"".join(serialize(child) for child in features)


def _keyless(account: Any, mechanism: str | None) -> bool:
    """The account exists but holds no SCRAM keys for `mechanism`'s hash (answered with fake
    keys, so it fails like a wrong password whatever the client sends)."""
    if account is None or not mechanism or not mechanism.startswith("SCRAM-"):
        return False
    hash_name = mechanism.removeprefix("SCRAM-").removesuffix("-PLUS")
    return hash_name not in account.credentials


def _sasl_failure(condition: str, text: str | None = None) -> bytes:
    failure = make(ns.q(ns.SASL, "failure"), children=[make(ns.q(ns.SASL, condition))])
    if text:
        failure.append(make(ns.q(ns.SASL, "text"), text=text))
    return serialize(failure)

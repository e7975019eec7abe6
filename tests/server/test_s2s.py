"""The s2s state machines without I/O: header rules, STARTTLS, SASL EXTERNAL (XEP-0178),
opt-in dialback (XEP-0220) with its correlation rules, stanza address checks, and the two
directions talking to each other through an in-memory pipe."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from vines_server.xmpp.actions import Close, Send, StanzaIn, StartTLS
from vines_server.xmpp.dialback import Correlation, make_key
from vines_server.xmpp.parser import ParserLimits
from vines_server.xmpp.s2s import (
    DialbackVerified,
    DialbackVerify,
    OutboundFailed,
    OutboundReady,
    PeerAuthenticated,
    S2SInStream,
    S2SOutStream,
    S2SSettings,
)
from vines_server.xmpp.stream import State

DB = "xmlns:db='jabber:server:dialback'"


@dataclass
class Policy:
    allow: set[tuple[str, str]] = field(default_factory=set)
    dialback_peers: set[str] = field(default_factory=set)

    def allows(self, local: str, remote: str) -> bool:
        return (local, remote) in self.allow

    def dialback(self, remote: str) -> bool:
        return remote in self.dialback_peers


@dataclass(frozen=True)
class Verdict:
    verified: bool
    reason: str = ""


TRUSTED = Verdict(True)
UNTRUSTED = Verdict(False, "certificate not trusted")


def settings(domain: str, policy: Policy, secret: bytes) -> S2SSettings:
    return S2SSettings(
        domains=frozenset({domain}),
        preauth_limits=ParserLimits(8192, 32, 64, 64),
        limits=ParserLimits(262144, 1024, 64, 64),
        policy=policy,
        secret=secret,
    )


POLICY = Policy(allow={("a.test", "b.test"), ("b.test", "a.test")})
A = settings("a.test", POLICY, b"secret-a")
B = settings("b.test", POLICY, b"secret-b")


def header(to: str | None = "b.test", from_: str | None = "a.test", extra: str = "") -> bytes:
    attrs = "".join(f" {k}='{v}'" for k, v in (("to", to), ("from", from_)) if v is not None)
    return (
        f"<?xml version='1.0'?><stream:stream{attrs} xmlns='jabber:server' {DB} "
        f"xmlns:stream='http://etherx.jabber.org/streams'{extra}>"
    ).encode()


V1 = " version='1.0'"


def sent(actions: list) -> bytes:
    return b"".join(a.data for a in actions if isinstance(a, Send))


def closed_with(actions: list, condition: str) -> bytes:
    out = sent(actions)
    assert f"<{condition} xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>".encode() in out, out
    assert out.endswith(b"</stream:stream>") and isinstance(actions[-1], Close)
    return out


def inbound(verdict: Verdict = TRUSTED, s: S2SSettings = B, **kw) -> tuple[S2SInStream, list]:
    """An inbound stream at b.test from a.test, encrypted, features received."""
    stream = S2SInStream(s, **kw)
    stream.receive(header(extra=V1))
    actions = stream.receive(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    assert isinstance(actions[-1], StartTLS)
    stream.tls_established(lambda domain: verdict)
    return stream, stream.receive(header(extra=V1))


# ---- inbound header rules -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "condition"),
    [
        (header(to="elsewhere.test", extra=V1), "host-unknown"),
        (header(from_=None, extra=V1), "improper-addressing"),
        (header(to=None, extra=V1), "improper-addressing"),
        (header(from_="user@a.test", extra=V1), "improper-addressing"),
        (header(extra=""), "unsupported-version"),
        (header(extra=" version='2.0'"), "unsupported-version"),
        (header(extra=V1).replace(b"jabber:server'", b"jabber:client'"), "invalid-namespace"),
    ],
)
def test_inbound_header_errors(data: bytes, condition: str) -> None:
    closed_with(S2SInStream(B).receive(data), condition)


def test_a_domain_off_the_allowlist_is_a_policy_violation_naming_it() -> None:
    out = closed_with(S2SInStream(B).receive(header(from_="c.test", extra=V1)), "policy-violation")
    assert b"c.test" in out


def test_the_allowlist_is_read_at_each_header() -> None:
    policy = Policy(allow={("b.test", "a.test")})
    stream = S2SInStream(settings("b.test", policy, b"s"))
    stream.receive(header(extra=V1))
    stream.receive(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    stream.tls_established(lambda domain: TRUSTED)
    policy.allow.clear()  # removed at run time, before the restart
    closed_with(stream.receive(header(extra=V1)), "policy-violation")


def test_starttls_is_required() -> None:
    stream = S2SInStream(B)
    out = sent(stream.receive(header(extra=V1)))
    assert b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>" in out
    msg = b"<message from='x@a.test' to='y@b.test'><body>hi</body></message>"
    closed_with(stream.receive(msg), "policy-violation")


def test_the_peer_domain_may_not_change_across_the_tls_restart() -> None:
    stream = S2SInStream(B)
    stream.receive(header(extra=V1))
    stream.receive(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    stream.tls_established(lambda domain: TRUSTED)
    closed_with(stream.receive(header(from_="c.test", extra=V1)), "not-authorized")


# ---- inbound authentication -----------------------------------------------------------------


def test_a_verified_peer_is_offered_external_only() -> None:
    _, actions = inbound(TRUSTED)
    out = sent(actions)
    assert b"<mechanism>EXTERNAL</mechanism>" in out
    assert b"urn:xmpp:features:dialback" not in out


def test_an_unverifiable_peer_without_the_opt_in_is_refused_with_the_reason() -> None:
    _, actions = inbound(UNTRUSTED)
    out = closed_with(actions, "not-authorized")
    assert b"certificate not trusted" in out
    assert b"EXTERNAL" not in out


def test_an_unverifiable_peer_that_opted_in_is_offered_dialback_with_errors() -> None:
    policy = Policy(allow=set(POLICY.allow), dialback_peers={"a.test"})
    _, actions = inbound(UNTRUSTED, settings("b.test", policy, b"s"))
    out = sent(actions)
    assert b"<dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback>" in out
    assert b"EXTERNAL" not in out


def external(stream: S2SInStream, payload: str = "=") -> list:
    auth = f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>{payload}</auth>"
    return stream.receive(auth.encode())


def test_external_with_an_empty_or_matching_authzid_succeeds() -> None:
    for payload in ("=", "YS50ZXN0"):  # '' and base64('a.test')
        stream, _ = inbound()
        actions = external(stream, payload)
        assert b"<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>" in sent(actions)
        assert PeerAuthenticated("a.test", "EXTERNAL") in actions
        assert stream.authenticated == {"a.test"}


def test_external_for_another_authzid_is_invalid_authzid() -> None:
    stream, _ = inbound()
    actions = external(stream, "Yy50ZXN0")  # base64('c.test')
    assert b"<invalid-authzid/>" in sent(actions)
    assert not stream.authenticated
    closed_with(actions, "not-authorized")


def ready() -> S2SInStream:
    stream, _ = inbound()
    external(stream)
    assert sent(stream.receive(header(extra=V1))).endswith(b"<stream:features></stream:features>")
    assert stream.state is State.READY
    return stream


def test_a_stanza_from_the_authenticated_domain_goes_in_as_a_client_stanza() -> None:
    stream = ready()
    msg = b"<message from='x@a.test' to='y@b.test'><body>hi</body></message>"
    (action,) = stream.receive(msg)
    assert isinstance(action, StanzaIn)
    assert action.element.tag == "{jabber:client}message"
    assert action.element.find("{jabber:client}body").text == "hi"


@pytest.mark.parametrize(
    ("stanza", "condition"),
    [
        (b"<message from='x@c.test' to='y@b.test'/>", "invalid-from"),
        (b"<message from='x@a.test' to='y@elsewhere.test'/>", "host-unknown"),
        (b"<message to='y@b.test'/>", "improper-addressing"),
        (b"<foo from='a.test' to='b.test'/>", "unsupported-stanza-type"),
    ],
)
def test_stanza_address_errors(stanza: bytes, condition: str) -> None:
    closed_with(ready().receive(stanza), condition)


# ---- the two directions together ---------------------------------------------------------------


def pump(out: S2SOutStream, inn: S2SInStream, first: list, out_verdict, in_verdict) -> list:
    """Carry bytes both ways until neither side has anything to say; all actions seen."""
    seen: list = []
    to_in, to_out = first, []
    while to_in or to_out:
        seen += to_in + to_out
        next_in, next_out = [], []
        for a in to_in:
            if isinstance(a, Send):
                for b in inn.receive(a.data):
                    if isinstance(b, StartTLS):
                        inn.tls_established(lambda d: in_verdict)
                    else:
                        next_out.append(b)
        for a in to_out:
            if isinstance(a, Send):
                next_in += out.receive(a.data)
            if isinstance(a, StartTLS):
                pass
        # the outbound side's StartTLS: the handshake is done when the inbound side's is
        expanded = []
        for a in next_in:
            if isinstance(a, StartTLS):
                expanded += out.tls_established(lambda d: out_verdict)
            else:
                expanded.append(a)
        to_in, to_out = expanded, next_out
    return seen


def test_outbound_and_inbound_authenticate_with_external() -> None:
    out = S2SOutStream(A, local="a.test", remote="b.test")
    inn = S2SInStream(B)
    seen = pump(out, inn, out.open(), TRUSTED, TRUSTED)
    assert OutboundReady("EXTERNAL") in seen
    assert PeerAuthenticated("a.test", "EXTERNAL") in seen
    assert out.state is State.READY and inn.state is State.READY


def test_outbound_refuses_an_untrusted_peer_without_dialback() -> None:
    out = S2SOutStream(A, local="a.test", remote="b.test")
    seen = pump(out, S2SInStream(B), out.open(), UNTRUSTED, TRUSTED)
    assert OutboundFailed("b.test: certificate not trusted") in seen


def test_dialback_between_two_servers() -> None:
    """a.test connects to b.test; b.test cannot verify a.test's certificate, a.test opted in:
    b.test asks a.test's authoritative side over its own outbound stream, and says valid."""
    policy = Policy(allow=set(POLICY.allow), dialback_peers={"a.test", "b.test"})
    sa, sb = settings("a.test", policy, b"secret-a"), settings("b.test", policy, b"secret-b")
    corr_a, corr_b = Correlation(), Correlation()
    a_out = S2SOutStream(sa, local="a.test", remote="b.test", dialback=corr_a)
    b_in = S2SInStream(sb, dialback=corr_b)
    seen = pump(a_out, b_in, a_out.open(), TRUSTED, UNTRUSTED)
    (verify,) = [a for a in seen if isinstance(a, DialbackVerify)]
    assert (verify.local, verify.remote, verify.stream_id) == ("b.test", "a.test", b_in.stream_id)

    # b.test's outbound stream to a.test's authoritative side carries the db:verify
    b_out = S2SOutStream(sb, local="b.test", remote="a.test", dialback=corr_b)
    a_in = S2SInStream(sa, dialback=corr_a)
    first = b_out.open() + b_out.send_verify(verify.element)
    seen2 = pump(b_out, a_in, first, UNTRUSTED, UNTRUSTED)
    (answer,) = [a for a in seen2 if isinstance(a, DialbackVerified)]
    assert answer == DialbackVerified("b.test", "a.test", b_in.stream_id, True)

    actions = b_in.dialback_verified("a.test", answer.valid)
    assert PeerAuthenticated("a.test", "dialback") in actions
    assert OutboundReady("dialback") in a_out.receive(sent(actions))
    assert b_in.authenticated == {"a.test"} and b_in.state is State.READY


# ---- dialback regressions (XEP-0220, the 2012 advisory, CVE-2016-0756) -----------------------


def outbound_in_auth(policy: Policy, corr: Correlation) -> S2SOutStream:
    out = S2SOutStream(
        settings("a.test", policy, b"s"), local="a.test", remote="b.test", dialback=corr
    )
    out.open()
    out.receive(header(to="a.test", from_="b.test", extra=V1 + " id='peer-id'"))
    out.receive(
        b"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features>"
    )
    out.receive(b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    out.tls_established(lambda d: TRUSTED)
    out.receive(header(to="a.test", from_="b.test", extra=V1 + " id='peer-id-2'"))
    return out


def test_an_uncorrelated_result_or_verify_answer_is_ignored() -> None:
    out = outbound_in_auth(POLICY, Correlation())
    assert out.receive(b"<db:result type='valid' from='b.test' to='a.test'/>") == []
    verify = b"<db:verify type='valid' from='b.test' to='a.test' id='x'/>"
    assert out.receive(verify) == []
    assert out.state is State.AUTH and out.mechanism is None


def test_a_result_for_another_domain_pair_does_not_authenticate_this_one() -> None:
    policy = Policy(allow=set(POLICY.allow), dialback_peers={"b.test"})
    corr = Correlation()
    out = outbound_in_auth(policy, corr)
    actions = out.receive(
        b"<stream:features><dialback xmlns='urn:xmpp:features:dialback'/></stream:features>"
    )
    key = make_key(b"s", "b.test", "a.test", "peer-id-2")
    assert f">{key}</result>".encode() in sent(actions)
    assert out.receive(b"<db:result type='valid' from='c.test' to='a.test'/>") == []
    assert out.mechanism is None


def test_a_key_for_another_domain_pair_or_stream_is_invalid() -> None:
    stream = S2SInStream(A)  # the authoritative side of a.test
    stream.receive(header(to="a.test", from_="b.test", extra=V1))
    stream.receive(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    stream.tls_established(lambda d: TRUSTED)
    stream.receive(header(to="a.test", from_="b.test", extra=V1))
    good = make_key(b"secret-a", "b.test", "a.test", "sid")
    for key, sid in (
        (good, "sid"),
        (make_key(b"secret-a", "c.test", "a.test", "sid"), "sid"),
        (good, "other"),
    ):
        ask = f"<db:verify from='b.test' to='a.test' id='{sid}'>{key}</db:verify>"
        answer = sent(stream.receive(ask.encode()))
        expected = "valid" if (key, sid) == (good, "sid") else "invalid"
        assert f"type='{expected}'".encode() in answer


def test_a_replayed_stream_id_is_not_verified_twice() -> None:
    policy = Policy(allow=set(POLICY.allow), dialback_peers={"a.test"})
    corr = Correlation()
    stream, _ = inbound(UNTRUSTED, settings("b.test", policy, b"s"), dialback=corr)
    result = b"<db:result from='a.test' to='b.test'>00ff</db:result>"
    assert isinstance(stream.receive(result)[0], DialbackVerify)
    again = sent(stream.receive(result))
    assert b"type='error'" in again and b"<not-acceptable" in again


def test_dialback_from_a_peer_that_did_not_opt_in_is_forbidden() -> None:
    stream, _ = inbound(TRUSTED)
    answer = sent(stream.receive(b"<db:result from='a.test' to='b.test'>00ff</db:result>"))
    assert b"type='error'" in answer and b"<forbidden" in answer
    assert not stream.authenticated


def test_an_invalid_dialback_answer_closes_the_stream() -> None:
    policy = Policy(allow=set(POLICY.allow), dialback_peers={"a.test"})
    stream, _ = inbound(UNTRUSTED, settings("b.test", policy, b"s"))
    stream.receive(b"<db:result from='a.test' to='b.test'>00ff</db:result>")
    actions = stream.dialback_verified("a.test", False)
    assert b"type='invalid'" in sent(actions)
    closed_with(actions, "not-authorized")
    assert not stream.authenticated

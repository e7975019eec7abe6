"""The c2s state machine without any I/O: feed bytes, assert the actions and the XML out."""

from __future__ import annotations

import base64
from dataclasses import dataclass

import pytest
from vines_server.xmpp import c2s
from vines_server.xmpp.c2s import C2SSettings, C2SStream, State
from vines_server.xmpp.jid import JID
from vines_server.xmpp.parser import ParserLimits
from vines_server.xmpp.sasl.client import ScramClient
from vines_server.xmpp.sasl.credentials import derive_all

from tests.support.c2s import answer_lookup

DOMAINS = frozenset({"vines.test", "other.test"})
SETTINGS = C2SSettings(
    domains=DOMAINS,
    preauth_limits=ParserLimits(8192, 32, 64, 64),
    limits=ParserLimits(262144, 1024, 64, 64),
    iterations=4096,
    fake_secret=b"k" * 32,
)
CB = {"tls-server-end-point": b"\x01" * 32}


def header(to: str = "vines.test", extra: str = "") -> bytes:
    return (
        f"<?xml version='1.0'?><stream:stream to='{to}' version='1.0' xmlns='jabber:client' "
        f"xmlns:stream='http://etherx.jabber.org/streams'{extra}>"
    ).encode()


def sent(actions: list) -> bytes:
    return b"".join(a.data for a in actions if isinstance(a, c2s.Send))


def closed_with(actions: list, condition: str) -> bool:
    out = sent(actions)
    return (
        f"<{condition} xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>".encode() in out
        and out.endswith(b"</stream:stream>")
        and isinstance(actions[-1], c2s.Close)
    )


@dataclass
class Account:
    credentials: dict
    disabled: bool = False


ALICE = Account(derive_all("secret", 4096))


def encrypted() -> C2SStream:
    stream = C2SStream(SETTINGS)
    stream.receive(header())
    actions = stream.receive(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    assert isinstance(actions[-1], c2s.StartTLS)
    stream.tls_established(CB)
    return stream


def authenticate(stream: C2SStream, mechanism: str = "SCRAM-SHA-256") -> list:
    """Runs a SCRAM exchange with our own client; returns the actions after the final step."""
    features = sent(stream.receive(header()))
    assert f"<mechanism>{mechanism}</mechanism>".encode() in features
    plus = mechanism.endswith("-PLUS")
    client = ScramClient(
        mechanism.removeprefix("SCRAM-").removesuffix("-PLUS"),
        "alice",
        "secret",
        cb_type="tls-server-end-point" if plus else None,
        cb_data=CB["tls-server-end-point"] if plus else b"",
    )
    first = base64.b64encode(client.first()).decode()
    auth = f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='{mechanism}'>{first}</auth>"
    actions = stream.receive(auth.encode())
    assert isinstance(actions[-1], c2s.LookupAccount)
    assert actions[-1].jid == JID.parse("alice@vines.test")
    challenge = sent(answer_lookup(stream, actions[-1], ALICE))
    server_first = base64.b64decode(challenge.split(b">")[1].split(b"<")[0])
    final = base64.b64encode(client.final(server_first)).decode()
    return stream.receive(
        f"<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{final}</response>".encode()
    )


def test_features_before_tls_offer_only_required_starttls():
    out = sent(C2SStream(SETTINGS).receive(header()))
    assert b"from='vines.test'" in out
    assert out.endswith(
        b"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/>"
        b"</starttls></stream:features>"
    )
    assert b"mechanism" not in out


def test_auth_before_tls_is_refused_without_checking_credentials():
    stream = C2SStream(SETTINGS)
    stream.receive(header())
    actions = stream.receive(
        b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGEAYg==</auth>"
    )
    assert b"<encryption-required/>" in sent(actions)
    assert not any(isinstance(a, c2s.LookupAccount) for a in actions)


@pytest.mark.parametrize("stanza", ["<message to='a@vines.test'/>", "<presence/>", "<iq/>"])
def test_stanza_before_tls_is_a_policy_violation(stanza):
    stream = C2SStream(SETTINGS)
    stream.receive(header())
    assert closed_with(stream.receive(stanza.encode()), "policy-violation")


@pytest.mark.parametrize(
    ("raw", "condition"),
    [
        (header("nowhere.test"), "host-unknown"),
        (header().replace(b"jabber:client", b"jabber:server"), "invalid-namespace"),
        (header().replace(b"etherx.jabber.org/streams", b"urn:wrong"), "invalid-namespace"),
        (header().replace(b"version='1.0'", b"version='2.0'"), "unsupported-version"),
        (
            header().replace(b"to='vines.test' version='1.0'", b"to='vines.test'"),
            "unsupported-version",
        ),
        (header().replace(b" to='vines.test'", b""), "improper-addressing"),
        (header("a@vines.test"), "improper-addressing"),
    ],
)
def test_header_errors_follow_our_own_header(raw, condition):
    actions = C2SStream(SETTINGS).receive(raw)
    out = sent(actions)
    assert out.startswith(b"<?xml version='1.0'?><stream:stream ")
    assert closed_with(actions, condition)


def test_domain_may_not_change_across_a_restart():
    stream = encrypted()
    assert closed_with(stream.receive(header("other.test")), "not-authorized")


def test_sasl_features_advertise_channel_binding_and_plain_inside_tls():
    stream = encrypted()
    out = sent(stream.receive(header()))
    for name in ("SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"):
        assert f"<mechanism>{name}</mechanism>".encode() in out
    assert b"<channel-binding type='tls-server-end-point'/>" in out
    assert b"xmlns='urn:xmpp:sasl-cb:0'" in out


def sasl_offer(cb: dict[str, bytes]) -> bytes:
    stream = C2SStream(SETTINGS)
    stream.receive(header())
    stream.receive(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    stream.tls_established(cb)
    return sent(stream.receive(header()))


def test_each_stream_is_offered_what_its_own_tls_session_binds():
    """The offers are serialized once per process: one connection's channel-binding types
    must never reach another's (a -PLUS offer without binding data, or one missing)."""
    both = {"tls-server-end-point": b"\x01" * 32, "tls-unique": b"\x02" * 12}
    for cb in (CB, {}, both, CB, {}):
        out = sasl_offer(cb)
        assert (b"SCRAM-SHA-256-PLUS" in out) == bool(cb)
        assert (b"<sasl-channel-binding" in out) == bool(cb)
        for cb_type in ("tls-server-end-point", "tls-unique"):
            assert (f"type='{cb_type}'".encode() in out) == (cb_type in cb)
        assert b"<mechanism>PLAIN</mechanism>" in out


def test_the_bound_offer_follows_authentication_on_every_stream():
    for _ in range(2):
        stream = encrypted()
        authenticate(stream)
        out = sent(stream.receive(header()))
        assert b"<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>" in out
        assert b"<mechanisms" not in out and b"<starttls" not in out
        assert stream.state is State.BIND


def test_stanza_after_tls_before_auth_is_not_authorized():
    stream = encrypted()
    stream.receive(header())
    assert closed_with(stream.receive(b"<message to='bob@vines.test'/>"), "not-authorized")


def test_second_starttls_fails_and_closes():
    stream = encrypted()
    stream.receive(header())
    actions = stream.receive(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    assert b"<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>" in sent(actions)
    assert isinstance(actions[-1], c2s.Close)


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-1", "SCRAM-SHA-256-PLUS"])
def test_scram_login_then_bind_then_stanzas_get_a_stamped_from(mechanism):
    stream = encrypted()
    actions = authenticate(stream, mechanism)
    assert b"<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" in sent(actions)
    assert any(isinstance(a, c2s.Authenticated) for a in actions)
    features = sent(stream.receive(header()))
    assert b"<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>" in features
    actions = stream.receive(
        b"<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
        b"<resource>desk</resource></bind></iq>"
    )
    (request,) = actions
    assert (request.resource, request.iq_id) == ("desk", "b")
    out = sent(stream.bound(request, JID.parse("alice@vines.test/desk")))
    assert b"<jid>alice@vines.test/desk</jid>" in out
    assert stream.state is State.READY
    (stanza,) = stream.receive(b"<message to='bob@vines.test'><body>hi</body></message>")
    assert stanza.element.get("from") == "alice@vines.test/desk"
    (sub,) = stream.receive(b"<presence to='bob@vines.test' type='subscribe'/>")
    assert sub.element.get("from") == "alice@vines.test"


def test_disabled_account_gets_account_disabled():
    stream = encrypted()
    stream.receive(header())
    token = base64.b64encode(b"\0alice\0secret").decode()
    actions = stream.receive(
        f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}</auth>".encode()
    )
    assert isinstance(actions[-1], c2s.LookupAccount)
    out = sent(answer_lookup(stream, actions[-1], Account(ALICE.credentials, disabled=True)))
    assert b"<account-disabled/>" in out


def test_third_failed_authentication_closes_with_policy_violation():
    stream = encrypted()
    stream.receive(header())
    token = base64.b64encode(b"\0alice\0wrong").decode()
    auth = f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}</auth>"
    for attempt in range(3):
        (lookup,) = stream.receive(auth.encode())
        actions = answer_lookup(stream, lookup, ALICE)
        assert b"<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/>" in sent(
            actions
        )
        assert closed_with(actions, "policy-violation") == (attempt == 2)


def test_bad_base64_is_incorrect_encoding():
    stream = encrypted()
    stream.receive(header())
    out = sent(
        stream.receive(
            b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>@@@</auth>"
        )
    )
    assert b"<incorrect-encoding/>" in out


def test_unknown_mechanism_is_invalid_mechanism():
    stream = encrypted()
    stream.receive(header())
    out = sent(
        stream.receive(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='X-FOO'/>")
    )
    assert b"<invalid-mechanism/>" in out


def ready() -> C2SStream:
    stream = encrypted()
    authenticate(stream)
    stream.receive(header())
    (request,) = stream.receive(
        b"<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>"
    )
    stream.bound(request, JID.parse("alice@vines.test/r"))
    return stream


@pytest.mark.parametrize(
    "claimed", ["bob@vines.test", "alice@vines.test/other", "vines.test", "alice@other.test/r"]
)
def test_a_foreign_from_closes_with_invalid_from(claimed):
    stream = ready()
    actions = stream.receive(f"<message from='{claimed}' to='bob@vines.test'/>".encode())
    assert closed_with(actions, "invalid-from")


def test_unknown_first_level_element_is_unsupported_stanza_type():
    stream = ready()
    assert closed_with(stream.receive(b"<foo xmlns='urn:x'/>"), "unsupported-stanza-type")
    stream = ready()
    compress = (
        b"<compress xmlns='http://jabber.org/protocol/compress'><method>zlib</method></compress>"
    )
    assert closed_with(stream.receive(compress), "unsupported-stanza-type")


def test_auth_after_success_is_a_policy_violation():
    stream = ready()
    actions = stream.receive(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'/>")
    assert closed_with(actions, "policy-violation")


def test_legacy_session_is_answered():
    stream = ready()
    out = sent(
        stream.receive(
            b"<iq type='set' id='s'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>"
        )
    )
    assert out == b"<iq type='result' id='s'/>"


def test_post_auth_limits_apply_after_success():
    stream = ready()
    big = b"<message to='bob@vines.test'><body>" + b"x" * 20000 + b"</body></message>"
    (stanza,) = stream.receive(big)  # over the 8 KiB pre-auth limit, under 256 KiB
    assert stanza.element.get("to") == "bob@vines.test"


def test_stream_close_is_answered_with_close():
    stream = ready()
    actions = stream.receive(b"</stream:stream>")
    assert sent(actions) == b"</stream:stream>"
    assert actions[-1] == c2s.Close(None)

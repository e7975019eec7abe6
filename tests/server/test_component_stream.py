"""The component stream (XEP-0114) without any I/O: feed bytes, assert the actions and XML."""

from __future__ import annotations

import hashlib
import re

import pytest
from vines_server.xmpp.actions import AuthFailed, Close, Send
from vines_server.xmpp.component import (
    ClaimDomain,
    ComponentSettings,
    ComponentStanza,
    ComponentStream,
    handshake_digest,
)
from vines_server.xmpp.errors import StreamError
from vines_server.xmpp.parser import ParserLimits
from vines_server.xmpp.stream import State

WORK = "work.vines.test"
SECRET = "sesame"
SETTINGS = ComponentSettings(
    domains=frozenset({WORK}),
    preauth_limits=ParserLimits(8192, 32, 64, 64),
    limits=ParserLimits(262144, 1024, 64, 64),
    secrets={WORK: SECRET},
)


def header(to: str | None = WORK, ns: str = "jabber:component:accept") -> bytes:
    to_attr = f" to='{to}'" if to is not None else ""
    # as slixmpp's ComponentXMPP writes it: no version, no from
    return (
        f"<stream:stream xmlns='{ns}' xmlns:stream='http://etherx.jabber.org/streams'{to_attr}>"
    ).encode()


def sent(actions: list) -> bytes:
    return b"".join(a.data for a in actions if isinstance(a, Send))


def closed_with(actions: list, condition: str) -> bool:
    out = sent(actions)
    return (
        f"<{condition} xmlns='urn:ietf:params:xml:ns:xmpp-streams'".encode() in out
        and out.endswith(b"</stream:stream>")
        and isinstance(actions[-1], Close)
    )


def opened(stream: ComponentStream) -> str:
    """Sends the header; returns the stream id the server's header carries."""
    out = sent(stream.receive(header()))
    match = re.search(rb"id='([^']+)'", out)
    assert match, out
    assert b"<stream:features" not in out  # XEP-0114 streams offer no features
    assert f"from='{WORK}'".encode() in out
    return match[1].decode()


def ready() -> ComponentStream:
    stream = ComponentStream(SETTINGS)
    sid = opened(stream)
    claim = stream.receive(f"<handshake>{handshake_digest(sid, SECRET)}</handshake>".encode())
    assert isinstance(claim[-1], ClaimDomain) and claim[-1].domain == WORK
    assert sent(stream.claimed(claim[-1], None)) == b"<handshake/>"
    assert stream.state is State.READY
    return stream


def test_the_handshake_is_hex_sha1_of_the_id_and_the_secret() -> None:
    assert handshake_digest("3BF96D32", "secret") == hashlib.sha1(b"3BF96D32secret").hexdigest()
    stream = ready()
    assert stream.domain == WORK


def test_each_stream_gets_its_own_id() -> None:
    assert opened(ComponentStream(SETTINGS)) != opened(ComponentStream(SETTINGS))


def test_a_wrong_handshake_is_not_authorized() -> None:
    stream = ComponentStream(SETTINGS)
    sid = opened(stream)
    wrong = handshake_digest(sid, "guess")
    actions = stream.receive(f"<handshake>{wrong}</handshake>".encode())
    assert closed_with(actions, "not-authorized")
    assert isinstance(actions[0], AuthFailed)  # counted against the IP


def test_a_handshake_for_another_stream_id_is_not_authorized() -> None:
    stream = ComponentStream(SETTINGS)
    opened(stream)
    replayed = handshake_digest("an-old-stream-id", SECRET)
    actions = stream.receive(f"<handshake>{replayed}</handshake>".encode())
    assert closed_with(actions, "not-authorized")


@pytest.mark.parametrize(
    ("head", "condition"),
    [
        (header(to=None), "improper-addressing"),
        (header(to="elsewhere.test"), "host-unknown"),
        (header(to="bot@" + WORK), "improper-addressing"),
        (header(ns="jabber:client"), "invalid-namespace"),
    ],
)
def test_header_errors(head: bytes, condition: str) -> None:
    actions = ComponentStream(SETTINGS).receive(head)
    assert closed_with(actions, condition)
    assert re.search(rb"<stream:stream [^>]*id='", sent(actions))  # our header first


def test_a_stanza_before_the_handshake_is_not_authorized() -> None:
    stream = ComponentStream(SETTINGS)
    opened(stream)
    actions = stream.receive(f"<message from='{WORK}' to='alice@vines.test'/>".encode())
    assert closed_with(actions, "not-authorized")


def test_a_refused_claim_closes_with_its_condition() -> None:
    stream = ComponentStream(SETTINGS)
    sid = opened(stream)
    claim = stream.receive(f"<handshake>{handshake_digest(sid, SECRET)}</handshake>".encode())
    assert closed_with(stream.claimed(claim[-1], StreamError("conflict")), "conflict")


def test_what_is_pipelined_behind_the_handshake_waits_for_the_claim() -> None:
    stream = ComponentStream(SETTINGS)
    sid = opened(stream)
    digest = handshake_digest(sid, SECRET)
    msg = f"<message from='{WORK}' to='alice@vines.test'><body>x</body></message>"
    claim = stream.receive(f"<handshake>{digest}</handshake>{msg}".encode())
    assert not [a for a in claim if isinstance(a, ComponentStanza)]
    after = stream.claimed(claim[-1], None)
    assert sent(after) == b"<handshake/>"
    assert [a for a in after if isinstance(a, ComponentStanza)]


@pytest.mark.parametrize("sender", [WORK, f"bot@{WORK}", f"bot@{WORK}/r1"])
def test_stanzas_from_the_component_domain_go_on_in_the_client_namespace(sender: str) -> None:
    stream = ready()
    actions = stream.receive(
        f"<message from='{sender}' to='alice@vines.test'><body>hi</body></message>".encode()
    )
    (stanza,) = actions
    assert isinstance(stanza, ComponentStanza)
    assert stanza.element.tag == "{jabber:client}message"
    assert stanza.element[0].tag == "{jabber:client}body"


@pytest.mark.parametrize(
    "sender", ["vines.test", "alice@vines.test", "other.work.vines.test", "x@spare.test"]
)
def test_a_stanza_from_outside_the_component_domain_is_invalid_from(sender: str) -> None:
    stream = ready()
    actions = stream.receive(f"<message from='{sender}' to='alice@vines.test'/>".encode())
    assert closed_with(actions, "invalid-from")


def test_a_stanza_without_to_or_from_is_bad_request() -> None:
    stream = ready()
    out = sent(
        stream.receive(b"<iq type='get' id='q1' to='vines.test'><ping xmlns='urn:xmpp:ping'/></iq>")
    )
    assert b"<bad-request" in out and b"id='q1'" in out
    out = sent(
        stream.receive(
            f"<iq type='get' id='q2' from='{WORK}'><ping xmlns='urn:xmpp:ping'/></iq>".encode()
        )
    )
    assert b"<bad-request" in out and b"id='q2'" in out
    assert stream.state is State.READY


def test_restricted_xml_is_refused_as_on_client_streams() -> None:
    stream = ready()
    assert closed_with(stream.receive(b"<!-- a comment -->"), "restricted-xml")


def test_the_stanza_size_limit_applies() -> None:
    stream = ComponentStream(SETTINGS)
    opened(stream)
    big = b"<handshake>" + b"a" * 9000 + b"</handshake>"
    assert closed_with(stream.receive(big), "policy-violation")


def test_unknown_elements_and_a_second_handshake() -> None:
    assert closed_with(ready().receive(b"<foo/>"), "unsupported-stanza-type")
    assert closed_with(ready().receive(b"<handshake>x</handshake>"), "policy-violation")

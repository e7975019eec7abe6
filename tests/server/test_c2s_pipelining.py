"""One exchange at a time in the c2s state machine (design decision 11, issue 8.1): whatever a
client pipelines behind an element that awaits an answer waits for that answer, an answer only
completes the request it answers, and the identity that succeeds is the one whose credentials
were checked. Pure: bytes in, actions out, answers from an in-memory account table."""

from __future__ import annotations

import base64
import dataclasses

import pytest
from vines_server.xmpp import c2s
from vines_server.xmpp.c2s import C2SStream, State
from vines_server.xmpp.errors import StanzaError
from vines_server.xmpp.jid import JID
from vines_server.xmpp.sasl.client import ScramClient

from tests.server.test_c2s import CB, SETTINGS, closed_with, encrypted, header, sent
from tests.support.c2s import (
    ABORT,
    STARTTLS,
    Driver,
    accounts,
    answer_lookup,
    auth,
    bind,
    derive,
    plain,
    response,
    stream_open,
)

PASSWORDS = {"alice": "alice-pw", "admin": "admin-pw", "bob": "bob-pw"}
ACCOUNTS = accounts("vines.test", PASSWORDS, 4096)
ALICE, ADMIN = "alice@vines.test", "admin@vines.test"
MINE = PASSWORDS["alice"]


def negotiated() -> Driver:
    """Encrypted, SASL features sent: the next element may be <auth>."""
    stream = encrypted()
    stream.receive(header())
    return Driver(stream, ACCOUNTS)


def scram_first(user: str, password: str) -> str:
    client = ScramClient("SHA-256", user, password)
    return auth(client.mechanism, client.first())


@pytest.mark.parametrize(
    "between",
    [ABORT, auth("X-FOO"), stream_open("vines.test")],
    ids=["abort", "unknown-mechanism", "restart"],
)
def test_own_credentials_then_plain_naming_admin_never_succeeds_as_admin(between):
    driver = negotiated()
    driver.feed(plain("alice", MINE) + between + plain("admin", MINE))
    assert driver.authenticated() == [ALICE]
    assert driver.stream.jid == JID.parse(ALICE)
    # What was pipelined behind <success/> predates the restart: dropped, never handled.
    assert driver.failures() == []
    driver.feed(header())
    driver.feed(bind())
    assert driver.stream.jid == JID.parse(f"{ALICE}/auto")


@pytest.mark.parametrize("between", ["", ABORT, auth("X-FOO")], ids=["none", "abort", "x-foo"])
def test_scram_start_then_plain_naming_admin_fails(between):
    driver = negotiated()
    driver.feed(scram_first("alice", MINE) + between + plain("admin", MINE) + plain("admin", MINE))
    assert driver.authenticated() == []
    assert driver.stream.jid is None
    # each exchange is answered on its own: SCRAM's challenge went out before anything else
    out = sent(driver.executed)
    assert out.index(b"<challenge") < out.index(b"<failure")


def test_three_wrong_passwords_in_one_read_are_three_failures():
    driver = negotiated()
    actions = driver.feed(plain("alice", "wrong") * 3)
    assert driver.failures() == ["not-authorized"] * 3
    assert closed_with(actions, "policy-violation")


def test_two_wrong_passwords_then_the_right_one_in_one_read():
    driver = negotiated()
    driver.feed(plain("alice", "wrong") * 2 + plain("alice", MINE))
    assert driver.failures() == ["not-authorized"] * 2
    assert driver.authenticated() == [ALICE]


def test_nothing_is_handled_while_a_lookup_is_outstanding():
    stream = encrypted()
    stream.receive(header())
    actions = stream.receive((plain("alice", MINE) + ABORT + plain("admin", MINE)).encode())
    (lookup,) = actions  # the abort and the second <auth> wait
    assert lookup.jid == JID.parse(ALICE)
    assert stream.receive(plain("bob", "bob-pw").encode()) == []  # later reads wait too
    out = answer_lookup(stream, lookup, ACCOUNTS[ALICE])
    assert b"<success" in sent(out) and stream.jid == JID.parse(ALICE)


def test_an_answer_counts_only_for_the_request_it_answers():
    stream = encrypted()
    stream.receive(header())
    (first,) = stream.receive(plain("alice", "wrong").encode())
    assert b"<not-authorized/>" in sent(answer_lookup(stream, first, ACCOUNTS[ALICE]))
    (second,) = stream.receive(plain("admin", MINE).encode())
    assert second.exchange != first.exchange
    # a repeated (late) answer to the first exchange, with the account whose password was sent
    assert answer_lookup(stream, first, ACCOUNTS[ALICE]) == []
    forged = c2s.LookupAccount(second.jid, first.exchange)
    assert answer_lookup(stream, forged, ACCOUNTS[ALICE]) == []
    assert stream.state is State.SASL and stream.jid is None
    assert b"<not-authorized/>" in sent(answer_lookup(stream, second, ACCOUNTS[ADMIN]))
    assert answer_lookup(stream, second, ACCOUNTS[ADMIN]) == []  # answered once, only once


def test_a_plain_derivation_counts_only_for_the_exchange_that_asked_for_it():
    stream = encrypted()
    stream.receive(header())
    (lookup,) = stream.receive(plain("alice", "wrong").encode())
    (asked,) = stream.account(lookup, ACCOUNTS[ALICE])
    assert isinstance(asked, c2s.DeriveKey) and "wrong" not in repr(asked)
    assert stream.receive(ABORT.encode()) == []  # waits behind the derivation
    # what the right password derives to, as the answer to another exchange: ignored
    right = derive(dataclasses.replace(asked, password=MINE.encode()))
    assert stream.derived(dataclasses.replace(asked, exchange=asked.exchange + 1), right) == []
    out = stream.derived(asked, derive(asked))
    # the password's failure, then the abort that waited (no exchange is left to abort)
    assert sent(out).count(b"<not-authorized/>") == 2
    assert stream.derived(asked, right) == []  # answered once, only once
    assert stream.jid is None


def test_a_derivation_that_ends_after_the_stream_closed_is_ignored():
    stream = encrypted()
    stream.receive(header())
    (lookup,) = stream.receive(plain("alice", MINE).encode())
    (asked,) = stream.account(lookup, ACCOUNTS[ALICE])
    assert stream.receive(b" " * SETTINGS.preauth_limits.stanza_size) == []
    assert closed_with(stream.receive(b" "), "policy-violation")
    assert stream.derived(asked, derive(asked)) == [] and stream.jid is None


def test_scram_challenge_waits_for_its_lookup_and_success_is_the_looked_up_account():
    stream = encrypted()
    stream.receive(header())
    client = ScramClient("SHA-256", "alice", MINE)
    (lookup,) = stream.receive(auth(client.mechanism, client.first()).encode())
    challenge = sent(answer_lookup(stream, lookup, ACCOUNTS[ALICE]))
    server_first = base64.b64decode(challenge.split(b">")[1].split(b"<")[0])
    out = stream.receive(response(client.final(server_first)).encode())
    assert [str(a.jid) for a in out if isinstance(a, c2s.Authenticated)] == [ALICE]


def test_stanzas_pipelined_behind_bind_are_handled_after_the_result_in_order():
    driver = negotiated()
    driver.feed(plain("alice", MINE))
    driver.feed(header())
    stream = driver.stream
    actions = stream.receive(
        (
            bind("b1", "desk") + "<presence/><message to='bob@vines.test'><body>1</body></message>"
        ).encode()
    )
    (request,) = actions
    assert isinstance(request, c2s.BindRequest) and request.iq_id == "b1"
    out = stream.bound(request, JID.parse(f"{ALICE}/desk"))
    assert isinstance(out[0], c2s.Send) and b"<jid>alice@vines.test/desk</jid>" in out[0].data
    stanzas = [a.element for a in out if isinstance(a, c2s.StanzaIn)]
    assert [el.tag.split("}")[1] for el in stanzas] == ["presence", "message"]
    assert {el.get("from") for el in stanzas} == {f"{ALICE}/desk"}


def test_a_refused_bind_lets_the_pipelined_retry_through():
    driver = negotiated()
    driver.feed(plain("alice", MINE))
    driver.feed(header())
    stream = driver.stream
    (first,) = stream.receive((bind("b1", "x") + bind("b2", "desk")).encode())
    err = StanzaError("resource-constraint", "too many sessions", type="cancel")
    out = stream.bind_failed(first, err)
    assert b"id='b1'" in sent(out) and b"<resource-constraint" in sent(out)
    (second,) = [a for a in out if isinstance(a, c2s.BindRequest)]
    assert (second.iq_id, second.resource) == ("b2", "desk")
    assert stream.bound(first, JID.parse(f"{ALICE}/x")) == []  # the old request is spent
    assert b"id='b2'" in sent(stream.bound(second, JID.parse(f"{ALICE}/desk")))


def test_too_much_pipelined_behind_a_lookup_is_a_policy_violation():
    stream = encrypted()
    stream.receive(header())
    behind = ABORT * (SETTINGS.pipelined + 1)
    actions = stream.receive((plain("alice", MINE) + behind).encode())
    assert closed_with(actions, "policy-violation")
    assert b"pipelined" in sent(actions)
    assert not any(isinstance(a, c2s.LookupAccount) for a in actions)  # nobody waits for it


def test_the_cap_counts_later_reads_too():
    stream = encrypted()
    stream.receive(header())
    (lookup,) = stream.receive(plain("alice", MINE).encode())
    assert stream.receive(b" " * SETTINGS.preauth_limits.stanza_size) == []
    assert closed_with(stream.receive(b" "), "policy-violation")
    assert answer_lookup(stream, lookup, ACCOUNTS[ALICE]) == []  # closed: the answer is ignored


def test_plaintext_after_starttls_in_a_later_read_is_dropped():
    stream = C2SStream(SETTINGS)
    stream.receive(header())
    assert isinstance(stream.receive(STARTTLS.encode())[-1], c2s.StartTLS)
    assert stream.receive(plain("alice", MINE).encode()) == []  # never parsed
    stream.tls_established(CB)
    out = sent(stream.receive(header()))
    assert b"<mechanism>PLAIN</mechanism>" in out and stream.state is State.AUTH


def test_a_handshake_answer_outside_a_handshake_is_ignored():
    driver = negotiated()
    driver.feed(plain("alice", MINE))
    assert driver.stream.tls_established(CB) == []
    features = sent(driver.stream.receive(header()))
    assert b"<bind xmlns=" in features  # still authenticated: nothing was reset


def test_direct_tls_reads_nothing_before_the_handshake():
    stream = C2SStream(SETTINGS, tls=True)
    assert stream.receive(header()) == []
    stream.tls_established(CB)
    assert b"<mechanism>SCRAM-SHA-256-PLUS</mechanism>" in sent(stream.receive(header()))


def test_the_legacy_name_lookup_is_a_request_of_its_own():
    """A name without an account is looked up again under its pre-PRECIS form ('straße' as
    'strasse'): the answer to the first lookup can never stand for the second."""
    legacy = accounts("vines.test", {"strasse": "pw-ss"}, 4096)["strasse@vines.test"]
    stream = encrypted()
    stream.receive(header())
    (first,) = stream.receive(plain("straße", "pw-ss").encode())
    assert first.jid == JID.parse("straße@vines.test")
    (second,) = answer_lookup(stream, first, None)
    assert second.jid == JID.parse("strasse@vines.test") and second.exchange != first.exchange
    assert answer_lookup(stream, first, legacy) == []  # a late answer to the first lookup
    out = answer_lookup(stream, second, legacy)
    (authenticated,) = [a for a in out if isinstance(a, c2s.Authenticated)]
    assert authenticated.jid == JID.parse("strasse@vines.test")
    assert authenticated.legacy_name == "straße@vines.test"

"""SASL state machines: full exchanges with our own client, RFC vectors, and the A-01..A-12 cases
that live at the mechanism level (security-test-plan section 5.3)."""

from __future__ import annotations

import base64
import hashlib
import random
import re

import pytest
from vines_server.xmpp.sasl import (
    MECHANISMS,
    Challenge,
    Failure,
    NeedCredentials,
    NeedDerivation,
    PayloadError,
    Success,
    create,
    decode_payload,
    encode_payload,
    offered,
)
from vines_server.xmpp.sasl.client import ScramClient
from vines_server.xmpp.sasl.credentials import DEFAULT_ITERATIONS, derive, derive_all
from vines_server.xmpp.sasl.plain import PlainMechanism
from vines_server.xmpp.sasl.scram import ScramMechanism

DOMAIN = "example.net"
CB = {"tls-server-end-point": b"\x01" * 32, "tls-unique": b"\x02" * 12}
ACCOUNTS = {"alice": derive_all("wonderland"), "bob": derive_all("builder")}


def lookup(username: str):
    return ACCOUNTS.get(username)


def plain_result(mech: PlainMechanism, creds):
    """credentials(), then the PBKDF2 it asks for, as the connection runs it."""
    step = mech.credentials(creds)
    if not isinstance(step, NeedDerivation):
        return step
    return mech.derived(
        hashlib.pbkdf2_hmac(step.hash_name, step.password, step.salt, step.iterations)
    )


def scram(name: str = "SCRAM-SHA-256", **kw) -> ScramMechanism:
    kw.setdefault("cb_data", CB)
    kw.setdefault("plus_offered", True)
    return create(name, domain=DOMAIN, **kw)


def run_scram(mech, client: ScramClient, *, initial: bool = True):
    """Drive one exchange; returns (final step, server-first bytes or None, client-final)."""
    step = mech.start(client.first() if initial else None)
    if not initial:
        assert step == Challenge(b"")
        step = mech.step(client.first())
    if not isinstance(step, NeedCredentials):
        return step, None, None
    server_first = mech.credentials(lookup(step.username))
    assert isinstance(server_first, Challenge)
    client_final = client.final(server_first.data)
    return mech.step(client_final), server_first.data, client_final


# -- RFC test vectors ------------------------------------------------------------------------

VECTORS = [
    pytest.param(  # RFC 5802 section 5
        "SHA-1",
        "fyko+d2lbbFgONRv9qkxdawL",
        "3rfcNHYJY1ZVvWVs7j",
        "QSXCR+Q6sek8bf92",
        "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
        "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
        id="rfc5802",
    ),
    pytest.param(  # RFC 7677 section 3
        "SHA-256",
        "rOprNGfwEbeRWgbNEkqO",
        "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
        "W22ZaJ0SNY7soEsUEjb6gQ==",
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
        id="rfc7677",
    ),
]


@pytest.mark.parametrize(
    ("hash_name", "cnonce", "snonce", "salt", "client_final", "server_final"), VECTORS
)
def test_rfc_vectors(hash_name, cnonce, snonce, salt, client_final, server_final):
    creds = {hash_name: derive("pencil", hash_name, 4096, base64.b64decode(salt))}
    mech = ScramMechanism(hash_name, nonce=snonce)
    client = ScramClient(hash_name, "user", "pencil", nonce=cnonce)
    assert client.first() == f"n,,n=user,r={cnonce}".encode()
    assert mech.start(client.first()) == NeedCredentials("user")
    server_first = mech.credentials(creds)
    assert server_first == Challenge(f"r={cnonce}{snonce},s={salt},i=4096".encode())
    assert client.final(server_first.data) == client_final.encode()
    result = mech.step(client_final.encode())
    assert result == Success("user", server_final.encode())
    assert client.verify(result.data)


# -- full exchanges --------------------------------------------------------------------------


@pytest.mark.parametrize("hash_name", ["SHA-1", "SHA-256"])
@pytest.mark.parametrize("cb_type", [None, "tls-server-end-point", "tls-unique"])
@pytest.mark.parametrize("initial", [True, False])
def test_full_exchange(hash_name, cb_type, initial):
    client = ScramClient(hash_name, "alice", "wonderland", cb_type, CB.get(cb_type, b""))
    mech = scram(client.mechanism)
    assert mech.name == client.mechanism
    result, _, _ = run_scram(mech, client, initial=initial)
    assert isinstance(result, Success) and result.username == "alice"
    assert client.verify(result.data)
    assert not client.verify(b"v=" + base64.b64encode(b"\0" * len(result.data)))


def test_non_plus_without_tls_binding_offered():
    client = ScramClient("SHA-256", "bob", "builder", cb_supported=True)  # flag 'y'
    mech = scram(cb_data={}, plus_offered=False)
    result, _, _ = run_scram(mech, client)
    assert isinstance(result, Success) and client.verify(result.data)


def test_authzid_equal_to_user_or_bare_jid_is_accepted():
    for authzid in ("alice", f"alice@{DOMAIN}", "Alice@Example.NET"):
        client = ScramClient("SHA-256", "alice", "wonderland", authzid=authzid)
        assert isinstance(run_scram(scram(), client)[0], Success)


def test_username_escapes():
    name = "a,b=c"
    ACCOUNTS[name] = derive_all("pw", iterations=4096)
    try:
        client = ScramClient("SHA-1", name, "pw")
        assert b"n=a=2Cb=3Dc," in client.first()
        result, _, _ = run_scram(scram("SCRAM-SHA-1"), client)
        assert result.username == name
    finally:
        del ACCOUNTS[name]


@pytest.mark.parametrize(
    ("name", "account"),
    [
        ("\uff41lice", "alice"),  # fullwidth a: width mapping (RFC 7622 UsernameCaseMapped)
        ("ALICE", "alice"),
        ("stra\u00dfe", "stra\u00dfe"),  # not casefolded to "strasse": another account
    ],
)
def test_username_is_prepared_as_a_localpart(name, account):
    assert scram().start(f"n,,n={name},r=abc".encode()) == NeedCredentials(account)


@pytest.mark.parametrize("name", ["alice\u00ad", "\U0001f600", "bad'q", "a b"])
def test_username_precis_refuses(name):
    assert scram().start(f"n,,n={name},r=abc".encode()) == Failure("malformed-request")


# -- channel binding (A-09) ------------------------------------------------------------------


def test_plus_with_wrong_binding_data():
    client = ScramClient("SHA-256", "alice", "wonderland", "tls-server-end-point", b"\x09" * 32)
    assert run_scram(scram("SCRAM-SHA-256-PLUS"), client)[0] == Failure("not-authorized")


def test_downgrade_flag_y_while_plus_offered():
    client = ScramClient("SHA-256", "alice", "wonderland", cb_supported=True)
    assert scram().start(client.first()) == Failure("not-authorized")


@pytest.mark.parametrize(
    ("mechanism", "first", "cb_data"),
    [
        ("SCRAM-SHA-256-PLUS", b"p=tls-exporter,,n=alice,r=abc", CB),
        ("SCRAM-SHA-256-PLUS", b"p=tls-unique,,n=alice,r=abc", {"tls-server-end-point": b"h"}),
        ("SCRAM-SHA-256-PLUS", b"n,,n=alice,r=abc", CB),
        ("SCRAM-SHA-256-PLUS", b"y,,n=alice,r=abc", CB),
        ("SCRAM-SHA-256", b"p=tls-server-end-point,,n=alice,r=abc", CB),
        ("SCRAM-SHA-256-PLUS", b"p=tls server,,n=alice,r=abc", CB),
    ],
)
def test_binding_flag_that_does_not_fit(mechanism, first, cb_data):
    assert scram(mechanism, cb_data=cb_data).start(first) == Failure("malformed-request")


def test_binding_flag_changed_between_messages():
    client = ScramClient("SHA-256", "alice", "wonderland")
    mech = scram()
    mech.start(client.first())
    server_first = mech.credentials(lookup("alice")).data
    final = client.final(server_first).replace(b"c=biws", b"c=eSws")  # 'y,,' instead of 'n,,'
    assert mech.step(final) == Failure("not-authorized")


# -- A-01 / A-04: wrong password and unknown user look the same -------------------------------


def _shape(server_first: bytes) -> tuple[int, int, str]:
    m = re.fullmatch(rb"r=([^,]+),s=([^,]+),i=(\d+)", server_first)
    assert m is not None
    return len(m.group(1)), len(base64.b64decode(m.group(2))), m.group(3).decode()


@pytest.mark.parametrize("hash_name", ["SHA-1", "SHA-256"])
def test_unknown_user_indistinguishable_from_wrong_password(hash_name):
    wrong = run_scram(scram(f"SCRAM-{hash_name}"), ScramClient(hash_name, "alice", "nope"))
    ghost = run_scram(scram(f"SCRAM-{hash_name}"), ScramClient(hash_name, "ghost", "nope"))
    assert wrong[0] == ghost[0] == Failure("not-authorized")
    assert _shape(wrong[1]) == _shape(ghost[1])
    assert _shape(ghost[1])[2] == str(DEFAULT_ITERATIONS)
    assert len(wrong[2]) == len(ghost[2])


def test_fake_salt_is_stable_per_username():
    def salt(user: str, hash_name: str = "SHA-256") -> bytes:
        mech = scram(f"SCRAM-{hash_name}")
        mech.start(ScramClient(hash_name, user, "x").first())
        return mech.credentials(None).data.split(b",")[1]

    assert salt("ghost") == salt("ghost")
    assert salt("ghost") != salt("phantom")
    assert salt("ghost") != salt("ghost", "SHA-1")
    # A persisted secret (fake_secret) keeps it stable across processes too.
    one = scram(fake_secret=b"k" * 32)
    one.start(b"n,,n=ghost,r=abc")
    two = scram(fake_secret=b"k" * 32)
    two.start(b"n,,n=ghost,r=xyz")
    assert one.credentials(None).data.split(b",")[1] == two.credentials(None).data.split(b",")[1]


def test_account_without_keys_for_this_hash_fails_like_unknown():
    ACCOUNTS["half"] = {"SHA-256": derive("pw", "SHA-256", 4096)}
    try:
        result = run_scram(scram("SCRAM-SHA-1"), ScramClient("SHA-1", "half", "pw"))
        assert result[0] == Failure("not-authorized")
    finally:
        del ACCOUNTS["half"]


def test_fake_user_iterations_follow_configuration():
    mech = scram(iterations=20_000)
    mech.start(b"n,,n=ghost,r=abc")
    assert mech.credentials(None).data.endswith(b",i=20000")


# -- A-05: base64 ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["abc", "QQ=", "QQ===", "Q Q==", "QQ==\n", "====", "==", "QR==", "QUJD\r\n", "Q!==", "é"],
)
def test_bad_base64_is_incorrect_encoding(text):
    with pytest.raises(PayloadError) as info:
        decode_payload(text)
    assert isinstance(info.value, Failure) and info.value.condition == "incorrect-encoding"


def test_payload_round_trip():
    assert decode_payload("=") == b""
    assert decode_payload("") == b""
    assert encode_payload(b"") == "="
    assert decode_payload(encode_payload(b"\0user\0pw")) == b"\0user\0pw"


def test_failure_rejects_unknown_conditions():
    with pytest.raises(ValueError):
        Failure("bad-auth")


# -- A-07 replay, A-08 tampering -------------------------------------------------------------


def test_replayed_exchange_fails_on_a_new_instance():
    client = ScramClient("SHA-256", "alice", "wonderland")
    result, _, client_final = run_scram(scram(), client)
    assert isinstance(result, Success)
    replay = scram()
    assert replay.start(client.first()) == NeedCredentials("alice")
    assert isinstance(replay.credentials(lookup("alice")), Challenge)
    assert replay.step(client_final) == Failure("not-authorized")


def _tamper(transform) -> Failure | Success:
    client = ScramClient("SHA-256", "alice", "wonderland")
    mech = scram()
    mech.start(client.first())
    final = client.final(mech.credentials(lookup("alice")).data)
    return mech.step(transform(final))


@pytest.mark.parametrize(
    ("transform", "condition"),
    [
        (lambda f: re.sub(rb"r=[^,]+", b"r=abc", f), "not-authorized"),  # nonce not ours
        (lambda f: re.sub(rb"p=.*", b"p=" + base64.b64encode(b"x" * 31), f), "not-authorized"),
        (lambda f: re.sub(rb"p=.*", b"p=" + base64.b64encode(b"x" * 32), f), "not-authorized"),
        (lambda f: re.sub(rb"p=.*", b"p=", f), "malformed-request"),
        (lambda f: re.sub(rb"p=.*", b"p=***", f), "malformed-request"),
        (lambda f: re.sub(rb",p=.*", b"", f), "malformed-request"),
        (lambda f: f.replace(b"c=biws,", b""), "malformed-request"),
        (lambda f: f.replace(b"c=biws", b"c=biws="), "malformed-request"),
        (lambda f: f.replace(b"c=biws,", b"") + b",c=biws", "malformed-request"),
        (lambda f: f.replace(b",p=", b",i=1,p="), "not-authorized"),  # extension changes proof
        (lambda f: f.replace(b",p=", b",1=x,p="), "malformed-request"),
        (lambda f: b"\xff" + f, "malformed-request"),
        (lambda f: b"", "malformed-request"),
    ],
)
def test_tampered_client_final(transform, condition):
    assert _tamper(transform) == Failure(condition)


@pytest.mark.parametrize(
    "first",
    [
        b"",
        b"n,,",
        b"n,n=alice,r=abc",
        b"x,,n=alice,r=abc",
        b"n,,r=abc,n=alice",
        b"n,,n=alice",
        b"n,,n=alice,r=",
        b"n,,n=alice,r=a b",
        b"n,,n=,r=abc",
        b"n,,n=al=2Dice,r=abc",
        b"n,,n=al=ice,r=abc",
        b"n,,m=ext,n=alice,r=abc",
        b"n,,n=alice,r=abc,",
        b"n,b=x,n=alice,r=abc",
        b"n,a=al=ice,n=alice,r=abc",
        b"n,,n=al\x07ice,r=abc",
        b"n,,n=\xc3\x28,r=abc",
        b"n,,n=\xee\x80\x80,r=abc",  # private use
    ],
)
def test_malformed_client_first(first):
    assert scram().start(first) == Failure("malformed-request")


def test_oversized_messages_are_malformed():
    assert scram().start(b"n,,n=" + b"a" * 5000 + b",r=abc") == Failure("malformed-request")
    assert _tamper(lambda f: f.replace(b",p=", b",x=" + b"a" * 5000 + b",p=")) == Failure(
        "malformed-request"
    )


def test_client_salted_cache_and_checks():
    cache: dict = {}
    for _ in range(2):
        client = ScramClient("SHA-256", "alice", "wonderland", salted_cache=cache)
        result, _, _ = run_scram(scram(), client)
        assert isinstance(result, Success) and client.verify(result.data)
    assert len(cache) == 1
    client = ScramClient("SHA-256", "alice", "x", nonce="abc", min_iterations=100_000)
    with pytest.raises(ValueError):
        client.final(b"r=abcdef,s=QSXCR+Q6sek8bf92,i=4096")  # too few iterations
    for bad in (b"r=xyzdef,s=QSXCR+Q6sek8bf92,i=4096", b"r=abc,s=QSXCR+Q6sek8bf92,i=4096",
                b"m=x,r=abcdef,s=QQ==,i=1", b"r=abcdef,s=QQ=,i=4096", b"\xff"):  # fmt: skip
        with pytest.raises(ValueError):
            ScramClient("SHA-256", "alice", "x", nonce="abc").final(bad)
    assert not ScramClient("SHA-256", "alice", "x").verify(b"v=AAAA")  # before final()


def test_client_first_extensions_are_ignored():
    assert scram().start(b"n,,n=alice,r=abc,x=1") == NeedCredentials("alice")


def test_random_garbage_never_raises():
    rng = random.Random(5802)
    client = ScramClient("SHA-256", "alice", "wonderland")
    valid_first = client.first()
    for _ in range(500):
        data = bytearray(valid_first)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        mech = scram()
        step = mech.start(bytes(data))
        if isinstance(step, NeedCredentials):
            mech.credentials(lookup(step.username))
            step = mech.step(bytes(rng.randrange(256) for _ in range(rng.randint(0, 80))))
        assert isinstance(step, Failure | NeedCredentials)


# -- A-10 authzid ----------------------------------------------------------------------------


def test_scram_authzid_mismatch():
    client = ScramClient("SHA-256", "alice", "wonderland", authzid=f"bob@{DOMAIN}")
    assert scram().start(client.first()) == Failure("invalid-authzid")


@pytest.mark.parametrize("authzid", ["bob", f"alice@{DOMAIN}/res", "alice@elsewhere.org"])
def test_plain_authzid_mismatch(authzid):
    mech = PlainMechanism(domain=DOMAIN)
    assert mech.start(f"{authzid}\0alice\0wonderland".encode()) == Failure("invalid-authzid")


# -- state: out of order and after completion (A-11 at mechanism level) ----------------------


def test_input_after_success_is_refused():
    client = ScramClient("SHA-256", "alice", "wonderland")
    mech = scram()
    result, _, client_final = run_scram(mech, client)
    assert isinstance(result, Success) and mech.done
    assert mech.step(client_final) == Failure("not-authorized")
    assert mech.start(client.first()) == Failure("not-authorized")
    assert mech.credentials(lookup("alice")) == Failure("not-authorized")


def test_input_after_failure_is_refused():
    mech = scram()
    assert mech.start(b"garbage") == Failure("malformed-request")
    assert mech.step(ScramClient("SHA-256", "alice", "wonderland").first()) == Failure(
        "not-authorized"
    )


def test_out_of_order_calls():
    assert scram().step(b"n,,n=alice,r=abc") == Failure("not-authorized")
    assert scram().credentials(lookup("alice")) == Failure("not-authorized")
    mech = scram()
    mech.start(b"n,,n=alice,r=abc")
    assert mech.step(b"c=biws,r=abc,p=AAAA") == Failure("not-authorized")  # creds not supplied
    plain = PlainMechanism()
    assert plain.credentials(lookup("alice")) == Failure("not-authorized")
    plain = PlainMechanism()
    assert isinstance(plain.start(b"\0alice\0wonderland"), NeedCredentials)
    assert plain.step(b"\0alice\0wonderland") == Failure("not-authorized")


# -- PLAIN -----------------------------------------------------------------------------------


@pytest.mark.parametrize("initial", [True, False])
def test_plain_success(initial):
    mech = PlainMechanism(domain=DOMAIN)
    message = f"alice@{DOMAIN}\0alice\0wonderland".encode()
    step = mech.start(message if initial else None)
    if not initial:
        assert step == Challenge(b"")
        step = mech.step(message)
    assert step == NeedCredentials("alice")
    assert plain_result(mech, lookup("alice")) == Success("alice", None)
    assert mech.step(message) == Failure("not-authorized")


def test_plain_asks_for_the_stored_keys_derivation_and_keeps_no_password():
    mech = PlainMechanism()
    mech.start(b"\0alice\0wonderland")
    keys = ACCOUNTS["alice"]["SHA-256"]
    step = mech.credentials(lookup("alice"))
    assert step == NeedDerivation("sha256", keys.salt, keys.iterations, b"wonderland")
    assert "wonderland" not in repr(step) and mech._password == ""
    assert mech.credentials(lookup("alice")) == Failure("not-authorized")  # out of order


def test_plain_sha1_fallback():
    mech = PlainMechanism()
    mech.start(b"\0alice\0wonderland")
    assert plain_result(mech, {"SHA-1": ACCOUNTS["alice"]["SHA-1"]}) == Success("alice")


def test_plain_wrong_password_and_unknown_user_alike():
    wrong, ghost = PlainMechanism(), PlainMechanism()
    assert wrong.start(b"\0alice\0nope") == NeedCredentials("alice")
    assert ghost.start(b"\0ghost\0nope") == NeedCredentials("ghost")
    asked, ghost_asked = wrong.credentials(lookup("alice")), ghost.credentials(None)
    # the same work for both (A-04): one PBKDF2 of the same hash and rounds
    assert (asked.hash_name, asked.iterations) == (ghost_asked.hash_name, ghost_asked.iterations)
    salted = hashlib.pbkdf2_hmac("sha256", b"nope", asked.salt, asked.iterations)
    ghost_salted = hashlib.pbkdf2_hmac("sha256", b"nope", ghost_asked.salt, asked.iterations)
    assert wrong.derived(salted) == ghost.derived(ghost_salted) == Failure("not-authorized")


def test_plain_refuses_a_derivation_it_did_not_ask_for():
    mech = PlainMechanism()
    assert mech.derived(b"x" * 32) == Failure("not-authorized")
    mech = PlainMechanism()
    mech.start(b"\0alice\0wonderland")
    assert mech.derived(b"x" * 32) == Failure("not-authorized")  # before its credentials


@pytest.mark.parametrize(
    "message",
    [
        b"",
        b"alice\0wonderland",
        b"\0\0pw",
        b"\0alice\0",
        b"\0a\0b\0c",
        b"\0al\xffice\0pw",
        b"\0alice\0" + b"x" * 256,
        b"\0al\x07ice\0pw",
    ],
)
def test_plain_malformed(message):
    assert PlainMechanism().start(message) == Failure("malformed-request")


# -- registry --------------------------------------------------------------------------------


def test_offered():
    assert offered(True, ["tls-server-end-point"]) == list(MECHANISMS)
    assert offered(True, []) == ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"]
    assert offered(False, []) == ["SCRAM-SHA-256", "SCRAM-SHA-1"]
    assert offered(True, [], enabled=["SCRAM-SHA-1"]) == ["SCRAM-SHA-1"]


@pytest.mark.parametrize(
    ("name", "kw", "condition"),
    [
        ("DIGEST-MD5", {}, "invalid-mechanism"),
        ("X-FOO", {}, "invalid-mechanism"),
        ("scram-sha-256", {}, "invalid-mechanism"),
        ("SCRAM-SHA-256-PLUS", {"plus_offered": False}, "invalid-mechanism"),
        ("SCRAM-SHA-1-PLUS", {"cb_data": {}}, "invalid-mechanism"),
        ("PLAIN", {"enabled": ["SCRAM-SHA-256"]}, "invalid-mechanism"),
        ("PLAIN", {"tls_active": False}, "encryption-required"),
    ],
)
def test_create_refuses(name, kw, condition):
    kw = {"cb_data": CB, "plus_offered": True, **kw}
    with pytest.raises(Failure) as info:
        create(name, **kw)
    assert info.value.condition == condition


# -- cross-check with slixmpp's SCRAM client -------------------------------------------------


@pytest.mark.parametrize("hash_name", ["SHA-1", "SHA-256"])
@pytest.mark.parametrize("plus", [False, True])
def test_slixmpp_client(hash_name, plus):
    mechanisms = pytest.importorskip("slixmpp.util.sasl.mechanisms")
    name = f"SCRAM-{hash_name}" + ("-PLUS" if plus else "")
    unique = b"\x07" * 12
    creds = {
        "username": b"alice",
        "password": b"wonderland",
        "authzid": b"",
        "channel_binding": unique if plus else b"",
    }
    security = {
        "tls_version": "TLSv1.2",
        "encrypted": True,
        "unencrypted_scram": False,
        "binding_proposed": plus,
    }
    client = mechanisms.SCRAM(name, creds, security)
    # slixmpp can only bind with tls-unique (TLS 1.2); without -PLUS offered it sends 'y'.
    mech = scram(name, cb_data={"tls-unique": unique} if plus else {}, plus_offered=plus)
    step = mech.start(client.process(b""))
    assert step == NeedCredentials("alice")
    step = mech.step(client.process(mech.credentials(lookup("alice")).data))
    assert isinstance(step, Success)
    assert client.process(step.data) == b""  # raises SASLMutualAuthFailed on a bad signature

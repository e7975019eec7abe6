"""Fuzzing SCRAM (security plan Z-02): our client against our server's state machine succeeds
exactly when the password (and the channel binding) matches, for any user name, password and
iteration count; mutated or random client messages never raise and never succeed."""

from __future__ import annotations

from hypothesis import strategies as st
from vines_server.xmpp.sasl import (
    SASL_CONDITIONS,
    Challenge,
    Failure,
    NeedCredentials,
    PayloadError,
    Success,
    decode_payload,
)
from vines_server.xmpp.sasl.client import ScramClient
from vines_server.xmpp.sasl.credentials import derive
from vines_server.xmpp.sasl.scram import ScramMechanism
from vines_server.xmpp.sasl.steps import prepare_username

from tests.fuzz.budget import Target, ci_test

CB_TYPE = "tls-server-end-point"
text = st.text(
    st.one_of(
        st.sampled_from(",=@/ \u00e9\u00df\u212a\uff20"), st.characters(exclude_categories=("Cs",))
    ),
    min_size=1,
    max_size=16,
)
# Half of the user names are made of letters and digits (valid localparts, any script), so that
# the password property gets tested; the rest often hit the JID rules' refusals.
usernames = st.one_of(
    st.text(st.characters(categories=("Ll", "Lu", "Lo", "Nd")), min_size=1, max_size=12), text
)
hashes = st.sampled_from(["SHA-1", "SHA-256"])
STEP_TYPES = (Challenge, NeedCredentials, Success, Failure)


def server(hash_name: str, plus: bool, cb: bytes) -> ScramMechanism:
    return ScramMechanism(
        hash_name, plus=plus, cb_data={CB_TYPE: cb}, plus_offered=True, domain="vines.test"
    )


def exchange(mech: ScramMechanism, client: ScramClient, store: dict, mutate=None):
    """Run one exchange; `mutate(which, message)` may alter client-first or client-final.
    Returns the last step."""
    mutate = mutate or (lambda _which, message: message)
    step = mech.start(mutate("first", client.first()))
    if isinstance(step, NeedCredentials):
        step = mech.credentials(store.get(step.username))
    if not isinstance(step, Challenge):
        return step
    try:
        final = client.final(step.data)
    except ValueError:
        raise AssertionError(f"our client refused our server-first {step.data!r}") from None
    return mech.step(mutate("final", final))


@st.composite
def logins(draw: st.DrawFn) -> tuple:
    password = draw(text)
    attempt = draw(st.one_of(st.just(password), text))
    plus = draw(st.booleans())
    cb = draw(st.binary(min_size=1, max_size=64))
    client_cb = draw(st.one_of(st.just(cb), st.binary(min_size=1, max_size=64))) if plus else b""
    return (
        draw(usernames),
        password,
        attempt,
        draw(st.integers(1, 64)),
        draw(hashes),
        plus,
        cb,
        client_cb,
    )


def check_login(case: tuple) -> None:
    username, password, attempt, iterations, hash_name, plus, cb, client_cb = case
    prepared = prepare_username(username)
    store = {prepared: {hash_name: derive(password, hash_name, iterations)}} if prepared else {}
    client = ScramClient(
        hash_name, username, attempt, cb_type=CB_TYPE if plus else None, cb_data=client_cb
    )
    step = exchange(server(hash_name, plus, cb), client, store)
    if prepared is None:  # a name the JID rules refuse never gets as far as a challenge
        assert step == Failure("malformed-request"), step
        return
    if attempt == password and client_cb == (cb if plus else b""):
        assert isinstance(step, Success) and step.username == prepared, step
        assert client.verify(step.data), "the server's signature must prove it knows the keys"
    else:
        assert step == Failure("not-authorized"), step


TOKENS = [
    b",",
    b"=",
    b"n,",
    b"y,",
    b"p=",
    b"a=",
    b"n=",
    b"r=",
    b"c=",
    b"m=x",
    b"=2C",
    b"=3D",
    b"==",
    b"\xff",
    b"\x00",
    b",p=",
    b"x=y",
    b"p=tls-unique",
    b"biws",
]


@st.composite
def mutation(draw: st.DrawFn) -> tuple:
    """Which message to change and how: splice in a token or random bytes, overwrite, cut."""
    which = draw(st.sampled_from(["first", "final", "both"]))
    edits = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["insert", "overwrite", "truncate", "replace-all"]),
                st.floats(0, 1),
                st.one_of(st.sampled_from(TOKENS), st.binary(max_size=6)),
            ),
            min_size=1,
            max_size=3,
        )
    )
    return which, edits, draw(hashes), draw(st.booleans())


def apply(message: bytes, edits: list) -> bytes:
    data = bytearray(message)
    for kind, where, junk in edits:
        at = int(where * len(data))
        if kind == "insert":
            data[at:at] = junk
        elif kind == "overwrite":
            data[at : at + len(junk)] = junk
        elif kind == "truncate":
            del data[at:]
        else:
            data = bytearray(junk)
    return bytes(data)


def check_mutated(case: tuple) -> None:
    which, edits, hash_name, plus = case
    store = {"alice": {hash_name: derive("secret", hash_name, 2)}}
    client = ScramClient(
        hash_name, "alice", "secret", cb_type=CB_TYPE if plus else None, cb_data=b"cb"
    )
    changed = []

    def mutate(name: str, message: bytes) -> bytes:
        if which not in (name, "both"):
            return message
        out = apply(message, edits)
        changed.append(out != message)
        return out

    mech = server(hash_name, plus, b"cb")
    try:
        step = exchange(mech, client, store, mutate)
    except AssertionError:
        return  # a mutated client-first can make the server answer what our client refuses
    assert isinstance(step, STEP_TYPES), step
    if isinstance(step, Failure):
        assert step.condition in SASL_CONDITIONS
    if any(changed):
        assert not isinstance(step, Success), (edits, step)
    assert isinstance(mech.step(b"n,,n=alice,r=x"), Failure)  # spent: nothing after the end


@st.composite
def random_calls(draw: st.DrawFn) -> tuple:
    calls = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["start", "start-empty", "step", "credentials"]),
                st.one_of(st.binary(max_size=80), st.sampled_from(TOKENS)),
            ),
            max_size=6,
        )
    )
    return draw(hashes), draw(st.booleans()), calls


def check_random_calls(case: tuple) -> None:
    hash_name, plus, calls = case
    mech = server(hash_name, plus, b"cb")
    creds = {hash_name: derive("secret", hash_name, 2)}
    for kind, data in calls:
        if kind == "start":
            step = mech.start(data)
        elif kind == "start-empty":
            step = mech.start(None)
        elif kind == "step":
            step = mech.step(data)
        else:
            step = mech.credentials(creds)
        assert isinstance(step, STEP_TYPES) and not isinstance(step, Success), step
        if isinstance(step, Failure):
            assert step.condition in SASL_CONDITIONS


def check_payload(text_in: str) -> None:
    try:
        data = decode_payload(text_in)
    except PayloadError as err:
        assert err.condition == "incorrect-encoding"
    else:
        assert isinstance(data, bytes)


payloads = st.one_of(
    st.text(st.sampled_from("ABCDabcd0189+/= \n\t-_\u00e9"), max_size=24), st.text(max_size=12)
)

TARGETS = [
    Target("scram-login", logins(), check_login),
    Target("scram-mutated", mutation(), check_mutated, examples=300),
    Target("scram-random-calls", random_calls(), check_random_calls, examples=300),
    Target("sasl-payload", payloads, check_payload, examples=300),
]
test_scram_login, test_scram_mutated, test_scram_random_calls, test_sasl_payload = map(
    ci_test, TARGETS
)

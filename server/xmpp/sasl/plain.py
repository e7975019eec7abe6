"""PLAIN (RFC 4616), server side; offered only inside TLS.

Exchange: start/step(authzid NUL authcid NUL passwd) -> NeedCredentials -> credentials()
-> NeedDerivation -> derived(salted) -> Success | Failure. The caller runs the PBKDF2 that
NeedDerivation asks for, where it does not hold up the event loop.

Errors: malformed-request for a message that does not parse (not three fields, empty authcid or
password, a field over 255 octets, bad UTF-8, a prohibited user name); invalid-authzid when the
authzid names someone else; not-authorized for an unknown user or a wrong password (same PBKDF2
cost either way, A-04) and for any input out of order or after completion.
Passwords are compared as the exact UTF-8 sent (no SASLprep), as credentials.derive() stores them.
"""

from __future__ import annotations

from .credentials import DEFAULT_ITERATIONS, HASHES, Credentials, ScramKeys, fake_keys, matches
from .steps import (
    Challenge,
    Failure,
    NeedCredentials,
    NeedDerivation,
    Step,
    Success,
    authzid_ok,
    prepare_username,
)

_MAX_FIELD = 255  # RFC 4616 section 2


class PlainMechanism:
    name = "PLAIN"

    def __init__(
        self,
        *,
        domain: str | None = None,
        iterations: int = DEFAULT_ITERATIONS,
        fake_secret: bytes | None = None,
    ) -> None:
        self._domain = domain
        self._iterations = iterations
        self._fake_secret = fake_secret
        self._state = "start"
        self._username = ""
        self._password = ""
        self._keys: ScramKeys | None = None  # what the derivation is checked against
        self._known = False  # the keys are the account's, not stand-ins

    def start(self, initial: bytes | None) -> Step:
        if self._state != "start":
            return self._finish(Failure("not-authorized"))
        if initial is None:
            self._state = "message"
            return Challenge(b"")
        return self._message(initial)

    def step(self, response: bytes) -> Step:
        if self._state != "message":
            return self._finish(Failure("not-authorized"))
        return self._message(response)

    def credentials(self, creds: Credentials | None) -> Step:
        if self._state != "creds":
            return self._finish(Failure("not-authorized"))
        creds = creds or {}
        keys = creds.get("SHA-256") or creds.get("SHA-1")
        self._known = keys is not None
        if keys is None:  # spend the same PBKDF2 time as for a real account
            keys = fake_keys(self._username, "SHA-256", self._iterations, self._fake_secret)
        self._keys = keys
        password, self._password = self._password.encode("utf-8"), ""  # not kept any longer
        self._state = "derive"
        return NeedDerivation(HASHES[keys.hash_name], keys.salt, keys.iterations, password)

    def derived(self, salted: bytes) -> Step:
        """The PBKDF2 that NeedDerivation asked for."""
        if self._state != "derive" or self._keys is None:
            return self._finish(Failure("not-authorized"))
        if matches(self._keys, salted) and self._known:
            return self._finish(Success(self._username))
        return self._finish(Failure("not-authorized"))

    @property
    def done(self) -> bool:
        return self._state == "done"

    def _message(self, data: bytes) -> Step:
        fields = data.split(b"\0")
        if len(fields) != 3 or any(len(f) > _MAX_FIELD for f in fields):
            return self._finish(Failure("malformed-request"))
        try:
            authzid, authcid, password = (f.decode("utf-8") for f in fields)
        except UnicodeDecodeError:
            return self._finish(Failure("malformed-request"))
        username = prepare_username(authcid)
        if username is None or not password:
            return self._finish(Failure("malformed-request"))
        if authzid and not authzid_ok(authzid, username, self._domain):
            return self._finish(Failure("invalid-authzid"))
        self._username, self._password = username, password
        self._state = "creds"
        return NeedCredentials(username)

    def _finish(self, step: Step) -> Step:
        self._state = "done"
        self._password = ""
        self._keys = None
        return step

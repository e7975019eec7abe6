"""SCRAM-SHA-1 and SCRAM-SHA-256, with and without -PLUS (RFC 5802, RFC 7677), server side.

Exchange: start/step(client-first) -> NeedCredentials -> credentials() -> Challenge(server-first)
-> step(client-final) -> Success(server-final) | Failure.

Error conditions (never an exception):
- malformed-request: anything that does not parse (over 4 KiB, GS2 header, attribute order,
  saslname escapes, base64 inside attributes, UTF-8, prohibited user names, 'm=' extensions),
  a channel-binding flag that does not fit the mechanism ('p=' on plain SCRAM, 'n'/'y' on
  -PLUS) and a binding type this connection cannot provide (tls-exporter; tls-unique on TLS 1.3).
- not-authorized: every well-formed message that fails to prove identity: wrong proof (also of
  the wrong length), nonce mismatch (a replay meets a fresh server nonce, A-07), channel-binding
  data that differs, 'y' while -PLUS was offered (downgrade), unknown user, input out of order or
  after completion.
- invalid-authzid: 'a=' names someone other than the authenticating user.
An unknown user gets a fake salt and the usual iteration count, and fails only at the final step,
exactly like a wrong password (A-04).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping

from vines_server.xmpp import tokens

from .credentials import DEFAULT_ITERATIONS, HASHES, Credentials, ScramKeys, fake_keys
from .steps import (
    Challenge,
    Failure,
    NeedCredentials,
    Step,
    Success,
    authzid_ok,
    b64decode_strict,
    prepare_username,
    unescape_saslname,
)

_CB_NAME = re.compile(r"[A-Za-z0-9.\-]+")
_NONCE = re.compile(r"[\x21-\x2b\x2d-\x7e]+")  # printable ASCII except ','
_EXTENSION = re.compile(r"[A-Za-z]=.+")
# Far above any honest message (a localpart is at most 1023 octets), so parsing cost stays bounded.
_MAX_MESSAGE = 4096

_MALFORMED = "malformed-request"
_DENIED = "not-authorized"


class ScramMechanism:
    def __init__(
        self,
        hash_name: str,
        *,
        plus: bool = False,
        cb_data: Mapping[str, bytes] | None = None,
        plus_offered: bool = False,
        domain: str | None = None,
        iterations: int = DEFAULT_ITERATIONS,
        fake_secret: bytes | None = None,
        nonce: str | None = None,
    ) -> None:
        """`iterations` is what an unknown user's fake server-first announces: pass the count
        new accounts get. `nonce` (server part) is injectable for the RFC test vectors only."""
        if hash_name not in HASHES:
            raise ValueError(f"unsupported hash {hash_name!r}")
        self.hash_name = hash_name
        self.name = f"SCRAM-{hash_name}" + ("-PLUS" if plus else "")
        self._algo = HASHES[hash_name]
        self._plus = plus
        self._cb_data = dict(cb_data or {})
        self._plus_offered = plus_offered
        self._domain = domain
        self._iterations = iterations
        self._fake_secret = fake_secret
        self._server_nonce = nonce if nonce is not None else tokens.token_urlsafe(18)
        self._state = "start"
        # Filled while the exchange runs.
        self._username = ""
        self._gs2_header = ""
        self._cb_type: str | None = None
        self._client_first_bare = ""
        self._nonce = ""
        self._server_first = ""
        self._keys: ScramKeys | None = None
        self._known = False

    # -- the Mechanism interface ---------------------------------------------------------------

    def start(self, initial: bytes | None) -> Step:
        if self._state != "start":
            return self._finish(Failure(_DENIED))
        if initial is None:  # no initial response: ask for client-first with an empty challenge
            self._state = "first"
            return Challenge(b"")
        return self._client_first(initial)

    def step(self, response: bytes) -> Step:
        if self._state == "first":
            return self._client_first(response)
        if self._state == "final":
            return self._client_final(response)
        return self._finish(Failure(_DENIED))

    def credentials(self, creds: Credentials | None) -> Step:
        if self._state != "creds":
            return self._finish(Failure(_DENIED))
        keys = (creds or {}).get(self.hash_name)
        self._known = keys is not None
        if keys is None:
            keys = fake_keys(self._username, self.hash_name, self._iterations, self._fake_secret)
        self._keys = keys
        self._server_first = (
            f"r={self._nonce},s={_b64(keys.salt)},i={keys.iterations}"  # no extensions
        )
        self._state = "final"
        return Challenge(self._server_first.encode())

    @property
    def done(self) -> bool:
        return self._state == "done"

    # -- client-first ---------------------------------------------------------------------------

    def _client_first(self, data: bytes) -> Step:
        result = self._parse_client_first(data)
        if isinstance(result, Failure):
            return self._finish(result)
        self._state = "creds"
        return NeedCredentials(self._username)

    def _parse_client_first(self, data: bytes) -> Failure | None:
        text = _utf8(data) if len(data) <= _MAX_MESSAGE else None
        if text is None:
            return Failure(_MALFORMED)
        parts = text.split(",", 2)
        if len(parts) != 3:
            return Failure(_MALFORMED)
        flag, authz, bare = parts
        failure = self._check_cb_flag(flag)
        if failure is not None:
            return failure
        if authz and not authz.startswith("a="):
            return Failure(_MALFORMED)
        authzid = unescape_saslname(authz[2:]) if authz else ""
        if authzid is None:
            return Failure(_MALFORMED)

        attrs = bare.split(",")
        if len(attrs) < 2 or not attrs[0].startswith("n=") or not attrs[1].startswith("r="):
            return Failure(_MALFORMED)  # also catches 'm=' (mandatory extensions: none supported)
        if not all(_EXTENSION.fullmatch(a) for a in attrs[2:]):
            return Failure(_MALFORMED)
        raw_name = unescape_saslname(attrs[0][2:])
        username = prepare_username(raw_name) if raw_name is not None else None
        if username is None or not _NONCE.fullmatch(attrs[1][2:]):
            return Failure(_MALFORMED)
        if authzid and not authzid_ok(authzid, username, self._domain):
            return Failure("invalid-authzid")

        self._username = username
        self._gs2_header = f"{flag},{authz},"
        self._client_first_bare = bare
        self._nonce = attrs[1][2:] + self._server_nonce
        return None

    def _check_cb_flag(self, flag: str) -> Failure | None:
        if flag == "n":
            return Failure(_MALFORMED) if self._plus else None
        if flag == "y":
            if self._plus:
                return Failure(_MALFORMED)
            # The client could bind but thinks we cannot, while we offered -PLUS: a downgrade
            # (RFC 5802 section 6 says the server MUST fail).
            return Failure(_DENIED) if self._plus_offered else None
        if flag.startswith("p=") and _CB_NAME.fullmatch(flag[2:]):
            if not self._plus or flag[2:] not in self._cb_data:
                return Failure(_MALFORMED)
            self._cb_type = flag[2:]
            return None
        return Failure(_MALFORMED)

    # -- client-final ---------------------------------------------------------------------------

    def _client_final(self, data: bytes) -> Step:
        text = _utf8(data) if len(data) <= _MAX_MESSAGE else None
        cut = text.rfind(",p=") if text is not None else -1
        if text is None or cut < 0:
            return self._finish(Failure(_MALFORMED))
        without_proof, proof_b64 = text[:cut], text[cut + 3 :]
        attrs = without_proof.split(",")
        if (
            len(attrs) < 2
            or not attrs[0].startswith("c=")
            or not attrs[1].startswith("r=")
            or not all(_EXTENSION.fullmatch(a) for a in attrs[2:])
        ):
            return self._finish(Failure(_MALFORMED))
        cbind = b64decode_strict(attrs[0][2:])
        proof = b64decode_strict(proof_b64)
        if not cbind or not proof:  # undecodable or empty (the grammar needs a value)
            return self._finish(Failure(_MALFORMED))

        expected_cb = self._gs2_header.encode() + (
            self._cb_data[self._cb_type] if self._cb_type else b""
        )
        # Evaluate every check (no short-circuit) so timing does not tell which one failed.
        ok = hmac.compare_digest(cbind, expected_cb)
        ok &= hmac.compare_digest(attrs[1][2:].encode(), self._nonce.encode())
        auth_message = ",".join((self._client_first_bare, self._server_first, without_proof))
        ok &= self._verify_proof(proof, auth_message.encode())
        if not (ok and self._known):
            return self._finish(Failure(_DENIED))
        assert self._keys is not None
        signature = hmac.new(self._keys.server_key, auth_message.encode(), self._algo).digest()
        return self._finish(Success(self._username, b"v=" + _b64(signature).encode()))

    def _verify_proof(self, proof: bytes, auth_message: bytes) -> bool:
        assert self._keys is not None
        stored_key = self._keys.stored_key
        signature = hmac.new(stored_key, auth_message, self._algo).digest()
        if len(proof) != len(signature):
            return False
        client_key = bytes(a ^ b for a, b in zip(proof, signature, strict=True))
        return hmac.compare_digest(hashlib.new(self._algo, client_key).digest(), stored_key)

    def _finish(self, step: Step) -> Step:
        self._state = "done"
        return step


def _utf8(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")

"""What a SASL mechanism answers, plus the helpers every mechanism shares.

A mechanism is a sans-I/O state machine: the stream feeds it decoded payloads and gets back one
step. Each step maps to one wire element: Challenge -> <challenge/>, Success -> <success/>,
Failure -> <failure><condition/></failure>; NeedCredentials asks the caller to look up the account,
NeedDerivation to run PBKDF2 (PLAIN: too slow for the event loop, so the caller schedules it).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field

from ..jid import JID, JIDError, normalize_localpart

# RFC 6120 section 6.5
SASL_CONDITIONS = frozenset(
    """aborted account-disabled credentials-expired encryption-required incorrect-encoding
    invalid-authzid invalid-mechanism malformed-request mechanism-too-weak not-authorized
    temporary-auth-failure""".split()
)


@dataclass(frozen=True)
class Challenge:
    data: bytes


@dataclass(frozen=True)
class NeedCredentials:
    """Look up `username` and call `mech.credentials(creds or None)`; may run in a thread."""

    username: str


@dataclass(frozen=True)
class NeedDerivation:
    """Derive PBKDF2-HMAC(`hash_name`, `password`, `salt`, `iterations`) and call
    `mech.derived(salted)`. `hash_name` is hashlib's name."""

    hash_name: str
    salt: bytes
    iterations: int
    password: bytes = field(repr=False)  # never in a log line or a traceback


@dataclass(frozen=True)
class Success:
    username: str  # always the authcid: an authzid is only checked, never adopted
    data: bytes | None = None  # additional data with success (SCRAM server-final)


@dataclass
class Failure(Exception):
    """A step (returned by mechanisms) and an exception (raised by decode_payload and create)."""

    condition: str
    text: str | None = None

    def __post_init__(self) -> None:
        if self.condition not in SASL_CONDITIONS:
            raise ValueError(f"unknown SASL condition {self.condition!r}")
        super().__init__(self.condition, self.text)

    def __str__(self) -> str:
        return self.condition + (f": {self.text}" if self.text else "")


class PayloadError(Failure):
    """Bad base64 in <auth>/<response>: always <incorrect-encoding/>."""

    def __init__(self) -> None:
        super().__init__("incorrect-encoding")


Step = Challenge | NeedCredentials | NeedDerivation | Success | Failure


def b64decode_strict(text: str) -> bytes | None:
    """Canonical base64 only (RFC 4648 section 4): no whitespace, no stray or missing padding."""
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    # Round-tripping rejects non-zero padding bits and other non-canonical spellings.
    return data if base64.b64encode(data).decode("ascii") == text else None


def decode_payload(text: str) -> bytes:
    """Character data of <auth>/<response> -> bytes; raises PayloadError (a Failure whose
    condition is 'incorrect-encoding').

    '=' is an explicitly empty payload (RFC 6120 section 6.4.2); '' is returned as b'' too, so
    for <auth> the caller must itself map an empty element to "no initial response" (None).
    """
    if text in ("", "="):
        return b""
    data = b64decode_strict(text)
    if data is None:
        raise PayloadError()
    return data


def encode_payload(data: bytes) -> str:
    """Bytes -> character data; empty data becomes '=' (RFC 6120 sections 6.4.2 and 6.3.10)."""
    return base64.b64encode(data).decode("ascii") if data else "="


def prepare_username(text: str) -> str | None:
    """A SASL simple user name is the account's localpart (RFC 6120 section 6.3.7), so it is
    prepared by the one JID rule (RFC 7622 UsernameCaseMapped); None when refused."""
    try:
        return normalize_localpart(text)
    except JIDError:
        return None


def authzid_ok(authzid: str, username: str, domain: str | None) -> bool:
    """An authzid may only name the authenticating account: its username or its bare JID,
    compared in prepared form."""
    try:
        if "@" not in authzid and "/" not in authzid:
            return normalize_localpart(authzid) == username
        if domain is None:
            return False
        return JID.parse(authzid) == JID.parse(f"{username}@{domain}")
    except JIDError:
        return False


_ESCAPED = re.compile(r"(?:[^=,]|=2C|=3D)+")


def unescape_saslname(value: str) -> str | None:
    """RFC 5802 saslname: '=2C' -> ',', '=3D' -> '='; any other '=' is an encoding error."""
    if not _ESCAPED.fullmatch(value):
        return None
    return value.replace("=2C", ",").replace("=3D", "=")


def escape_saslname(value: str) -> str:
    return value.replace("=", "=3D").replace(",", "=2C")

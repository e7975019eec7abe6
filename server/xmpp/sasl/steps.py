"""What a SASL mechanism answers, plus the helpers every mechanism shares.

A mechanism is a sans-I/O state machine: the stream feeds it decoded payloads and gets back one
step. Each step maps to one wire element: Challenge -> <challenge/>, Success -> <success/>,
Failure -> <failure><condition/></failure>; NeedCredentials asks the caller to look up the account.
"""

from __future__ import annotations

import base64
import binascii
import re
import stringprep
import unicodedata
from dataclasses import dataclass

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


Step = Challenge | NeedCredentials | Success | Failure


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


_PROHIBITED = (
    stringprep.in_table_c12,  # non-ASCII space (mapped before the check, kept for safety)
    stringprep.in_table_c21_c22,  # control characters
    stringprep.in_table_c3,  # private use
    stringprep.in_table_c4,  # non-characters
    stringprep.in_table_c5,  # surrogates
    stringprep.in_table_c6,  # inappropriate for plain text
    stringprep.in_table_c7,  # inappropriate for canonical representation
    stringprep.in_table_c8,  # change display properties
    stringprep.in_table_c9,  # tagging characters
    stringprep.in_table_a1,  # unassigned in Unicode 3.2 (stored-string rules: stable lookups)
)


def saslprep(text: str) -> str | None:
    """RFC 4013 SASLprep for user names; None when the name is prohibited or empty."""
    mapped = "".join(
        " " if stringprep.in_table_c12(c) else c for c in text if not stringprep.in_table_b1(c)
    )
    # stringprep's tables are Unicode 3.2, so normalise with the same version.
    norm = unicodedata.ucd_3_2_0.normalize("NFKC", mapped)
    if not norm or any(check(c) for c in norm for check in _PROHIBITED):
        return None
    if any(stringprep.in_table_d1(c) for c in norm) and (
        any(stringprep.in_table_d2(c) for c in norm)
        or not stringprep.in_table_d1(norm[0])
        or not stringprep.in_table_d1(norm[-1])
    ):
        return None  # RFC 3454 section 6 bidi rule
    return norm


def authzid_ok(authzid: str, username: str, domain: str | None) -> bool:
    """An authzid may only name the authenticating account: its username or its bare JID."""
    wanted = {username.casefold()}
    if domain:
        wanted.add(f"{username}@{domain}".casefold())
    return authzid.casefold() in wanted


_ESCAPED = re.compile(r"(?:[^=,]|=2C|=3D)+")


def unescape_saslname(value: str) -> str | None:
    """RFC 5802 saslname: '=2C' -> ',', '=3D' -> '='; any other '=' is an encoding error."""
    if not _ESCAPED.fullmatch(value):
        return None
    return value.replace("=2C", ",").replace("=3D", "=")


def escape_saslname(value: str) -> str:
    return value.replace("=", "=3D").replace(",", "=2C")

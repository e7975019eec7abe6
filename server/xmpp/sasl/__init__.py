"""SASL mechanisms as sans-I/O state machines, and the registry the stream uses.

The stream: `names = offered(tls, cb_types)` for <mechanisms>; on <auth mechanism=M>,
`mech = create(M, ...)` (raises Failure: send it), then `mech.start(None if empty else
decode_payload(text))`; on <response>, `mech.step(decode_payload(text))`; on NeedCredentials,
`mech.credentials(lookup(username))`; on NeedDerivation (PLAIN), `mech.derived(pbkdf2(...))`.
Each returned step but those two becomes one element; after Success or Failure the mechanism is
spent (any further input -> not-authorized).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

from .credentials import DEFAULT_ITERATIONS, Credentials
from .plain import PlainMechanism
from .scram import ScramMechanism
from .steps import (
    SASL_CONDITIONS,
    Challenge,
    Failure,
    NeedCredentials,
    NeedDerivation,
    PayloadError,
    Step,
    Success,
    decode_payload,
    encode_payload,
)

__all__ = [
    "MECHANISMS",
    "SASL_CONDITIONS",
    "Challenge",
    "Failure",
    "Mechanism",
    "NeedCredentials",
    "NeedDerivation",
    "PayloadError",
    "Step",
    "Success",
    "create",
    "decode_payload",
    "encode_payload",
    "offered",
]


class Mechanism(Protocol):
    name: str

    def start(self, initial: bytes | None) -> Step: ...
    def step(self, response: bytes) -> Step: ...
    def credentials(self, creds: Credentials | None) -> Step: ...


# Most preferred first; clients usually pick the first they support.
MECHANISMS = ("SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN")


def offered(
    tls_active: bool, cb_types: Iterable[str], *, enabled: Iterable[str] | None = None
) -> list[str]:
    """Names for <mechanisms>: -PLUS only with a channel binding, PLAIN only inside TLS.
    `enabled` (from configuration) narrows the set further."""
    allowed = set(MECHANISMS if enabled is None else enabled)
    has_cb = bool(list(cb_types))
    return [
        name
        for name in MECHANISMS
        if name in allowed
        and (has_cb or not name.endswith("-PLUS"))
        and (tls_active or name != "PLAIN")
    ]


def create(
    name: str,
    *,
    cb_data: Mapping[str, bytes],
    plus_offered: bool,
    tls_active: bool = True,
    domain: str | None = None,
    enabled: Iterable[str] | None = None,
    iterations: int = DEFAULT_ITERATIONS,
    fake_secret: bytes | None = None,
) -> Mechanism:
    """A fresh mechanism for <auth mechanism=name>.

    Raises Failure('invalid-mechanism') for a name that is unknown or was not offered on this
    connection, and Failure('encryption-required') for PLAIN outside TLS (RFC 6120 6.4.5 and
    Prosody's answer). `cb_data` maps binding type -> data this connection can provide;
    `plus_offered` says whether -PLUS was advertised (a 'y' flag is then a downgrade).
    `iterations` and `fake_secret` shape the fake answer for unknown users.
    """
    cb_types = list(cb_data) if plus_offered else []
    if name not in offered(tls_active, cb_types, enabled=enabled):
        if name == "PLAIN" and not tls_active and name in offered(True, [], enabled=enabled):
            raise Failure("encryption-required")
        raise Failure("invalid-mechanism")
    if name == "PLAIN":
        return PlainMechanism(domain=domain, iterations=iterations, fake_secret=fake_secret)
    hash_name = name.removeprefix("SCRAM-").removesuffix("-PLUS")
    return ScramMechanism(
        hash_name,
        plus=name.endswith("-PLUS"),
        cb_data=cb_data,
        plus_offered=plus_offered,
        domain=domain,
        iterations=iterations,
        fake_secret=fake_secret,
    )

"""Stored SCRAM keys (RFC 5802): what the server keeps instead of a password.

A password is never stored in plaintext or a reversible form: only, for each hash, the salt,
the iteration count, StoredKey = H(HMAC(SaltedPassword, "Client Key")) and
ServerKey = HMAC(SaltedPassword, "Server Key").
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass

from vines_server.xmpp import tokens

HASHES = {"SHA-1": "sha1", "SHA-256": "sha256"}  # SCRAM name -> hashlib name
DEFAULT_ITERATIONS = 10_000
# Keys the fake salts of unknown users; a server that restarts should pass a persisted secret
# instead, or the changing salt of a non-existent user would give it away across restarts.
_PROCESS_SECRET = tokens.token_bytes(32)


@dataclass(frozen=True)
class ScramKeys:
    hash_name: str  # "SHA-1" | "SHA-256"
    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes


Credentials = dict[str, ScramKeys]  # keyed by hash_name


def salted_password(password: str, hash_name: str, salt: bytes, iterations: int) -> bytes:
    return hashlib.pbkdf2_hmac(HASHES[hash_name], password.encode("utf-8"), salt, iterations)


def keys_from_salted(hash_name: str, salt: bytes, iterations: int, salted: bytes) -> ScramKeys:
    algo = HASHES[hash_name]
    client_key = hmac.new(salted, b"Client Key", algo).digest()
    return ScramKeys(
        hash_name,
        salt,
        iterations,
        stored_key=hashlib.new(algo, client_key).digest(),
        server_key=hmac.new(salted, b"Server Key", algo).digest(),
    )


def derive(password: str, hash_name: str, iterations: int, salt: bytes | None = None) -> ScramKeys:
    salt = os.urandom(16) if salt is None else salt
    salted = salted_password(password, hash_name, salt, iterations)
    return keys_from_salted(hash_name, salt, iterations, salted)


def derive_all(password: str, iterations: int = DEFAULT_ITERATIONS) -> Credentials:
    """Keys for every supported hash, each with its own random salt."""
    return {name: derive(password, name, iterations) for name in HASHES}


def check_password(password: str, keys: ScramKeys) -> bool:
    """Whether `password` gives `keys` (blocking: PBKDF2 in this thread)."""
    return matches(keys, salted_password(password, keys.hash_name, keys.salt, keys.iterations))


def matches(keys: ScramKeys, salted: bytes) -> bool:
    """Used by PLAIN: whether the offered password, salted with `keys`' salt and iterations,
    gives their StoredKey (compared in constant time)."""
    candidate = keys_from_salted(keys.hash_name, keys.salt, keys.iterations, salted)
    return hmac.compare_digest(candidate.stored_key, keys.stored_key)


def fake_keys(
    username: str, hash_name: str, iterations: int, secret: bytes | None = None
) -> ScramKeys:
    """Stand-in keys for an unknown user (A-04): the salt is stable per user name, so repeated
    probes see what a real account would show, and no password can match the StoredKey."""
    secret = _PROCESS_SECRET if secret is None else secret

    def mac(label: str) -> bytes:
        msg = f"{label}\0{hash_name}\0{username}".encode()
        return hmac.new(secret, msg, HASHES[hash_name]).digest()

    return ScramKeys(hash_name, mac("salt")[:16], iterations, mac("stored"), mac("server"))

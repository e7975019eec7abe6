"""Unguessable tokens (stream ids, nonces, session ids, secrets), as the standard library's
`secrets` makes them, from `os.urandom`, without importing `secrets`: it imports `random`
(a seeded Mersenne Twister and its module, ~0.27 MB resident for the server's whole life;
issue 14: fresh RSS) only for functions the server never calls."""

from __future__ import annotations

import base64
import os


def token_bytes(nbytes: int) -> bytes:
    return os.urandom(nbytes)


def token_hex(nbytes: int) -> str:
    return os.urandom(nbytes).hex()


def token_urlsafe(nbytes: int) -> str:
    return base64.urlsafe_b64encode(os.urandom(nbytes)).rstrip(b"=").decode("ascii")

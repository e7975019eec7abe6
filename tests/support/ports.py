"""Ephemeral TCP ports on loopback for the servers tests start (the kernel picks a free one; it
is released at once, so tests can run side by side)."""

from __future__ import annotations

import secrets
import socket


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def loopback_address() -> str:
    """A loopback address of its own (all of 127.0.0.0/8 is loopback on Linux), for a server
    that must listen on a fixed port such as DNS's 53 (Prosody's resolver and xmpp-dns take no
    port): two test runs side by side each get theirs instead of colliding on one address."""
    a, b, c = secrets.randbelow(256), secrets.randbelow(256), 2 + secrets.randbelow(253)
    return f"127.{a}.{b}.{c}"

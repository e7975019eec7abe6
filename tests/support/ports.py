"""Ephemeral TCP ports on loopback for the servers tests start (the kernel picks a free one; it
is released at once, so tests can run side by side)."""

from __future__ import annotations

import socket


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]

"""sd_notify(3) without libsystemd: one datagram to `$NOTIFY_SOCKET` per state change.

systemd's `Type=notify` services report READY=1 once they serve, RELOADING=1 (with
MONOTONIC_USEC, systemd 253+) then READY=1 around a reload, and STOPPING=1 at shutdown. The
socket is a path, or an abstract-namespace name written with a leading `@`. Without
NOTIFY_SOCKET (not under systemd) every call does nothing; a failure to send is never fatal.
"""

from __future__ import annotations

import os
import socket
import time


def notify_address(value: str | None) -> str | bytes | None:
    """The socket address named by NOTIFY_SOCKET; None when unset or unusable."""
    if not value:
        return None
    if value.startswith("@"):
        return b"\0" + value[1:].encode()  # Linux abstract namespace
    if value.startswith("/"):
        return value
    return None  # vsock addresses and relative paths: not for us


def notify(*fields: str) -> bool:
    """Send `fields` (such as "READY=1") as one newline-separated datagram; True when sent."""
    address = notify_address(os.environ.get("NOTIFY_SOCKET"))
    if address is None:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto("\n".join(fields).encode(), address)
    except OSError:
        return False
    return True


def ready(status: str | None = None) -> bool:
    return notify("READY=1", *([f"STATUS={status}"] if status else []))


def reloading() -> bool:
    usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    return notify("RELOADING=1", f"MONOTONIC_USEC={usec}")


def stopping() -> bool:
    return notify("STOPPING=1")

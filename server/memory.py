"""Give freed heap memory back to the operating system (glibc's `malloc_trim`).

What a login allocates and frees (the TLS handshake, the XML parser an idle stream drops, the
SASL exchange) leaves free pages between the blocks of the sessions that stay; glibc keeps them
resident until asked. A trim, a little after connections went quiet and at most every
`INTERVAL` seconds, returns them: about 4 KiB per idle session and 1 MB of a fresh server
(issue 14). Where there is no glibc (musl, macOS) nothing happens.
"""

from __future__ import annotations

import asyncio
import ctypes
from collections.abc import Callable

DELAY = 1.0  # seconds of quiet after a request before trimming: a burst asks once
# at most one trim per this many seconds (it walks the heap: ~1 ms per 2000 sessions)
INTERVAL = 5.0


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None


_TRIM = _malloc_trim()


def trim() -> bool:
    """Return free heap pages to the system now; False where malloc_trim does not exist."""
    if _TRIM is None:
        return False
    _TRIM(0)
    return True


class Trimmer:
    """Coalesces requests for a trim (a connection closed, a parser was dropped) into at most
    one trim every INTERVAL seconds, run DELAY seconds after the request that scheduled it."""

    def __init__(self, delay: float = DELAY, interval: float = INTERVAL) -> None:
        self.delay, self.interval = delay, interval
        self._handle: asyncio.TimerHandle | None = None
        self._last = float("-inf")
        self.trims = 0
        self.done: asyncio.Event | None = None  # set after each trim, when someone waits (tests)

    def request(self) -> None:
        if self._handle is not None or _TRIM is None:
            return
        loop = asyncio.get_running_loop()
        delay = max(self.delay, self._last + self.interval - loop.time())
        self._handle = loop.call_later(delay, self._run)

    def _run(self) -> None:
        self._handle = None
        self._last = asyncio.get_running_loop().time()
        trim()
        self.trims += 1
        if self.done is not None:
            self.done.set()

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

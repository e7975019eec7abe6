"""The idle deadline of every stream (`[deadlines] idle`), kept by one periodic sweep over the
open connections instead of a timer per connection.

A timer per connection is a `TimerHandle`, the `Context` asyncio copies for it, a bound method
and a slot in the connection's timer dict: about 0.4 KiB of every idle session, 10 000 at a
time (issue 14). The sweep visits every connection once per `PERIOD` (a few microseconds
each): a stream silent for the deadline is closed at most `PERIOD` later, or a tenth of the
deadline when that is shorter.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection
from typing import Protocol

__all__ = ["PERIOD", "IdleSweep"]

PERIOD = 1.0  # seconds


class Idles(Protocol):
    def idle_check(self, now: float, idle: float) -> None:
        """Closes the stream when it has been silent for `idle` seconds at `now`."""


class IdleSweep:
    """Runs while there are connections; `watch()` when one arrives, `cancel()` at shutdown."""

    def __init__(self, connections: Collection[Idles], deadline: Callable[[], float]) -> None:
        self._connections = connections
        self._deadline = deadline  # read at every pass: a reload's new value applies at once
        self._handle: asyncio.TimerHandle | None = None

    @property
    def period(self) -> float:
        return min(PERIOD, self._deadline() / 10)

    def watch(self) -> None:
        if self._handle is None:
            self._handle = asyncio.get_running_loop().call_later(self.period, self._run)

    def _run(self) -> None:
        self._handle = None
        now, idle = asyncio.get_running_loop().time(), self._deadline()
        for conn in list(self._connections):  # a close may leave the set at once
            conn.idle_check(now, idle)
        if self._connections:
            self.watch()

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

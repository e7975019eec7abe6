"""The one thread a blocking store (SQLite) runs every call on, in the order they were made.

Lighter than a one-worker ThreadPoolExecutor: a call in flight is an asyncio future and a tuple
in a C queue, not also a concurrent Future (with its Condition) and a work item chained to the
asyncio one: about 2.5 KB less per call. After ten thousand logins every session's first
presence waits on the store at once, and what that burst allocates leaves Python's allocator
holding pools it never returns (issue 14: memory per idle session).

Calls keep the executor's semantics: one cancelled before it starts is never run; once running
it completes (a commit is never cut short); its exception is the awaiting caller's.

Finished calls go back to their loop in batches, with one wake-up per batch. A wake-up is a
byte on the loop's self-pipe, which 278 one-byte writes fill (the kernel charges each at several
hundred bytes). When a thousand sessions close at once, the loop is busy while their store writes
complete: a wake-up per call filled the pipe, and a signal arriving then (SIGTERM, SIGHUP: the C
handler writes its number to that same pipe) was dropped, so the server never stopped.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class StoreThread:
    def __init__(self, name: str) -> None:
        self._calls: queue.SimpleQueue[tuple | None] = queue.SimpleQueue()
        # finished calls per loop, waiting for that loop to settle them; a loop with a batch
        # here has a wake-up on its way
        self._finished: dict[asyncio.AbstractEventLoop, list[tuple]] = {}
        self._finished_lock = threading.Lock()
        # daemon: a call's future resolves only after it returned (a write after its commit),
        # so nothing acknowledged depends on the thread outliving an interpreter that exits
        # without close()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def call(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._calls.put((loop, future, fn, args))
        return future

    def stop(self) -> None:
        """Run the calls already made, then end the thread (waits for it)."""
        self._calls.put(None)
        self._thread.join()

    def _serve(self) -> None:
        while (item := self._calls.get()) is not None:
            loop, future, fn, args = item
            if future.cancelled():  # its caller gave up before it started
                continue
            try:
                result, error = fn(*args), None
            except BaseException as exc:  # the caller's to handle, as the executor did
                result, error = None, exc
                if isinstance(exc, StopIteration):
                    # a future refuses it (TypeError), which would strand the rest of its batch
                    error = RuntimeError(f"store call raised StopIteration: {exc!r}")
                    error.__cause__ = exc
            self._hand_back(loop, (future, result, error))

    def _hand_back(self, loop: asyncio.AbstractEventLoop, finished: tuple) -> None:
        with self._finished_lock:
            batch = self._finished.get(loop)
            if batch is not None:  # the loop is woken for it already
                batch.append(finished)
                return
            self._finished[loop] = [finished]
        try:
            loop.call_soon_threadsafe(self._settle, loop)
        except RuntimeError:  # the loop closed meanwhile: no one waits
            with self._finished_lock:
                del self._finished[loop]

    def _settle(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._finished_lock:
            batch = self._finished.pop(loop)
        for future, result, error in batch:
            if future.cancelled():
                continue
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)

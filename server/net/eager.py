"""Run a coroutine at once, in the caller's callback, until it first really waits.

A connection's input is handled by a coroutine (some actions await storage), but most reads
route their stanzas without ever waiting: a task per read would cost a task, a loop turn and a
callback for nothing (issue 14). `start()` steps the coroutine in place; only if it waits for a
future does a task take it over from there, with the semantics a task started on it would have
had: it resumes when the future is done and takes the future's outcome itself (a cancelled
future raises CancelledError inside it), and cancelling that task cancels the future it waits
for. (Python 3.12's eager tasks do the same; this server supports 3.11.)

On Python 3.12 and later asyncio does this itself (a Task with `eager_start`), and the
coroutine has its task from the start. On 3.11, while it runs in place there is no current task:
code that needs one (`asyncio.timeout`, clients that bind their timeouts to it) must not run
before its first wait; `connection.runs_eagerly` says where that holds.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from typing import Any


def start(coro: Coroutine[Any, Any, None]) -> asyncio.Task[None] | None:
    """None if `coro` finished in place (its exceptions propagate), else the task that carries
    it on from its first wait."""
    if sys.version_info >= (3, 12):
        task = asyncio.Task(coro, loop=asyncio.get_running_loop(), eager_start=True)
        if not task.done():
            return task
        task.result()  # raises what the coroutine raised, as stepping it here would
        return None
    try:
        waiting = coro.send(None)
    except StopIteration:
        return None
    return asyncio.ensure_future(_carry_on(coro, waiting))


async def _carry_on(coro: Coroutine[Any, Any, None], waiting: Any) -> None:
    while True:
        throw: BaseException | None = None
        try:
            if waiting is None:  # a bare yield (asyncio.sleep(0)): one turn of the loop
                await asyncio.sleep(0)
            else:
                # taken over as a task's step takes a yielded future (else awaiting it again
                # is refused as a future already waited on)
                waiting._asyncio_future_blocking = False
                await waiting
        except asyncio.CancelledError as exc:
            # this task was cancelled: through the future if it could be (the coroutine then
            # sees the cancelled future), else at its wait, as a task would be
            if waiting is None or not waiting.cancelled():
                throw = exc
        except Exception:  # the future's own failure: the coroutine takes it
            pass
        try:
            waiting = coro.send(None) if throw is None else coro.throw(throw)
        except StopIteration:
            return

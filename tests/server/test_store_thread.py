"""The store's one thread (server/storage/thread.py): calls run in order on one thread, a call
cancelled before it started never runs, one that started completes, and its exception is the
caller's."""

from __future__ import annotations

import asyncio
import threading

import pytest
from vines_server.storage.thread import StoreThread

pytestmark = pytest.mark.timeout(30)


async def test_calls_run_in_order_on_one_thread() -> None:
    thread = StoreThread("test-store")
    seen: list[tuple[int, str]] = []
    try:
        results = await asyncio.gather(
            *(thread.call(lambda i=i: seen.append((i, threading.current_thread().name)) or i)
              for i in range(100))
        )  # fmt: skip
    finally:
        thread.stop()
    assert results == list(range(100))
    assert [i for i, _ in seen] == list(range(100))
    assert {name for _, name in seen} == {"test-store"}


async def test_a_call_cancelled_before_it_starts_never_runs() -> None:
    thread = StoreThread("test-store")
    gate, started = threading.Event(), threading.Event()
    ran: list[str] = []

    def block() -> None:
        started.set()
        gate.wait(10)
        ran.append("first")

    try:
        first = thread.call(block)
        second = thread.call(ran.append, "second")
        await asyncio.to_thread(started.wait, 10)  # the first runs, the second waits
        second.cancel()
        gate.set()
        await first
    finally:
        thread.stop()
    assert ran == ["first"]


async def test_the_callers_get_the_exception_and_the_thread_goes_on() -> None:
    thread = StoreThread("test-store")
    try:
        with pytest.raises(ZeroDivisionError):
            await thread.call(lambda: 1 / 0)
        assert await thread.call(lambda: "still serving") == "still serving"
    finally:
        thread.stop()


async def test_stop_runs_what_was_asked_before_it() -> None:
    thread = StoreThread("test-store")
    done: list[int] = []
    futures = [thread.call(done.append, i) for i in range(10)]
    thread.stop()  # waits for the thread: the ten ran
    assert done == list(range(10))
    await asyncio.gather(*futures)  # and their callers hear of it

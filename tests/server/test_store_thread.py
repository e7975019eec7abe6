"""The store's one thread (server/storage/thread.py): calls run in order on one thread, a call
cancelled before it started never runs, one that started completes, and its exception is the
caller's, and finished calls wake the loop once per batch (a wake-up per call could fill the
loop's self-pipe and drop a signal)."""

from __future__ import annotations

import asyncio
import os
import signal
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


async def test_a_stop_iteration_reaches_its_caller_and_strands_no_other_call() -> None:
    thread = StoreThread("test-store")
    try:
        gate = threading.Event()
        first = thread.call(gate.wait, 10)  # the next two finish in one batch
        failing = thread.call(next, iter(()))
        after = thread.call(lambda: "after")
        gate.set()
        await first
        with pytest.raises(RuntimeError, match="StopIteration"):
            await failing
        assert await after == "after"
    finally:
        thread.stop()


async def test_stop_runs_what_was_asked_before_it() -> None:
    thread = StoreThread("test-store")
    done: list[int] = []
    futures = [thread.call(done.append, i) for i in range(10)]
    thread.stop()  # waits for the thread: the ten ran
    assert done == list(range(10))
    await asyncio.gather(*futures)  # and their callers hear of it


async def test_a_signal_still_reaches_the_loop_after_a_burst_of_finished_calls() -> None:
    # a thousand sessions closing at once: their store calls finish while the loop is busy
    # with the closing, and a SIGTERM sent then must still stop the server
    loop = asyncio.get_running_loop()
    heard = asyncio.Event()
    loop.add_signal_handler(signal.SIGUSR1, heard.set)
    thread = StoreThread("test-store")
    all_finished = threading.Event()
    try:
        futures = [thread.call(lambda: None) for _ in range(5000)]
        futures.append(thread.call(all_finished.set))
        assert all_finished.wait(20)  # blocks the loop on purpose
        os.kill(os.getpid(), signal.SIGUSR1)
        await asyncio.gather(*futures)
        await asyncio.wait_for(heard.wait(), 5)
    finally:
        loop.remove_signal_handler(signal.SIGUSR1)
        thread.stop()

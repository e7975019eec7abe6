"""A connection's input worker runs in the read's callback until it really waits (net/eager.py):
what it does before its first wait happens at once, and from there a task carries it on with a
task's semantics (results, failures, cancellation)."""

from __future__ import annotations

import asyncio
import sys

import pytest
from vines_server.net import eager


async def test_a_coroutine_that_never_waits_finishes_in_place():
    done: list[str] = []

    async def work() -> None:
        done.append("all")

    assert eager.start(work()) is None
    assert done == ["all"]  # before any turn of the loop


async def test_its_failure_before_any_wait_reaches_the_caller():
    async def work() -> None:
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        eager.start(work())


async def test_from_its_first_wait_a_task_carries_it_on_with_the_futures_outcomes():
    loop = asyncio.get_running_loop()
    first, second = loop.create_future(), loop.create_future()
    seen: list[object] = []

    async def work() -> None:
        seen.append("before")
        seen.append(await first)
        try:
            await second
        except KeyError as exc:
            seen.append(f"failed {exc.args[0]}")
        await asyncio.sleep(0)  # a bare yield
        seen.append("after")

    task = eager.start(work())
    assert task is not None and seen == ["before"]
    first.set_result(1)
    await asyncio.sleep(0)
    assert seen == ["before", 1]
    second.set_exception(KeyError("gone"))
    await task
    assert seen == ["before", 1, "failed gone", "after"]


@pytest.mark.parametrize("done_first", [False, True])
async def test_cancelling_the_task_cancels_the_coroutine_at_its_wait(done_first: bool):
    """Through the future it waits for, or (that future already done, its waiter not run yet)
    at the wait itself: either way the coroutine sees CancelledError and is not resumed."""
    loop = asyncio.get_running_loop()
    waited = loop.create_future()
    seen: list[str] = []

    async def work() -> None:
        try:
            await waited
            seen.append("resumed")
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    task = eager.start(work())
    assert task is not None
    await asyncio.sleep(0)
    if done_first:
        waited.set_result(None)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == ["cancelled"]
    assert waited.cancelled() is not done_first


async def test_the_task_is_the_current_task_once_it_carries_the_coroutine():
    loop = asyncio.get_running_loop()
    waited = loop.create_future()
    tasks: list[asyncio.Task | None] = []

    async def work() -> None:
        tasks.append(asyncio.current_task())
        await waited
        tasks.append(asyncio.current_task())

    task = eager.start(work())
    waited.set_result(None)
    await task
    # in place: on 3.11 the caller's task (here the test's), on 3.12+ asyncio's eager task
    # itself; then the carrying task
    in_place = task if sys.version_info >= (3, 12) else asyncio.current_task()
    assert tasks == [in_place, task]

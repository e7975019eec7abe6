"""Long loops that give the event loop a turn between chunks.

A full roster, a presence broadcast or an offline flush touches thousands of items; done in one
go it holds the event loop, and every other connection waits (another user's ping took 1.8 s
behind a 100 000-item roster). Iterating through `in_turns` lets them in between chunks.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import TypeVar

T = TypeVar("T")

CHUNK = 100  # items handled between two turns: a turn is cheap, a chunk is well under 1 ms


async def in_turns(items: Iterable[T], chunk: int = CHUNK) -> AsyncIterator[T]:
    for i, item in enumerate(items):
        if i and i % chunk == 0:
            await asyncio.sleep(0)
        yield item

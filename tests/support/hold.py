"""Hold an async method of a real object (a store) at its call, to act while it waits."""

from __future__ import annotations

import asyncio


def hold_call(obj: object, name: str) -> tuple[asyncio.Event, asyncio.Event]:
    """Calls of `obj.name` wait until `release` is set, then run as before; `reached` tells
    that one is waiting."""
    release, reached = asyncio.Event(), asyncio.Event()
    call = getattr(obj, name)

    async def held(*args, **kwargs):
        reached.set()
        await release.wait()
        return await call(*args, **kwargs)

    setattr(obj, name, held)
    return release, reached

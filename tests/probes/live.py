"""A bundled server (tests/support/xmpp.py's harness) running in its own thread and event loop,
so CLI commands, which run their own `asyncio.run`, can talk to it from the test thread."""

from __future__ import annotations

import asyncio
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support.xmpp import DOMAIN, PASSWORD, make_pki, running_server


@contextmanager
def bundled_server(tmp: Path, users: tuple[str, ...] = ("admin",), **sections: Any):
    """Yields (harness, loop); accounts `users`@vines.test with PASSWORD exist."""
    loop = asyncio.new_event_loop()
    ready: dict[str, Any] = {}
    started = threading.Event()
    stop: asyncio.Event | None = None

    async def main() -> None:
        nonlocal stop
        stop = asyncio.Event()
        try:
            async with running_server(tmp, make_pki(tmp / "pki"), **sections) as harness:
                for user in users:
                    await harness.add_user(user)
                ready["harness"] = harness
                started.set()
                await stop.wait()
        except BaseException as exc:
            ready["error"] = exc
            started.set()
            raise

    thread = threading.Thread(target=lambda: loop.run_until_complete(main()), daemon=True)
    thread.start()
    if not started.wait(30):
        raise RuntimeError("bundled server did not start within 30 s")
    if "error" in ready:
        raise RuntimeError(f"bundled server failed to start: {ready['error']!r}")
    try:
        yield ready["harness"]
    finally:
        assert stop is not None
        loop.call_soon_threadsafe(stop.set)
        thread.join(15)
        loop.close()


__all__ = ["DOMAIN", "PASSWORD", "bundled_server"]

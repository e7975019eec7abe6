"""Node-to-node messages over Redis pub/sub: each node listens on its own channel.

Pub/sub is a transport, not storage (design decision 6): at most once, and Redis disconnects a
subscriber that falls behind. What must not be lost (chat and normal messages) is in the store
before it is published here, and leaves the store only once the receiving node says its client
confirmed it. Publishes leave in the order they were queued, grouped in one pipeline per turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from vines_server.cluster.directory import PRESENCE, channel
from vines_server.core.faults import describe

log = logging.getLogger(__name__)

Message = dict[str, Any]
Failed = Callable[[str, Message, str], None]  # (node, message, why): it did not arrive
Handler = Callable[[Message], Awaitable[None]]

MAX_QUEUED = 100_000  # messages waiting to be published; past it, new ones fail at once


class Channel:
    def __init__(self, redis: Any, node: str, failed: Failed) -> None:
        self.redis = redis
        self.node = node
        self.failed = failed
        self._queue: list[tuple[str, Message]] = []
        self._wake = asyncio.Event()
        self.closed = False  # the loops end (besides being cancelled: a swallowed cancel)

    # ---- sending ---------------------------------------------------------------------------

    def publish(self, node: str, message: Message) -> None:
        """Queue `message` for `node`; `failed` is told if it cannot reach a subscriber."""
        if len(self._queue) >= MAX_QUEUED:
            self.failed(node, message, "too many messages waiting for Redis")
            return
        self._queue.append((node, {**message, "from": self.node}))
        self._wake.set()

    def close(self) -> None:
        self.closed = True
        self._wake.set()

    @property
    def idle(self) -> bool:
        """Nothing waits to be published."""
        return not self._queue

    async def sending(self) -> None:
        """The one task that publishes, in queue order."""
        while not self.closed:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch, self._queue = self._queue, []
                pipe = self.redis.pipeline(transaction=False)
                for node, message in batch:
                    pipe.publish(channel(node), json.dumps(message, separators=(",", ":")))
                try:
                    receivers = await pipe.execute()
                except Exception as exc:  # Redis is down: the callers learn it per message
                    for node, message in batch:
                        self.failed(node, message, f"Redis: {describe(exc)}")
                    continue
                for (node, message), count in zip(batch, receivers, strict=True):
                    if not count:
                        self.failed(node, message, "no subscriber")

    # ---- receiving -------------------------------------------------------------------------

    async def receiving(self, handle: Handler, retry: float) -> None:
        """Listen on this node's channel and on the cluster's presence announcements (for the
        admin presence feed; published only while a node runs one); after a lost connection,
        subscribe again every `retry` seconds until Redis answers (liveness logs the outage)."""
        while not self.closed:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(channel(self.node), PRESENCE)
                while not self.closed:
                    item = await pubsub.get_message(timeout=retry)
                    if item is None or item.get("type") != "message":
                        continue
                    try:
                        message = json.loads(item["data"])
                    except ValueError:
                        log.warning("ignored a cluster message that is not JSON")
                        continue
                    try:
                        await handle(message)
                    except Exception as exc:
                        log.error("a cluster message failed: %s", describe(exc))
                        log.debug("the failure", exc_info=exc)
            except asyncio.CancelledError:
                raise
            except Exception:
                await asyncio.sleep(retry)
            finally:
                with contextlib.suppress(Exception):  # the connection is gone already
                    await asyncio.wait_for(pubsub.aclose(), retry)

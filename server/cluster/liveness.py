"""Node liveness without a protocol of our own: each node refreshes a key with a short TTL every
heartbeat; a node whose key expired is purged by the survivors (one Lua script, so exactly one
of them does it), and its users' contacts are told they went unavailable.

The same loop notices Redis going away and coming back (one log line per change of state), and
a node that finds itself gone from the cluster (purged during a hiccup, or a Redis that lost
its data) registers its sessions again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Coroutine
from typing import Any

from vines_server.cluster.directory import Directory, Entry
from vines_server.core.faults import describe
from vines_server.xmpp.jid import JID, JIDError

log = logging.getLogger("vines_server.cluster")


class Liveness:
    def __init__(
        self,
        directory: Directory,
        heartbeat: float,
        info: Callable[[], dict[str, Any]],
        components: Callable[[], list[str]],
        rejoined: Callable[[], None],
        purged: Callable[[str, list[tuple[JID, Entry]]], Coroutine[Any, Any, None]],
    ) -> None:
        self.directory = directory
        self.heartbeat = heartbeat
        self._info = info
        self._components = components  # the component domains connected to this node
        self._rejoined = rejoined  # register every local session again
        self._purged = purged  # a dead node's sessions, to forget and announce
        self.connected: bool | None = None  # Redis answered the last beat (None: not yet tried)
        self.joined = False
        self.stopped = False  # the heartbeat ends (besides being cancelled)
        self._cpu = (time.monotonic(), time.process_time())

    def load(self) -> float:
        """Percent of one core this process used since the last beat."""
        wall, cpu = time.monotonic(), time.process_time()
        (wall0, cpu0), self._cpu = self._cpu, (wall, cpu)
        return round(100.0 * (cpu - cpu0) / max(wall - wall0, 1e-6), 1)

    async def beating(self) -> None:
        while not self.stopped:
            await self.beat()
            await asyncio.sleep(self.heartbeat)

    async def beat(self) -> None:
        node = self.directory.node
        try:
            info = {**self._info(), "pid": os.getpid()}
            added = await self.directory.beat(info, self._components())
        except Exception as exc:
            if self.connected is not False:
                log.warning(
                    "cluster node %s: Redis unreachable (%s); serving this node's users only, "
                    "stanzas to other nodes are refused until it returns",
                    node,
                    describe(exc),
                )
            self.connected = False
            return
        if self.connected is False:
            log.warning("cluster node %s: Redis reachable again; rejoining", node)
        self.connected = True
        if added:
            if self.joined:
                log.warning(
                    "cluster node %s was gone from the directory: its sessions are registered "
                    "again",
                    node,
                )
            else:
                log.info("cluster node %s joined", node)
            self.joined = True
            self._rejoined()
        try:
            for dead in await self.directory.dead():
                await self.purge(dead)
        except Exception as exc:  # the next beat tries again
            log.debug("purge check failed: %s", describe(exc))

    async def purge(self, node: str) -> None:
        gone = await self.directory.purge(node)
        if gone is None:
            return  # alive again, or another survivor purged it
        log.warning(
            "cluster node %s stopped beating (no heartbeat for %.0f s): purged, %d sessions gone",
            node,
            self.directory.ttl,
            len(gone),
        )
        sessions = []
        for full, entry in gone:
            try:
                sessions.append((JID.parse(full), entry))
            except JIDError:
                continue
        await self._purged(node, sessions)

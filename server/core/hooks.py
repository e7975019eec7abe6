"""The event bus: modules subscribe handlers to named events, with priorities.

It is the one dispatch mechanism of the server. Stanzas reach modules through it (the router
dispatches `iq/server/NS`, `iq/account/NS`, `presence`, `message/account`, `message/server`)
as do notifications (`session/bound`, `presence/initial`, ...). Handlers run from the highest
priority down; a handler that returns True claims the event and the chain stops there (as
Prosody's `module:hook` returning true), so a feature can take a stanza before the default
handler (carbons, stream management, archiving) without patching the router.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

Handler = Callable[..., Awaitable[Any] | Any]


class Hooks:
    def __init__(self) -> None:
        self._handlers: dict[str, list[tuple[int, int, Handler]]] = {}
        self._order = 0

    def on(self, event: str, handler: Handler, priority: int = 0) -> None:
        """Higher priority runs first; equal priorities run in registration order."""
        self._order += 1
        handlers = self._handlers.setdefault(event, [])
        handlers.append((-priority, self._order, handler))
        handlers.sort(key=lambda h: h[:2])

    def has(self, event: str) -> bool:
        return bool(self._handlers.get(event))

    def emit(self, event: str, *args: Any) -> None:
        """Runs synchronous handlers now, with no await in between: for observers that must see
        a state change atomically with it (a snapshot plus deltas must have no gap)."""
        for _, _, handler in self._handlers.get(event, ()):
            try:
                handler(*args)
            except Exception:
                log.exception("handler for %s failed", event)

    async def fire(self, event: str, *args: Any) -> bool:
        """A notification: every handler runs (one that fails is logged and does not stop the
        others) until one claims the event. Returns whether one did."""
        for _, _, handler in self._handlers.get(event, ()):
            try:
                result = handler(*args)
                if inspect.isawaitable(result):
                    result = await result
            except Exception:
                log.exception("handler for %s failed", event)
                continue
            if result is True:
                return True
        return False

    async def dispatch(self, event: str, *args: Any) -> bool:
        """A stanza: handlers run until one claims it (returns True); a handler's exception
        propagates, so the router answers the stanza that caused it. Returns whether it was
        claimed (unclaimed stanzas get the router's default answer)."""
        for _, _, handler in self._handlers.get(event, ()):
            result = handler(*args)
            if result is None or result is False:  # the common answers, without inspecting
                continue
            if result is not True and inspect.isawaitable(result):
                result = await result
            if result is True:
                return True
        return False

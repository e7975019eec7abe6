"""A small event bus: modules subscribe handlers to named events, with priorities."""

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

    async def fire(self, event: str, *args: Any) -> None:
        """Runs every handler; one that fails is logged and does not stop the others."""
        for _, _, handler in self._handlers.get(event, ()):
            try:
                result = handler(*args)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("handler for %s failed", event)

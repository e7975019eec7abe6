"""Messages kept in the store until their recipient confirms them (design decision 6).

A chat or normal message to a live session is stored before it is sent (`hold`), and deleted
once that session confirms it: written into the kernel's socket buffer, or, with stream
management, acknowledged by the client. Offline messages are delivered the same way. A crash,
a dropped connection or a session that ends leaves every unconfirmed message in the store, for
the account's next delivery with its original stamp: one may come twice, none zero times.

Writes are grouped (group commit): the messages that arrive while one transaction commits go
in the next one, so a busy server pays one commit for many messages, and an idle one waits
for no timer. Deletions are grouped the same way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import TYPE_CHECKING, Any

from vines_server.core.faults import describe

if TYPE_CHECKING:
    from vines_server.core.sessions import Confirm, Session, SessionRegistry
    from vines_server.storage.base import Storage

log = logging.getLogger(__name__)

Spawn = Callable[[Coroutine[Any, Any, Any]], None]


class Pending:
    def __init__(self, storage: Storage, sessions: SessionRegistry, spawn: Spawn) -> None:
        self.storage = storage
        self.sessions = sessions
        self.spawn = spawn
        self._sent: dict[int, Session] = {}  # stored id -> the session it went to, unconfirmed
        self._to_hold: list[tuple[str, str, datetime, asyncio.Future[int]]] = []
        self._holding = False
        self._to_delete: dict[str, set[int]] = {}
        self._deleting = False

    # ---- storing ---------------------------------------------------------------------------

    async def hold(self, bare: str, xml: str, stamp: datetime) -> int:
        """Store a message for `bare` until it is confirmed; its id, once committed."""
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._to_hold.append((bare, xml, stamp, done))
        if not self._holding:
            self._holding = True
            self.spawn(self._hold_batches())
        return await done

    async def _hold_batches(self) -> None:
        try:
            while self._to_hold:
                batch, self._to_hold = self._to_hold, []
                try:
                    ids = await self.storage.hold_offline([(b, x, s) for b, x, s, _ in batch])
                except Exception:
                    if len(batch) == 1:
                        raise
                    await self._hold_one_by_one(batch)  # the error belongs to one sender
                    continue
                for (*_, done), id_ in zip(batch, ids, strict=True):
                    if not done.done():
                        done.set_result(id_)
        except Exception as exc:
            for *_, done in batch:
                if not done.done():
                    done.set_exception(exc)
        finally:
            self._holding = False
            if self._to_hold:  # arrived while the last batch failed
                self._holding = True
                self.spawn(self._hold_batches())

    async def _hold_one_by_one(self, batch: list[tuple[str, str, datetime, Any]]) -> None:
        for bare, xml, stamp, done in batch:
            try:
                (id_,) = await self.storage.hold_offline([(bare, xml, stamp)])
            except Exception as exc:
                if not done.done():
                    done.set_exception(exc)
            else:
                if not done.done():
                    done.set_result(id_)

    # ---- in flight -------------------------------------------------------------------------

    def in_flight(self, id_: int) -> bool:
        """On its way to a live session that has not confirmed it yet."""
        owner = self._sent.get(id_)
        return owner is not None and self.sessions.get(owner.jid) is owner

    def sending(self, bare: str, id_: int, session: Session) -> Confirm:
        """`session` gets stored message `id_`: what it calls once it confirms it."""
        self._sent.setdefault(id_, session)
        return lambda: self.delivered(bare, id_)

    def delivered(self, bare: str, id_: int) -> None:
        self._to_delete.setdefault(bare, set()).add(id_)
        if not self._deleting:
            self._deleting = True
            self.spawn(self._delete_delivered())

    async def _delete_delivered(self) -> None:
        try:
            while self._to_delete:
                bare, ids = self._to_delete.popitem()
                try:
                    await self.storage.delete_offline(bare, ids)
                except Exception as exc:  # they stay stored: delivered again, never lost
                    log.error(
                        "could not delete %d delivered messages of %s: %s",
                        len(ids),
                        bare,
                        describe(exc),
                    )
                for id_ in ids:
                    self._sent.pop(id_, None)
        finally:
            self._deleting = False

    def closed(self, session: Session) -> int:
        """What it did not confirm may go to the account's other sessions, or the next one:
        how many such messages there are."""
        released = [i for i, owner in self._sent.items() if owner is session]
        for id_ in released:
            del self._sent[id_]
        return len(released)

"""Messages kept in the store until their recipient confirms them (design decision 6).

A chat or normal message to a live session is stored (`hold`) while it is sent, and deleted
once that session confirms it: written into the kernel's socket buffer, or, with stream
management, acknowledged by the client. Sending does not wait for the commit: only what
confirms the message to its sender does (`durable`: the sender's `h`), and a recipient's
confirmation that comes before the commit lands deletes the row as soon as it exists.
Offline messages are delivered the same way. A crash, a dropped connection or a session that
ends leaves every unconfirmed message in the store, for the account's next delivery with its
original stamp: one may come twice, none zero times.

Writes are grouped (group commit): the messages that arrive while one transaction commits go
in the next one, so a busy server pays one commit for many messages, and an idle one waits
for no timer. Deletions are grouped the same way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from vines_server.core.faults import describe

if TYPE_CHECKING:
    from vines_server.core.sessions import Confirm, Session, SessionRegistry
    from vines_server.storage.base import Storage

log = logging.getLogger(__name__)

Spawn = Callable[[Coroutine[Any, Any, Any]], None]


@dataclass(slots=True, eq=False)
class Held:
    """A message on its way to live sessions while its commit to the store runs."""

    bare: str
    origin: Session | None  # the sender, whose h may pass it once `committed` is done
    committed: asyncio.Future[int]  # its stored id
    to: list[Session] = field(default_factory=list)  # sent to before the commit landed
    confirmed: bool = False  # one of them confirmed it before the commit landed

    def stored_id(self) -> int | None:
        done = self.committed
        if done.done() and not done.cancelled() and done.exception() is None:
            return done.result()
        return None


class Pending:
    def __init__(self, storage: Storage, sessions: SessionRegistry, spawn: Spawn) -> None:
        self.storage = storage
        self.sessions = sessions
        self.spawn = spawn
        self._sent: dict[int, Session] = {}  # stored id -> the session it went to, unconfirmed
        self._to_hold: list[tuple[str, str, datetime, Held]] = []
        self._holding = False
        # sender -> its last message not yet committed (commits land in the order of holds)
        self._unlanded: dict[Session, asyncio.Future[int]] = {}
        self._to_delete: dict[str, set[int]] = {}
        self._deleting = False

    # ---- storing ---------------------------------------------------------------------------

    def hold(self, bare: str, xml: str, stamp: datetime, origin: Session | None) -> Held:
        """Store a message for `bare` until it is confirmed. The commit runs grouped with
        others, in the background: the message may be sent meanwhile (`sending_held`)."""
        held = Held(bare, origin, asyncio.get_running_loop().create_future())
        self._to_hold.append((bare, xml, stamp, held))
        if origin is not None:
            self._unlanded[origin] = held.committed
        if not self._holding:
            self._holding = True
            self.spawn(self._hold_batches())
        return held

    def unlanded(self, origin: Session) -> bool:
        """Some message `origin` sent is not committed yet."""
        return origin in self._unlanded

    async def durable(self, origin: Session | None) -> None:
        """Until every message `origin` sent so far is committed (or failed, and bounced):
        what confirms them to their sender waits for this."""
        last = self._unlanded.get(origin) if origin is not None else None
        if last is not None:
            await asyncio.wait([last])

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
                for (*_, held), id_ in zip(batch, ids, strict=True):
                    self._landed(held, id_)
        except Exception as exc:
            for *_, held in batch:
                self._landed(held, exc)
        finally:
            self._holding = False
            if self._to_hold:  # arrived while the last batch failed
                self._holding = True
                self.spawn(self._hold_batches())

    async def _hold_one_by_one(self, batch: list[tuple[str, str, datetime, Held]]) -> None:
        for bare, xml, stamp, held in batch:
            try:
                (id_,) = await self.storage.hold_offline([(bare, xml, stamp)])
            except Exception as exc:
                self._landed(held, exc)
            else:
                self._landed(held, id_)

    def _landed(self, held: Held, outcome: int | Exception) -> None:
        """The commit is done: the sessions it went to own it now, and a confirmation that
        came first deletes it at once (else the row would be delivered again forever)."""
        if held.committed.done():
            return
        if held.origin is not None and self._unlanded.get(held.origin) is held.committed:
            del self._unlanded[held.origin]
        if isinstance(outcome, Exception):
            held.committed.set_exception(outcome)
            return
        for session in held.to:
            if self.sessions.get(session.jid) is session:
                self._sent.setdefault(outcome, session)
        held.to.clear()
        held.committed.set_result(outcome)
        if held.confirmed:
            self.delivered(held.bare, outcome)

    # ---- in flight -------------------------------------------------------------------------

    def in_flight(self, id_: int) -> bool:
        """On its way to a live session that has not confirmed it yet."""
        owner = self._sent.get(id_)
        return owner is not None and self.sessions.get(owner.jid) is owner

    def sending(self, bare: str, id_: int, session: Session) -> Confirm:
        """`session` gets stored message `id_`: what it calls once it confirms it."""
        self._sent.setdefault(id_, session)
        return lambda: self.delivered(bare, id_)

    def sending_held(self, held: Held, session: Session) -> Confirm:
        """`sending` for a message whose commit may not have landed yet."""
        id_ = held.stored_id()
        if id_ is not None:
            return self.sending(held.bare, id_, session)
        held.to.append(session)

        def confirm() -> None:
            landed = held.stored_id()
            if landed is not None:
                self.delivered(held.bare, landed)
            else:
                held.confirmed = True  # deleted once the commit lands

        return confirm

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

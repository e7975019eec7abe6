"""The storage contract. Every backend (sqlite, memory) implements `Storage`; SQL lives only in
the sqlite backend. JIDs passed in are already normalized bare JIDs ("user@domain").

Durability: every method that writes returns only after the write is committed (for SQLite:
WAL with synchronous=FULL), so success reported to a client means the data survives a crash.

Semantics shared by every backend (the contract suite in tests/server/test_storage_contract.py
checks them):
- A backend is created closed; `open()` must be awaited before any other call (StorageError
  otherwise). `close()` is idempotent.
- Values returned are copies: mutating them never changes stored data.
- Datetimes are returned timezone-aware in UTC; a naive datetime passed in is taken as UTC.
- Per-user writes (roster, pending, offline, vcard, private) raise NoSuchAccount when the
  account does not exist; reads for an unknown account return empty results / None; deletes
  of something absent are no-ops. `record_login`/`record_logout` are no-ops for an unknown
  account (it may have been deleted while the session was live).
- Quotas (a roster's items, an account's private or offline bytes, its offline messages) are
  checked inside the write that would exceed them, so concurrent writers cannot overshoot:
  QuotaExceeded, and nothing is written. Sizes are UTF-8 bytes of the stored XML.
- Other failures (disk full, locked or corrupt file) raise StorageError with a one-line message.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

from vines_server.xmpp.sasl.credentials import HASHES, Credentials


class StorageError(Exception):
    pass


class AccountExists(StorageError):
    pass


class NoSuchAccount(StorageError):
    pass


class QuotaExceeded(StorageError):
    """A write refused because it would take an account over a quota given by the caller."""

    def __init__(self, jid: str, quota: str, limit: int) -> None:
        super().__init__(f"{jid}: over its {quota} quota ({limit})")
        self.jid, self.quota, self.limit = jid, quota, limit


@dataclass(frozen=True)
class Account:
    jid: str
    credentials: Credentials
    disabled: bool = False
    created: datetime | None = None
    last_login: datetime | None = None
    last_logout: datetime | None = None
    last_status: str | None = None


@dataclass(frozen=True)
class RosterItem:
    """RFC 6121 roster item. subscription: none|to|from|both; ask: 'subscribe' when an outbound
    request is pending (None + Pending Out etc.); approved: a pre-approval (RFC 6121 3.4)."""

    jid: str
    name: str | None = None
    subscription: str = "none"
    ask: bool = False
    approved: bool = False
    groups: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class OfflineMessage:
    id: int
    xml: str  # the serialized <message/> as routed (from already stamped)
    stamp: datetime  # when the server stored it (UTC)


Quota = int | None  # a limit a caller passes to a write; None: no limit


@runtime_checkable
class Storage(Protocol):
    async def open(self) -> None: ...
    async def close(self) -> None: ...

    # accounts
    async def create_account(self, jid: str, credentials: Credentials) -> None:
        """Raises AccountExists. `created` is set to now (UTC). ValueError for credentials keyed
        by an unknown hash name or by a name other than their own `hash_name`."""

    async def get_account(self, jid: str) -> Account | None: ...
    async def set_credentials(self, jid: str, credentials: Credentials) -> None:
        """Raises NoSuchAccount."""

    async def set_disabled(self, jid: str, disabled: bool) -> None:
        """Raises NoSuchAccount."""

    async def delete_account(self, jid: str) -> bool:
        """Removes the account and all its data (roster, pending, offline, vcard, private).
        Returns False when there was no such account."""

    async def list_accounts(self, domain: str | None = None) -> list[str]:
        """Bare JIDs, sorted."""

    async def count_accounts(self, domain: str | None = None) -> int: ...
    async def record_login(self, jid: str, when: datetime) -> None: ...
    async def record_logout(self, jid: str, when: datetime, status: str | None) -> None: ...

    # roster (RFC 6121)
    async def get_roster(self, jid: str) -> list[RosterItem]:
        """Ordered by contact JID."""

    async def get_roster_item(self, jid: str, contact: str) -> RosterItem | None: ...
    async def put_roster_item(self, jid: str, item: RosterItem, max_items: Quota = None) -> None:
        """Inserts or replaces the item for `item.jid`. Raises NoSuchAccount, ValueError for a
        subscription outside none|to|from|both, and QuotaExceeded("items") when the item is new
        and the roster already holds `max_items`."""

    async def delete_roster_item(self, jid: str, contact: str) -> None: ...

    # inbound subscription requests awaiting the user's answer (re-delivered at login)
    async def add_pending_in(self, jid: str, contact: str, xml: str) -> None:
        """One per contact: a repeated request replaces the XML and keeps its place."""

    async def remove_pending_in(self, jid: str, contact: str) -> None: ...
    async def get_pending_in(self, jid: str) -> list[tuple[str, str]]:
        """(contact, xml) pairs in order of arrival."""

    # offline messages (XEP-0160)
    async def store_offline(
        self, jid: str, xml: str, stamp: datetime, max_count: Quota = None, max_bytes: Quota = None
    ) -> None:
        """QuotaExceeded("messages" or "bytes") when the account would hold more than
        `max_count` messages or `max_bytes` bytes of them."""

    async def count_offline(self, jid: str) -> int: ...
    async def pop_offline(self, jid: str) -> list[OfflineMessage]:
        """Returns and deletes, in order of arrival (ids increase and are never reused)."""

    async def list_offline(self, jid: str) -> list[OfflineMessage]:
        """What pop_offline would return, without deleting it (export, and delivery: what was
        delivered is deleted afterwards with delete_offline, so a crash loses nothing)."""

    async def hold_offline(self, messages: list[tuple[str, str, datetime]]) -> list[int]:
        """Stores (jid, xml, stamp) messages on their way to a live session, in one
        transaction and without quotas (they are bounded by the session's queue), so that
        they survive until delivered (design decision 6); their ids, in order. NoSuchAccount
        when one of the accounts is missing, and then none is stored."""

    async def delete_offline(self, jid: str, ids: Iterable[int]) -> int:
        """Deletes those of the account's messages (ids from list_offline); how many were
        still there. Unknown ids, and ids of another account's messages, are ignored."""

    async def purge_offline(self, before: datetime) -> int:
        """Deletes every account's offline messages stored before `before`; how many."""

    # vcard-temp (XEP-0054) and private XML storage (XEP-0049): serialized XML strings
    async def get_vcard(self, jid: str) -> str | None: ...
    async def set_vcard(self, jid: str, xml: str) -> None: ...
    async def get_private(self, jid: str, key: str) -> str | None: ...
    async def list_private(self, jid: str) -> dict[str, str]:
        """Every key the account stored (its element's Clark name) -> XML, ordered by key."""

    async def set_private(self, jid: str, key: str, xml: str, max_bytes: Quota = None) -> None:
        """QuotaExceeded("bytes") when the account's private XML, with `xml` replacing what
        `key` held, would exceed `max_bytes`."""

    # small server-wide settings for later features (admins, MOTD, allow/block lists): JSON text
    async def get_setting(self, key: str) -> str | None: ...
    async def set_setting(self, key: str, value: str | None) -> None:
        """None deletes the setting."""

    async def size_bytes(self) -> int:
        """Bytes on disk (0 for memory)."""

    async def backup(self, dest: str | os.PathLike[str]) -> int:
        """A consistent copy of the store at `dest` (a file the same backend opens), even while
        writes go on; returns its size in bytes. StorageError when the backend has no file
        (memory) or the copy cannot be written."""


# helpers shared by the backends (not part of the protocol)

SUBSCRIPTIONS = ("none", "to", "from", "both")


def utc(when: datetime) -> datetime:
    """Naive datetimes are taken as UTC; aware ones are converted to UTC."""
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def check_credentials(credentials: Credentials) -> None:
    for name, keys in credentials.items():
        if name not in HASHES or keys.hash_name != name:
            raise ValueError(f"credentials for {name!r} ({keys.hash_name!r}) are not storable")


def xml_bytes(xml: str) -> int:
    return len(xml.encode("utf-8"))


def check_quota(jid: str, quota: str, used: int, limit: Quota) -> None:
    """`used`: what the account would hold after the write."""
    if limit is not None and used > limit:
        raise QuotaExceeded(jid, quota, limit)


def check_roster_item(item: RosterItem) -> None:
    if item.subscription not in SUBSCRIPTIONS:
        raise ValueError(f"roster subscription {item.subscription!r} is not one of {SUBSCRIPTIONS}")

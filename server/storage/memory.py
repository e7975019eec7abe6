"""A real in-memory backend: plain dicts, the same semantics as SQLite (see base.py), nothing on
disk. Used for fast tests and throwaway servers; everything is lost when the process ends.

Stored values are immutable (frozen dataclasses, tuples, str, bytes) or copied on the way in
and out, so a caller can never change stored data by mutating what it got back.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable
from datetime import UTC, datetime

from vines_server.storage.base import (
    Account,
    AccountExists,
    NoSuchAccount,
    OfflineMessage,
    Quota,
    RosterItem,
    StorageError,
    check_credentials,
    check_quota,
    check_roster_item,
    utc,
    xml_bytes,
)
from vines_server.xmpp.sasl.credentials import Credentials


def _domain(jid: str) -> str:
    return jid.rpartition("@")[2]


class MemoryStorage:
    # no call looks at asyncio's current task: a connection may route before it has a task
    task_free = True

    def __init__(self) -> None:
        self._open = False
        self._accounts: dict[str, Account] = {}
        self._roster: dict[str, dict[str, RosterItem]] = {}
        self._pending: dict[str, dict[str, str]] = {}
        self._offline: dict[str, list[OfflineMessage]] = {}
        self._next_offline_id = 1
        self._vcard: dict[str, str] = {}
        self._private: dict[str, dict[str, str]] = {}
        self._settings: dict[str, str] = {}

    async def open(self) -> None:
        self._open = True

    async def close(self) -> None:
        self._open = False

    def _check_open(self) -> None:
        if not self._open:
            raise StorageError("storage is not open: await open() first")

    def _account(self, jid: str) -> Account:
        self._check_open()
        account = self._accounts.get(jid)
        if account is None:
            raise NoSuchAccount(jid)
        return account

    # accounts

    async def create_account(self, jid: str, credentials: Credentials) -> None:
        self._check_open()
        check_credentials(credentials)
        if jid in self._accounts:
            raise AccountExists(jid)
        self._accounts[jid] = Account(jid, dict(credentials), created=datetime.now(UTC))

    async def get_account(self, jid: str) -> Account | None:
        self._check_open()
        account = self._accounts.get(jid)
        if account is None:
            return None
        return dataclasses.replace(account, credentials=dict(account.credentials))

    async def set_credentials(self, jid: str, credentials: Credentials) -> None:
        check_credentials(credentials)
        account = self._account(jid)
        self._accounts[jid] = dataclasses.replace(account, credentials=dict(credentials))

    async def set_disabled(self, jid: str, disabled: bool) -> None:
        account = self._account(jid)
        self._accounts[jid] = dataclasses.replace(account, disabled=bool(disabled))

    async def delete_account(self, jid: str) -> bool:
        self._check_open()
        if self._accounts.pop(jid, None) is None:
            return False
        for table in (self._roster, self._pending, self._offline, self._vcard, self._private):
            table.pop(jid, None)
        return True

    async def list_accounts(self, domain: str | None = None) -> list[str]:
        self._check_open()
        return sorted(j for j in self._accounts if domain is None or _domain(j) == domain)

    async def count_accounts(self, domain: str | None = None) -> int:
        return len(await self.list_accounts(domain))

    async def record_login(self, jid: str, when: datetime) -> None:
        self._check_open()
        account = self._accounts.get(jid)
        if account is not None:
            self._accounts[jid] = dataclasses.replace(account, last_login=utc(when))

    async def record_logout(self, jid: str, when: datetime, status: str | None) -> None:
        self._check_open()
        account = self._accounts.get(jid)
        if account is not None:
            self._accounts[jid] = dataclasses.replace(
                account, last_logout=utc(when), last_status=status
            )

    # roster

    async def get_roster(self, jid: str) -> list[RosterItem]:
        self._check_open()
        items = self._roster.get(jid, {})
        return [items[contact] for contact in sorted(items)]

    async def get_roster_item(self, jid: str, contact: str) -> RosterItem | None:
        self._check_open()
        return self._roster.get(jid, {}).get(contact)

    async def put_roster_item(self, jid: str, item: RosterItem, max_items: Quota = None) -> None:
        check_roster_item(item)
        self._account(jid)
        items = self._roster.get(jid, {})
        if item.jid not in items:
            check_quota(jid, "items", len(items) + 1, max_items)
        # normalize to exactly what SQLite gives back (plain bools, a tuple of str)
        stored = RosterItem(
            item.jid,
            item.name,
            item.subscription,
            bool(item.ask),
            bool(item.approved),
            tuple(str(g) for g in item.groups),
        )
        self._roster.setdefault(jid, {})[item.jid] = stored

    async def delete_roster_item(self, jid: str, contact: str) -> None:
        self._check_open()
        self._roster.get(jid, {}).pop(contact, None)

    # pending inbound subscription requests

    async def add_pending_in(self, jid: str, contact: str, xml: str) -> None:
        self._account(jid)
        self._pending.setdefault(jid, {})[contact] = xml  # an update keeps the dict position

    async def remove_pending_in(self, jid: str, contact: str) -> None:
        self._check_open()
        self._pending.get(jid, {}).pop(contact, None)

    async def get_pending_in(self, jid: str) -> list[tuple[str, str]]:
        self._check_open()
        return list(self._pending.get(jid, {}).items())

    # offline messages

    async def store_offline(
        self, jid: str, xml: str, stamp: datetime, max_count: Quota = None, max_bytes: Quota = None
    ) -> None:
        self._account(jid)
        held = self._offline.get(jid, [])
        check_quota(jid, "messages", len(held) + 1, max_count)
        check_quota(jid, "bytes", sum(xml_bytes(m.xml) for m in held) + xml_bytes(xml), max_bytes)
        message = OfflineMessage(self._next_offline_id, xml, utc(stamp))
        self._next_offline_id += 1
        self._offline.setdefault(jid, []).append(message)

    async def count_offline(self, jid: str) -> int:
        self._check_open()
        return len(self._offline.get(jid, []))

    async def pop_offline(self, jid: str) -> list[OfflineMessage]:
        self._check_open()
        return self._offline.pop(jid, [])

    async def list_offline(self, jid: str) -> list[OfflineMessage]:
        self._check_open()
        return list(self._offline.get(jid, []))

    async def hold_offline(self, messages: list[tuple[str, str, datetime]]) -> list[int]:
        for jid, _, _ in messages:
            self._account(jid)
        ids = []
        for jid, xml, stamp in messages:
            ids.append(self._next_offline_id)
            self._offline.setdefault(jid, []).append(
                OfflineMessage(self._next_offline_id, xml, utc(stamp))
            )
            self._next_offline_id += 1
        return ids

    async def delete_offline(self, jid: str, ids: Iterable[int]) -> int:
        self._check_open()
        gone, held = set(ids), self._offline.get(jid, [])
        kept = [m for m in held if m.id not in gone]
        if kept:
            self._offline[jid] = kept
        else:
            self._offline.pop(jid, None)
        return len(held) - len(kept)

    async def purge_offline(self, before: datetime) -> int:
        self._check_open()
        cutoff, purged = utc(before), 0
        for jid, held in list(self._offline.items()):
            kept = [m for m in held if m.stamp >= cutoff]
            purged += len(held) - len(kept)
            if kept:
                self._offline[jid] = kept
            else:
                del self._offline[jid]
        return purged

    # vcard and private storage

    async def get_vcard(self, jid: str) -> str | None:
        self._check_open()
        return self._vcard.get(jid)

    async def set_vcard(self, jid: str, xml: str) -> None:
        self._account(jid)
        self._vcard[jid] = xml

    async def get_private(self, jid: str, key: str) -> str | None:
        self._check_open()
        return self._private.get(jid, {}).get(key)

    async def list_private(self, jid: str) -> dict[str, str]:
        self._check_open()
        return dict(sorted(self._private.get(jid, {}).items()))

    async def set_private(self, jid: str, key: str, xml: str, max_bytes: Quota = None) -> None:
        self._account(jid)
        others = (v for k, v in self._private.get(jid, {}).items() if k != key)
        check_quota(jid, "bytes", sum(map(xml_bytes, others)) + xml_bytes(xml), max_bytes)
        self._private.setdefault(jid, {})[key] = xml

    # settings

    async def get_setting(self, key: str) -> str | None:
        self._check_open()
        return self._settings.get(key)

    async def set_setting(self, key: str, value: str | None) -> None:
        self._check_open()
        if value is None:
            self._settings.pop(key, None)
        else:
            self._settings[key] = value

    async def size_bytes(self) -> int:
        return 0

    async def backup(self, dest: str | os.PathLike[str]) -> int:
        raise StorageError("the memory backend keeps nothing on disk to back up")

"""The default backend: one SQLite file in WAL mode with synchronous=FULL.

One connection, owned by one dedicated thread (storage/thread.py): every call, read
or write, runs there in order, so writes are serialized and the event loop never blocks on disk.
Each write is its own BEGIN IMMEDIATE ... COMMIT and the coroutine returns only after COMMIT, so
what a caller reports as done is on disk (base.py, durability). The file is created with mode
0600: it holds SCRAM key material. The -wal and -shm files inherit that mode from SQLite.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import stat
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

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
from vines_server.storage.migrations import SchemaTooNew, migrate
from vines_server.storage.thread import StoreThread
from vines_server.xmpp.sasl.credentials import Credentials, ScramKeys

log = logging.getLogger(__name__)

T = TypeVar("T")

BUSY_TIMEOUT_MS = 5000
_PREFIX = {"SHA-1": "sha1", "SHA-256": "sha256"}  # hash name -> column prefix
_ACCOUNT_COLUMNS = "jid, disabled, created, last_login, last_logout, last_status, " + ", ".join(
    f"{p}_salt, {p}_iterations, {p}_stored_key, {p}_server_key" for p in _PREFIX.values()
)


def _ts(when: datetime | None) -> str | None:
    return None if when is None else utc(when).isoformat()


def _dt(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _credential_values(credentials: Credentials) -> list[Any]:
    values: list[Any] = []
    for name in _PREFIX:
        keys = credentials.get(name)
        if keys is None:
            values += [None, None, None, None]
        else:
            values += [keys.salt, keys.iterations, keys.stored_key, keys.server_key]
    return values


def _credential_assignments() -> str:
    return ", ".join(
        f"{p}_salt = ?, {p}_iterations = ?, {p}_stored_key = ?, {p}_server_key = ?"
        for p in _PREFIX.values()
    )


def _account_from_row(row: tuple) -> Account:
    jid, disabled, created, last_login, last_logout, last_status = row[:6]
    credentials: Credentials = {}
    for i, name in enumerate(_PREFIX):
        salt, iterations, stored_key, server_key = row[6 + 4 * i : 10 + 4 * i]
        if salt is not None:
            credentials[name] = ScramKeys(
                name, bytes(salt), int(iterations), bytes(stored_key), bytes(server_key)
            )
    return Account(
        jid,
        credentials,
        disabled=bool(disabled),
        created=_dt(created),
        last_login=_dt(last_login),
        last_logout=_dt(last_logout),
        last_status=last_status,
    )


def _roster_from_row(row: tuple) -> RosterItem:
    contact, name, subscription, ask, approved, groups = row
    groups_tuple = tuple(json.loads(groups))
    return RosterItem(contact, name, subscription, bool(ask), bool(approved), groups_tuple)


def _is_foreign_key_error(exc: sqlite3.IntegrityError) -> bool:
    return "FOREIGN KEY" in str(exc)


class SQLiteStorage:
    # no call looks at asyncio's current task: a connection may route before it has a task
    task_free = True

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._thread: StoreThread | None = None
        self._conn: sqlite3.Connection | None = None

    # plumbing: everything runs on the one worker thread

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        thread = self._thread
        if thread is None:
            raise StorageError("storage is not open: await open() first")
        return await thread.call(self._call, fn, args)

    def _call(self, fn: Callable[..., T], args: tuple) -> T:
        try:
            return fn(*args)
        except sqlite3.Error as exc:
            raise StorageError(f"database {self.path}: {exc}") from exc

    def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """One transaction, committed before returning (runs on the worker thread)."""
        conn = self._conn
        assert conn is not None
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return result

    def _read(self, sql: str, params: tuple = ()) -> list[tuple]:
        assert self._conn is not None
        return self._conn.execute(sql, params).fetchall()

    async def _write_for(self, jid: str, fn: Callable[[sqlite3.Connection], Any]) -> None:
        """A write of per-user data: NoSuchAccount when the account is missing."""

        def run() -> None:
            try:
                self._write(fn)
            except sqlite3.IntegrityError as exc:
                if _is_foreign_key_error(exc):
                    raise NoSuchAccount(jid) from None
                raise

        await self._run(run)

    # lifecycle

    async def open(self) -> None:
        if self._thread is not None:
            return
        self._create_file()
        thread = StoreThread("vines-sqlite")
        try:
            await thread.call(self._connect)
        except BaseException:
            thread.stop()
            raise
        self._thread = thread

    def _create_file(self) -> None:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            mode = stat.S_IMODE(self.path.stat().st_mode)
            if mode & 0o077:
                log.warning(
                    "%s is readable by other users (mode %o) and holds password keys: chmod 600 it",
                    self.path,
                    mode,
                )
            return
        except OSError as exc:
            raise StorageError(
                f"cannot create database {self.path} ({exc.strerror}): "
                "check that the directory exists and is writable"
            ) from None
        os.close(fd)

    def _connect(self) -> None:
        conn = None
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS:d}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                log.warning("%s: journal_mode is %s, not wal", self.path, mode)
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            migrate(conn)
        except SchemaTooNew as exc:
            if conn is not None:
                conn.close()
            raise StorageError(f"database {self.path}: {exc}: upgrade vinesctl") from None
        except sqlite3.Error as exc:
            if conn is not None:
                conn.close()
            if "locked" in str(exc) or "busy" in str(exc):
                hint = "another process holds it; is another server running on it?"
            else:
                hint = "move it aside or restore a backup"
            raise StorageError(f"cannot open database {self.path} ({exc}): {hint}") from None
        self._conn = conn

    async def close(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        try:
            await thread.call(self._disconnect)
        finally:
            thread.stop()

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    # accounts

    async def create_account(self, jid: str, credentials: Credentials) -> None:
        check_credentials(credentials)
        created = _ts(datetime.now(UTC))
        placeholders = ", ".join("?" * 11)

        def run() -> None:
            try:
                self._write(
                    lambda c: c.execute(
                        "INSERT INTO accounts (jid, domain, created, "
                        + ", ".join(
                            f"{p}_salt, {p}_iterations, {p}_stored_key, {p}_server_key"
                            for p in _PREFIX.values()
                        )
                        + f") VALUES ({placeholders})",
                        (jid, jid.rpartition("@")[2], created, *_credential_values(credentials)),
                    )
                )
            except sqlite3.IntegrityError as exc:
                if "UNIQUE" in str(exc) or "PRIMARY KEY" in str(exc):
                    raise AccountExists(jid) from None
                raise

        await self._run(run)

    async def get_account(self, jid: str) -> Account | None:
        rows = await self._run(
            self._read, f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE jid = ?", (jid,)
        )
        return _account_from_row(rows[0]) if rows else None

    async def _update_account(self, jid: str, assignments: str, values: list[Any]) -> None:
        def run() -> None:
            cur = self._write(
                lambda c: c.execute(
                    f"UPDATE accounts SET {assignments} WHERE jid = ?", (*values, jid)
                )
            )
            if cur.rowcount == 0:
                raise NoSuchAccount(jid)

        await self._run(run)

    async def set_credentials(self, jid: str, credentials: Credentials) -> None:
        check_credentials(credentials)
        await self._update_account(jid, _credential_assignments(), _credential_values(credentials))

    async def set_disabled(self, jid: str, disabled: bool) -> None:
        await self._update_account(jid, "disabled = ?", [int(bool(disabled))])

    async def delete_account(self, jid: str) -> bool:
        cur = await self._run(
            self._write, lambda c: c.execute("DELETE FROM accounts WHERE jid = ?", (jid,))
        )
        return cur.rowcount > 0

    async def list_accounts(self, domain: str | None = None) -> list[str]:
        if domain is None:
            rows = await self._run(self._read, "SELECT jid FROM accounts ORDER BY jid")
        else:
            rows = await self._run(
                self._read, "SELECT jid FROM accounts WHERE domain = ? ORDER BY jid", (domain,)
            )
        return [row[0] for row in rows]

    async def count_accounts(self, domain: str | None = None) -> int:
        if domain is None:
            rows = await self._run(self._read, "SELECT count(*) FROM accounts")
        else:
            rows = await self._run(
                self._read, "SELECT count(*) FROM accounts WHERE domain = ?", (domain,)
            )
        return rows[0][0]

    async def record_login(self, jid: str, when: datetime) -> None:
        stamp = _ts(when)
        await self._run(
            self._write,
            lambda c: c.execute("UPDATE accounts SET last_login = ? WHERE jid = ?", (stamp, jid)),
        )

    async def record_logout(self, jid: str, when: datetime, status: str | None) -> None:
        stamp = _ts(when)
        await self._run(
            self._write,
            lambda c: c.execute(
                "UPDATE accounts SET last_logout = ?, last_status = ? WHERE jid = ?",
                (stamp, status, jid),
            ),
        )

    # roster

    async def get_roster(self, jid: str) -> list[RosterItem]:
        def read() -> list[RosterItem]:  # rows become items on the worker, off the event loop
            rows = self._read(
                "SELECT contact, name, subscription, ask, approved, groups FROM roster "
                "WHERE user = ? ORDER BY contact",
                (jid,),
            )
            return [_roster_from_row(row) for row in rows]

        return await self._run(read)

    async def get_roster_item(self, jid: str, contact: str) -> RosterItem | None:
        rows = await self._run(
            self._read,
            "SELECT contact, name, subscription, ask, approved, groups FROM roster "
            "WHERE user = ? AND contact = ?",
            (jid, contact),
        )
        return _roster_from_row(rows[0]) if rows else None

    async def put_roster_item(self, jid: str, item: RosterItem, max_items: Quota = None) -> None:
        check_roster_item(item)
        values = (
            jid,
            item.jid,
            item.name,
            item.subscription,
            int(bool(item.ask)),
            int(bool(item.approved)),
            json.dumps([str(g) for g in item.groups]),
        )

        def put(c: sqlite3.Connection) -> None:
            if max_items is not None:
                (count,), (exists,) = c.execute(
                    "SELECT count(*) FROM roster WHERE user = ? UNION ALL "
                    "SELECT count(*) FROM roster WHERE user = ? AND contact = ?",
                    (jid, jid, item.jid),
                ).fetchall()
                if not exists:
                    check_quota(jid, "items", count + 1, max_items)
            c.execute(
                "INSERT INTO roster (user, contact, name, subscription, ask, approved, groups) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (user, contact) DO UPDATE SET "
                "name = excluded.name, subscription = excluded.subscription, ask = excluded.ask, "
                "approved = excluded.approved, groups = excluded.groups",
                values,
            )

        await self._write_for(jid, put)

    async def delete_roster_item(self, jid: str, contact: str) -> None:
        await self._run(
            self._write,
            lambda c: c.execute(
                "DELETE FROM roster WHERE user = ? AND contact = ?", (jid, contact)
            ),
        )

    # pending inbound subscription requests

    async def add_pending_in(self, jid: str, contact: str, xml: str) -> None:
        await self._write_for(
            jid,
            lambda c: c.execute(
                "INSERT INTO pending_in (user, contact, xml) VALUES (?, ?, ?) "
                "ON CONFLICT (user, contact) DO UPDATE SET xml = excluded.xml",
                (jid, contact, xml),
            ),
        )

    async def remove_pending_in(self, jid: str, contact: str) -> None:
        await self._run(
            self._write,
            lambda c: c.execute(
                "DELETE FROM pending_in WHERE user = ? AND contact = ?", (jid, contact)
            ),
        )

    async def get_pending_in(self, jid: str) -> list[tuple[str, str]]:
        rows = await self._run(
            self._read,
            "SELECT contact, xml FROM pending_in WHERE user = ? ORDER BY rowid",
            (jid,),
        )
        return [(contact, xml) for contact, xml in rows]

    # offline messages

    async def store_offline(
        self, jid: str, xml: str, stamp: datetime, max_count: Quota = None, max_bytes: Quota = None
    ) -> None:
        text = _ts(stamp)

        def store(c: sqlite3.Connection) -> None:
            if max_count is not None or max_bytes is not None:
                count, used = c.execute(
                    "SELECT count(*), coalesce(sum(length(CAST(xml AS BLOB))), 0) FROM offline "
                    "WHERE user = ?",
                    (jid,),
                ).fetchone()
                check_quota(jid, "messages", count + 1, max_count)
                check_quota(jid, "bytes", used + xml_bytes(xml), max_bytes)
            c.execute("INSERT INTO offline (user, xml, stamp) VALUES (?, ?, ?)", (jid, xml, text))

        await self._write_for(jid, store)

    async def count_offline(self, jid: str) -> int:
        rows = await self._run(self._read, "SELECT count(*) FROM offline WHERE user = ?", (jid,))
        return rows[0][0]

    async def pop_offline(self, jid: str) -> list[OfflineMessage]:
        def pop(c: sqlite3.Connection) -> list[tuple]:
            rows = c.execute(
                "SELECT id, xml, stamp FROM offline WHERE user = ? ORDER BY id", (jid,)
            ).fetchall()
            if rows:
                c.execute("DELETE FROM offline WHERE user = ? AND id <= ?", (jid, rows[-1][0]))
            return rows

        rows = await self._run(self._write, pop)
        return [OfflineMessage(id_, xml, datetime.fromisoformat(stamp)) for id_, xml, stamp in rows]

    async def list_offline(self, jid: str) -> list[OfflineMessage]:
        rows = await self._run(
            self._read, "SELECT id, xml, stamp FROM offline WHERE user = ? ORDER BY id", (jid,)
        )
        return [OfflineMessage(id_, xml, datetime.fromisoformat(stamp)) for id_, xml, stamp in rows]

    async def hold_offline(self, messages: list[tuple[str, str, datetime]]) -> list[int]:
        rows = [(jid, xml, _ts(stamp)) for jid, xml, stamp in messages]
        ids: list[int] = []

        def hold(c: sqlite3.Connection) -> None:
            ids.clear()  # a retried transaction starts over
            for row in rows:
                ids.append(
                    c.execute(
                        "INSERT INTO offline (user, xml, stamp) VALUES (?, ?, ?)", row
                    ).lastrowid
                )

        await self._write_for(rows[0][0] if rows else "", hold)
        return ids

    async def delete_offline(self, jid: str, ids: Iterable[int]) -> int:
        wanted = [(jid, id_) for id_ in ids]

        def delete(c: sqlite3.Connection) -> int:
            before = c.total_changes
            c.executemany("DELETE FROM offline WHERE user = ? AND id = ?", wanted)
            return c.total_changes - before

        return await self._run(self._write, delete) if wanted else 0

    async def purge_offline(self, before: datetime) -> int:
        def purge(c: sqlite3.Connection) -> int:
            return c.execute("DELETE FROM offline WHERE stamp < ?", (_ts(before),)).rowcount

        return await self._run(self._write, purge)

    # vcard and private storage

    async def get_vcard(self, jid: str) -> str | None:
        rows = await self._run(self._read, "SELECT xml FROM vcard WHERE user = ?", (jid,))
        return rows[0][0] if rows else None

    async def set_vcard(self, jid: str, xml: str) -> None:
        await self._write_for(
            jid,
            lambda c: c.execute(
                "INSERT INTO vcard (user, xml) VALUES (?, ?) "
                "ON CONFLICT (user) DO UPDATE SET xml = excluded.xml",
                (jid, xml),
            ),
        )

    async def get_private(self, jid: str, key: str) -> str | None:
        rows = await self._run(
            self._read, "SELECT xml FROM private WHERE user = ? AND key = ?", (jid, key)
        )
        return rows[0][0] if rows else None

    async def list_private(self, jid: str) -> dict[str, str]:
        rows = await self._run(
            self._read, "SELECT key, xml FROM private WHERE user = ? ORDER BY key", (jid,)
        )
        return dict(rows)

    async def set_private(self, jid: str, key: str, xml: str, max_bytes: Quota = None) -> None:
        def put(c: sqlite3.Connection) -> None:
            if max_bytes is not None:
                (used,) = c.execute(
                    "SELECT coalesce(sum(length(CAST(xml AS BLOB))), 0) FROM private "
                    "WHERE user = ? AND key != ?",
                    (jid, key),
                ).fetchone()
                check_quota(jid, "bytes", used + xml_bytes(xml), max_bytes)
            c.execute(
                "INSERT INTO private (user, key, xml) VALUES (?, ?, ?) "
                "ON CONFLICT (user, key) DO UPDATE SET xml = excluded.xml",
                (jid, key, xml),
            )

        await self._write_for(jid, put)

    # settings

    async def get_setting(self, key: str) -> str | None:
        rows = await self._run(self._read, "SELECT value FROM settings WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    async def set_setting(self, key: str, value: str | None) -> None:
        if value is None:
            await self._run(
                self._write, lambda c: c.execute("DELETE FROM settings WHERE key = ?", (key,))
            )
        else:
            await self._run(
                self._write,
                lambda c: c.execute(
                    "INSERT INTO settings (key, value) VALUES (?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (key, value),
                ),
            )

    async def size_bytes(self) -> int:
        total = 0
        for p in (self.path, Path(f"{self.path}-wal")):
            with contextlib.suppress(FileNotFoundError):
                total += p.stat().st_size
        return total

    async def backup(self, dest: str | os.PathLike[str]) -> int:
        """A consistent copy of the store at `dest` while the server writes (SQLite's online
        backup API, in one step: one read snapshot), written beside it and renamed into place,
        mode 0600 (it holds password keys). Returns its size in bytes."""
        target = Path(dest)

        def run() -> int:
            assert self._conn is not None
            fd, tmp = _temporary_beside(target)
            os.close(fd)
            try:
                copy = sqlite3.connect(tmp, isolation_level=None)
                try:
                    self._conn.backup(copy)
                    copy.execute("PRAGMA journal_mode = DELETE")  # a single self-contained file
                    ok = copy.execute("PRAGMA integrity_check").fetchone()[0]
                finally:
                    copy.close()
                if ok != "ok":
                    raise StorageError(f"the copy of {self.path} fails its integrity check: {ok}")
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            return target.stat().st_size

        try:
            return await self._run(run)
        except OSError as exc:
            raise StorageError(f"cannot write {target} ({exc.strerror})") from None


def _temporary_beside(target: Path) -> tuple[int, str]:
    import tempfile  # only for a backup: with shutil, bz2 and lzma it is 1 MB of every server

    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    os.fchmod(fd, 0o600)
    return fd, tmp

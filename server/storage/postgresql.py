"""The shared backend: PostgreSQL through asyncpg, for several server nodes on one store.

Imported only when `[storage] backend = "postgresql"` (storage/__init__.py), so asyncpg stays
out of every other process. A pool of connections; each write is one transaction and the
coroutine returns after COMMIT, with `synchronous_commit = on` forced for the session (a role or
database default of `off` would acknowledge before the WAL is flushed): success reported to a
client means the row survives a crash (base.py, durability).

Quotas are checked inside the write: every per-user write first locks its account row
(`FOR NO KEY UPDATE`), so writes for one account are serialized across connections and nodes
while other accounts go on in parallel; a missing row is NoSuchAccount. Text that is ordered
(JIDs, private keys) is `COLLATE "C"`: the same byte order as SQLite whatever the database's
locale. The password is never in the DSN (config.py refuses one there); it is read from
`dsn_password_file` at open, or asyncpg reads PGPASSFILE, and no message names it.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import logging
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import asyncpg
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
from vines_server.storage.sqlite import _PREFIX, _credential_values, _temporary_beside
from vines_server.xmpp.sasl.credentials import Credentials, ScramKeys

log = logging.getLogger(__name__)

T = TypeVar("T")

POOL_SIZE = 8
CONNECT_TIMEOUT = 10.0  # seconds
_CREDENTIAL_COLUMNS = [
    f"{p}_{c}" for p in _PREFIX.values() for c in ("salt", "iterations", "stored_key", "server_key")
]
_ACCOUNT_COLUMNS = "jid, disabled, created, last_login, last_logout, last_status, " + ", ".join(
    _CREDENTIAL_COLUMNS
)
_ROSTER_COLUMNS = "contact, name, subscription, ask, approved, groups"
_DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, asyncio.TimeoutError)


# migrations: an ordered list, each run in its own transaction with its row in schema_version;
# append new ones at the end, never edit or reorder one that has shipped.


async def _initial(conn: asyncpg.Connection) -> None:
    credential_columns = ",\n".join(
        f"{p}_salt bytea, {p}_iterations integer, {p}_stored_key bytea, {p}_server_key bytea"
        for p in _PREFIX.values()
    )
    owner = 'owner text COLLATE "C" NOT NULL REFERENCES accounts (jid) ON DELETE CASCADE'
    await conn.execute(
        f"""
        CREATE TABLE accounts (
            jid text COLLATE "C" PRIMARY KEY,
            domain text COLLATE "C" NOT NULL,
            {credential_columns},
            disabled boolean NOT NULL DEFAULT false,
            created timestamptz NOT NULL,
            last_login timestamptz,
            last_logout timestamptz,
            last_status text
        );
        CREATE INDEX accounts_by_domain ON accounts (domain, jid);
        CREATE TABLE roster (
            {owner},
            contact text COLLATE "C" NOT NULL,
            name text,
            subscription text NOT NULL DEFAULT 'none'
                CHECK (subscription IN ('none', 'to', 'from', 'both')),
            ask boolean NOT NULL DEFAULT false,
            approved boolean NOT NULL DEFAULT false,
            groups text[] NOT NULL DEFAULT '{{}}',
            PRIMARY KEY (owner, contact)
        );
        CREATE TABLE pending_in (
            {owner},
            contact text COLLATE "C" NOT NULL,
            xml text NOT NULL,
            arrival bigint GENERATED ALWAYS AS IDENTITY,  -- kept when a request is repeated
            PRIMARY KEY (owner, contact)
        );
        CREATE INDEX pending_in_by_arrival ON pending_in (owner, arrival);
        CREATE TABLE offline (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- a sequence: never reused
            {owner},
            xml text NOT NULL,
            stamp timestamptz NOT NULL
        );
        CREATE INDEX offline_by_owner ON offline (owner, id);
        CREATE INDEX offline_by_stamp ON offline (stamp);
        CREATE TABLE vcard (
            owner text COLLATE "C" PRIMARY KEY REFERENCES accounts (jid) ON DELETE CASCADE,
            xml text NOT NULL
        );
        CREATE TABLE private (
            {owner},
            key text COLLATE "C" NOT NULL,
            xml text NOT NULL,
            PRIMARY KEY (owner, key)
        );
        CREATE TABLE settings (
            key text COLLATE "C" PRIMARY KEY,
            value text NOT NULL
        );
        """
    )


# SQLite's second migration (renaming names stored before RFC 7622) has no counterpart: a
# PostgreSQL store is only ever written by servers that prepare JIDs by RFC 7622, and logins under
# an old spelling are looked up by c2s whatever the backend.
MIGRATIONS: list[Callable[[asyncpg.Connection], Awaitable[None]]] = [_initial]
SCHEMA_VERSION = len(MIGRATIONS)
_MIGRATION_LOCK = 0x76696E6573  # pg_advisory_xact_lock key ("vines"): one migrating node at a time


async def migrate(conn: asyncpg.Connection) -> int:
    """Runs the pending migrations; returns how many ran. Each runs in its own transaction under
    an advisory lock, the version re-read inside it, so nodes starting together apply each one
    once, and a crash leaves the schema before or after a migration, never half-way."""
    applied = 0
    while True:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version ("
                "version integer PRIMARY KEY, applied timestamptz NOT NULL DEFAULT now())"
            )
            version = await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_version")
            if version > SCHEMA_VERSION:
                raise StorageError(
                    f"schema version {version} is newer than this server knows "
                    f"({SCHEMA_VERSION}): upgrade vinesctl"
                )
            if version == SCHEMA_VERSION:
                return applied
            await MIGRATIONS[version](conn)
            await conn.execute("INSERT INTO schema_version (version) VALUES ($1)", version + 1)
        applied += 1


def describe_dsn(dsn: str) -> str:
    """The DSN as errors and logs show it: user, host, port and database, never a password."""
    parts = urlsplit(dsn)
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    user = f"{parts.username}@" if parts.username else ""
    return f"postgresql://{user}{host}{port}{parts.path}"


def read_password_file(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").splitlines()[0] if path.stat().st_size else ""
    except OSError as exc:
        raise StorageError(
            f"cannot read storage.dsn_password_file {path} ({exc.strerror}): "
            "check that it exists and is readable by the server"
        ) from None


def _account_from_row(row: asyncpg.Record) -> Account:
    credentials: Credentials = {}
    for name, p in _PREFIX.items():
        if row[f"{p}_salt"] is not None:
            credentials[name] = ScramKeys(
                name,
                bytes(row[f"{p}_salt"]),
                int(row[f"{p}_iterations"]),
                bytes(row[f"{p}_stored_key"]),
                bytes(row[f"{p}_server_key"]),
            )
    return Account(
        row["jid"],
        credentials,
        disabled=row["disabled"],
        created=row["created"],
        last_login=row["last_login"],
        last_logout=row["last_logout"],
        last_status=row["last_status"],
    )


def _roster_from_row(row: asyncpg.Record) -> RosterItem:
    return RosterItem(
        row["contact"],
        row["name"],
        row["subscription"],
        row["ask"],
        row["approved"],
        tuple(row["groups"]),
    )


def _offline_from_rows(rows: list[asyncpg.Record]) -> list[OfflineMessage]:
    return [OfflineMessage(r["id"], r["xml"], r["stamp"]) for r in sorted(rows, key=lambda r: r[0])]


def _find_pg_dump() -> str | None:
    return _find_pg_client("pg_dump")


def _find_pg_client(name: str) -> str | None:
    """A PostgreSQL client program (pg_dump, pg_restore) on PATH (Debian's wrapper picks the
    newest client), else the newest one installed under /usr/lib/postgresql/N/bin."""
    found = shutil.which(name)
    if found:
        return found
    candidates = glob.glob(f"/usr/lib/postgresql/*/bin/{name}")
    candidates.sort(key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    return candidates[-1] if candidates else None


async def archive_accounts(path: str | os.PathLike[str]) -> int:
    """How many accounts a restore of the pg_dump archive at `path` (what `backup` writes)
    brings back: pg_restore reads the archive's data of the accounts table, so this also proves
    the file is a readable archive of a store. StorageError naming the cause otherwise."""
    pg_restore = _find_pg_client("pg_restore")
    if pg_restore is None:
        raise StorageError(
            "reading a PostgreSQL backup needs pg_restore: install postgresql-client"
        )
    proc = await asyncio.create_subprocess_exec(
        pg_restore,
        "--data-only",
        "--table=accounts",
        "--file=-",
        str(path),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        lines = err.decode("utf-8", "replace").strip().splitlines() or ["no output"]
        raise StorageError(f"{path} is not a readable pg_dump archive: {lines[-1]}")
    rows, copying = 0, False
    for line in out.decode("utf-8", "replace").splitlines():  # COPY ... FROM stdin; rows; \.
        if copying:
            if line == "\\.":
                break
            rows += 1
        elif line.startswith("COPY ") and line.endswith("FROM stdin;"):
            copying = True
    if not copying:
        raise StorageError(f"{path} holds no accounts table: not a backup of a vines store")
    return rows


class PostgreSQLStorage:
    def __init__(self, dsn: str, password_file: str | os.PathLike[str] | None = None) -> None:
        self.dsn = dsn
        self.where = describe_dsn(dsn)
        self._password_file = Path(password_file) if password_file is not None else None
        self._pool: asyncpg.Pool | None = None

    def __repr__(self) -> str:
        return f"PostgreSQLStorage({self.where!r})"

    # plumbing

    def _password(self) -> str | None:
        return None if self._password_file is None else read_password_file(self._password_file)

    def _error(self, exc: BaseException) -> StorageError:
        detail = str(exc) or type(exc).__name__
        return StorageError(f"database {self.where}: {detail}")

    @contextlib.asynccontextmanager
    async def _connection(self, transaction: bool) -> AsyncIterator[asyncpg.Connection]:
        pool = self._pool
        if pool is None:
            raise StorageError("storage is not open: await open() first")
        try:
            async with pool.acquire() as conn:
                if transaction:
                    async with conn.transaction():
                        yield conn
                else:
                    yield conn
        except _DRIVER_ERRORS as exc:
            raise self._error(exc) from None

    def _write(self) -> contextlib.AbstractAsyncContextManager[asyncpg.Connection]:
        """One transaction, committed when the block exits (before the caller returns)."""
        return self._connection(transaction=True)

    async def _fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        async with self._connection(transaction=False) as conn:
            return await conn.fetch(sql, *args)

    async def _execute(self, sql: str, *args: Any) -> str:
        async with self._write() as conn:
            return await conn.execute(sql, *args)

    @contextlib.asynccontextmanager
    async def _write_for(self, jid: str) -> AsyncIterator[asyncpg.Connection]:
        """A write of per-user data: the account row locked for the transaction (quotas see
        every earlier write of this account), NoSuchAccount when it is missing."""
        async with self._write() as conn:
            locked = await conn.fetchval(
                "SELECT 1 FROM accounts WHERE jid = $1 FOR NO KEY UPDATE", jid
            )
            if locked is None:
                raise NoSuchAccount(jid)
            yield conn

    # lifecycle

    async def open(self) -> None:
        if self._pool is not None:
            return
        password = self._password()
        try:
            pool = await asyncpg.create_pool(
                self.dsn,
                password=password,
                min_size=1,
                max_size=POOL_SIZE,
                timeout=CONNECT_TIMEOUT,
                server_settings={"synchronous_commit": "on", "application_name": "vines"},
            )
        except _DRIVER_ERRORS as exc:
            raise StorageError(
                f"cannot open database {self.where} ({str(exc) or type(exc).__name__}): check "
                "that PostgreSQL runs there and that the role, database and password are right"
            ) from None
        try:
            async with pool.acquire() as conn:
                await migrate(conn)
                if await conn.fetchval("SHOW fsync") != "on":
                    log.warning(
                        "%s: fsync is off; a crash of its machine can lose data", self.where
                    )
        except BaseException as exc:
            await pool.close()
            if isinstance(exc, _DRIVER_ERRORS):
                raise self._error(exc) from None
            raise
        self._pool = pool

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    # accounts

    async def create_account(self, jid: str, credentials: Credentials) -> None:
        check_credentials(credentials)
        columns = ", ".join(["jid", "domain", "created", *_CREDENTIAL_COLUMNS])
        placeholders = ", ".join(f"${i}" for i in range(1, 4 + len(_CREDENTIAL_COLUMNS)))
        async with self._write() as conn:
            try:
                await conn.execute(
                    f"INSERT INTO accounts ({columns}) VALUES ({placeholders})",
                    jid,
                    jid.rpartition("@")[2],
                    datetime.now(UTC),
                    *_credential_values(credentials),
                )
            except asyncpg.UniqueViolationError:
                raise AccountExists(jid) from None

    async def get_account(self, jid: str) -> Account | None:
        rows = await self._fetch(f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE jid = $1", jid)
        return _account_from_row(rows[0]) if rows else None

    async def _update_account(self, jid: str, columns: list[str], values: list[Any]) -> None:
        assignments = ", ".join(f"{c} = ${i}" for i, c in enumerate(columns, start=2))
        status = await self._execute(
            f"UPDATE accounts SET {assignments} WHERE jid = $1", jid, *values
        )
        if status == "UPDATE 0":
            raise NoSuchAccount(jid)

    async def set_credentials(self, jid: str, credentials: Credentials) -> None:
        check_credentials(credentials)
        await self._update_account(jid, _CREDENTIAL_COLUMNS, _credential_values(credentials))

    async def set_disabled(self, jid: str, disabled: bool) -> None:
        await self._update_account(jid, ["disabled"], [bool(disabled)])

    async def delete_account(self, jid: str) -> bool:
        status = await self._execute("DELETE FROM accounts WHERE jid = $1", jid)
        return status != "DELETE 0"

    async def list_accounts(self, domain: str | None = None) -> list[str]:
        if domain is None:
            rows = await self._fetch("SELECT jid FROM accounts ORDER BY jid")
        else:
            rows = await self._fetch(
                "SELECT jid FROM accounts WHERE domain = $1 ORDER BY jid", domain
            )
        return [row[0] for row in rows]

    async def count_accounts(self, domain: str | None = None) -> int:
        if domain is None:
            rows = await self._fetch("SELECT count(*) FROM accounts")
        else:
            rows = await self._fetch("SELECT count(*) FROM accounts WHERE domain = $1", domain)
        return rows[0][0]

    async def record_login(self, jid: str, when: datetime) -> None:
        await self._execute("UPDATE accounts SET last_login = $2 WHERE jid = $1", jid, utc(when))

    async def record_logout(self, jid: str, when: datetime, status: str | None) -> None:
        await self._execute(
            "UPDATE accounts SET last_logout = $2, last_status = $3 WHERE jid = $1",
            jid,
            utc(when),
            status,
        )

    # roster

    async def get_roster(self, jid: str) -> list[RosterItem]:
        rows = await self._fetch(
            f"SELECT {_ROSTER_COLUMNS} FROM roster WHERE owner = $1 ORDER BY contact", jid
        )
        return [_roster_from_row(row) for row in rows]

    async def get_roster_item(self, jid: str, contact: str) -> RosterItem | None:
        rows = await self._fetch(
            f"SELECT {_ROSTER_COLUMNS} FROM roster WHERE owner = $1 AND contact = $2", jid, contact
        )
        return _roster_from_row(rows[0]) if rows else None

    async def put_roster_item(self, jid: str, item: RosterItem, max_items: Quota = None) -> None:
        check_roster_item(item)
        async with self._write_for(jid) as conn:
            if max_items is not None:
                count, exists = await conn.fetchrow(
                    "SELECT count(*), count(*) FILTER (WHERE contact = $2) FROM roster "
                    "WHERE owner = $1",
                    jid,
                    item.jid,
                )
                if not exists:
                    check_quota(jid, "items", count + 1, max_items)
            await conn.execute(
                "INSERT INTO roster (owner, contact, name, subscription, ask, approved, groups) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (owner, contact) DO UPDATE SET "
                "name = excluded.name, subscription = excluded.subscription, ask = excluded.ask, "
                "approved = excluded.approved, groups = excluded.groups",
                jid,
                item.jid,
                item.name,
                item.subscription,
                bool(item.ask),
                bool(item.approved),
                [str(g) for g in item.groups],
            )

    async def delete_roster_item(self, jid: str, contact: str) -> None:
        await self._execute("DELETE FROM roster WHERE owner = $1 AND contact = $2", jid, contact)

    # pending inbound subscription requests

    async def add_pending_in(self, jid: str, contact: str, xml: str) -> None:
        async with self._write_for(jid) as conn:
            await conn.execute(
                "INSERT INTO pending_in (owner, contact, xml) VALUES ($1, $2, $3) "
                "ON CONFLICT (owner, contact) DO UPDATE SET xml = excluded.xml",
                jid,
                contact,
                xml,
            )

    async def remove_pending_in(self, jid: str, contact: str) -> None:
        await self._execute(
            "DELETE FROM pending_in WHERE owner = $1 AND contact = $2", jid, contact
        )

    async def get_pending_in(self, jid: str) -> list[tuple[str, str]]:
        rows = await self._fetch(
            "SELECT contact, xml FROM pending_in WHERE owner = $1 ORDER BY arrival", jid
        )
        return [(contact, xml) for contact, xml in rows]

    # offline messages

    async def store_offline(
        self, jid: str, xml: str, stamp: datetime, max_count: Quota = None, max_bytes: Quota = None
    ) -> None:
        async with self._write_for(jid) as conn:
            if max_count is not None or max_bytes is not None:
                count, used = await conn.fetchrow(
                    "SELECT count(*), coalesce(sum(octet_length(xml)), 0) FROM offline "
                    "WHERE owner = $1",
                    jid,
                )
                check_quota(jid, "messages", count + 1, max_count)
                check_quota(jid, "bytes", used + xml_bytes(xml), max_bytes)
            await conn.execute(
                "INSERT INTO offline (owner, xml, stamp) VALUES ($1, $2, $3)", jid, xml, utc(stamp)
            )

    async def count_offline(self, jid: str) -> int:
        rows = await self._fetch("SELECT count(*) FROM offline WHERE owner = $1", jid)
        return rows[0][0]

    async def pop_offline(self, jid: str) -> list[OfflineMessage]:
        async with self._write() as conn:
            rows = await conn.fetch(
                "DELETE FROM offline WHERE owner = $1 RETURNING id, xml, stamp", jid
            )
        return _offline_from_rows(rows)

    async def list_offline(self, jid: str) -> list[OfflineMessage]:
        rows = await self._fetch(
            "SELECT id, xml, stamp FROM offline WHERE owner = $1 ORDER BY id", jid
        )
        return _offline_from_rows(rows)

    # delivery that survives a crash (stream management, branch sm): not yet in base.py on main

    async def hold_offline(self, messages: list[tuple[str, str, datetime]]) -> list[int]:
        """Stores (jid, xml, stamp) messages on their way to live sessions in one transaction,
        without quotas; their ids in order. NoSuchAccount (and nothing stored) when an account
        is missing. The accounts are locked like any per-user write, in JID order (no deadlock
        between two batches), so quota checks running beside it see all or none of it."""
        if not messages:
            return []
        owners = sorted({jid for jid, _, _ in messages})
        async with self._write() as conn:
            found = await conn.fetch(
                "SELECT jid FROM accounts WHERE jid = ANY($1::text[]) ORDER BY jid "
                "FOR NO KEY UPDATE",
                owners,
            )
            missing = sorted(set(owners) - {row[0] for row in found})
            if missing:
                raise NoSuchAccount(missing[0])
            rows = await conn.fetch(
                "INSERT INTO offline (owner, xml, stamp) "
                "SELECT owner, xml, stamp FROM unnest($1::text[], $2::text[], $3::timestamptz[]) "
                "WITH ORDINALITY AS batch (owner, xml, stamp, n) ORDER BY n RETURNING id",
                [jid for jid, _, _ in messages],
                [xml for _, xml, _ in messages],
                [utc(stamp) for _, _, stamp in messages],
            )
        # the identity is drawn row by row in the ORDER BY order: sorted ids follow the batch
        return sorted(row[0] for row in rows)

    async def delete_offline(self, jid: str, ids: Iterable[int]) -> int:
        wanted = list(ids)
        if not wanted:
            return 0
        status = await self._execute(
            "DELETE FROM offline WHERE owner = $1 AND id = ANY($2::bigint[])", jid, wanted
        )
        return int(status.rpartition(" ")[2])

    async def purge_offline(self, before: datetime) -> int:
        status = await self._execute("DELETE FROM offline WHERE stamp < $1", utc(before))
        return int(status.rpartition(" ")[2])

    # vcard and private storage

    async def get_vcard(self, jid: str) -> str | None:
        rows = await self._fetch("SELECT xml FROM vcard WHERE owner = $1", jid)
        return rows[0][0] if rows else None

    async def set_vcard(self, jid: str, xml: str) -> None:
        async with self._write_for(jid) as conn:
            await conn.execute(
                "INSERT INTO vcard (owner, xml) VALUES ($1, $2) "
                "ON CONFLICT (owner) DO UPDATE SET xml = excluded.xml",
                jid,
                xml,
            )

    async def get_private(self, jid: str, key: str) -> str | None:
        rows = await self._fetch("SELECT xml FROM private WHERE owner = $1 AND key = $2", jid, key)
        return rows[0][0] if rows else None

    async def list_private(self, jid: str) -> dict[str, str]:
        rows = await self._fetch("SELECT key, xml FROM private WHERE owner = $1 ORDER BY key", jid)
        return {key: xml for key, xml in rows}

    async def set_private(self, jid: str, key: str, xml: str, max_bytes: Quota = None) -> None:
        async with self._write_for(jid) as conn:
            if max_bytes is not None:
                used = await conn.fetchval(
                    "SELECT coalesce(sum(octet_length(xml)), 0) FROM private "
                    "WHERE owner = $1 AND key <> $2",
                    jid,
                    key,
                )
                check_quota(jid, "bytes", used + xml_bytes(xml), max_bytes)
            await conn.execute(
                "INSERT INTO private (owner, key, xml) VALUES ($1, $2, $3) "
                "ON CONFLICT (owner, key) DO UPDATE SET xml = excluded.xml",
                jid,
                key,
                xml,
            )

    # settings

    async def get_setting(self, key: str) -> str | None:
        rows = await self._fetch("SELECT value FROM settings WHERE key = $1", key)
        return rows[0][0] if rows else None

    async def set_setting(self, key: str, value: str | None) -> None:
        if value is None:
            await self._execute("DELETE FROM settings WHERE key = $1", key)
        else:
            await self._execute(
                "INSERT INTO settings (key, value) VALUES ($1, $2) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                key,
                value,
            )

    async def size_bytes(self) -> int:
        rows = await self._fetch("SELECT pg_database_size(current_database())")
        return rows[0][0]

    async def backup(self, dest: str | os.PathLike[str]) -> int:
        """pg_dump's custom format at `dest` (restore it into an empty database with
        `pg_restore --dbname=DSN FILE`): one snapshot, so consistent while writes go on; written
        beside `dest` and renamed into place, mode 0600 (it holds password keys). StorageError
        naming pg_dump when it is not installed. The password reaches pg_dump in its
        environment, never on its command line (which `ps` shows)."""
        if self._pool is None:
            raise StorageError("storage is not open: await open() first")
        pg_dump = _find_pg_dump()
        if pg_dump is None:
            raise StorageError(
                f"backup of the PostgreSQL store {self.where} needs pg_dump: install the "
                "postgresql-client package, or back up the database with your own tools"
            )
        target = Path(dest)
        try:
            fd, tmp = _temporary_beside(target)
        except OSError as exc:
            raise StorageError(f"cannot write {target} ({exc.strerror})") from None
        os.close(fd)
        env = dict(os.environ)
        password = self._password()
        if password is not None:
            env["PGPASSWORD"] = password
        try:
            proc = await asyncio.create_subprocess_exec(
                pg_dump,
                "--format=custom",
                "--no-owner",
                f"--file={tmp}",
                f"--dbname={self.dsn}",
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                env=env,
            )
            _, err = await proc.communicate()
            if proc.returncode != 0:
                lines = err.decode("utf-8", "replace").strip().splitlines() or ["no output"]
                raise StorageError(f"pg_dump of {self.where} failed: {lines[-1]}")
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target.stat().st_size

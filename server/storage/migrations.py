"""SQLite schema migrations: an ordered list of functions `(conn) -> None`.

`PRAGMA user_version` records how many have run. At open, each pending migration runs in its
own transaction together with the user_version bump, so a crash leaves the schema either before
or after a migration, never half-way. Append new migrations at the end; never edit or reorder
one that has shipped.

Passwords are never stored: an account holds, per SCRAM hash, the salt, the iteration count,
StoredKey and ServerKey (see vines_server.xmpp.sasl.credentials).
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vines_server.xmpp.jid import JID, JIDError

log = logging.getLogger(__name__)


def _initial(conn: sqlite3.Connection) -> None:
    statements = [
        """CREATE TABLE accounts (
            jid TEXT PRIMARY KEY NOT NULL,
            domain TEXT NOT NULL,
            sha1_salt BLOB,
            sha1_iterations INTEGER,
            sha1_stored_key BLOB,
            sha1_server_key BLOB,
            sha256_salt BLOB,
            sha256_iterations INTEGER,
            sha256_stored_key BLOB,
            sha256_server_key BLOB,
            disabled INTEGER NOT NULL DEFAULT 0,
            created TEXT NOT NULL,
            last_login TEXT,
            last_logout TEXT,
            last_status TEXT
        )""",
        "CREATE INDEX accounts_by_domain ON accounts (domain, jid)",
        """CREATE TABLE roster (
            user TEXT NOT NULL REFERENCES accounts (jid) ON DELETE CASCADE,
            contact TEXT NOT NULL,
            name TEXT,
            subscription TEXT NOT NULL DEFAULT 'none'
                CHECK (subscription IN ('none', 'to', 'from', 'both')),
            ask INTEGER NOT NULL DEFAULT 0,
            approved INTEGER NOT NULL DEFAULT 0,
            groups TEXT NOT NULL DEFAULT '[]',
            PRIMARY KEY (user, contact)
        )""",
        """CREATE TABLE pending_in (
            user TEXT NOT NULL REFERENCES accounts (jid) ON DELETE CASCADE,
            contact TEXT NOT NULL,
            xml TEXT NOT NULL,
            PRIMARY KEY (user, contact)
        )""",
        """CREATE TABLE offline (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            user TEXT NOT NULL REFERENCES accounts (jid) ON DELETE CASCADE,
            xml TEXT NOT NULL,
            stamp TEXT NOT NULL
        )""",
        "CREATE INDEX offline_by_user ON offline (user, id)",
        """CREATE TABLE vcard (
            user TEXT PRIMARY KEY NOT NULL REFERENCES accounts (jid) ON DELETE CASCADE,
            xml TEXT NOT NULL
        )""",
        """CREATE TABLE private (
            user TEXT NOT NULL REFERENCES accounts (jid) ON DELETE CASCADE,
            key TEXT NOT NULL,
            xml TEXT NOT NULL,
            PRIMARY KEY (user, key)
        )""",
        """CREATE TABLE settings (
            key TEXT PRIMARY KEY NOT NULL,
            value TEXT NOT NULL
        )""",
    ]
    for statement in statements:
        conn.execute(statement)


# Tables whose `user` column names an account (all REFERENCES accounts (jid)).
_ACCOUNT_TABLES = ("roster", "pending_in", "offline", "vcard", "private")


def _prepare_jids_rfc7622(conn: sqlite3.Connection) -> None:
    """Account names stored before JIDs were prepared by RFC 7622 (PRECIS): the old rule kept
    fullwidth letters and symbols, so some stored names prepare differently now. Each one is
    recorded in `jid_changes` and logged: renamed to its prepared form when that is free,
    otherwise kept as it is ('conflict': never merged into the account that holds the prepared
    form; 'invalid': the name is refused now). Names the old rule casefolded ('straße' stored
    as 'strasse') prepare to themselves; logins under the old spelling find them (c2s)."""
    conn.execute(
        """CREATE TABLE jid_changes (
            old TEXT PRIMARY KEY NOT NULL,
            new TEXT,
            status TEXT NOT NULL CHECK (status IN ('renamed', 'conflict', 'invalid'))
        )"""
    )
    stored = [row[0] for row in conn.execute("SELECT jid FROM accounts ORDER BY jid")]
    taken = set(stored)
    changes: list[tuple[str, str | None, str]] = []
    for old in stored:
        try:
            new: str | None = str(JID.parse(old))
        except JIDError as exc:
            changes.append((old, None, "invalid"))
            log.warning("account %s: name refused by RFC 7622 (%s); kept as it is", old, exc)
            continue
        if new == old:
            continue
        if new in taken:  # held by another account, or claimed by an earlier rename
            changes.append((old, new, "conflict"))
            log.warning("account %s: prepares to %s, which exists; kept apart", old, new)
            continue
        _rename_account(conn, old, new)
        taken.add(new)
        changes.append((old, new, "renamed"))
        log.warning("account %s renamed to %s (RFC 7622)", old, new)
    conn.executemany("INSERT INTO jid_changes (old, new, status) VALUES (?, ?, ?)", changes)


def _rename_account(conn: sqlite3.Connection, old: str, new: str) -> None:
    conn.execute("PRAGMA defer_foreign_keys = ON")  # children and parent move in one go
    domain = new.rpartition("@")[2]
    conn.execute("UPDATE accounts SET jid = ?, domain = ? WHERE jid = ?", (new, domain, old))
    for table in _ACCOUNT_TABLES:
        conn.execute(f"UPDATE {table} SET user = ? WHERE user = ?", (new, old))
    # other accounts' rosters and pending requests name it as a contact
    for table in ("roster", "pending_in"):
        conn.execute(
            f"UPDATE OR IGNORE {table} SET contact = ? WHERE contact = ?",
            (new, old),
        )


@dataclass(frozen=True)
class JidChange:
    old: str
    new: str | None
    status: str  # renamed | conflict | invalid


def jid_changes(conn: sqlite3.Connection) -> list[JidChange]:
    """What the RFC 7622 migration did to stored account names (empty before it ran)."""
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'jid_changes'").fetchone():
        return []
    rows = conn.execute("SELECT old, new, status FROM jid_changes ORDER BY status, old")
    return [JidChange(*row) for row in rows]


def jid_changes_at(path: str | os.PathLike[str]) -> list[JidChange]:
    """jid_changes() of the SQLite file at `path`, opened read-only."""
    conn = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
    try:
        return jid_changes(conn)
    finally:
        conn.close()


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_initial, _prepare_jids_rfc7622]
SCHEMA_VERSION = len(MIGRATIONS)


class SchemaTooNew(Exception):
    """The file was written by a newer version of the server."""


def user_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def migrate(conn: sqlite3.Connection) -> int:
    """Runs the pending migrations; returns how many ran. The connection must be in autocommit
    mode (isolation_level=None): each migration is wrapped in BEGIN IMMEDIATE ... COMMIT, and the
    version is re-read inside the transaction, so two processes opening at once cannot both
    apply the same migration."""
    applied = 0
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = user_version(conn)
            if version > SCHEMA_VERSION:
                raise SchemaTooNew(
                    f"schema version {version} is newer than this server knows ({SCHEMA_VERSION})"
                )
            if version == SCHEMA_VERSION:
                conn.execute("COMMIT")
                return applied
            MIGRATIONS[version](conn)
            conn.execute(f"PRAGMA user_version = {version + 1:d}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        applied += 1

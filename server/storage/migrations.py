"""SQLite schema migrations: an ordered list of functions `(conn) -> None`.

`PRAGMA user_version` records how many have run. At open, each pending migration runs in its
own transaction together with the user_version bump, so a crash leaves the schema either before
or after a migration, never half-way. Append new migrations at the end; never edit or reorder
one that has shipped.

Passwords are never stored: an account holds, per SCRAM hash, the salt, the iteration count,
StoredKey and ServerKey (see vines_server.xmpp.sasl.credentials).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable


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


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_initial]
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

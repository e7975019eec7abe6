"""The last-login stamp is written behind the bind result: a login does not wait for it, and
the stamp still lands (before the session's logout stamp, through the store's one writer)."""

from __future__ import annotations

import asyncio
import sqlite3

from tests.support.xmpp import DOMAIN, RawClient


async def test_a_login_does_not_wait_for_the_last_login_write(harness, tmp_path):
    first = await RawClient.connect(harness.port(), harness.pki.ca_file)
    await first.login("bob")  # the first bind loads what the server caches (the admin state)
    # another process holds the database's write lock (a backup, sqlite3 on the command line)
    other = sqlite3.connect(tmp_path / "vines.sqlite", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        raw = await RawClient.connect(harness.port(), harness.pki.ca_file)
        reply = await raw.login("alice")  # reads need no lock (WAL): the bind completes
        assert b"type='result'" in reply
    finally:
        other.execute("ROLLBACK")
        other.close()
    # once the lock is gone the stamp is written; the store's one writer serves it first
    account = await asyncio.wait_for(harness.server.storage.get_account(f"alice@{DOMAIN}"), 10)
    assert account is not None and account.last_login is not None
    raw.close()
    first.close()

"""One contract suite run against every storage backend, plus SQLite-only tests (persistence,
no plaintext password on disk, migrations, durability under SIGKILL, file mode)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from vines_server.config import StorageConfig
from vines_server.storage import (
    AccountExists,
    MemoryStorage,
    NoSuchAccount,
    QuotaExceeded,
    RosterItem,
    SQLiteStorage,
    Storage,
    StorageError,
    open_storage,
)
from vines_server.storage.migrations import SCHEMA_VERSION, migrate, user_version
from vines_server.xmpp.sasl.credentials import derive, derive_all

from tests.support import postgres as pg_postgres

ALICE = "alice@example.org"
BOB = "bob@example.org"
CAROL = "carol@other.test"
ITERATIONS = 4096  # fast tests; the server default is 10 000


@pytest.fixture(scope="module")
def creds():
    return derive_all("alice-password", ITERATIONS)


async def storage_config(backend: str, tmp_path: Path, request) -> StorageConfig:
    """A config for `backend` on fresh, empty storage (a new database for postgresql)."""
    if backend != "postgresql":
        return StorageConfig(backend, tmp_path / "vines.sqlite")
    pg = request.getfixturevalue("postgres")
    dsn = await pg.create_database()
    return StorageConfig(backend, tmp_path / "unused.sqlite", dsn, pg.password_file)


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def store(request, tmp_path):
    backend = open_storage(await storage_config(request.param, tmp_path, request))
    await backend.open()
    yield backend
    await backend.close()


async def test_backend_is_a_storage(store):
    assert isinstance(store, Storage)


def test_open_storage_picks_the_backend(tmp_path):
    assert isinstance(open_storage(StorageConfig("memory")), MemoryStorage)
    sqlite_store = open_storage(StorageConfig("sqlite", tmp_path / "x.sqlite"))
    assert isinstance(sqlite_store, SQLiteStorage)
    assert not (tmp_path / "x.sqlite").exists()  # not opened yet
    with pytest.raises(StorageError):
        open_storage(StorageConfig("nosuch"))


@pytest.mark.parametrize("backend", ["memory", "sqlite", "postgresql"])
async def test_calls_before_open_fail(backend, tmp_path, request):
    s = open_storage(await storage_config(backend, tmp_path, request))
    with pytest.raises(StorageError):
        await s.get_account(ALICE)
    await s.open()
    await s.close()
    await s.close()  # idempotent
    with pytest.raises(StorageError):
        await s.count_accounts()


# accounts


async def test_create_and_get_account(store, creds):
    before = datetime.now(UTC)
    await store.create_account(ALICE, creds)
    account = await store.get_account(ALICE)
    assert account is not None
    assert account.jid == ALICE
    assert account.credentials == creds
    for name, keys in creds.items():
        got = account.credentials[name]
        assert type(got.salt) is bytes and got.salt == keys.salt
        assert type(got.stored_key) is bytes and got.stored_key == keys.stored_key
        assert type(got.server_key) is bytes and got.server_key == keys.server_key
        assert got.iterations == keys.iterations and got.hash_name == name
    assert account.disabled is False
    assert account.created is not None and account.created.tzinfo is not None
    assert before - timedelta(seconds=1) <= account.created <= datetime.now(UTC)
    assert account.last_login is None and account.last_logout is None
    assert account.last_status is None
    assert await store.get_account(BOB) is None


async def test_credentials_with_one_hash_and_binary_edge_bytes(store):
    keys = derive("pw", "SHA-256", ITERATIONS, salt=b"\x00\xff\x00'\"\n;--")
    await store.create_account(ALICE, {"SHA-256": keys})
    account = await store.get_account(ALICE)
    assert account.credentials == {"SHA-256": keys}


async def test_unstorable_credentials_are_refused(store, creds):
    with pytest.raises(ValueError):
        await store.create_account(ALICE, {"MD5": creds["SHA-1"]})
    with pytest.raises(ValueError):
        await store.create_account(ALICE, {"SHA-256": creds["SHA-1"]})
    assert await store.get_account(ALICE) is None


async def test_duplicate_account(store, creds):
    await store.create_account(ALICE, creds)
    with pytest.raises(AccountExists):
        await store.create_account(ALICE, derive_all("other", ITERATIONS))
    assert (await store.get_account(ALICE)).credentials == creds  # unchanged


async def test_returned_account_is_a_copy(store, creds):
    await store.create_account(ALICE, creds)
    account = await store.get_account(ALICE)
    account.credentials.clear()
    assert (await store.get_account(ALICE)).credentials == creds


async def test_set_credentials(store, creds):
    await store.create_account(ALICE, creds)
    new = derive_all("new-password", ITERATIONS)
    await store.set_credentials(ALICE, new)
    assert (await store.get_account(ALICE)).credentials == new
    with pytest.raises(NoSuchAccount):
        await store.set_credentials(BOB, new)


async def test_disable(store, creds):
    await store.create_account(ALICE, creds)
    await store.set_disabled(ALICE, True)
    assert (await store.get_account(ALICE)).disabled is True
    await store.set_disabled(ALICE, False)
    assert (await store.get_account(ALICE)).disabled is False
    with pytest.raises(NoSuchAccount):
        await store.set_disabled(BOB, True)


async def test_list_and_count_by_domain(store, creds):
    for jid in (BOB, CAROL, ALICE, "dave@example.org", "x@sub.example.org"):
        await store.create_account(jid, creds)
    assert await store.list_accounts() == sorted(
        [ALICE, BOB, CAROL, "dave@example.org", "x@sub.example.org"]
    )
    assert await store.list_accounts("example.org") == [ALICE, BOB, "dave@example.org"]
    assert await store.list_accounts("other.test") == [CAROL]
    assert await store.list_accounts("nowhere.test") == []
    assert await store.count_accounts() == 5
    assert await store.count_accounts("example.org") == 3
    assert await store.count_accounts("sub.example.org") == 1
    assert await store.count_accounts("nowhere.test") == 0


async def test_record_login_logout(store, creds):
    await store.create_account(ALICE, creds)
    login = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    await store.record_login(ALICE, login)
    account = await store.get_account(ALICE)
    assert account.last_login == login and account.last_logout is None
    plus_two = timezone(timedelta(hours=2))
    logout = datetime(2026, 1, 2, 5, 0, 0, tzinfo=plus_two)
    await store.record_logout(ALICE, logout, "gone fishing")
    account = await store.get_account(ALICE)
    assert account.last_logout == logout and account.last_logout.tzinfo == UTC
    assert account.last_status == "gone fishing"
    await store.record_logout(ALICE, datetime(2026, 1, 3), None)  # naive: taken as UTC
    account = await store.get_account(ALICE)
    assert account.last_logout == datetime(2026, 1, 3, tzinfo=UTC)
    assert account.last_status is None
    # an unknown account (deleted during the session) is a no-op
    await store.record_login(BOB, login)
    await store.record_logout(BOB, login, None)
    assert await store.get_account(BOB) is None


async def test_delete_account_cascades(store, creds):
    for jid in (ALICE, BOB):
        await store.create_account(jid, creds)
        await store.put_roster_item(jid, RosterItem(CAROL, "Carol", "both"))
        await store.add_pending_in(jid, CAROL, "<presence type='subscribe'/>")
        await store.store_offline(jid, "<message/>", datetime.now(UTC))
        await store.set_vcard(jid, "<vCard/>")
        await store.set_private(jid, "a:b", "<x/>")
    assert await store.delete_account(ALICE) is True
    assert await store.get_account(ALICE) is None
    assert await store.get_roster(ALICE) == []
    assert await store.get_pending_in(ALICE) == []
    assert await store.count_offline(ALICE) == 0
    assert await store.get_vcard(ALICE) is None
    assert await store.get_private(ALICE, "a:b") is None
    # recreating the account starts empty
    await store.create_account(ALICE, creds)
    assert await store.get_roster(ALICE) == []
    assert await store.pop_offline(ALICE) == []
    # bob is untouched
    assert len(await store.get_roster(BOB)) == 1
    assert len(await store.get_pending_in(BOB)) == 1
    assert await store.count_offline(BOB) == 1
    assert await store.get_vcard(BOB) == "<vCard/>"
    assert await store.get_private(BOB, "a:b") == "<x/>"
    assert await store.delete_account("nobody@example.org") is False


async def test_per_user_writes_need_an_account(store):
    now = datetime.now(UTC)
    with pytest.raises(NoSuchAccount):
        await store.put_roster_item(ALICE, RosterItem(BOB))
    with pytest.raises(NoSuchAccount):
        await store.add_pending_in(ALICE, BOB, "<presence/>")
    with pytest.raises(NoSuchAccount):
        await store.store_offline(ALICE, "<message/>", now)
    with pytest.raises(NoSuchAccount):
        await store.set_vcard(ALICE, "<vCard/>")
    with pytest.raises(NoSuchAccount):
        await store.set_private(ALICE, "k", "<x/>")
    # reads and deletes of absent things are quiet
    assert await store.get_roster(ALICE) == []
    assert await store.get_roster_item(ALICE, BOB) is None
    await store.delete_roster_item(ALICE, BOB)
    await store.remove_pending_in(ALICE, BOB)
    assert await store.count_offline(ALICE) == 0


# roster


async def test_roster_put_get_update_delete(store, creds):
    await store.create_account(ALICE, creds)
    assert await store.get_roster(ALICE) == []
    carol = RosterItem(CAROL, "Carol", "to", ask=False, approved=True, groups=("Work", "Ünï"))
    bob = RosterItem(BOB, None, "none", ask=True)
    await store.put_roster_item(ALICE, carol)
    await store.put_roster_item(ALICE, bob)
    assert await store.get_roster(ALICE) == [bob, carol]  # ordered by contact
    assert await store.get_roster_item(ALICE, CAROL) == carol
    assert (await store.get_roster_item(ALICE, CAROL)).groups == ("Work", "Ünï")
    assert await store.get_roster_item(ALICE, "zed@example.org") is None

    updated = dataclasses.replace(bob, name="Bobby", subscription="both", ask=False, groups=())
    await store.put_roster_item(ALICE, updated)
    assert await store.get_roster_item(ALICE, BOB) == updated
    assert len(await store.get_roster(ALICE)) == 2

    await store.delete_roster_item(ALICE, BOB)
    assert await store.get_roster(ALICE) == [carol]
    await store.delete_roster_item(ALICE, BOB)  # again: no-op


async def test_roster_groups_given_as_list_come_back_as_tuple(store, creds):
    await store.create_account(ALICE, creds)
    groups = ["Friends", "Family"]
    await store.put_roster_item(ALICE, RosterItem(BOB, groups=groups))  # type: ignore[arg-type]
    groups.append("Mutated")
    item = await store.get_roster_item(ALICE, BOB)
    assert item.groups == ("Friends", "Family")
    assert item.ask is False and item.approved is False


async def test_roster_rejects_bad_subscription(store, creds):
    await store.create_account(ALICE, creds)
    with pytest.raises(ValueError):
        await store.put_roster_item(ALICE, RosterItem(BOB, subscription="pending"))
    assert await store.get_roster(ALICE) == []


async def test_rosters_are_per_user(store, creds):
    await store.create_account(ALICE, creds)
    await store.create_account(BOB, creds)
    await store.put_roster_item(ALICE, RosterItem(CAROL, "A's Carol"))
    await store.put_roster_item(BOB, RosterItem(CAROL, "B's Carol"))
    assert (await store.get_roster_item(ALICE, CAROL)).name == "A's Carol"
    assert (await store.get_roster_item(BOB, CAROL)).name == "B's Carol"


# pending inbound subscriptions


async def test_pending_in(store, creds):
    await store.create_account(ALICE, creds)
    assert await store.get_pending_in(ALICE) == []
    await store.add_pending_in(ALICE, CAROL, "<presence from='carol' type='subscribe'/>")
    await store.add_pending_in(ALICE, BOB, "<presence from='bob' type='subscribe'/>")
    await store.add_pending_in(ALICE, CAROL, "<presence from='carol' type='subscribe'>2</presence>")
    assert await store.get_pending_in(ALICE) == [
        (CAROL, "<presence from='carol' type='subscribe'>2</presence>"),
        (BOB, "<presence from='bob' type='subscribe'/>"),
    ]
    await store.remove_pending_in(ALICE, CAROL)
    assert await store.get_pending_in(ALICE) == [(BOB, "<presence from='bob' type='subscribe'/>")]
    await store.remove_pending_in(ALICE, CAROL)  # no-op


# offline messages


async def test_offline_order_count_and_pop(store, creds):
    await store.create_account(ALICE, creds)
    await store.create_account(BOB, creds)
    base = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    # stamps deliberately out of order: arrival order wins
    stamps = [base + timedelta(seconds=s) for s in (5, 1, 3)]
    for i, stamp in enumerate(stamps):
        await store.store_offline(ALICE, f"<message id='{i}'>ü</message>", stamp)
    await store.store_offline(BOB, "<message id='bob'/>", base)
    assert await store.count_offline(ALICE) == 3
    popped = await store.pop_offline(ALICE)
    assert [m.xml for m in popped] == [f"<message id='{i}'>ü</message>" for i in range(3)]
    assert [m.stamp for m in popped] == stamps
    assert all(m.stamp.tzinfo is not None for m in popped)
    ids = [m.id for m in popped]
    assert ids == sorted(ids) and len(set(ids)) == 3
    assert await store.count_offline(ALICE) == 0
    assert await store.pop_offline(ALICE) == []
    assert await store.count_offline(BOB) == 1  # untouched
    await store.store_offline(ALICE, "<message id='later'/>", base)
    (later,) = await store.pop_offline(ALICE)
    assert later.id > max(ids)  # ids are never reused


async def test_offline_delete_removes_only_the_ids_given_for_that_account(store, creds):
    """Delivery reads (list_offline) and deletes what was delivered: the rest stays."""
    await store.create_account(ALICE, creds)
    await store.create_account(BOB, creds)
    now = datetime.now(UTC)
    for i in range(4):
        await store.store_offline(ALICE, f"<message id='{i}'/>", now)
    await store.store_offline(BOB, "<message id='bob'/>", now)
    held = await store.list_offline(ALICE)
    (bobs,) = await store.list_offline(BOB)
    assert await store.count_offline(ALICE) == 4  # reading deleted nothing
    # another account's id is ignored, as is an unknown one
    assert await store.delete_offline(ALICE, [held[0].id, held[2].id, bobs.id, 10**9]) == 2
    assert [m.xml for m in await store.list_offline(ALICE)] == [
        "<message id='1'/>",
        "<message id='3'/>",
    ]
    assert await store.count_offline(BOB) == 1
    assert await store.delete_offline(ALICE, [held[0].id]) == 0  # already gone
    assert await store.delete_offline(ALICE, []) == 0
    assert await store.delete_offline(ALICE, [held[1].id, held[3].id]) == 2
    assert await store.list_offline(ALICE) == []


async def test_hold_offline_stores_a_batch_in_order_without_quotas(store, creds):
    """Messages on their way to live sessions: one transaction, ids in order, all or none."""
    await store.create_account(ALICE, creds)
    await store.create_account(BOB, creds)
    now = datetime.now(UTC)
    await store.store_offline(ALICE, "<message id='before'/>", now)
    ids = await store.hold_offline(
        [(ALICE, "<message id='a1'/>", now), (BOB, "<message id='b1'/>", now)]
        + [(ALICE, f"<message id='a{i}'/>", now) for i in range(2, 1200)]  # past offline_quota
    )
    assert len(ids) == 1200 and ids == sorted(ids)
    held = await store.list_offline(ALICE)
    assert [m.id for m in held[1:]] == [ids[0], *ids[2:]]
    assert [m.xml for m in await store.list_offline(BOB)] == ["<message id='b1'/>"]
    with pytest.raises(NoSuchAccount):
        await store.hold_offline([(ALICE, "<message id='x'/>", now), (CAROL, "<m/>", now)])
    assert await store.count_offline(ALICE) == 1200  # none of the failed batch
    assert await store.hold_offline([]) == []


async def test_concurrent_writes_are_all_kept(store, creds):
    await store.create_account(ALICE, creds)
    now = datetime.now(UTC)
    await asyncio.gather(
        *(store.store_offline(ALICE, f"<message id='{i}'/>", now) for i in range(200)),
        *(store.put_roster_item(ALICE, RosterItem(f"c{i}@example.org")) for i in range(50)),
    )
    popped = await store.pop_offline(ALICE)
    assert sorted(m.xml for m in popped) == sorted(f"<message id='{i}'/>" for i in range(200))
    assert [m.id for m in popped] == sorted(m.id for m in popped)
    assert len(await store.get_roster(ALICE)) == 50


# quotas: checked inside the write, nothing written when over


async def test_roster_quota_counts_new_items_only(store, creds):
    await store.create_account(ALICE, creds)
    for i in range(3):
        await store.put_roster_item(ALICE, RosterItem(f"c{i}@example.org"), max_items=3)
    with pytest.raises(QuotaExceeded) as err:
        await store.put_roster_item(ALICE, RosterItem("c9@example.org"), max_items=3)
    assert (err.value.quota, err.value.limit) == ("items", 3)
    # an existing item may still change at the limit
    await store.put_roster_item(ALICE, RosterItem("c0@example.org", "Zero"), max_items=3)
    assert [i.name for i in await store.get_roster(ALICE)] == ["Zero", None, None]


async def test_offline_quotas_in_messages_and_utf8_bytes(store, creds):
    await store.create_account(ALICE, creds)
    now = datetime.now(UTC)
    ten = "<m>ééé</m>"  # 10 characters, 13 UTF-8 bytes
    await store.store_offline(ALICE, ten, now, max_count=2, max_bytes=26)
    await store.store_offline(ALICE, ten, now, max_count=2, max_bytes=26)
    with pytest.raises(QuotaExceeded) as err:
        await store.store_offline(ALICE, "<m/>", now, max_count=2)
    assert err.value.quota == "messages"
    with pytest.raises(QuotaExceeded) as err:
        await store.store_offline(ALICE, "<m/>", now, max_bytes=29)
    assert err.value.quota == "bytes"
    assert await store.count_offline(ALICE) == 2
    await store.store_offline(ALICE, "<m/>", now)  # no quota given: none applies


async def test_private_quota_counts_the_replacement_not_the_old_value(store, creds):
    await store.create_account(ALICE, creds)
    await store.set_private(ALICE, "a", "x" * 60, max_bytes=100)
    await store.set_private(ALICE, "a", "y" * 90, max_bytes=100)  # replaces: 90 in all
    with pytest.raises(QuotaExceeded):
        await store.set_private(ALICE, "b", "z" * 20, max_bytes=100)
    assert await store.get_private(ALICE, "b") is None
    await store.set_private(ALICE, "b", "z" * 10, max_bytes=100)


# vcard and private


async def test_vcard(store, creds):
    await store.create_account(ALICE, creds)
    assert await store.get_vcard(ALICE) is None
    await store.set_vcard(ALICE, "<vCard xmlns='vcard-temp'><FN>A</FN></vCard>")
    await store.set_vcard(ALICE, "<vCard xmlns='vcard-temp'><FN>Alice</FN></vCard>")
    assert await store.get_vcard(ALICE) == "<vCard xmlns='vcard-temp'><FN>Alice</FN></vCard>"


async def test_private(store, creds):
    await store.create_account(ALICE, creds)
    await store.create_account(BOB, creds)
    assert await store.get_private(ALICE, "storage:bookmarks") is None
    await store.set_private(ALICE, "storage:bookmarks", "<storage xmlns='storage:bookmarks'/>")
    await store.set_private(ALICE, "x:y", "<y xmlns='x:y'/>")
    await store.set_private(ALICE, "x:y", "<y xmlns='x:y'>2</y>")
    await store.set_private(BOB, "x:y", "<y xmlns='x:y'>bob</y>")
    assert await store.get_private(ALICE, "storage:bookmarks") == (
        "<storage xmlns='storage:bookmarks'/>"
    )
    assert await store.get_private(ALICE, "x:y") == "<y xmlns='x:y'>2</y>"
    assert await store.get_private(BOB, "x:y") == "<y xmlns='x:y'>bob</y>"
    assert await store.get_private(BOB, "storage:bookmarks") is None


# settings


async def test_settings(store):
    assert await store.get_setting("motd") is None
    await store.set_setting("motd", '"hello"')
    await store.set_setting("motd", '"hello again"')
    await store.set_setting("admins", '["a@b"]')
    assert await store.get_setting("motd") == '"hello again"'
    await store.set_setting("motd", None)
    assert await store.get_setting("motd") is None
    await store.set_setting("motd", None)  # deleting an absent key: no-op
    assert await store.get_setting("admins") == '["a@b"]'


async def test_size_bytes(store, creds):
    await store.create_account(ALICE, creds)
    size = await store.size_bytes()
    if isinstance(store, MemoryStorage):
        assert size == 0
    else:
        assert size > 0


# SQLite only


async def test_sqlite_survives_close_and_reopen(tmp_path, creds):
    path = tmp_path / "vines.sqlite"
    s = SQLiteStorage(path)
    await s.open()
    await s.create_account(ALICE, creds)
    await s.put_roster_item(ALICE, RosterItem(BOB, "Bob", "both", groups=("G",)))
    await s.add_pending_in(ALICE, CAROL, "<presence/>")
    await s.store_offline(ALICE, "<message/>", datetime(2026, 1, 1, tzinfo=UTC))
    await s.set_vcard(ALICE, "<vCard/>")
    await s.set_private(ALICE, "k", "<x/>")
    await s.set_setting("motd", '"hi"')
    await s.set_disabled(ALICE, True)
    await s.close()

    s = SQLiteStorage(path)
    await s.open()
    try:
        account = await s.get_account(ALICE)
        assert account.credentials == creds and account.disabled is True
        assert await s.get_roster(ALICE) == [RosterItem(BOB, "Bob", "both", groups=("G",))]
        assert await s.get_pending_in(ALICE) == [(CAROL, "<presence/>")]
        assert [m.xml for m in await s.pop_offline(ALICE)] == ["<message/>"]
        assert await s.get_vcard(ALICE) == "<vCard/>"
        assert await s.get_private(ALICE, "k") == "<x/>"
        assert await s.get_setting("motd") == '"hi"'
    finally:
        await s.close()


def _db_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


async def test_sqlite_holds_no_plaintext_password(tmp_path):
    password = "Tr0ub4dor&3-correct-horse-battery-staple"
    credentials = derive_all(password, ITERATIONS)
    path = tmp_path / "vines.sqlite"
    s = SQLiteStorage(path)
    await s.open()
    await s.create_account(ALICE, credentials)
    await s.set_credentials(ALICE, credentials)
    # while open: the write is in the WAL
    data = _db_bytes(path)
    assert credentials["SHA-256"].stored_key in data  # we are looking at the right bytes
    assert password.encode() not in data
    assert password.encode("utf-16-le") not in data
    await s.close()
    data = _db_bytes(path)
    assert credentials["SHA-1"].server_key in data
    assert password.encode() not in data
    assert password.encode("utf-16-le") not in data


async def test_sqlite_file_mode_is_0600(tmp_path, creds):
    path = tmp_path / "vines.sqlite"
    old_umask = os.umask(0o022)
    try:
        s = SQLiteStorage(path)
        await s.open()
        await s.create_account(ALICE, creds)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        wal = Path(f"{path}-wal")
        assert wal.exists() and stat.S_IMODE(wal.stat().st_mode) == 0o600
        await s.close()
    finally:
        os.umask(old_umask)


async def test_sqlite_pragmas_and_migrations(tmp_path):
    path = tmp_path / "vines.sqlite"
    s = SQLiteStorage(path)
    await s.open()
    await s.close()
    await s.open()  # reopening applies nothing new
    await s.close()

    conn = sqlite3.connect(path, isolation_level=None)
    try:
        assert user_version(conn) == SCHEMA_VERSION >= 1
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"accounts", "roster", "pending_in", "offline", "vcard", "private", "settings"} <= (
            tables
        )
        columns = {r[1] for r in conn.execute("PRAGMA table_info(accounts)")}
        assert not any("password" in c for c in columns)
        assert migrate(conn) == 0  # idempotent
        assert user_version(conn) == SCHEMA_VERSION
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()

    fresh = sqlite3.connect(tmp_path / "fresh.sqlite", isolation_level=None)
    try:
        assert migrate(fresh) == SCHEMA_VERSION
        assert migrate(fresh) == 0
    finally:
        fresh.close()


async def test_sqlite_connection_settings(tmp_path):
    s = SQLiteStorage(tmp_path / "vines.sqlite")
    await s.open()
    try:

        def pragmas():
            c = s._conn
            return [c.execute(f"PRAGMA {p}").fetchone()[0] for p in ("synchronous", "foreign_keys")]

        assert await s._run(pragmas) == [2, 1]  # FULL, ON
    finally:
        await s.close()


async def test_sqlite_refuses_newer_schema_and_garbage(tmp_path):
    newer = tmp_path / "newer.sqlite"
    conn = sqlite3.connect(newer)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StorageError, match="newer"):
        await SQLiteStorage(newer).open()

    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not a database, just some text " * 200)
    with pytest.raises(StorageError, match=r"garbage\.sqlite"):
        await SQLiteStorage(garbage).open()

    with pytest.raises(StorageError, match="directory"):
        await SQLiteStorage(tmp_path / "missing" / "vines.sqlite").open()


DURABILITY_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys, time
    from datetime import UTC, datetime
    from vines_server.config import StorageConfig
    from vines_server.storage import open_storage
    from vines_server.xmpp.sasl.credentials import derive_all

    async def main():
        backend, path, dsn, password_file = sys.argv[1:]
        s = open_storage(StorageConfig(backend, path, dsn or None, password_file or None))
        await s.open()
        await s.create_account("alice@example.org", derive_all("pw", 4096))
        await s.store_offline("alice@example.org", "<message id='m1'/>", datetime.now(UTC))
        print("done", flush=True)
        time.sleep(60)  # never closes: the test SIGKILLs us

    asyncio.run(main())
    """
)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_durable_after_sigkill(backend, tmp_path, request):
    """An acknowledged write (the coroutine returned) is there after the writer is SIGKILLed."""
    cfg = await storage_config(backend, tmp_path, request)
    fields = (cfg.backend, cfg.path, cfg.dsn or "", cfg.dsn_password_file or "")
    proc = subprocess.Popen(
        [sys.executable, "-c", DURABILITY_SCRIPT, *map(str, fields)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        _, err = proc.communicate(timeout=30)
    assert line.strip() == "done", err
    assert proc.returncode == -signal.SIGKILL

    s = open_storage(cfg)
    await s.open()
    try:
        assert await s.get_account(ALICE) is not None
        assert [m.xml for m in await s.pop_offline(ALICE)] == ["<message id='m1'/>"]
    finally:
        await s.close()
    if backend == "sqlite":
        conn = sqlite3.connect(cfg.path)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        finally:
            conn.close()


# backup


async def restored_copy(store: Storage, dest: Path, request) -> Storage:
    """The backup at `dest` as a store of the same backend, not yet opened: the SQLite file
    itself, or for PostgreSQL the dump restored by pg_restore into a new empty database."""
    if isinstance(store, SQLiteStorage):
        return SQLiteStorage(dest)
    pg = request.getfixturevalue("postgres")
    dsn = await pg.create_database()
    pg_restore = pg.bindir / "pg_restore"
    env = {**os.environ, "PGPASSWORD": pg_postgres.PASSWORD}
    subprocess.run(
        [pg_restore, "--no-owner", f"--dbname={dsn}", dest], check=True, env=env, timeout=60
    )
    return open_storage(StorageConfig("postgresql", dest, dsn, pg.password_file))


async def test_backup_copies_the_store_or_says_why_not(store, creds, tmp_path, request):
    await store.create_account(ALICE, creds)
    await store.put_roster_item(ALICE, RosterItem(BOB, name="Bob", subscription="both"))
    dest = tmp_path / "copy.sqlite"
    if isinstance(store, MemoryStorage):
        with pytest.raises(StorageError, match="nothing on disk"):
            await store.backup(dest)
        return
    size = await store.backup(dest)
    assert size == dest.stat().st_size and stat.S_IMODE(dest.stat().st_mode) == 0o600
    copy = await restored_copy(store, dest, request)
    await copy.open()
    try:
        assert await copy.list_accounts() == [ALICE]
        assert (await copy.get_account(ALICE)).credentials == creds
        assert await copy.get_roster(ALICE) == await store.get_roster(ALICE)
    finally:
        await copy.close()
    with pytest.raises(StorageError, match="cannot write"):
        await store.backup(tmp_path / "no" / "such" / "dir.sqlite")


# reading everything for export, and purging old offline messages


async def test_list_offline_and_private_read_without_removing(store, creds):
    await store.create_account(ALICE, creds)
    assert await store.list_offline(ALICE) == [] and await store.list_private(ALICE) == {}
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(3):
        await store.store_offline(ALICE, f"<message id='m{i}'/>", t0 + timedelta(days=i))
    listed = await store.list_offline(ALICE)
    assert [m.xml for m in listed] == [f"<message id='m{i}'/>" for i in range(3)]
    assert [m.stamp for m in listed] == [t0 + timedelta(days=i) for i in range(3)]
    assert await store.count_offline(ALICE) == 3  # nothing removed
    assert await store.pop_offline(ALICE) == listed
    await store.set_private(ALICE, "{b:ns}b", "<b xmlns='b:ns'/>")
    await store.set_private(ALICE, "{a:ns}a", "<a xmlns='a:ns'/>")
    private = await store.list_private(ALICE)
    assert list(private) == ["{a:ns}a", "{b:ns}b"] and private["{a:ns}a"] == "<a xmlns='a:ns'/>"
    private.clear()  # a copy
    assert len(await store.list_private(ALICE)) == 2
    assert await store.list_private(BOB) == {} and await store.list_offline(BOB) == []


async def test_purge_offline_removes_only_older_messages(store, creds):
    await store.create_account(ALICE, creds)
    await store.create_account(BOB, creds)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    await store.store_offline(ALICE, "<message id='old'/>", t0)
    await store.store_offline(ALICE, "<message id='new'/>", t0 + timedelta(days=40))
    await store.store_offline(BOB, "<message id='bob-old'/>", t0 + timedelta(seconds=1))
    cutoff = (t0 + timedelta(days=30)).astimezone(timezone(timedelta(hours=2)))  # any offset
    assert await store.purge_offline(cutoff) == 2
    assert [m.xml for m in await store.list_offline(ALICE)] == ["<message id='new'/>"]
    assert await store.count_offline(BOB) == 0
    assert await store.purge_offline(cutoff) == 0

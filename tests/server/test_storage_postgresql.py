"""The PostgreSQL backend beyond the contract suite (which runs on it too, SIGKILL durability
included): configuration, the password kept out of every message, migrations, synchronous
commits, quotas under concurrent writers, backup, and a server on it serving logins and
offline messages."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import slixmpp
from vines_server.config import ConfigError, StorageConfig, parse
from vines_server.storage import QuotaExceeded, StorageError, open_storage
from vines_server.storage import postgresql as pg_backend
from vines_server.xmpp.sasl.credentials import derive_all

from tests.support.postgres import PASSWORD, ROLE
from tests.support.xmpp import (
    DOMAIN,
    disconnect,
    running_server,
    slixmpp_client,
)
from tests.support.xmpp import (
    PASSWORD as XMPP_PASSWORD,
)

ALICE = "alice@example.org"


@pytest.fixture
async def dsn(postgres) -> str:
    return await postgres.create_database()


@pytest.fixture
async def store(postgres, dsn):
    s = open_storage(StorageConfig("postgresql", dsn=dsn, dsn_password_file=postgres.password_file))
    await s.open()
    yield s
    await s.close()


# configuration


def storage_section(**storage) -> dict:
    return {"domains": {"localhost": {"certificate": "c.pem", "key": "k.pem"}}, "storage": storage}


@pytest.mark.parametrize(
    ("storage", "message"),
    [
        ({"backend": "postgresql"}, "storage.dsn is required"),
        ({"backend": "mysql"}, "use one of sqlite, postgresql, memory"),
        ({"backend": "postgresql", "dsn": "mysql://h/db"}, "storage.dsn must be a URI"),
        ({"backend": "postgresql", "dsn": "postgresql://h:port/db"}, "invalid port"),
        ({"backend": "postgresql", "dsn": f"postgresql://v:{PASSWORD}@h/db"}, "no.*password"),
        ({"backend": "postgresql", "dsn": f"postgresql://h/db?password={PASSWORD}"}, "password"),
        ({"backend": "postgresql", "dsn": "postgresql://h/db", "dsnn": "x"}, "unknown key"),
    ],
)
def test_storage_config_errors_name_the_key_in_one_line(storage, message):
    with pytest.raises(ConfigError, match=message) as caught:
        parse(storage_section(**storage), Path("/etc/vines/vines.toml"))
    text = str(caught.value)
    assert "\n" not in text and "storage." in text and PASSWORD not in text


def test_storage_config_resolves_the_password_file_beside_the_config():
    cfg = parse(
        storage_section(
            backend="postgresql",
            dsn="postgresql://vines@127.0.0.1:5432/vines",
            dsn_password_file="vines.pgpass",
        ),
        Path("/etc/vines/vines.toml"),
    )
    assert cfg.storage.dsn == "postgresql://vines@127.0.0.1:5432/vines"
    assert cfg.storage.dsn_password_file == Path("/etc/vines/vines.pgpass")


def test_importing_the_server_does_not_load_the_driver():
    code = (
        "import sys, vines_server, vines_server.storage, vines_server.config, vines_server.main;"
        "print('asyncpg' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# the password never shows


async def test_password_never_in_errors_logs_or_repr(postgres, dsn, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)  # every logger, asyncpg's included
    wrong = tmp_path / "wrong"
    wrong.write_text("not-" + PASSWORD)
    bad = open_storage(StorageConfig("postgresql", dsn=dsn, dsn_password_file=wrong))
    with pytest.raises(StorageError, match="password authentication failed") as caught:
        await bad.open()
    good = open_storage(
        StorageConfig("postgresql", dsn=dsn, dsn_password_file=postgres.password_file)
    )
    await good.open()
    try:
        await good.create_account(ALICE, derive_all("pw", 4096))
        seen = [str(caught.value), repr(good), repr(bad), caplog.text]
    finally:
        await good.close()
    assert "\n" not in str(caught.value) and f"{ROLE}@127.0.0.1" in str(caught.value)
    for text in seen:
        assert PASSWORD not in text


async def test_password_from_pgpassfile(postgres, dsn, tmp_path, monkeypatch):
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"127.0.0.1:{postgres.port}:*:{ROLE}:{PASSWORD}\n")
    passfile.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(passfile))
    s = open_storage(StorageConfig("postgresql", dsn=dsn))
    await s.open()
    try:
        assert await s.count_accounts() == 0
    finally:
        await s.close()


async def test_unreadable_password_file_is_one_line_naming_the_key(dsn, tmp_path):
    s = open_storage(StorageConfig("postgresql", dsn=dsn, dsn_password_file=tmp_path / "nope"))
    with pytest.raises(StorageError, match=r"storage.dsn_password_file .*nope"):
        await s.open()


async def test_no_server_is_a_one_line_error_naming_the_database(tmp_path):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there once closed
    dsn = f"postgresql://{ROLE}@127.0.0.1:{port}/vines"
    s = open_storage(StorageConfig("postgresql", dsn=dsn))
    with pytest.raises(StorageError, match=f"cannot open database {dsn}") as caught:
        await s.open()
    assert "\n" not in str(caught.value)


# migrations and durability settings


async def test_migrations_are_recorded_once_and_a_newer_schema_is_refused(postgres, dsn, store):
    conn = await postgres.admin(database=dsn.rpartition("/")[2])
    try:
        versions = await conn.fetch("SELECT version FROM schema_version ORDER BY version")
        assert [v[0] for v in versions] == list(range(1, pg_backend.SCHEMA_VERSION + 1))
        again = open_storage(
            StorageConfig("postgresql", dsn=dsn, dsn_password_file=postgres.password_file)
        )
        await again.open()  # nothing left to run
        await again.close()
        assert await conn.fetchval("SELECT count(*) FROM schema_version") == len(versions)
        await conn.execute(
            "INSERT INTO schema_version (version) VALUES ($1)", pg_backend.SCHEMA_VERSION + 1
        )
        with pytest.raises(StorageError, match="newer than this server knows"):
            await again.open()
    finally:
        await conn.close()


async def test_commits_are_synchronous_even_when_the_role_says_otherwise(postgres, dsn):
    conn = await postgres.admin()
    try:
        await conn.execute(f"ALTER ROLE {ROLE} SET synchronous_commit = off")
        s = open_storage(
            StorageConfig("postgresql", dsn=dsn, dsn_password_file=postgres.password_file)
        )
        await s.open()
        try:
            async with s._connection(transaction=False) as c:
                assert await c.fetchval("SHOW synchronous_commit") == "on"
        finally:
            await s.close()
    finally:
        await conn.execute(f"ALTER ROLE {ROLE} RESET synchronous_commit")
        await conn.close()


# quotas across connections


async def test_offline_quota_holds_under_concurrent_writers(store):
    await store.create_account(ALICE, derive_all("pw", 4096))
    now = datetime.now(UTC)
    results = await asyncio.gather(
        *(store.store_offline(ALICE, f"<message id='m{i}'/>", now, max_count=5) for i in range(24)),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, QuotaExceeded)]
    assert len(refused) == 19 and results.count(None) == 5
    assert await store.count_offline(ALICE) == 5


async def test_backup_without_pg_dump_names_it(store, tmp_path, monkeypatch):
    monkeypatch.setattr(pg_backend, "_find_pg_dump", lambda: None)
    with pytest.raises(StorageError, match="needs pg_dump"):
        await store.backup(tmp_path / "copy.dump")
    assert not (tmp_path / "copy.dump").exists()


# a server on it, end to end


async def test_server_on_postgresql_logs_in_and_keeps_an_offline_message(
    postgres, dsn, pki, tmp_path
):
    storage = {"dsn": dsn, "dsn_password_file": str(postgres.password_file)}
    async with running_server(tmp_path, pki, "postgresql", storage=storage) as harness:
        assert isinstance(harness.server.storage, pg_backend.PostgreSQLStorage)
        alice, bob = await harness.add_user("alice"), await harness.add_user("bob")
        client = await slixmpp_client(harness, alice)
        try:
            client.send_message(mto=bob, mbody="kept in postgresql")
            await client.plugin["xep_0199"].ping(jid=DOMAIN, timeout=5)  # after the message
        finally:
            await disconnect(client)
        assert await harness.server.storage.count_offline(bob) == 1

        inbox: asyncio.Queue = asyncio.Queue()
        reader = slixmpp.ClientXMPP(bob, XMPP_PASSWORD)  # listening before it logs in
        reader.add_event_handler("message", inbox.put_nowait)
        reader.add_event_handler("session_start", lambda _: reader.send_presence())
        reader.ca_certs = str(harness.pki.ca_file)
        reader.enable_direct_tls = False
        reader.connect(host="127.0.0.1", port=harness.port())
        try:
            msg = await asyncio.wait_for(inbox.get(), 10)
            assert msg["body"] == "kept in postgresql" and msg["from"].bare == alice
            # delivered messages leave the store in grouped deletes, just after the write
            for _ in range(200):
                if await harness.server.storage.count_offline(bob) == 0:
                    break
                await asyncio.sleep(0.02)
            assert await harness.server.storage.count_offline(bob) == 0
        finally:
            await disconnect(reader)

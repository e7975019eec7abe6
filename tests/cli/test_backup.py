"""`vinesctl server backup` against a real server process while a client writes: the copy is a
consistent snapshot (it passes SQLite's integrity check, opens as a store, and holds a prefix of
the client's committed writes, nothing torn)."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import stat
import sys
from pathlib import Path

import pytest
from vines_server.storage import SQLiteStorage
from vines_server.storage.base import StorageError
from vines_server.storage.postgresql import archive_accounts

from tests.server.test_admin_process import Live, create_accounts, wait_for, write_config
from tests.support.postgres import PASSWORD as PG_PASSWORD
from tests.support.xmpp import DOMAIN, PASSWORD, disconnect, make_pki, slixmpp_client

CAROL = f"carol@{DOMAIN}"


async def vinesctl(*args: str, env: dict | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from vinesctl.cli import main; main()", *args,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, out.decode(), err.decode()


async def test_backup_while_a_client_writes(tmp_path):
    pki = make_pki(tmp_path / "pki")
    await create_accounts(tmp_path, PASSWORD, CAROL)
    config = write_config(tmp_path, pki)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "vines_server", "--config", str(config),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        state_file = tmp_path / "vines.state.json"
        await wait_for(state_file.exists)
        carol = await slixmpp_client(Live(pki, state_file), CAROL)
        written = 0
        backed_up = asyncio.Event()

        async def write() -> None:  # each roster set is committed before its result comes
            nonlocal written
            while not backed_up.is_set():
                await carol.update_roster(f"c{written:05d}@example.org", name=f"n{written}")
                written += 1

        writer = asyncio.ensure_future(write())
        await wait_for(lambda: written >= 5)
        dest = tmp_path / "backups"
        dest.mkdir()
        code, out, err = await vinesctl("server", "backup", "--config", str(config), str(dest),
                                        "--json")  # fmt: skip
        backed_up.set()
        await writer
        await disconnect(carol)
        assert code == 0, err
        data = json.loads(out)
        copy = dest / os.path.basename(data["backup"])
        assert data["accounts"] == 1 and data["bytes"] == copy.stat().st_size
        assert stat.S_IMODE(copy.stat().st_mode) == 0o600  # it holds password keys
        assert proc.returncode is None  # the server kept running
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 20)

    with sqlite3.connect(copy) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    store = SQLiteStorage(copy)
    await store.open()
    try:
        roster = [item.jid for item in await store.get_roster(CAROL)]
    finally:
        await store.close()
    # a snapshot: the first k writes, in order, with none missing between them
    assert 5 <= len(roster) <= written
    assert roster == [f"c{i:05d}@example.org" for i in range(len(roster))]


def test_backup_refuses_to_overwrite(run_cli, tmp_path):
    r = run_cli("server", "init", "--dir", str(tmp_path / "srv"))
    assert r.exit_code == 0, r.stderr
    config = str(tmp_path / "srv" / "vines.toml")
    target = tmp_path / "copy.sqlite"
    r = run_cli("server", "backup", "--config", config, str(target))
    assert r.exit_code == 0, r.stderr
    assert f"to {target}" in r.stdout
    r = run_cli("server", "backup", "--config", config, str(target))
    assert r.exit_code == 2 and "exists" in r.stderr and "--force" in r.stderr
    r = run_cli("server", "backup", "--config", config, str(target), "--force")
    assert r.exit_code == 0, r.stderr
    r = run_cli("server", "backup", "--config", config, str(tmp_path / "nodir" / "x.sqlite"))
    assert r.exit_code == 2 and "no directory" in r.stderr


def test_backup_of_a_postgresql_store(run_cli, tmp_path, postgres):
    """pg_dump's archive, named after the database in a directory DEST; what it holds is read
    back from it (pg_restore), and no password shows."""
    r = run_cli(
        "server", "init", "--dir", str(tmp_path / "srv"), env={"VINESCTL_NEW_PASSWORD": "a"}
    )
    assert r.exit_code == 0, r.stderr
    config = tmp_path / "srv" / "vines.toml"
    dsn = asyncio.run(postgres.create_database())
    text = config.read_text().replace(
        'backend = "sqlite"',
        f'backend = "postgresql"\ndsn = "{dsn}"\ndsn_password_file = "{postgres.password_file}"',
    )
    config.write_text(text)
    for local in ("alice", "bob"):
        r = run_cli(
            "user", "add", local, "--config", str(config), env={"VINESCTL_NEW_PASSWORD": "p"}
        )
        assert r.exit_code == 0, r.stderr
    dest = tmp_path / "backups"
    dest.mkdir()
    r = run_cli("server", "backup", "--config", str(config), str(dest), "--json")
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    copy = Path(data["backup"])
    assert copy.parent == dest and copy.name.startswith(dsn.rsplit("/", 1)[1] + "-")
    assert copy.suffix == ".pgdump" and stat.S_IMODE(copy.stat().st_mode) == 0o600
    assert data["accounts"] == 2 and data["bytes"] == copy.stat().st_size
    assert data["store"] == dsn and PG_PASSWORD not in r.stdout + r.stderr
    # a file that is no archive is refused, in one line
    bogus = tmp_path / "bogus.pgdump"
    bogus.write_text("not an archive\n")
    with pytest.raises(StorageError, match="not a readable pg_dump archive"):
        asyncio.run(archive_accounts(bogus))

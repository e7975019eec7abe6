"""`server purge-offline --older-than`, `user list --inactive` and `user delete --inactive
[--dry-run]` on a bundled server's store (local mode), times relative to now."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from vines_server.xmpp.sasl.credentials import derive_all

from tests.cli.test_server_cli import in_store, server_dir  # noqa: F401 (a fixture)
from tests.support.xmpp import TEST_ITERATIONS

ALICE, BOB, CAROL, ADMIN = "alice@localhost", "bob@localhost", "carol@localhost", "admin@localhost"


async def populate(storage) -> None:
    now = datetime.now(UTC)
    for jid in (ALICE, BOB, CAROL):
        await storage.create_account(jid, derive_all("pw", TEST_ITERATIONS))
    await storage.record_login(ALICE, now - timedelta(days=100))
    await storage.record_login(BOB, now - timedelta(days=1))
    # carol never logged in and was created now: not inactive
    await storage.store_offline(BOB, "<message id='old'/>", now - timedelta(days=40))
    await storage.store_offline(BOB, "<message id='new'/>", now - timedelta(days=2))
    await storage.store_offline(CAROL, "<message id='older'/>", now - timedelta(days=31))


def test_purge_offline(run_cli, server_dir):  # noqa: F811
    config = str(server_dir / "vines.toml")
    in_store(server_dir / "vines.toml", populate)
    r = run_cli("server", "purge-offline", "--config", config, "--older-than", "30d", "--json")
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["purged"] == 2
    cutoff = datetime.fromisoformat(data["before"])
    assert timedelta(days=30) - (datetime.now(UTC) - cutoff) < timedelta(minutes=5)
    left = in_store(server_dir / "vines.toml", lambda s: s.list_offline(BOB))
    assert [m.xml for m in left] == ["<message id='new'/>"]
    r = run_cli("server", "purge-offline", "--config", config, "--older-than", "30d")
    assert r.exit_code == 0 and r.stdout.startswith("purged 0 offline messages")
    r = run_cli("server", "purge-offline", "--config", config, "--older-than", "soon")
    assert r.exit_code == 2 and "not an age" in r.stderr


def test_inactive_accounts(run_cli, server_dir):  # noqa: F811
    config = str(server_dir / "vines.toml")
    in_store(server_dir / "vines.toml", populate)
    r = run_cli("user", "list", "--config", config, "--inactive", "90d", "--json")
    assert r.exit_code == 0, r.stderr
    assert [a["jid"] for a in json.loads(r.stdout)["accounts"]] == [ALICE]
    r = run_cli("user", "list", "--config", config, "--inactive", "12h", "--json")
    assert [a["jid"] for a in json.loads(r.stdout)["accounts"]] == [ALICE, BOB]

    r = run_cli("user", "delete", "--config", config, "--inactive", "90d", "--dry-run")
    assert r.exit_code == 0 and r.stdout == f"would delete {ALICE}\n"
    assert in_store(server_dir / "vines.toml", lambda s: s.get_account(ALICE)) is not None
    r = run_cli("user", "delete", "--config", config, "--inactive", "90d", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["deleted"] == [ALICE]
    accounts = in_store(server_dir / "vines.toml", lambda s: s.list_accounts())
    assert accounts == [ADMIN, BOB, CAROL]

    r = run_cli("user", "delete", "bob", "--config", config, "--inactive", "90d")
    assert r.exit_code == 2 and "not both" in r.stderr
    r = run_cli("user", "list", "--inactive", "90d")
    assert r.exit_code == 2 and "local mode" in r.stderr

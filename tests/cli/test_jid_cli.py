# ruff: noqa: RUF001  (look-alike characters are what these tests are about)
"""The console prepares every account name by RFC 7622, the server's own rule, in local mode
(--config) and remote mode alike, and reports the account it acted on in that form; a store
written under the old rule is migrated without merging accounts (issue 9)."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from vines_server.storage.migrations import MIGRATIONS

from tests.cli.conftest import LiveServer
from tests.cli.test_admin_remote import ENV, live, one_line
from tests.cli.test_server_cli import accounts, server_dir
from tests.support.xmpp import DOMAIN, PASSWORD, RawClient

__all__ = ["live", "server_dir"]  # fixtures shared with the neighbouring tests

NEW_PW = {"VINESCTL_NEW_PASSWORD": "pw"}

REFUSED = [
    ("😀", "U+1F600 GRINNING FACE"),
    ("bad'q", "U+0027 APOSTROPHE"),
    ("ﬁ", "U+FB01 LATIN SMALL LIGATURE FI"),
]


# ---- local mode (--config) ---------------------------------------------------------------


def test_local_add_list_delete_use_the_prepared_name(run_cli, server_dir):
    config = str(server_dir / "vines.toml")
    r = run_cli("user", "add", "ß", "--config", config, env=NEW_PW)
    assert (r.exit_code, r.stdout) == (0, "created ß@localhost\n"), r.stderr
    r = run_cli("user", "add", "STRASSE", "--config", config, env=NEW_PW)
    assert (r.exit_code, r.stdout) == (0, "created strasse@localhost\n"), r.stderr
    r = run_cli("user", "add", "ｊｏｅ", "--config", config, env=NEW_PW)
    assert (r.exit_code, r.stdout) == (0, "created joe@localhost\n"), r.stderr
    r = run_cli("user", "add", "Joe@LOCALHOST", "--config", config, env=NEW_PW)
    assert r.exit_code == 1 and "joe@localhost already exists" in r.stderr, r.stderr
    assert set(accounts(server_dir / "vines.toml")) == {
        "admin@localhost", "ß@localhost", "strasse@localhost", "joe@localhost",
    }  # fmt: skip

    r = run_cli("user", "list", "--config", config, "--json")
    jids = [row["jid"] for row in json.loads(r.stdout)["accounts"]]
    assert "ß@localhost" in jids and "ss@localhost" not in jids

    # straße is not strasse: deleting it must not touch the other account
    r = run_cli("user", "delete", "straße", "--config", config)
    assert r.exit_code == 1 and "no account straße@localhost" in r.stderr, r.stderr
    assert "strasse@localhost" in accounts(server_dir / "vines.toml")
    r = run_cli("user", "delete", "ｊｏｅ", "STRASSE", "--config", config)
    assert r.stdout == "deleted joe@localhost\ndeleted strasse@localhost\n", r.stderr


@pytest.mark.parametrize(("name", "named"), REFUSED)
def test_local_add_refuses_naming_the_character(run_cli, server_dir, name, named):
    config = str(server_dir / "vines.toml")
    r = run_cli("user", "add", name, "--config", config, env=NEW_PW)
    assert r.exit_code == 2 and named in r.stderr and one_line(r), r.stderr
    assert set(accounts(server_dir / "vines.toml")) == {"admin@localhost"}


# ---- remote mode -------------------------------------------------------------------------


def logs_in_as(live: LiveServer, user: str, password: str) -> str | None:
    """The bare JID the server binds for a PLAIN login as `user`, or None when refused.
    (A raw client: slixmpp prepares localparts with the old nodeprep, ß as ss.)"""

    async def attempt() -> str | None:
        client = await RawClient.connect(live.port, live.pki.ca_file)
        try:
            await client.starttls()
            await client.auth_plain(user, password)
            got = await client.read_until(rb"<success[^>]*/>|<success.*?</success>|</failure>")
            if b"<success" not in got:
                return None
            await client.open_stream()
            await client.send(
                "<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>"
            )
            bound = re.search(rb"<jid>([^</]+)/", await client.read_until(rb"</iq>"))
            return bound.group(1).decode() if bound else None
        finally:
            client.close()

    return live.call(attempt())


def test_remote_add_list_delete_use_the_prepared_name(live: LiveServer, run_cli: Any) -> None:
    r = run_cli("user", "add", "ß", env=ENV | {"VINESCTL_NEW_PASSWORD": "sharp"})
    assert (r.exit_code, r.stdout) == (0, f"created ß@{DOMAIN}\n"), r.stderr
    assert logs_in_as(live, "ß", "sharp") == f"ß@{DOMAIN}"
    assert logs_in_as(live, "ss", "sharp") is None

    live.add_user("strasse", PASSWORD)
    r = run_cli("user", "delete", "straße", env=ENV)
    assert r.exit_code == 1 and f"straße@{DOMAIN}" in r.stderr, r.stderr
    assert live.account(f"strasse@{DOMAIN}") is not None

    r = run_cli("user", "add", "ｊｏｅ", env=ENV | {"VINESCTL_NEW_PASSWORD": "joe"})
    assert (r.exit_code, r.stdout) == (0, f"created joe@{DOMAIN}\n"), r.stderr
    r = run_cli("user", "add", "JOE", env=ENV | {"VINESCTL_NEW_PASSWORD": "x"})
    assert r.exit_code == 1 and "exists" in r.stderr, r.stderr

    r = run_cli("user", "list", "--json", env=ENV)
    jids = [row["jid"] for row in json.loads(r.stdout)["accounts"]]
    assert f"ß@{DOMAIN}" in jids and f"joe@{DOMAIN}" in jids and f"ss@{DOMAIN}" not in jids

    r = run_cli("user", "disable", "ＪＯＥ", env=ENV)
    assert (r.exit_code, r.stdout) == (0, f"disabled joe@{DOMAIN}\n"), r.stderr
    r = run_cli("user", "delete", "ｊｏｅ", "STRASSE", env=ENV)
    assert r.stdout == f"deleted joe@{DOMAIN}\ndeleted strasse@{DOMAIN}\n", r.stderr


@pytest.mark.parametrize(("name", "named"), REFUSED)
def test_remote_add_refuses_naming_the_character(live, run_cli, name, named):
    r = run_cli("user", "add", name, env=ENV | NEW_PW)
    assert r.exit_code == 2 and named in r.stderr and one_line(r), r.stderr


# ---- a store written under the old rule ----------------------------------------------------


def legacy_store(path: Path) -> None:
    """A store at schema version 1, written as the old rule (NFC + casefold, no PRECIS) did:
    'straße' was stored as 'strasse', fullwidth letters and symbols were kept."""
    for stale in path.parent.glob(path.name + "*"):
        stale.unlink()
    conn = sqlite3.connect(path, isolation_level=None)
    MIGRATIONS[0](conn)
    conn.execute("PRAGMA user_version = 1")
    names = ["admin", "strasse", "ｊｏｅ", "ｍａｒｙ", "mary", "😀"]
    conn.executemany(
        "INSERT INTO accounts (jid, domain, created) VALUES (?, 'localhost', '2020-01-01')",
        [(f"{n}@localhost",) for n in names],
    )
    conn.execute("INSERT INTO roster (user, contact) VALUES ('ｊｏｅ@localhost', 'mary@localhost')")
    conn.execute("INSERT INTO roster (user, contact) VALUES ('mary@localhost', 'ｊｏｅ@localhost')")
    conn.execute("INSERT INTO vcard (user, xml) VALUES ('ｊｏｅ@localhost', '<vCard/>')")
    conn.close()


def test_migration_renames_what_it_can_and_never_merges(run_cli, server_dir):
    config = str(server_dir / "vines.toml")
    legacy_store(server_dir / "vines.sqlite")

    r = run_cli("user", "jid-changes", "--config", config, "--json")
    assert r.exit_code == 0, r.stderr
    changes = {c["old"]: (c["new"], c["status"]) for c in json.loads(r.stdout)["changes"]}
    assert changes == {
        "ｊｏｅ@localhost": ("joe@localhost", "renamed"),
        "ｍａｒｙ@localhost": ("mary@localhost", "conflict"),  # mary exists: kept apart
        "😀@localhost": (None, "invalid"),
    }
    stored = accounts(server_dir / "vines.toml")
    assert set(stored) == {
        "admin@localhost", "strasse@localhost", "joe@localhost", "ｍａｒｙ@localhost",
        "mary@localhost", "😀@localhost",
    }  # fmt: skip
    conn = sqlite3.connect(server_dir / "vines.sqlite")
    rosters = set(conn.execute("SELECT user, contact FROM roster"))
    assert rosters == {("joe@localhost", "mary@localhost"), ("mary@localhost", "joe@localhost")}
    assert conn.execute("SELECT user FROM vcard").fetchall() == [("joe@localhost",)]
    conn.close()

    r = run_cli("user", "jid-changes", "--config", config)
    assert "renamed ｊｏｅ@localhost -> joe@localhost" in r.stdout
    assert "conflict ｍａｒｙ@localhost" in r.stdout and "invalid 😀@localhost" in r.stdout
    # the renamed account answers to both spellings, by the one rule
    r = run_cli("user", "delete", "ｊｏｅ", "--config", config)
    assert r.stdout == "deleted joe@localhost\n", r.stderr

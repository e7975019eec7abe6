"""No self-lockout: what an administrator used to prosodyctl/ejabberdctl expects when the only
admin account is at stake, when a login is refused (a disabled account, a banned address), and
how to recover (local enable/disable/show, unban, the profile's password)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from tests.cli import test_admin_remote
from tests.cli.conftest import LiveServer
from tests.cli.test_admin_remote import ADMIN, ENV, can_log_in, one_line
from tests.support.xmpp import DOMAIN, PASSWORD, make_pki

live = test_admin_remote.live  # the fixture: admin, alice and a profile logging in as admin

CAROL = f"carol@{DOMAIN}"


def add_profile(run_cli: Any, name: str, port: int, ca: Path, *extra: str) -> None:
    r = run_cli("profile", "add", name, "--jid", ADMIN, "--server", f"127.0.0.1:{port}",
                "--ca", str(ca), *extra)  # fmt: skip
    assert r.exit_code == 0, r.stderr


def write_toml(live: LiveServer) -> str:
    """A vines.toml of the live server (same store) for local mode."""
    cfg = live.server.config
    path = live.server.config.path
    raw = {
        "server": {"admins": list(cfg.admins)},
        "domains": {
            name: {"certificate": str(d.certificate), "key": str(d.key)}
            for name, d in cfg.domains.items()
        },
        "storage": {"path": str(cfg.storage.path)},
    }
    path.write_text(tomli_w.dumps(raw))
    return str(path)


# ---- disable and delete ------------------------------------------------------------------------


def test_the_own_account_is_not_disabled_or_deleted_without_force(live, run_cli) -> None:
    for verb in ("disable", "delete"):
        r = run_cli("user", verb, "admin", env=ENV)
        assert r.exit_code == 2 and one_line(r), r.stderr
        assert "account this command runs as" in r.stderr and "--force" in r.stderr
        assert not live.account(ADMIN).disabled
    r = run_cli("user", "disable", "alice", env=ENV)  # anybody else: as before
    assert r.exit_code == 0, r.stderr

    r = run_cli("user", "disable", "admin", "--force", env=ENV)
    assert r.exit_code == 0 and r.stdout == f"disabled {ADMIN}\n", r.stderr
    assert live.account(ADMIN).disabled

    # the console now says why it cannot log in, and how to recover
    r = run_cli("user", "list", env=ENV)
    assert r.exit_code == 1 and one_line(r), r.stderr
    assert f"the account {ADMIN} is disabled" in r.stderr and "user enable" in r.stderr

    # recovery on the server's machine: local mode, the server still running
    config = write_toml(live)
    r = run_cli("user", "show", "admin", "--config", config, "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["disabled"] is True
    r = run_cli("user", "enable", "admin", "--config", config)
    assert r.exit_code == 0 and r.stdout == f"enabled {ADMIN}\n", r.stderr
    assert can_log_in(live, ADMIN, PASSWORD)
    r = run_cli("user", "list", env=ENV)
    assert r.exit_code == 0, r.stderr


def test_local_mode_keeps_the_last_admin(live, run_cli) -> None:
    config = write_toml(live)
    r = run_cli("profile", "remove", "vines")  # nobody runs as an account in local mode now
    assert r.exit_code == 0, r.stderr
    for verb in ("disable", "delete"):
        r = run_cli("user", verb, "admin", "--config", config)
        assert r.exit_code == 2 and one_line(r), r.stderr
        assert f"no enabled administrator of {DOMAIN} would be left" in r.stderr
        assert "admins add" in r.stderr
    assert live.account(ADMIN) is not None and not live.account(ADMIN).disabled

    r = run_cli("user", "disable", "alice", "--config", config)
    assert r.exit_code == 0 and r.stdout == f"disabled alice@{DOMAIN}\n", r.stderr
    r = run_cli("user", "show", "alice", "--config", config)
    assert r.exit_code == 0 and "disabled" in r.stdout and "yes" in r.stdout
    assert not can_log_in(live, f"alice@{DOMAIN}", PASSWORD)
    r = run_cli("user", "enable", "alice", "ghost", "--config", config)
    assert r.exit_code == 1 and "no account ghost@vines.test" in r.stderr and one_line(r)
    assert live.account(f"alice@{DOMAIN}").disabled  # nothing changed: one was missing

    # a second admin (stored with edit-admin): the first may go
    live.add_user("carol", PASSWORD)
    add_profile(run_cli, "vines", live.port, live.pki.ca_file)
    r = run_cli("admins", "add", "carol", env=ENV)
    assert r.exit_code == 0, r.stderr
    r = run_cli("profile", "remove", "vines")
    r = run_cli("user", "disable", "admin", "--config", config)
    assert r.exit_code == 0, r.stderr


# ---- the profile's own password ----------------------------------------------------------------


def test_passwd_of_the_own_account_updates_the_profile(live, run_cli, tmp_path) -> None:
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD)
    add_profile(run_cli, "own", live.port, live.pki.ca_file, "--password-file", str(secret))

    new = {"VINESCTL_NEW_PASSWORD": "second one"}
    r = run_cli("--profile", "own", "user", "passwd", "admin", env=new)  # no terminal, no flag
    assert r.exit_code == 0, r.stderr
    assert "still holds the old password" in r.stderr and "--update-profile" in r.stderr
    r = run_cli("--profile", "own", "user", "list")
    assert r.exit_code == 1 and "authentication failed" in r.stderr

    env = {"VINESCTL_PASSWORD": "second one", "VINESCTL_NEW_PASSWORD": "third"}
    r = run_cli("--profile", "own", "user", "passwd", "admin", "--update-profile", env=env)
    assert r.exit_code == 0 and "profile 'own' updated" in r.stdout, r.stderr
    r = run_cli("--profile", "own", "user", "list")  # the stored password works again
    assert r.exit_code == 0, r.stderr


# ---- bans --------------------------------------------------------------------------------------


@pytest.fixture
def strict(tmp_path: Path, run_cli: Any):
    """A server that bans 127.0.0.1 after one failed login (no exemption)."""
    pki = make_pki(tmp_path / "pki")
    server = LiveServer(
        tmp_path / "strict",
        pki,
        server={"admins": [ADMIN]},
        limits={"auth_failures_per_ip": 1, "ban_exempt": []},
    )
    try:
        server.add_user("admin", PASSWORD)
        add_profile(run_cli, "vines", server.port, pki.ca_file)
        yield server
    finally:
        server.stop()


def test_a_ban_shows_the_servers_words(strict, run_cli) -> None:
    r = run_cli("user", "list", env={"VINESCTL_PASSWORD": "wrong"})
    assert r.exit_code == 1 and "authentication failed" in r.stderr, r.stderr
    r = run_cli("user", "list", env=ENV)
    assert r.exit_code == 1 and one_line(r), r.stderr
    assert "policy-violation: too many failed authentications from 127.0.0.1" in r.stderr
    assert "retry after" in r.stderr and "vinesctl unban" in r.stderr


def test_unban(live, run_cli) -> None:
    live.call(_ban(live, "127.0.0.3"))
    assert "127.0.0.3" in live.server.bans()
    r = run_cli("unban", "127.0.0.3", env=ENV)
    assert r.exit_code == 0 and r.stdout == "127.0.0.3 unbanned\n", r.stderr
    assert live.server.bans() == {}
    r = run_cli("unban", "127.0.0.3", env=ENV)
    assert r.exit_code == 1 and "127.0.0.3 is not banned" in r.stderr and one_line(r)
    r = run_cli("unban", "not-an-ip", env=ENV)
    assert r.exit_code == 2 and "is not an IP address" in r.stderr and one_line(r)


async def _ban(live: LiveServer, source: str) -> None:
    from tests.server.test_hostile import fail_logins

    limit = live.server.config.limits.auth_failures_per_ip
    await fail_logins(live.harness, source, limit)

"""Honest answers from the administration commands: an unknown or foreign account, a list entry
that is not there or that the server keeps, a stanza the server refuses as too big, a
third-party client's max_items (each against a live bundled server through CliRunner)."""

from __future__ import annotations

import json

from tests.cli import test_admin_remote
from tests.cli.test_admin_remote import ADMIN, ENV, one_line
from tests.support.xmpp import DOMAIN, OTHER

live = test_admin_remote.live  # the fixture: admin, alice and a profile logging in as admin


def test_admins_add_takes_only_existing_accounts_of_the_domain(live, run_cli) -> None:
    r = run_cli("admins", "add", "ghost", env=ENV)
    assert r.exit_code == 1 and one_line(r), r.stderr
    assert f"ghost@{DOMAIN} has no account: create it first" in r.stderr
    r = run_cli("admins", "add", f"boss@{OTHER}", env=ENV)  # remote: refused before sending
    assert r.exit_code == 2 and one_line(r), r.stderr
    assert f"boss@{OTHER} is not on {DOMAIN}" in r.stderr
    r = run_cli("admins", "--json", env=ENV)
    assert json.loads(r.stdout)["jids"] == [ADMIN]


def test_admins_remove_says_when_nothing_changes(live, run_cli) -> None:
    r = run_cli("admins", "remove", "alice", env=ENV)  # alice is no admin
    assert r.exit_code == 1 and one_line(r), r.stderr
    assert f"alice@{DOMAIN} is not on the admins list" in r.stderr
    r = run_cli("admins", "remove", "admin", env=ENV)  # set in vines.toml: kept
    assert r.exit_code == 1 and one_line(r), r.stderr
    assert f"{ADMIN} still on the admins list" in r.stderr and "vines.toml" in r.stderr


def test_allowlist_remove_reports_exactly_what_was_not_removed(live, run_cli) -> None:
    r = run_cli("allowlist", "add", "a.example", "c.example", env=ENV)
    assert r.exit_code == 0, r.stderr
    r = run_cli("allowlist", "remove", "a.example", "b.example", "c.example", env=ENV)
    assert r.exit_code == 1 and one_line(r), r.stderr
    assert "nothing removed: b.example is not on the allowlist list" in r.stderr
    assert "(a.example, c.example still on it)" in r.stderr
    r = run_cli("allowlist", "--json", env=ENV)
    assert json.loads(r.stdout)["jids"] == ["a.example", "c.example"]
    r = run_cli("allowlist", "remove", "a.example", "not a domain!!", env=ENV)
    assert r.exit_code == 2 and "'not a domain!!' is not a valid domain" in r.stderr and one_line(r)
    r = run_cli("allowlist", "add", "joe@b.example", env=ENV)  # the help says: domains
    assert r.exit_code == 2 and "is a JID" in r.stderr and "b.example" in r.stderr
    r = run_cli("allowlist", "--help")
    assert "JID" not in r.stdout


def test_kick_and_add_name_the_real_cause(live, run_cli) -> None:
    r = run_cli("user", "kick", "nobody", env=ENV)
    assert r.exit_code == 1 and f"no such account: nobody@{DOMAIN}" in r.stderr
    r = run_cli("user", "add", "joe@elsewhere.example", env=ENV | {"VINESCTL_NEW_PASSWORD": "x"})
    assert r.exit_code != 0 and one_line(r), r.stderr
    assert "not an administrator" not in r.stderr
    assert f"joe@elsewhere.example is not on {DOMAIN}" in r.stderr


def test_an_announcement_too_big_reports_the_servers_stream_error(live, run_cli) -> None:
    """300 KB is over the server's stanza_size (256 KiB): it closes the stream with
    policy-violation 'stanza too big', and the console says so instead of timing out."""
    r = run_cli("announce", "-", "--timeout", "120", input="x" * 300_000 + "\n", env=ENV)
    assert r.exit_code == 1 and one_line(r), r.stderr
    assert "stanza too big" in r.stderr and "timed out" not in r.stderr


def test_max_items_outside_the_options_means_no_limit(live, run_cli) -> None:
    """What a third-party admin client sends (Prosody and ejabberd list everyone for it)."""
    node = "http://jabber.org/protocol/admin#get-registered-users-list"
    r = run_cli("adhoc", "run", node, "--set", "max_items=all", "--json", env=ENV)
    assert r.exit_code == 0, r.stderr
    assert f"alice@{DOMAIN}" in r.stdout and ADMIN in r.stdout
    r = run_cli("adhoc", "run", node, "--set", "max_items=-1", env=ENV)
    assert r.exit_code == 1 and "max_items" in r.stderr and one_line(r), r.stderr

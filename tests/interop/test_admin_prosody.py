"""The console's administration commands against a real Prosody (mod_admin_adhoc, mod_announce),
for the XEP-0133 nodes Prosody offers: add-user, change-user-password, delete-user,
end-user-session, get-online-users-list, user-stats, get-user-roster, announce; and the generic
`adhoc list/run`. What Prosody lacks is reported as such, with the fix."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest

from tests.interop.conftest import _missing
from tests.support.prosody import ProsodyInstance, prosody_available

pytestmark = pytest.mark.interop

ADMIN_PW = "prosody admin pass phrase"
USER_PW = "prosody user pass phrase"


@pytest.fixture
def prosody_admin(tmp_path: Path, run_cli: Any) -> Iterator[ProsodyInstance]:
    """Prosody with mod_announce, an admin account and a default profile pointing at it."""
    reason = prosody_available()
    if reason:
        _missing(reason)
    instance = ProsodyInstance(tmp_path, modules=("announce",))
    instance.start()
    try:
        instance.register("admin", ADMIN_PW)
        instance.register("bob", USER_PW)
        r = run_cli(
            "profile", "add", "prosody", "--jid", f"admin@{instance.domain}",
            "--server", f"{instance.host}:{instance.port}", "--ca", str(instance.ca_file),
        )  # fmt: skip
        assert r.exit_code == 0, r.stderr
        yield instance
    finally:
        instance.stop()


def login_ok(prosody: ProsodyInstance, user: str, password: str) -> bool:
    import slixmpp

    async def attempt() -> bool:
        client = slixmpp.ClientXMPP(f"{user}@{prosody.domain}", password)
        client.ca_certs = str(prosody.ca_file)
        client.enable_direct_tls = False
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        client.add_event_handler("session_start", lambda _e: done.done() or done.set_result(True))
        client.add_event_handler("failed_auth", lambda _e: done.done() or done.set_result(False))
        client.connect(host=prosody.host, port=prosody.port)
        try:
            return await asyncio.wait_for(done, 15)
        finally:
            client.disconnect()
            with suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(client.disconnected, 5)

    return asyncio.run(attempt())


ENV = {"VINESCTL_PASSWORD": ADMIN_PW}


def test_user_lifecycle_on_prosody(prosody_admin: ProsodyInstance, run_cli: Any) -> None:
    p = prosody_admin
    r = run_cli("user", "add", "carol", env=ENV | {"VINESCTL_NEW_PASSWORD": "carol pw 1"})
    assert r.exit_code == 0, r.stderr
    assert r.stdout == f"created carol@{p.domain}\n"
    assert login_ok(p, "carol", "carol pw 1")

    r = run_cli("user", "add", "carol", env=ENV | {"VINESCTL_NEW_PASSWORD": "x"})
    assert r.exit_code == 1 and "already exists" in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1

    r = run_cli("user", "passwd", f"carol@{p.domain}", "--password-file", "-",
                input="carol pw 2\n", env=ENV)  # fmt: skip
    assert r.exit_code == 0, r.stderr
    assert login_ok(p, "carol", "carol pw 2") and not login_ok(p, "carol", "carol pw 1")

    r = run_cli("user", "show", "admin", "--json", env=ENV)
    assert r.exit_code == 0, r.stderr
    shown = json.loads(r.stdout)
    assert shown["jid"] == f"admin@{p.domain}" and shown["onlineresources"]  # our own session
    assert shown["roster"] == []

    r = run_cli("user", "kick", "bob", env=ENV)
    assert r.exit_code == 0 and r.stdout == f"kicked bob@{p.domain}\n", r.stderr

    r = run_cli("user", "delete", "carol", env=ENV)
    assert r.exit_code == 0 and r.stdout == f"deleted carol@{p.domain}\n", r.stderr
    assert not login_ok(p, "carol", "carol pw 2")
    r = run_cli("user", "delete", "carol", env=ENV)  # gone: Prosody's note says it failed
    assert r.exit_code == 1 and f"carol@{p.domain}" in r.stderr and r.stdout == "", r.stderr


def test_online_announce_and_adhoc_on_prosody(prosody_admin: ProsodyInstance, run_cli) -> None:
    p = prosody_admin
    r = run_cli("online", "--json", env=ENV)
    assert r.exit_code == 0, r.stderr
    assert [u["jid"] for u in json.loads(r.stdout)["users"]] == [f"admin@{p.domain}"]  # ourselves
    r = run_cli("online", "--details", "--json", env=ENV)
    assert r.exit_code == 0, r.stderr
    (me,) = json.loads(r.stdout)["users"]
    assert me["sessions"] and "127.0.0.1" in me["sessions"][0]["text"]  # Prosody's prose

    r = run_cli("announce", "--subject", "maintenance", "back in 5 minutes", env=ENV)
    assert r.exit_code == 0, r.stderr
    assert "Announcement sent" in r.stdout

    r = run_cli("adhoc", "list", "--json", env=ENV)
    assert r.exit_code == 0, r.stderr
    nodes = {c["node"] for c in json.loads(r.stdout)["commands"]}
    assert "http://jabber.org/protocol/admin#add-user" in nodes

    # the generic runner, non-interactively, on Prosody's own (non-XEP) node
    r = run_cli("adhoc", "run", "uptime", "--json", env=ENV)
    assert r.exit_code == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["status"] == "completed" and "running" in result["notes"][0]["text"].lower()

    r = run_cli("adhoc", "run", "http://jabber.org/protocol/admin#get-online-users-list",
                "--set", "max_items=25", "--json", env=ENV)  # fmt: skip
    assert r.exit_code == 0, r.stderr
    form = json.loads(r.stdout)["form"]
    values = {f["var"]: f["values"] for f in form["fields"]}
    assert f"admin@{p.domain}" in "\n".join(values["onlineuserjids"])

    r = run_cli("adhoc", "run", "http://jabber.org/protocol/admin#add-user", "--json", env=ENV)
    assert r.exit_code == 2 and "accountjid" in r.stderr and "--set" in r.stderr


def test_what_prosody_lacks_and_who_may_not(prosody_admin: ProsodyInstance, run_cli) -> None:
    p = prosody_admin
    r = run_cli("motd", "set", "hello", env=ENV)
    assert r.exit_code == 1
    assert f"{p.domain} does not offer the command set-motd" in r.stderr
    assert "vinesctl adhoc list" in r.stderr and r.stderr.count("\n") == 1
    r = run_cli("user", "list", env=ENV)  # Prosody 0.12 has no get-registered-users-list
    assert r.exit_code == 1 and "get-registered-users-list" in r.stderr
    r = run_cli("stats", "--json", env=ENV)  # no statistics node: the online count it can give
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["counts"] == {"online": 1}

    # bob is no administrator: refused, nothing created
    env = {"VINESCTL_JID": f"bob@{p.domain}", "VINESCTL_PASSWORD": USER_PW,
           "VINESCTL_NEW_PASSWORD": "dave pw"}  # fmt: skip
    r = run_cli("user", "add", "dave", env=env)
    assert r.exit_code == 1
    assert f"forbidden: bob@{p.domain} is not an administrator of {p.domain}" in r.stderr
    assert not (p.data_dir / "prosody%2etest" / "accounts" / "dave.dat").exists()

    r = run_cli("online", env={"VINESCTL_PASSWORD": "wrong"})
    assert r.exit_code == 1 and "authentication failed" in r.stderr

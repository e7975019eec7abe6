"""`--json` of every command against a live bundled server: one object per command, numbers
as numbers, absent values as null, times in ISO 8601, and a failure as an `{"error": ...}`
object on stdout with the same exit code as without --json (the shapes are in the README)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from vines_server.storage.base import RosterItem

from tests.cli import test_admin_remote
from tests.cli.conftest import LiveServer
from tests.cli.test_admin_remote import ADMIN, ENV, Client
from tests.support.xmpp import DOMAIN, PASSWORD

live = test_admin_remote.live  # the fixture: the server, its accounts and an admin profile


def as_json(run_cli: Any, *args: str, code: int = 0, **kw: Any) -> Any:
    r = run_cli(*args, "--json", **kw)
    assert r.exit_code == code, (args, r.stderr)
    data = json.loads(r.stdout)
    assert isinstance(data, dict), args  # one object, never a bare list
    return data


def iso(text: Any) -> datetime:
    assert isinstance(text, str)
    return datetime.fromisoformat(text)


def test_json_types_of_each_command(live: LiveServer, run_cli: Any) -> None:
    bob = live.add_user("bob", PASSWORD)
    session = Client(live, bob)
    try:
        accounts = as_json(run_cli, "user", "list", env=ENV)["accounts"]
        assert {a["jid"] for a in accounts} == {ADMIN, f"alice@{DOMAIN}", bob}
        for a in accounts:
            assert isinstance(a["online"], bool) and isinstance(a["disabled"], bool)

        shown = as_json(run_cli, "user", "show", "bob", env=ENV)
        assert shown["jid"] == bob and shown["disabled"] is False
        assert isinstance(shown["rostersize"], int) and shown["roster"] == []
        iso(shown["lastlogin"])
        # the server does not give these: null, not ""
        assert shown["stanzaspersecond"] is None and shown["loginsperminute"] is None
        never = as_json(run_cli, "user", "show", "alice", env=ENV)
        assert never["onlineresources"] == [] and never["lastlogin"] is None
        contact = RosterItem(bob, subscription="both", groups=("friends",))  # no name
        live.call(live.server.storage.put_roster_item(f"alice@{DOMAIN}", contact))
        (item,) = as_json(run_cli, "user", "show", "alice", env=ENV)["roster"]
        assert item == {"jid": bob, "name": None, "subscription": "both", "groups": ["friends"]}

        users = as_json(run_cli, "online", env=ENV)["users"]
        assert {u["jid"] for u in users} == {ADMIN, bob}
        assert all(u["sessions"] is None for u in users)
        users = as_json(run_cli, "online", "--details", env=ENV)["users"]
        (mine,) = {u["jid"]: u for u in users}[bob]["sessions"]
        assert isinstance(mine["priority"], int) and mine["ip"] == "127.0.0.1"
        iso(mine["since"])

        sessions = as_json(run_cli, "sessions", env=ENV)["sessions"]
        row = next(s for s in sessions if s["jid"].startswith(f"{bob}/"))
        assert row["tls_version"].startswith("TLS") and row["mechanism"].startswith("SCRAM")
        iso(row["since"])

        stats = as_json(run_cli, "stats", env=ENV)
        values = {v["var"]: v["value"] for v in stats["values"]}
        for var in ("uptime", "connections", "accounts", "memory_rss", "store_size"):
            assert isinstance(values[var], int) and not isinstance(values[var], bool), var
        assert isinstance(values["stanzas_in_per_second"], int | float)
        assert all(isinstance(n, int) for n in stats["counts"].values())

        load = as_json(run_cli, "load", env=ENV)
        assert isinstance(load["online"], int) and isinstance(load["cpu"], float)
        assert load["status"] is None  # the server set no presence text

        presence = as_json(run_cli, "presence", env=ENV)["sessions"]
        (bobs,) = [p for p in presence if p["jid"].startswith(f"{bob}/")]
        assert bobs["status"] is None and isinstance(bobs["priority"], int)
        iso(bobs["time"])
    finally:
        session.close()

    assert as_json(run_cli, "motd", "show", env=ENV) == {"motd": None}
    assert as_json(run_cli, "welcome", "show", env=ENV) == {"welcome": None}
    assert run_cli("welcome", "set", "hello there", env=ENV).exit_code == 0
    assert as_json(run_cli, "welcome", "show", env=ENV) == {"welcome": "hello there"}
    r = run_cli("welcome", "show", env=ENV)
    assert r.exit_code == 0 and r.stdout == "hello there\n"
    assert as_json(run_cli, "admins", env=ENV) == {"list": "admins", "jids": [ADMIN]}
    commands = as_json(run_cli, "adhoc", "list", env=ENV)["commands"]
    assert any(c["node"].endswith("#add-user") for c in commands)
    (profile,) = as_json(run_cli, "profile", "list")["profiles"]
    assert profile["default"] is True


def test_errors_are_json_objects_with_the_same_exit_code(live: LiveServer, run_cli: Any) -> None:
    plain = run_cli("user", "show", "nobody", env=ENV)
    r = run_cli("user", "show", "nobody", "--json", env=ENV)
    assert r.exit_code == plain.exit_code == 1
    error = json.loads(r.stdout)["error"]
    assert error["code"] == 1 and "nobody@vines.test" in error["message"]
    assert r.stderr == plain.stderr  # people still get their one line

    # refused by the server: the XMPP condition travels along
    alice = {"VINESCTL_JID": f"alice@{DOMAIN}", "VINESCTL_PASSWORD": PASSWORD}
    error = as_json(run_cli, "stats", code=1, env=alice)["error"]
    assert error["condition"] == "forbidden" and error["fix"]

    # cannot connect
    error = as_json(run_cli, "online", "--server", "127.0.0.1:1", code=1, env=ENV)["error"]
    assert "127.0.0.1:1" in error["message"] and error["condition"] is None

    # usage errors exit 2, also when Click stops before it reads --json
    assert as_json(run_cli, "online", "--max", "7", code=2, env=ENV)["error"]["code"] == 2
    assert as_json(run_cli, "online", "--no-such-flag", code=2)["error"]["code"] == 2
    # without --json stdout stays empty
    assert run_cli("online", "--max", "7", env=ENV).stdout == ""


# ---- the tables at 80 columns ----------------------------------------------------------------


def test_one_very_long_jid_keeps_the_columns_of_every_row(live: LiveServer, run_cli: Any) -> None:
    long = live.add_user("x" * (1023 - len(f"@{DOMAIN}")), PASSWORD)
    assert len(long) == 1023
    r = run_cli("user", "list", env=ENV | {"COLUMNS": "80"})
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert lines[0].split() == ["jid", "online", "disabled"]
    admin_row = next(line for line in lines if line.startswith(ADMIN))
    assert admin_row.split() == [ADMIN, "yes"]  # online, in its column
    assert admin_row.index("yes") == lines[0].index("online")
    assert "".join(line.split()[0] for line in lines if line.startswith("x")) in long


def test_sessions_never_break_a_cipher(live: LiveServer, run_cli: Any) -> None:
    rows = as_json(run_cli, "sessions", env=ENV)["sessions"]
    cipher = rows[0]["cipher"]
    for columns in ("80", "200"):
        r = run_cli("sessions", env=ENV | {"COLUMNS": columns})
        assert r.exit_code == 0, r.stderr
        assert all(len(line) <= int(columns) for line in r.stdout.splitlines())
        assert cipher in r.stdout and ADMIN in r.stdout  # whole, on one line
    narrow = run_cli("sessions", env=ENV | {"COLUMNS": "80"}).stdout
    assert "SASL mechanism" in narrow  # one block per session, labelled by the server
    wide = run_cli("sessions", env=ENV | {"COLUMNS": "200"}).stdout
    assert wide.splitlines()[0].split()[:3] == ["session", "address", "TLS"]

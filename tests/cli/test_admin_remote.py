"""The console's administration commands end to end against the bundled server: a real server
(in its own thread, see conftest.py), a profile pointing at it with --server and --ca, and
`vinesctl` run through its real error boundary. Every command, the generic ad-hoc runner with a
multi-stage command, and the error paths (not an admin, an admin of another domain, wrong
password, unreachable, untrusted certificate)."""

from __future__ import annotations

import asyncio
import json
import os
import time
from contextlib import suppress
from typing import Any

import pytest

from tests.cli.conftest import LiveServer
from tests.support.xmpp import DOMAIN, OTHER, PASSWORD, make_pki

ADMIN = f"admin@{DOMAIN}"
ENV = {"VINESCTL_PASSWORD": PASSWORD}


@pytest.fixture
def live(live_server: LiveServer, run_cli: Any) -> LiveServer:
    """The server with admin@vines.test, alice@vines.test (no admin) and boss@other.test (an
    admin of other.test only), and a default profile 'vines' logging in as the admin."""
    for local, domain in (("admin", DOMAIN), ("alice", DOMAIN), ("boss", OTHER)):
        live_server.add_user(local, PASSWORD, domain)
    r = run_cli(
        "profile", "add", "vines", "--jid", ADMIN,
        "--server", f"127.0.0.1:{live_server.port}", "--ca", str(live_server.pki.ca_file),
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    return live_server


def one_line(r: Any) -> bool:
    return r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


class Client:
    """A logged-in slixmpp client living in the server's loop, recording messages."""

    def __init__(self, live: LiveServer, jid: str, password: str = PASSWORD) -> None:
        self.live = live
        self.messages: list[tuple[str, str]] = []
        self.client = live.call(self._connect(jid, password))

    async def _connect(self, jid: str, password: str) -> Any:
        import slixmpp

        client = slixmpp.ClientXMPP(jid, password)
        client.ca_certs = str(self.live.pki.ca_file)
        client.enable_direct_tls = False
        # listen before login: a MOTD or welcome message comes right after the presence
        client.add_event_handler(
            "message", lambda m: self.messages.append((m["subject"], m["body"]))
        )
        started: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

        async def on_start(_event: Any) -> None:
            await client.get_roster()
            client.send_presence()
            if not started.done():
                started.set_result(True)

        client.add_event_handler("session_start", on_start)
        client.add_event_handler(
            "failed_auth",
            lambda _e: started.done() or started.set_exception(ConnectionError(jid)),
        )
        client.connect(host="127.0.0.1", port=self.live.port)
        await asyncio.wait_for(started, 15)
        return client

    def wait_for(self, text: str, timeout: float = 10.0) -> tuple[str, str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for subject, body in self.messages:
                if text in body:
                    return subject, body
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not received; got {self.messages}")

    def close(self) -> None:
        async def bye() -> None:
            from tests.support.xmpp import disconnect

            await disconnect(self.client)

        self.live.call(bye())


def can_log_in(live: LiveServer, jid: str, password: str) -> bool:
    import slixmpp

    async def attempt() -> bool:
        client = slixmpp.ClientXMPP(jid, password)
        client.ca_certs = str(live.pki.ca_file)
        client.enable_direct_tls = False
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        client.add_event_handler("session_start", lambda _e: done.done() or done.set_result(True))
        client.add_event_handler("failed_auth", lambda _e: done.done() or done.set_result(False))
        client.connect(host="127.0.0.1", port=live.port)
        try:
            return await asyncio.wait_for(done, 15)
        finally:
            client.disconnect()
            with suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(client.disconnected, 5)

    return live.call(attempt())


# ---- accounts --------------------------------------------------------------------------------


def test_user_add_passwd_list_show_delete(live: LiveServer, run_cli: Any) -> None:
    r = run_cli("user", "add", "carol", env=ENV | {"VINESCTL_NEW_PASSWORD": "carol one"})
    assert r.exit_code == 0, r.stderr
    assert r.stdout == f"created carol@{DOMAIN}\n"
    assert can_log_in(live, f"carol@{DOMAIN}", "carol one")

    r = run_cli("user", "add", f"carol@{DOMAIN}", env=ENV | {"VINESCTL_NEW_PASSWORD": "x"})
    assert r.exit_code == 1 and "exists" in r.stderr and one_line(r), r.stderr

    r = run_cli("user", "passwd", "carol", "--password-file", "-", input="carol two\n", env=ENV)
    assert r.exit_code == 0 and r.stdout == f"password of carol@{DOMAIN} changed\n", r.stderr
    assert can_log_in(live, f"carol@{DOMAIN}", "carol two")
    assert not can_log_in(live, f"carol@{DOMAIN}", "carol one")

    r = run_cli("user", "list", "--json", env=ENV)
    assert r.exit_code == 0, r.stderr
    rows = json.loads(r.stdout)["accounts"]
    assert [u["jid"] for u in rows] == [ADMIN, f"alice@{DOMAIN}", f"carol@{DOMAIN}"]
    assert all(u["disabled"] is False for u in rows)
    assert {u["jid"]: u["online"] for u in rows}[ADMIN] is True  # the console itself
    r = run_cli("user", "list", env=ENV)
    assert r.exit_code == 0 and f"carol@{DOMAIN}" in r.stdout

    r = run_cli("user", "show", "carol", "--json", env=ENV)
    assert r.exit_code == 0, r.stderr
    shown = json.loads(r.stdout)
    assert shown["jid"] == f"carol@{DOMAIN}" and shown["disabled"] is False
    assert shown["roster"] == [] and shown["rostersize"] == 0 and shown["lastlogin"]
    r = run_cli("user", "show", "carol", env=ENV)
    assert r.exit_code == 0 and "roster size" in r.stdout

    r = run_cli("user", "delete", "carol", env=ENV)
    assert r.exit_code == 0 and r.stdout == f"deleted carol@{DOMAIN}\n", r.stderr
    assert live.account(f"carol@{DOMAIN}") is None
    r = run_cli("user", "delete", "carol", env=ENV)
    assert r.exit_code == 1 and "carol@vines.test" in r.stderr and one_line(r), r.stderr


def test_disable_enable_and_kick(live: LiveServer, run_cli: Any) -> None:
    bob = live.add_user("bob", PASSWORD)
    session = Client(live, bob)
    try:
        r = run_cli("user", "kick", "bob", env=ENV)
        assert r.exit_code == 0 and r.stdout == f"kicked {bob}\n", r.stderr
        deadline = time.monotonic() + 10
        while live.server.sessions.resources(_jid(bob)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not live.server.sessions.resources(_jid(bob))
    finally:
        session.close()

    session = Client(live, bob)
    try:
        r = run_cli("user", "disable", "bob", env=ENV)
        assert r.exit_code == 0 and r.stdout == f"disabled {bob}\n", r.stderr
        assert live.account(bob).disabled
        deadline = time.monotonic() + 10
        while live.server.sessions.resources(_jid(bob)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not live.server.sessions.resources(_jid(bob))  # live session closed
    finally:
        session.close()
    assert not can_log_in(live, bob, PASSWORD)
    r = run_cli("user", "list", "--json", env=ENV)
    assert {u["jid"]: u["disabled"] for u in json.loads(r.stdout)["accounts"]}[bob] is True
    r = run_cli("user", "show", "bob", "--json", env=ENV)
    assert json.loads(r.stdout)["disabled"] is True

    r = run_cli("user", "enable", "bob", env=ENV)
    assert r.exit_code == 0 and r.stdout == f"enabled {bob}\n", r.stderr
    assert not live.account(bob).disabled
    assert can_log_in(live, bob, PASSWORD)


def _jid(text: str) -> Any:
    from vines_server.xmpp.jid import JID

    return JID.parse(text)


# ---- who is online, sessions, statistics -----------------------------------------------------


def test_online_sessions_stats(live: LiveServer, run_cli: Any) -> None:
    alice = Client(live, f"alice@{DOMAIN}")
    try:
        r = run_cli("online", "--json", env=ENV)
        assert r.exit_code == 0, r.stderr
        online = json.loads(r.stdout)["users"]
        assert {u["jid"] for u in online} == {ADMIN, f"alice@{DOMAIN}"}
        assert all(u["sessions"] is None for u in online)  # not asked for

        r = run_cli("online", "--details", "--json", env=ENV)
        assert r.exit_code == 0, r.stderr
        users = {u["jid"]: u["sessions"] for u in json.loads(r.stdout)["users"]}
        (session,) = users[f"alice@{DOMAIN}"]
        assert session["ip"] == "127.0.0.1" and session["resource"]
        assert isinstance(session["priority"], int)
        r = run_cli("online", "--details", env=ENV)
        assert r.exit_code == 0 and f"alice@{DOMAIN}" in r.stdout

        r = run_cli("sessions", "--json", env=ENV)
        assert r.exit_code == 0, r.stderr
        rows = json.loads(r.stdout)["sessions"]
        assert {"jid", "ip", "tls_version", "cipher", "mechanism", "since"} <= set(rows[0])
        alice_row = next(row for row in rows if row["jid"].startswith("alice@"))
        assert alice_row["tls_version"].startswith("TLS") and alice_row["mechanism"]
        r = run_cli("sessions", env=ENV)
        assert r.exit_code == 0 and "TLS" in r.stdout

        r = run_cli("stats", "--json", env=ENV)
        assert r.exit_code == 0, r.stderr
        stats = json.loads(r.stdout)
        values = {v["var"]: v["value"] for v in stats["values"]}
        assert values["uptime"] >= 0 and values["accounts"] == 3  # server-wide, as numbers
        assert stats["counts"]["registered"] == 2 and stats["counts"]["online"] == 2
        assert stats["counts"]["disabled"] == 0 and stats["unsupported"] == []
        [node] = stats["nodes"]  # the per-node breakdown: this server alone
        assert node["sessions"] == 2 and node["alive"] is True
        r = run_cli("stats", env=ENV)
        assert r.exit_code == 0 and "registered users" in r.stdout and "alive" in r.stdout
    finally:
        alice.close()


def test_cluster_of_one_server(live: LiveServer, run_cli: Any) -> None:
    """Without [cluster], `vinesctl cluster` lists the server it talks to as the one node."""
    r = run_cli("cluster", "--json", env=ENV)
    assert r.exit_code == 0, r.stderr
    [node] = json.loads(r.stdout)["nodes"]
    assert node["address"] == f"127.0.0.1:{live.port}" and node["alive"] is True
    assert node["pid"] == os.getpid()  # the live server runs in this process's thread
    assert node["sessions"] == 1 and node["heartbeat_age"] == 0.0  # the console itself
    assert isinstance(node["load"], float)
    r = run_cli("cluster", env=ENV)
    assert r.exit_code == 0 and "alive" in r.stdout and f"127.0.0.1:{live.port}" in r.stdout


# ---- messages: announce, MOTD, welcome -------------------------------------------------------


def test_announce_motd_welcome(live: LiveServer, run_cli: Any) -> None:
    alice = Client(live, f"alice@{DOMAIN}")
    try:
        r = run_cli("announce", "--subject", "maintenance", "down at noon", env=ENV)
        assert r.exit_code == 0, r.stderr
        subject, _body = alice.wait_for("down at noon")
        assert subject == "maintenance"
        r = run_cli("announce", "-", input="from stdin\n", env=ENV)
        assert r.exit_code == 0, r.stderr
        alice.wait_for("from stdin")
    finally:
        alice.close()

    r = run_cli("motd", "show", "--json", env=ENV)
    assert r.exit_code == 0 and json.loads(r.stdout) == {"motd": None}, r.stderr
    r = run_cli("motd", "set", "be nice", env=ENV)
    assert r.exit_code == 0 and r.stdout == "message of the day set\n", r.stderr
    r = run_cli("motd", "show", env=ENV)
    assert r.exit_code == 0 and r.stdout.strip() == "be nice"
    alice = Client(live, f"alice@{DOMAIN}")
    try:
        alice.wait_for("be nice")  # the MOTD reaches users at login
    finally:
        alice.close()
    r = run_cli("motd", "delete", env=ENV)
    assert r.exit_code == 0, r.stderr
    assert json.loads(run_cli("motd", "show", "--json", env=ENV).stdout) == {"motd": None}

    r = run_cli("welcome", "set", "welcome aboard", env=ENV)
    assert r.exit_code == 0 and r.stdout == "welcome message set\n", r.stderr
    r = run_cli("user", "add", "newbie", env=ENV | {"VINESCTL_NEW_PASSWORD": "newbie pw"})
    assert r.exit_code == 0, r.stderr
    newbie = Client(live, f"newbie@{DOMAIN}", "newbie pw")
    try:
        newbie.wait_for("welcome aboard")
    finally:
        newbie.close()
    r = run_cli("welcome", "delete", env=ENV)
    assert r.exit_code == 0 and r.stdout == "welcome message deleted\n", r.stderr

    r = run_cli("announce", env=ENV, input="")
    assert r.exit_code == 2 and "empty" in r.stderr and one_line(r)


# ---- lists: admins, allowlist, blocklist -----------------------------------------------------


def test_admins_allowlist_blocklist(live: LiveServer, run_cli: Any) -> None:
    r = run_cli("admins", "--json", env=ENV)
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["jids"] == [ADMIN]  # boss@other.test is no admin of vines.test

    r = run_cli("admins", "add", "alice", "--json", env=ENV)
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["jids"] == [ADMIN, f"alice@{DOMAIN}"]
    # alice is an administrator now: she may list the users
    r = run_cli("user", "list", "--json", env={"VINESCTL_JID": f"alice@{DOMAIN}"} | ENV)
    assert r.exit_code == 0, r.stderr
    r = run_cli("admins", "remove", "alice", env=ENV)
    assert r.exit_code == 0 and r.stdout.strip() == ADMIN, r.stderr
    r = run_cli("admins", "remove", "alice", env=ENV)
    assert r.exit_code == 1 and "not on the admins list" in r.stderr and one_line(r)

    for command in ("allowlist", "blocklist"):
        r = run_cli(command, "--json", env=ENV)
        assert r.exit_code == 0 and json.loads(r.stdout)["jids"] == [], r.stderr
        r = run_cli(command, "add", "Example.ORG", "spam.example", "--json", env=ENV)
        assert r.exit_code == 0, r.stderr
        assert json.loads(r.stdout)["jids"] == ["example.org", "spam.example"]
        r = run_cli(command, "remove", "example.org", env=ENV)
        assert r.exit_code == 0 and r.stdout.strip() == "spam.example", r.stderr
        r = run_cli(command, env=ENV)
        assert r.exit_code == 0 and r.stdout.strip() == "spam.example"


# ---- the generic ad-hoc runner ---------------------------------------------------------------


def add_two_stage_command(live: LiveServer) -> list[dict[str, Any]]:
    """A test command with two forms: stage one asks a list-single colour, stage two a
    jid-multi list of friends and a boolean; it completes with a table."""
    from vines_server.core.commands import Command, Result
    from vines_server.xmpp.forms import Field, Form

    seen: list[dict[str, Any]] = []

    def first(ctx: Any) -> Form:
        return Form(
            "form",
            title="Colour",
            fields=[
                Field(
                    "colour",
                    "list-single",
                    "Favourite colour",
                    required=True,
                    options=[("Red", "red"), ("Green", "green")],
                )
            ],
        )

    def second(ctx: Any) -> Form:
        return Form(
            "form",
            title=f"Friends of someone who likes {ctx.values['colour']}",
            fields=[
                Field("friends", "jid-multi", "Friends", required=True),
                Field("loud", "boolean", "Shout", values=["0"]),
            ],
        )

    async def run(ctx: Any) -> Result:
        seen.append(dict(ctx.values))
        form = Form("result", title="Summary")
        form.reported = [Field("friend", "jid-single", "Friend"), Field("colour", None, "Colour")]
        for friend in ctx.values["friends"]:
            form.items.append(
                [Field("friend", None, values=[str(friend)]),
                 Field("colour", None, values=[ctx.values["colour"]])]
            )  # fmt: skip
        return Result.info(f"{len(ctx.values['friends'])} friends", form)

    async def install() -> None:
        registry = live.server.host.services["adhoc"]
        registry.add(Command("urn:test#two-stage", "Two stages", run, (first, second)))

    live.call(install())
    return seen


def test_adhoc_list_and_multi_stage_run(live: LiveServer, run_cli: Any) -> None:
    seen = add_two_stage_command(live)
    r = run_cli("adhoc", "list", "--json", env=ENV)
    assert r.exit_code == 0, r.stderr
    nodes = {c["node"] for c in json.loads(r.stdout)["commands"]}
    assert "urn:test#two-stage" in nodes
    assert "http://jabber.org/protocol/admin#add-user" in nodes
    assert "urn:vinesctl:admin#stats" in nodes
    r = run_cli("adhoc", "list", env=ENV)
    assert r.exit_code == 0 and "add-user" in r.stdout

    r = run_cli(
        "adhoc", "run", "urn:test#two-stage", "--set", "colour=green",
        "--set", "friends=a@example.org", "--set", "friends=b@example.org",
        "--set", "loud=yes", "--json", env=ENV,
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["status"] == "completed" and result["stages"] == 3
    assert result["notes"] == [{"type": "info", "text": "2 friends"}]
    assert [row["friend"] for row in result["form"]["items"]] == [
        ["a@example.org"],
        ["b@example.org"],
    ]
    assert seen[-1]["colour"] == "green" and seen[-1]["loud"] is True

    # the same as a table
    r = run_cli(
        "adhoc", "run", "urn:test#two-stage", "--set", "colour=red",
        "--set", "friends=c@example.org", env=ENV,
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    assert "c@example.org" in r.stdout and "1 friends" in r.stdout and "Friend" in r.stdout

    # a required field of the second stage is missing: usage error, the session is canceled
    r = run_cli("adhoc", "run", "urn:test#two-stage", "--set", "colour=red", "--json", env=ENV)
    assert r.exit_code == 2 and "friends" in r.stderr and "--set" in r.stderr and one_line(r)
    registry = live.server.host.services["adhoc"]
    assert len(registry.sessions) == 0

    # a value the server refuses (not one of the options)
    r = run_cli("adhoc", "run", "urn:test#two-stage", "--set", "colour=blue", env=ENV)
    assert r.exit_code == 1 and "bad-payload" in r.stderr and one_line(r), r.stderr

    # XEP-0133 through the generic runner
    r = run_cli("adhoc", "run", "http://jabber.org/protocol/admin#get-registered-users-num",
                "--json", env=ENV)  # fmt: skip
    assert r.exit_code == 0, r.stderr
    fields = {f["var"]: f["values"] for f in json.loads(r.stdout)["form"]["fields"]}
    assert fields["registeredusersnum"] == ["2"]

    r = run_cli("adhoc", "run", "urn:nowhere#nothing", env=ENV)
    assert r.exit_code == 1 and "item-not-found" in r.stderr and one_line(r)
    r = run_cli("adhoc", "run", "urn:test#two-stage", "--set", "oops", env=ENV)
    assert r.exit_code == 2 and "VAR=VALUE" in r.stderr


# ---- errors ----------------------------------------------------------------------------------


def test_non_admin_is_refused_and_nothing_changes(live: LiveServer, run_cli: Any) -> None:
    alice = {"VINESCTL_JID": f"alice@{DOMAIN}", "VINESCTL_PASSWORD": PASSWORD}
    expected = f"forbidden: alice@{DOMAIN} is not an administrator of {DOMAIN}"
    r = run_cli("user", "add", f"mallory@{DOMAIN}", env=alice | {"VINESCTL_NEW_PASSWORD": "m"})
    assert r.exit_code == 1 and expected in r.stderr and one_line(r), r.stderr
    assert "--profile" in r.stderr  # the fix: log in as an administrator
    for args in (
        ("user", "delete", ADMIN),
        ("user", "disable", ADMIN),
        ("user", "list"),
        ("admins", "add", f"alice@{DOMAIN}"),
        ("motd", "set", "pwned"),
        ("announce", "pwned"),
        ("allowlist", "add", "evil.example"),
        ("stats",),
        ("cluster",),
        ("sessions",),
        ("online",),
    ):
        r = run_cli(*args, env=alice)
        assert r.exit_code == 1 and expected in r.stderr and one_line(r), (args, r.stderr)
    r = run_cli("adhoc", "list", "--json", env=alice)
    assert r.exit_code == 0
    assert not [c for c in json.loads(r.stdout)["commands"] if "admin" in c["node"]]
    r = run_cli("adhoc", "run", "http://jabber.org/protocol/admin#delete-user",
                "--set", f"accountjids={ADMIN}", env=alice)  # fmt: skip
    assert r.exit_code == 1 and "forbidden" in r.stderr and one_line(r), r.stderr

    # boss administers other.test only: vines.test refuses him, and shows him no admin nodes
    boss = {"VINESCTL_JID": f"boss@{OTHER}", "VINESCTL_PASSWORD": PASSWORD}
    r = run_cli("adhoc", "run", "http://jabber.org/protocol/admin#add-user", "--to", DOMAIN,
                "--set", f"accountjid=mallory@{DOMAIN}", "--set", "password=m",
                "--set", "password-verify=m", env=boss)  # fmt: skip
    assert r.exit_code == 1 and "forbidden" in r.stderr and one_line(r), r.stderr
    r = run_cli("adhoc", "list", "--to", DOMAIN, "--json", env=boss)
    assert r.exit_code == 0 and not [
        c for c in json.loads(r.stdout)["commands"] if "admin" in c["node"]
    ]
    # through his own domain he cannot create accounts on vines.test either
    r = run_cli("user", "add", f"mallory@{DOMAIN}", env=boss | {"VINESCTL_NEW_PASSWORD": "m"})
    assert r.exit_code == 2 and f"is not on {OTHER}" in r.stderr and one_line(r), r.stderr

    assert live.account(f"mallory@{DOMAIN}") is None
    assert live.account(ADMIN) is not None and not live.account(ADMIN).disabled
    assert json.loads(run_cli("motd", "show", "--json", env=ENV).stdout) == {"motd": None}
    assert json.loads(run_cli("admins", "--json", env=ENV).stdout)["jids"] == [ADMIN]
    assert json.loads(run_cli("allowlist", "--json", env=ENV).stdout)["jids"] == []


def test_connection_errors_are_one_line_with_the_fix(
    live: LiveServer, run_cli: Any, tmp_path: Any
) -> None:
    r = run_cli("user", "list", env={"VINESCTL_PASSWORD": "wrong"})
    assert r.exit_code == 1 and "authentication failed for admin@vines.test" in r.stderr
    assert one_line(r)

    from tests.support.ports import free_port

    r = run_cli("online", "--server", f"127.0.0.1:{free_port()}", env=ENV)
    assert r.exit_code == 1 and "cannot reach" in r.stderr and one_line(r), r.stderr

    stranger = make_pki(tmp_path / "stranger")  # another CA: the server's cert is not trusted
    r = run_cli("online", "--ca", str(stranger.ca_file), env=ENV)
    assert r.exit_code == 1 and "not trusted" in r.stderr and "--ca" in r.stderr, r.stderr
    assert one_line(r)

    r = run_cli("online", "--insecure", "--ca", str(stranger.ca_file), "--json", env=ENV)
    assert r.exit_code == 0 and "WARNING" in r.stderr and json.loads(r.stdout)

    r = run_cli("user", "add", "x")  # no password for the console and no terminal
    assert r.exit_code == 2 and "VINESCTL_PASSWORD" in r.stderr


def test_new_passwords_never_in_argv(run_cli: Any) -> None:
    r = run_cli("user", "add", "x", "--password", "secret")
    assert r.exit_code == 2 and "No such option" in r.stderr


# ---- the interactive runner, on a real terminal ----------------------------------------------


def terminal_env(live: LiveServer) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("VINESCTL_")}
    return env | ENV


def test_adhoc_run_interactive_prev_and_complete(live: LiveServer, run_cli: Any) -> None:
    from tests.cli.test_server_cli import run_on_terminal

    seen = add_two_stage_command(live)
    answers = [
        "2",  # colour: green
        "a@example.org",  # friends #1
        "",  # friends #2: done
        "n",  # shout?
        "prev",  # back to the colour
        "1",  # red
        "b@example.org",
        "",
        "y",
        "complete",
    ]
    code, shown = run_on_terminal(
        ["adhoc", "run", "urn:test#two-stage"], answers, terminal_env(live)
    )
    assert code == 0, shown
    assert "Favourite colour" in shown and "Friends of someone who likes red" in shown
    assert "b@example.org" in shown and "1 friends" in shown
    (values,) = seen  # one run: the answers after going back
    assert values["colour"] == "red" and values["loud"] is True
    assert [str(j) for j in values["friends"]] == ["b@example.org"]


def test_adhoc_run_interactive_hides_passwords(live: LiveServer, run_cli: Any) -> None:
    from tests.cli.test_server_cli import run_on_terminal

    node = "http://jabber.org/protocol/admin#change-user-password"
    code, shown = run_on_terminal(
        ["adhoc", "run", node], [f"alice@{DOMAIN}", "typed secret"], terminal_env(live)
    )
    assert code == 0, shown
    assert "typed secret" not in shown
    assert can_log_in(live, f"alice@{DOMAIN}", "typed secret")


def test_adhoc_run_interactive_cancel(live: LiveServer, run_cli: Any) -> None:
    from tests.cli.test_server_cli import run_on_terminal

    seen = add_two_stage_command(live)
    code, shown = run_on_terminal(
        ["adhoc", "run", "urn:test#two-stage"], ["1", "c@example.org", "", "n", "cancel"],
        terminal_env(live),
    )  # fmt: skip
    assert code == 0 and "canceled" in shown, shown
    assert seen == [] and len(live.server.host.services["adhoc"].sessions) == 0


def test_runner_reports_the_xep_0050_errors(live: LiveServer) -> None:
    """The library under the console: a wrong session id and an ended session come back as
    AdhocError with the XEP's specific condition."""
    import dataclasses

    from vinesctl.connection import ConnectionSettings
    from vinesctl.xmpp import adhoc
    from vinesctl.xmpp.session import open_session

    add_two_stage_command(live)
    settings = ConnectionSettings(
        jid=ADMIN, password=PASSWORD, host="127.0.0.1", port=live.port, ca=str(live.pki.ca_file)
    )

    async def go() -> list[tuple[str, str]]:
        seen = []
        async with open_session(settings) as client:
            stage = await adhoc.execute(client, DOMAIN, "urn:test#two-stage")
            assert stage.status == "executing" and stage.form.field("colour").options
            for bad in (dataclasses.replace(stage, sessionid="nope"), stage):
                if bad is stage:
                    assert (await adhoc.cancel(client, stage)).status == "canceled"
                try:
                    await adhoc.submit(client, bad, {"colour": ["red"]})
                except adhoc.AdhocError as exc:
                    seen.append((exc.condition, exc.specific))
        return seen

    assert live.call(go()) == [("bad-request", "bad-sessionid"), ("not-allowed", "session-expired")]

"""`vinesctl send` and `vinesctl roster` against the bundled server (in its own thread): the
message reaches the online recipient (from the account, or from the domain with --from-server),
a refused one is one line; a roster change is stored and pushed to the user's online session."""

from __future__ import annotations

import json
import time
from typing import Any

from tests.cli.test_admin_remote import ENV, Client, live, one_line  # noqa: F401 (a fixture)
from tests.support.xmpp import DOMAIN

ALICE, BOB = f"alice@{DOMAIN}", f"bob@{DOMAIN}"


def record(client: Client, what: str) -> list[Any]:
    """Stanzas of one slixmpp event (message, roster_update...) the client gets from now."""
    got: list[Any] = []

    async def hook() -> None:
        client.client.add_event_handler(what, got.append)

    client.live.call(hook())
    return got


def wait(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_send_from_the_account_and_from_the_server(live, run_cli):  # noqa: F811
    alice = Client(live, ALICE)
    try:
        messages = record(alice, "message")
        r = run_cli("send", ALICE, "lunch at noon", "--json", env=ENV)
        assert r.exit_code == 0, r.stderr
        assert json.loads(r.stdout) == {"from": f"admin@{DOMAIN}", "to": ALICE}
        wait(lambda: any(m["body"] == "lunch at noon" for m in messages))
        assert str(messages[-1]["from"].bare) == f"admin@{DOMAIN}"

        r = run_cli("send", ALICE, "--from-server", "-", input="maintenance\ntonight\n", env=ENV)
        assert r.exit_code == 0, r.stderr
        assert r.stdout == f"sent to {ALICE} from {DOMAIN}\n"
        wait(lambda: any(m["body"] == "maintenance\ntonight" for m in messages))
        assert str(messages[-1]["from"]) == DOMAIN
    finally:
        alice.close()


def test_send_refusals_are_one_line(live, run_cli):  # noqa: F811
    r = run_cli("send", f"nobody@{DOMAIN}", "hello?", env=ENV)
    assert r.exit_code == 1 and one_line(r)
    assert f"nobody@{DOMAIN} refused the message" in r.stderr
    r = run_cli("send", "not a jid@", "x", env=ENV)
    assert r.exit_code == 2 and one_line(r) and "is not a JID" in r.stderr
    # --from-server needs an admin of the domain
    r = run_cli("send", BOB, "x", "--from-server", env=ENV | {"VINESCTL_JID": ALICE})
    assert r.exit_code == 1 and one_line(r)


def test_roster_add_and_remove_push_to_the_online_user(live, run_cli):  # noqa: F811
    live.add_user("bob", "pw")
    alice = Client(live, ALICE)
    try:
        pushes = record(alice, "roster_update")
        r = run_cli(
            "roster", "alice", "add", BOB, "--name", "Bob", "--group", "friends",
            "--subscription", "both", env=ENV,
        )  # fmt: skip
        assert r.exit_code == 0, r.stderr
        assert r.stdout == f"{BOB} added in the roster of {ALICE} (both)\n"
        wait(lambda: len(pushes) == 1)
        item = pushes[0]["roster"]["items"][BOB]
        assert item["name"] == "Bob" and item["subscription"] == "both"

        r = run_cli("roster", "alice", "--json", env=ENV)
        assert r.exit_code == 0, r.stderr
        assert json.loads(r.stdout) == {
            "jid": ALICE,
            "items": [{"jid": BOB, "name": "Bob", "subscription": "both", "groups": ["friends"]}],
        }

        r = run_cli("roster", "alice", "remove", BOB, "--json", env=ENV)
        assert r.exit_code == 0, r.stderr
        assert json.loads(r.stdout)["action"] == "removed"
        wait(lambda: len(pushes) == 2)
        assert pushes[1]["roster"]["items"][BOB]["subscription"] == "remove"
        r = run_cli("roster", "alice", env=ENV)
        assert "is empty" in r.stdout

        r = run_cli("roster", "alice", "remove", BOB, env=ENV)
        assert r.exit_code == 1 and one_line(r) and "not in the roster" in r.stderr
        r = run_cli("roster", "nobody", "add", BOB, env=ENV)
        assert r.exit_code == 1 and one_line(r) and "no such account" in r.stderr
    finally:
        alice.close()

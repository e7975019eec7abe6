"""Administration and services across a cluster (issue 13): an admin on node 1 lists the users
online on node 2 (XEP-0133), announces to them and ends their sessions; a component connected
to node 1 answers users on node 2; a stream-management resumption that reaches a node other
than the one holding the detached session is answered item-not-found."""

from __future__ import annotations

import re
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from slixmpp.exceptions import IqError
from vines_server.xmpp.jid import JID

from tests.components.conftest import SPARE, WORK, component_sections, connect_component
from tests.support.adhoc import admin, ours, run
from tests.support.cluster import Shared, cluster, raw_bind, until, until_registered
from tests.support.xmpp import DOMAIN, PASSWORD, RawClient, disconnect, slixmpp_client

ADMIN, ALICE, BOB = f"admin@{DOMAIN}", f"alice@{DOMAIN}", f"bob@{DOMAIN}"


@asynccontextmanager
async def admin_and_bob(shared: Shared):
    """Two nodes; an admin on n1 and bob bound as bob/desk on n2, in the directory."""
    async with cluster(shared, "n1", "n2") as (n1, n2):
        await n1.add_user("admin")
        await n1.add_user("bob")
        boss = await slixmpp_client(n1, ADMIN, plugins=("xep_0050",))
        bob = await raw_bind(n2, "bob", "desk")
        try:
            await until_registered(n1, BOB, 1)
            yield n1, n2, boss, bob
        finally:
            await disconnect(boss)


async def test_an_admin_on_one_node_lists_and_kicks_users_on_the_other(shared: Shared) -> None:
    async with admin_and_bob(shared) as (n1, n2, boss, bob):
        try:
            answer = await run(boss, admin("end-user-session"), {"accountjids": [BOB]})
            assert answer.notes == [("info", "1 session ended")]
            await bob.client.expect_stream_error("policy-violation")

            bob = await raw_bind(n2, "bob", "phone")
            await until_registered(n1, BOB, 1)
            listed = await run(
                boss, admin("get-online-users-list"), {"max_items": "none", "details": "1"}
            )
            assert BOB in listed.values("onlineuserjids")
            assert f"{BOB}/phone" in [row["jid"] for row in listed.rows()]
            number = await run(boss, admin("get-online-users-num"))
            assert number.value("onlineusersnum") == "2"  # bob on n2, the admin on n1

            sent = await run(boss, admin("announce"), {"subject": "Hi", "announcement": ["all"]})
            assert sent.notes == [("info", "announcement sent to 2 sessions")]
            await bob.client.read_until(rb"<message[^>]*type=.headline.*?</message>")

            await run(boss, admin("disable-user"), {"accountjids": [BOB]})
            await bob.client.expect_stream_error("not-authorized")
        finally:
            bob.client.close()


async def test_an_admin_sees_the_address_and_details_of_sessions_on_the_other_node(
    shared: Shared,
) -> None:
    async with admin_and_bob(shared) as (_, n2, boss, bob):
        try:
            there = n2.server.sessions.local(JID.parse(f"{BOB}/desk"))
            assert there is not None and there.info["ip"] == "127.0.0.1"
            since = there.since.strftime("%Y-%m-%dT%H:%M:%SZ")

            stats = await run(boss, admin("user-stats"), {"accountjid": BOB})
            assert stats.values("ipaddresses") == ["127.0.0.1"]

            listed = await run(
                boss, admin("get-online-users-list"), {"max_items": "none", "details": "1"}
            )
            row = next(r for r in listed.rows() if r["jid"] == f"{BOB}/desk")
            assert (row["ip"], row["since"]) == ("127.0.0.1", since)

            sessions = await run(boss, ours("sessions"))
            rows = {r["jid"]: r for r in sessions.rows()}
            row = rows[f"{BOB}/desk"]
            for var in ("ip", "listener", "tls_version", "cipher", "mechanism"):
                assert row[var] == str(there.info[var]), var
            assert (row["since"], row["node"]) == (since, "n2")
            assert rows[str(boss.boundjid)]["node"] == "n1"
        finally:
            bob.client.close()


async def test_resuming_on_another_node_is_item_not_found(shared: Shared) -> None:
    async with cluster(shared, "n1", "n2") as (n1, n2):
        await n1.add_user("bob")
        bob = await raw_bind(n1, "bob", "desk")
        await bob.client.send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
        enabled = await bob.client.read_until(rb"<enabled[^>]*>")
        token = re.search(rb"id=['\"]([^'\"]+)", enabled)[1].decode()
        bob.client.writer.transport.abort()  # dropped: the session waits on n1 to be resumed

        raw = await RawClient.connect(n2.port(), n2.pki.ca_file)
        try:
            await raw.starttls()
            await raw.auth_plain("bob", PASSWORD)
            await raw.read_until(rb"<success[^>]*/>")
            await raw.open_stream()
            await raw.send(f"<resume xmlns='urn:xmpp:sm:3' previd='{token}' h='0'/>")
            failed = await raw.read_until(rb"</failed>|<failed[^>]*/>")
            assert b"item-not-found" in failed
        finally:
            raw.close()


async def test_a_component_on_one_node_is_reachable_from_the_other(
    shared: Shared, tmp_path: Path
) -> None:
    shared.extra = component_sections(tmp_path)
    shared.extra["components"][SPARE]["secret_file"] = str(tmp_path / "spare.secret")  # any node
    async with cluster(shared, "n1", "n2") as (n1, n2):
        await n1.add_user("alice")
        component = await connect_component(n1)
        alice = await slixmpp_client(n2, ALICE)
        try:
            await until(lambda: n2.server.cluster.directory.component(WORK), "n1")
            # an iq from a user on n2 to the component on n1, and its answer back
            version = await alice.plugin["xep_0092"].get_version(WORK, timeout=5)
            assert version["software_version"]["name"]
            # a component stream on neither node: remote-server-timeout, as on one node
            with pytest.raises(IqError) as err:
                await alice.plugin["xep_0092"].get_version(SPARE, timeout=5)
            assert err.value.condition == "remote-server-timeout"
        finally:
            await disconnect(alice, component)
        await until(lambda: n2.server.cluster.directory.component(WORK), None)

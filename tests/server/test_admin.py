"""Service administration (XEP-0133) end to end: every node, its real effects, authorization
(a non-admin, an admin of another domain, a look-alike JID), and persistence across restarts."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os

import pytest
from vines_server.storage.base import RosterItem
from vines_server.xmpp import ns

from tests.support.adhoc import admin, command, listed, ours, refused, run
from tests.support.xmpp import (
    DOMAIN,
    OTHER,
    PASSWORD,
    RawClient,
    disconnect,
    running_server,
    slixmpp_client,
)

ADMIN = f"admin@{DOMAIN}"
XEP_NODES = """add-user delete-user disable-user reenable-user end-user-session change-user-password
get-user-roster get-user-lastlogin user-stats edit-blacklist edit-whitelist
get-registered-users-num get-disabled-users-num get-online-users-num get-active-users-num
get-idle-users-num get-registered-users-list get-disabled-users-list get-online-users-list
get-active-users get-idle-users announce set-motd edit-motd delete-motd set-welcome
delete-welcome edit-admin restart shutdown""".split()
OUR_NODES = ["stats", "sessions", "reload", "cluster"]
ALL_NODES = {admin(n) for n in XEP_NODES} | {ours(n) for n in OUR_NODES}


async def connect(harness, jid: str, password: str = PASSWORD):
    client = await slixmpp_client(harness, jid, password)
    client.register_plugin("xep_0050")
    return client


@pytest.fixture
async def boss(harness):
    await harness.add_user("admin")
    client = await connect(harness, ADMIN)
    yield client
    await disconnect(client)


def inbox(client) -> asyncio.Queue:
    queue: asyncio.Queue = asyncio.Queue()
    client.add_event_handler("message", queue.put_nowait)
    return queue


async def next_message(queue: asyncio.Queue, timeout: float = 5.0):
    return await asyncio.wait_for(queue.get(), timeout)


async def raw_login(harness, user: str, password: str = PASSWORD) -> RawClient:
    raw = await RawClient.connect(harness.port(), harness.pki.ca_file)
    await raw.login(user.split("@")[0], password)
    return raw


async def snapshot(storage) -> tuple:
    """Everything an admin command could change."""
    accounts = []
    for jid in await storage.list_accounts():
        account = await storage.get_account(jid)
        accounts.append((jid, account.disabled, account.credentials))
    settings = {k: await storage.get_setting(k) for k in ("admin.admins", "admin.motd",
                "admin.welcome", "admin.federation-allow", "admin.federation-block")}  # fmt: skip
    return accounts, settings


# ---- discovery and authorization ---------------------------------------------------------


async def test_admin_sees_every_node_and_a_user_sees_none(harness, boss):
    assert await listed(boss) >= ALL_NODES
    alice = await connect(harness, f"alice@{DOMAIN}")
    try:
        assert not (await listed(alice)) & ALL_NODES
        info = await boss.plugin["xep_0030"].get_info(
            jid=DOMAIN, node=admin("add-user"), timeout=10
        )
        assert ns.COMMANDS in info["disco_info"]["features"]
        with pytest.raises(Exception) as err:
            await alice.plugin["xep_0030"].get_info(jid=DOMAIN, node=admin("add-user"), timeout=10)
        assert err.value.condition == "forbidden"
    finally:
        await disconnect(alice)


async def test_non_admin_is_forbidden_everywhere_with_no_side_effect(harness, boss):
    # the admin opens a session; mallory may not continue it either
    open_session = await command(boss, admin("delete-user"))
    mallory = await connect(harness, f"mallory@{DOMAIN}")
    try:
        before = await snapshot(harness.server.storage)
        for node in sorted(ALL_NODES):
            err = await refused(command(mallory, node))
            assert (err.type, err.condition) == ("cancel", "forbidden"), node
            err = await refused(
                command(
                    mallory, node, "complete", open_session.sessionid,
                    values={"accountjids": [f"alice@{DOMAIN}"]},
                )
            )  # fmt: skip
            assert err.condition == "forbidden", node
        assert await snapshot(harness.server.storage) == before
        assert not harness.server.shutdown_requested.is_set()
        # another admin's session id is unknown to a second admin
        await harness.add_user("admin2")
        config = harness.server.config
        harness.server.config = dataclasses.replace(config, admins=(ADMIN, f"admin2@{DOMAIN}"))
        second = await connect(harness, f"admin2@{DOMAIN}")
        try:
            err = await refused(
                command(second, admin("delete-user"), "complete", open_session.sessionid,
                        values={"accountjids": [f"alice@{DOMAIN}"]})
            )  # fmt: skip
            assert (err.condition, err.app) == ("bad-request", "bad-sessionid")
        finally:
            await disconnect(second)
        assert await harness.server.storage.get_account(f"alice@{DOMAIN}")
    finally:
        await disconnect(mallory)


async def test_admin_is_never_decided_by_localpart(harness):
    await harness.add_user("admin", domain=OTHER)  # same localpart, another domain: not an admin
    lookalike = await connect(harness, f"admin@{OTHER}")
    try:
        for to in (DOMAIN, OTHER):
            assert not (await listed(lookalike, to)) & ALL_NODES
            err = await refused(command(lookalike, admin("add-user"), to=to))
            assert err.condition == "forbidden"
    finally:
        await disconnect(lookalike)


async def test_an_admin_of_another_domain_administers_only_that_domain(tmp_path, pki):
    admins = {"admins": [ADMIN, f"admin@{OTHER}"]}
    async with running_server(tmp_path, pki, server=admins) as h:
        await h.add_user("bob")
        await h.add_user("admin", domain=OTHER)
        other = await connect(h, f"admin@{OTHER}")
        try:
            # commands sent to vines.test: forbidden
            err = await refused(command(other, admin("get-registered-users-num")))
            assert err.condition == "forbidden"
            assert not (await listed(other, DOMAIN)) & ALL_NODES
            # its own domain works, but not on vines.test's users
            assert await listed(other, OTHER) >= ALL_NODES
            for node, values in (
                ("delete-user", {"accountjids": [f"bob@{DOMAIN}"]}),
                ("disable-user", {"accountjids": [f"bob@{DOMAIN}"]}),
                ("change-user-password", {"accountjid": f"bob@{DOMAIN}", "password": "x"}),
                ("add-user", {"accountjid": f"eve@{DOMAIN}", "password": "x",
                              "password-verify": "x"}),
            ):  # fmt: skip
                err = await refused(run(other, admin(node), values, to=OTHER))
                assert err.condition == "forbidden", node
            assert await h.server.storage.list_accounts(DOMAIN) == [f"bob@{DOMAIN}"]
            assert not (await h.server.storage.get_account(f"bob@{DOMAIN}")).disabled
            count = await run(other, admin("get-registered-users-num"), to=OTHER)
            assert count.value("registeredusersnum") == "1"  # itself only
            # server-wide commands belong to operators of vines.toml on their own domain: ok
            stats = await run(other, ours("stats"), to=OTHER)
            assert stats.status == "completed"
        finally:
            await disconnect(other)


# ---- accounts ----------------------------------------------------------------------------


async def test_add_user(harness, boss):
    answer = await run(
        boss,
        admin("add-user"),
        {"accountjid": f"carol@{DOMAIN}", "password": "s3cret pass",
         "password-verify": "s3cret pass", "email": "carol@example.org", "given_name": "Carol",
         "surname": "Kay"},
    )  # fmt: skip
    assert answer.status == "completed" and answer.notes == [
        ("info", f"carol@{DOMAIN} was created")
    ]
    carol = await connect(harness, f"carol@{DOMAIN}", "s3cret pass")
    try:
        vcard = await carol.plugin["xep_0054"].get_vcard(f"carol@{DOMAIN}", timeout=10)
        assert vcard["vcard_temp"]["EMAIL"]["USERID"] == "carol@example.org"
        assert vcard["vcard_temp"]["N"]["GIVEN"] == "Carol"
    finally:
        await disconnect(carol)
    again = await run(
        boss, admin("add-user"),
        {"accountjid": f"carol@{DOMAIN}", "password": "x", "password-verify": "x"},
    )  # fmt: skip
    assert again.notes == [("error", f"carol@{DOMAIN} already exists")]


async def test_add_user_password_mismatch_keeps_the_form_open(harness, boss):
    first = await command(boss, admin("add-user"))
    assert first.form.form_type == ns.ADMIN
    assert first.form.field("password").type == "text-private"
    values = {"accountjid": f"dave@{DOMAIN}", "password": "one", "password-verify": "two"}
    err = await refused(
        command(boss, admin("add-user"), "complete", first.sessionid, values=values)
    )
    assert (err.condition, err.app) == ("bad-request", "bad-payload")
    assert "password-verify" in err.text
    assert await harness.server.storage.get_account(f"dave@{DOMAIN}") is None
    err = await refused(
        command(boss, admin("add-user"), "complete", first.sessionid,
                values={"accountjid": "dave@", "password": "a", "password-verify": "a"})
    )  # fmt: skip
    assert err.app == "bad-payload" and "accountjid" in err.text
    values["password-verify"] = "one"
    done = await command(boss, admin("add-user"), "complete", first.sessionid, values=values)
    assert done.status == "completed"
    assert await harness.server.storage.get_account(f"dave@{DOMAIN}") is not None


async def test_delete_user_closes_sessions_and_removes_data(harness, boss):
    storage = harness.server.storage
    await storage.put_roster_item(f"bob@{DOMAIN}", RosterItem(f"alice@{DOMAIN}", "Alice"))
    raw = await raw_login(harness, f"bob@{DOMAIN}")
    answer = await run(
        boss, admin("delete-user"), {"accountjids": [f"bob@{DOMAIN}", f"ghost@{DOMAIN}"]}
    )
    assert ("info", f"deleted: bob@{DOMAIN}") in answer.notes
    assert ("warn", f"no such account: ghost@{DOMAIN}") in answer.notes
    nothing = await run(boss, admin("delete-user"), {"accountjids": [f"ghost@{DOMAIN}"]})
    assert nothing.notes == [("error", f"no such account: ghost@{DOMAIN}")]
    await raw.expect_stream_error("not-authorized")
    assert await storage.get_account(f"bob@{DOMAIN}") is None
    assert await storage.get_roster(f"bob@{DOMAIN}") == []
    with pytest.raises(ConnectionError):
        await slixmpp_client(harness, f"bob@{DOMAIN}")


async def test_disable_and_reenable(harness, boss):
    storage = harness.server.storage
    await storage.put_roster_item(f"bob@{DOMAIN}", RosterItem(f"alice@{DOMAIN}", "Alice"))
    raw = await raw_login(harness, f"bob@{DOMAIN}")
    answer = await run(boss, admin("disable-user"), {"accountjids": [f"bob@{DOMAIN}"]})
    assert answer.notes == [("info", f"disabled: bob@{DOMAIN}")]
    await raw.expect_stream_error("not-authorized")
    # login refused with account-disabled; data kept
    raw = await RawClient.connect(harness.port(), harness.pki.ca_file)
    await raw.starttls()
    await raw.auth_plain("bob", PASSWORD)
    await raw.read_until(rb"<account-disabled/>")
    raw.close()
    assert (await storage.get_account(f"bob@{DOMAIN}")).disabled
    assert [i.jid for i in await storage.get_roster(f"bob@{DOMAIN}")] == [f"alice@{DOMAIN}"]
    disabled = await run(boss, admin("get-disabled-users-list"), {"max_items": "none"})
    assert disabled.values("disableduserjids") == [f"bob@{DOMAIN}"]
    assert (await run(boss, admin("get-disabled-users-num"))).value("disabledusersnum") == "1"

    answer = await run(boss, admin("reenable-user"), {"accountjids": [f"bob@{DOMAIN}"]})
    assert answer.notes == [("info", f"re-enabled: bob@{DOMAIN}")]
    bob = await connect(harness, f"bob@{DOMAIN}")
    await disconnect(bob)


async def test_end_user_session(harness, boss):
    one = await raw_login(harness, f"bob@{DOMAIN}")
    two = await raw_login(harness, f"bob@{DOMAIN}")
    alice = await raw_login(harness, f"alice@{DOMAIN}")
    alice_jid = next(s.jid for s in harness.server.sessions if s.jid.local == "alice")
    answer = await run(
        boss, admin("end-user-session"), {"accountjids": [f"bob@{DOMAIN}", str(alice_jid)]}
    )
    assert answer.notes == [("info", "3 sessions ended")]
    for raw in (one, two, alice):
        await raw.expect_stream_error("policy-violation")
    bob = await connect(harness, f"bob@{DOMAIN}")  # only the sessions end, not the account
    await disconnect(bob)


async def test_change_user_password(harness, boss):
    raw = await raw_login(harness, f"bob@{DOMAIN}")
    answer = await run(
        boss, admin("change-user-password"), {"accountjid": f"bob@{DOMAIN}", "password": "new one"}
    )
    assert answer.notes == [("info", f"the password of bob@{DOMAIN} was changed")]
    await raw.expect_stream_error("reset")
    with pytest.raises(ConnectionError):
        await slixmpp_client(harness, f"bob@{DOMAIN}", PASSWORD)
    bob = await connect(harness, f"bob@{DOMAIN}", "new one")
    await disconnect(bob)
    missing = await run(
        boss, admin("change-user-password"), {"accountjid": f"nobody@{DOMAIN}", "password": "x"}
    )
    assert missing.notes == [("error", f"no such account: nobody@{DOMAIN}")]


async def test_user_roster_lastlogin_and_stats(harness, boss):
    storage = harness.server.storage
    await storage.put_roster_item(
        f"bob@{DOMAIN}", RosterItem(f"alice@{DOMAIN}", "Alice", "both", groups=("Friends",))
    )
    bob = await connect(harness, f"bob@{DOMAIN}")
    try:
        roster = await run(boss, admin("get-user-roster"), {"accountjid": f"bob@{DOMAIN}"})
        query = roster.xml.find(f"{{{ns.XDATA}}}x/{{{ns.ROSTER}}}query")
        items = query.findall(f"{{{ns.ROSTER}}}item")
        assert [(i.get("jid"), i.get("name"), i.get("subscription")) for i in items] == [
            (f"alice@{DOMAIN}", "Alice", "both")
        ]
        assert items[0].findtext(f"{{{ns.ROSTER}}}group") == "Friends"

        last = await run(boss, admin("get-user-lastlogin"), {"accountjid": f"bob@{DOMAIN}"})
        assert last.value("lastlogin").endswith("Z") and last.value("lastlogin")[:2] == "20"
        never = await run(boss, admin("get-user-lastlogin"), {"accountjid": f"mallory@{DOMAIN}"})
        assert never.value("lastlogin") is None

        stats = await run(boss, admin("user-stats"), {"accountjid": f"bob@{DOMAIN}"})
        assert stats.values("ipaddresses") == ["127.0.0.1"]
        assert stats.value("rostersize") == "1"
        assert stats.values("onlineresources") == [bob.boundjid.resource]
    finally:
        await disconnect(bob)


# ---- numbers and lists -------------------------------------------------------------------


async def test_user_numbers_and_lists(harness, boss):
    alice = await connect(harness, f"alice@{DOMAIN}")
    bob = await connect(harness, f"bob@{DOMAIN}")
    try:
        bob.send_presence(pshow="away")
        await asyncio.sleep(0.3)

        async def num(what: str) -> str:
            answer = await run(boss, admin(f"get-{what}-users-num"))
            assert answer.status == "completed" and answer.form.form_type == ns.ADMIN
            return answer.value(f"{what}usersnum")

        async def jids(node: str, var: str, **values) -> list[str]:
            return (await run(boss, admin(node), values)).values(var)

        assert await num("registered") == "4"
        assert await num("online") == "3"
        assert await num("active") == "2"  # admin and alice; bob is away
        assert await num("idle") == "1"
        assert await num("disabled") == "0"
        users = [f"{u}@{DOMAIN}" for u in ("admin", "alice", "bob", "mallory")]
        assert await jids("get-registered-users-list", "registereduserjids") == users
        listing = await command(boss, admin("get-registered-users-list"))
        assert [v for _, v in listing.form.field("max_items").options] == [
            "25", "50", "75", "100", "150", "200", "none"
        ]  # fmt: skip
        limited = await jids("get-registered-users-list", "registereduserjids", max_items="25")
        assert limited == users
        assert await jids("get-online-users-list", "onlineuserjids") == users[:3]
        assert await jids("get-active-users", "activeuserjids") == users[:2]
        assert await jids("get-idle-users", "idleuserjids") == [f"bob@{DOMAIN}"]
        # values outside XEP-0133's options, as other clients send them: a word is no limit
        everyone = await jids("get-registered-users-list", "registereduserjids", max_items="all")
        assert everyone == users
        assert await jids("get-online-users-list", "onlineuserjids", max_items="2") == users[:2]
        err = await refused(run(boss, admin("get-registered-users-list"), {"max_items": "-7"}))
        assert err.app == "bad-payload" and "max_items" in err.text

        details = await run(boss, admin("get-online-users-list"), {"details": True})
        rows = details.rows()
        assert {r["jid"] for r in rows} == {str(c.boundjid) for c in (boss, alice, bob)}
        bob_row = next(r for r in rows if r["jid"] == str(bob.boundjid))
        assert bob_row["show"] == "away" and bob_row["ip"] == "127.0.0.1"
        assert [f.var for f in details.form.reported] == ["jid", "ip", "since", "show", "priority"]
        plain = await run(boss, admin("get-online-users-list"), {"details": False})
        assert plain.form.reported is None
    finally:
        await disconnect(alice, bob)


# ---- messages ----------------------------------------------------------------------------


async def test_announce_reaches_everyone_online(harness, boss):
    alice = await connect(harness, f"alice@{DOMAIN}")
    bob = await connect(harness, f"bob@{DOMAIN}")
    try:
        queues = [inbox(alice), inbox(bob)]
        answer = await run(
            boss, admin("announce"), {"subject": "Hi", "announcement": ["Line one", "Line two"]}
        )
        assert answer.notes == [("info", "announcement sent to 3 sessions")]
        for queue in queues:
            msg = await next_message(queue)
            assert msg["body"] == "Line one\nLine two" and msg["subject"] == "Hi"
            assert msg["type"] == "headline" and msg["from"] == DOMAIN
        err = await refused(run(boss, admin("announce"), {"announcement": []}))
        assert err.app == "bad-payload" and "announcement" in err.text
    finally:
        await disconnect(alice, bob)


async def test_message_of_the_day(harness, boss):
    bob = await connect(harness, f"bob@{DOMAIN}")
    try:
        bob_inbox = inbox(bob)
        await run(boss, admin("set-motd"), {"motd": ["Maintenance", "at noon"]})
        msg = await next_message(bob_inbox)  # sent at once to those online
        assert msg["body"] == "Maintenance\nat noon" and msg["subject"] == "Message of the day"
        # a later login gets it at its initial presence: test_motd_is_delivered_once_at_login
        edit = await command(boss, admin("edit-motd"))
        assert edit.form.field("motd").values == ["Maintenance", "at noon"]
        await command(boss, admin("edit-motd"), "complete", edit.sessionid,
                      values={"motd": ["Moved to 1pm"]})  # fmt: skip
        assert (await next_message(bob_inbox))["body"] == "Moved to 1pm"
        assert json.loads(await harness.server.storage.get_setting("admin.motd")) == {
            DOMAIN: "Moved to 1pm"
        }
        deleted = await run(boss, admin("delete-motd"))
        assert deleted.status == "completed"
        assert await harness.server.storage.get_setting("admin.motd") is None
    finally:
        await disconnect(bob)


async def test_motd_is_delivered_once_at_login(harness, boss):
    await run(boss, admin("set-motd"), {"motd": ["Hello all"]})
    raw = await raw_login(harness, f"alice@{DOMAIN}")
    await raw.send("<presence/>")
    data = await raw.read_until(rb"Hello all</body></message>")
    assert b"type='headline'" in data and b"Message of the day" in data
    await raw.send("<presence type='unavailable'/><presence/>")  # a second "initial" presence
    await raw.send("<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")
    data = await raw.read_until(rb"id='p1'")
    assert b"Hello all" not in data
    raw.close()


async def test_welcome_message_for_new_accounts(harness, boss):
    form = await command(boss, admin("set-welcome"))
    assert form.form.field("welcome").values == []
    await command(boss, admin("set-welcome"), "complete", form.sessionid,
                  values={"welcome": ["Welcome aboard!"]})  # fmt: skip
    again = await command(boss, admin("set-welcome"))
    assert again.form.field("welcome").values == ["Welcome aboard!"]  # prefilled
    await command(boss, admin("set-welcome"), "cancel", again.sessionid)
    new = {"accountjid": f"erin@{DOMAIN}", "password": "pw", "password-verify": "pw"}
    await run(boss, admin("add-user"), new)
    raw = await raw_login(harness, f"erin@{DOMAIN}", "pw")
    await raw.send("<presence/>")
    data = await raw.read_until(rb"Welcome aboard!</body>")
    assert b"<subject>Welcome</subject>" in data
    raw.close()
    await run(boss, admin("delete-welcome"))
    new = {"accountjid": f"fred@{DOMAIN}", "password": "pw", "password-verify": "pw"}
    await run(boss, admin("add-user"), new)
    assert await harness.server.storage.count_offline(f"fred@{DOMAIN}") == 0


# ---- lists of the service ----------------------------------------------------------------


async def test_edit_admin(harness, boss):
    form = await command(boss, admin("edit-admin"))
    assert form.form.field("adminjids").values == [ADMIN]
    done = await command(boss, admin("edit-admin"), "complete", form.sessionid,
                         values={"adminjids": [f"alice@{DOMAIN}"]})  # fmt: skip
    assert ("warn", f"kept (set in vines.toml): {ADMIN}") in done.notes
    alice = await connect(harness, f"alice@{DOMAIN}")
    try:
        assert admin("add-user") in await listed(alice)
        assert (await run(alice, admin("get-online-users-num"))).status == "completed"
        # but server-wide commands need an operator from vines.toml
        for node in (admin("shutdown"), admin("restart"), ours("reload")):
            assert node not in await listed(alice)
            assert (await refused(command(alice, node))).condition == "forbidden"
        err = await refused(run(boss, admin("edit-admin"), {"adminjids": [f"x@{OTHER}"]}))
        assert err.app == "bad-payload" and OTHER in err.text
        # deleting the account drops the grant: a new alice is no admin
        await run(boss, admin("delete-user"), {"accountjids": [f"alice@{DOMAIN}"]})
        assert json.loads(await harness.server.storage.get_setting("admin.admins") or "[]") == []
    finally:
        await disconnect(alice)


async def test_edit_whitelist_and_blacklist(tmp_path, pki):
    async with running_server(tmp_path, pki, federation={"allow": ["example.org"]}) as h:
        await h.add_user("admin")
        boss = await connect(h, ADMIN)
        try:
            form = await command(boss, admin("edit-whitelist"))
            assert form.form.field("whitelistjids").values == ["example.org"]
            values = {"whitelistjids": ["jabber.org", "example.net"]}
            done = await command(
                boss, admin("edit-whitelist"), "complete", form.sessionid, values=values
            )
            assert (
                "warn",
                "kept (set in [federation] allow in vines.toml): example.org",
            ) in done.notes
            again = await command(boss, admin("edit-whitelist"))
            assert again.form.field("whitelistjids").values == [
                "example.org", "example.net", "jabber.org"
            ]  # fmt: skip
            await run(boss, admin("edit-blacklist"), {"blacklistjids": ["spam.example"]})
            state = h.server.host.services["admins"]
            assert await state.federates(DOMAIN, "jabber.org")
            assert not await state.federates(DOMAIN, "spam.example")
            assert not await state.federates(OTHER, "jabber.org")  # per domain
            err = await refused(run(boss, admin("edit-blacklist"), {"blacklistjids": ["u@x.org"]}))
            assert err.app == "bad-payload" and "not a domain" in err.text
        finally:
            await disconnect(boss)


# ---- restart, shutdown, reload -----------------------------------------------------------


async def test_shutdown_and_restart(harness, boss):
    alice = await connect(harness, f"alice@{DOMAIN}")
    try:
        queue = inbox(alice)
        form = await command(boss, admin("shutdown"))
        assert [v for _, v in form.form.field("delay").options][:2] == ["0", "30"]
        done = await command(boss, admin("shutdown"), "complete", form.sessionid,
                             values={"delay": "0", "announcement": ["Back soon"]})  # fmt: skip
        assert done.notes == [("info", "the server shuts down in 0 seconds")]
        msg = await next_message(queue)
        assert msg["body"] == "Back soon"
        await asyncio.wait_for(harness.server.shutdown_requested.wait(), 5)
        assert harness.server.restart_requested is False
        again = await run(boss, admin("restart"), {"delay": "0"})
        assert again.notes == [("error", "the server is already stopping")]
    finally:
        await disconnect(alice)


async def test_restart_sets_the_flag(harness, boss):
    await run(boss, admin("restart"), {"delay": "0"})
    await asyncio.wait_for(harness.server.shutdown_requested.wait(), 5)
    assert harness.server.restart_requested is True


async def test_reload_configuration(tmp_path, pki):
    async with running_server(tmp_path, pki) as h:
        await h.add_user("admin")
        await h.add_user("carol")
        boss = await connect(h, ADMIN)
        try:
            failed = await run(boss, ours("reload"))  # no vines.toml on disk yet
            assert failed.notes[0][0] == "error" and "not reloaded" in failed.notes[0][1]
            cert, key = str(pki.cert), str(pki.key)
            (tmp_path / "vines.toml").write_text(
                f"""
[server]
admins = ["{ADMIN}", "carol@{DOMAIN}"]
[domains."{DOMAIN}"]
certificate = "{cert}"
key = "{key}"
[domains."{OTHER}"]
certificate = "{cert}"
key = "{key}"
[listeners]
bind = ["127.0.0.1"]
c2s_port = 0
c2s_direct_tls_port = false
[storage]
path = "{tmp_path / "vines.sqlite"}"
[limits]
pbkdf2_iterations = 4096
offline_quota = 7
[federation]
allow = ["example.org"]
"""
            )
            answer = await run(boss, ours("reload"))
            assert answer.values("changed") == ["admins", "federation", "limits"]
            assert answer.values("restart") == ["listeners"]
            assert h.server.router.offline_quota == 7
            assert h.server.config.federation.allow == ("example.org",)
            carol = await connect(h, f"carol@{DOMAIN}")
            try:
                assert (await run(carol, ours("reload"))).status == "completed"  # now an operator
            finally:
                await disconnect(carol)
        finally:
            await disconnect(boss)


# ---- our statistics and sessions ---------------------------------------------------------


async def test_stats(harness, boss):
    alice = await connect(harness, f"alice@{DOMAIN}")
    try:
        answer = await run(boss, ours("stats"))
        assert answer.form.form_type == ns.VINES_ADMIN
        assert int(answer.value("uptime")) >= 0
        assert answer.value("connections") == "2" and answer.value("sessions") == "2"
        assert answer.values("listeners") == ["c2s: 2"]
        assert answer.value("accounts") == "4"
        assert int(answer.value("stanzas_in")) > 0 and int(answer.value("stanzas_out")) > 0
        assert float(answer.value("stanzas_in_per_second")) > 0
        assert int(answer.value("memory_rss")) > 10_000_000
        assert int(answer.value("store_size")) > 0
    finally:
        await disconnect(alice)


async def test_cluster_of_one_node_is_this_server(harness, boss):
    """Without [cluster] the node list is this server alone, from its own figures."""
    alice = await connect(harness, f"alice@{DOMAIN}")
    try:
        answer = await run(boss, ours("cluster"))
        [row] = answer.rows()
        assert row["address"] == f"127.0.0.1:{harness.port()}"
        assert row["alive"] == "true" and row["heartbeat_age"] == "0.0"
        assert row["sessions"] == "2" and row["pid"] == str(os.getpid())
        assert float(row["load"]) >= 0 and row["name"]
    finally:
        await disconnect(alice)


async def test_sessions(harness, boss):
    alice = await connect(harness, f"alice@{DOMAIN}")
    try:
        answer = await run(boss, ours("sessions"))
        rows = {r["jid"]: r for r in answer.rows()}
        assert set(rows) == {str(boss.boundjid), str(alice.boundjid)}
        row = rows[str(alice.boundjid)]
        assert row["ip"] == "127.0.0.1" and row["listener"] == "c2s"
        assert row["tls_version"] in ("TLSv1.2", "TLSv1.3") and row["cipher"]
        assert row["mechanism"].startswith("SCRAM-SHA-")
        assert row["since"].endswith("Z") and row["state"] and row["presence"] == "available"
    finally:
        await disconnect(alice)


# ---- persistence -------------------------------------------------------------------------


async def test_settings_survive_a_restart(tmp_path, pki):
    async with running_server(tmp_path, pki) as h:
        await h.add_user("admin")
        await h.add_user("alice")
        boss = await connect(h, ADMIN)
        try:
            await run(boss, admin("edit-admin"), {"adminjids": [ADMIN, f"alice@{DOMAIN}"]})
            await run(boss, admin("set-motd"), {"motd": ["Persisted MOTD"]})
            await run(boss, admin("set-welcome"), {"welcome": ["Persisted welcome"]})
            await run(boss, admin("edit-whitelist"), {"whitelistjids": ["jabber.org"]})
            await run(boss, admin("edit-blacklist"), {"blacklistjids": ["spam.example"]})
            await run(boss, admin("disable-user"), {"accountjids": [f"alice@{DOMAIN}"]})
            await run(boss, admin("reenable-user"), {"accountjids": [f"alice@{DOMAIN}"]})
        finally:
            await disconnect(boss)
    async with running_server(tmp_path, pki) as h:
        h.users.update({ADMIN: PASSWORD, f"alice@{DOMAIN}": PASSWORD})
        alice = await connect(h, f"alice@{DOMAIN}")  # an admin from the store, after a restart
        try:
            assert admin("add-user") in await listed(alice)
            for node, var, expected in (
                ("edit-admin", "adminjids", [ADMIN, f"alice@{DOMAIN}"]),
                ("edit-motd", "motd", ["Persisted MOTD"]),
                ("set-welcome", "welcome", ["Persisted welcome"]),
                ("edit-whitelist", "whitelistjids", ["jabber.org"]),
                ("edit-blacklist", "blacklistjids", ["spam.example"]),
            ):
                form = await command(alice, admin(node))
                assert form.form.field(var).values == expected, node
                await command(alice, admin(node), "cancel", form.sessionid)
        finally:
            await disconnect(alice)

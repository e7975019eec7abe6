"""A domain admin (added with edit-admin, kept in the store) never acts on an operator account
(an admin listed in vines.toml): every XEP-0133 node that takes accounts refuses it with
`forbidden` and leaves the operator untouched, while an operator acting on an operator still
works. Otherwise a domain admin could reset an operator's password and log in as it."""

from __future__ import annotations

import pytest
from vines_server.xmpp.jid import JID

from tests.support.adhoc import admin, command, refused, run
from tests.support.xmpp import DOMAIN, PASSWORD, disconnect, running_server, slixmpp_client

BOSS = f"admin@{DOMAIN}"  # operator
ROOT = f"root@{DOMAIN}"  # operator, the target
GHOST = f"ghost@{DOMAIN}"  # operator listed in vines.toml whose account does not exist yet
DEPUTY = f"deputy@{DOMAIN}"  # domain admin, stored
BOB = f"bob@{DOMAIN}"

# node -> the values that make it act on ROOT
AGAINST_ROOT = {
    "delete-user": {"accountjids": [ROOT]},
    "disable-user": {"accountjids": [ROOT]},
    "reenable-user": {"accountjids": [ROOT]},
    "end-user-session": {"accountjids": [ROOT]},
    "change-user-password": {"accountjid": ROOT, "password": "taken over"},
    "get-user-roster": {"accountjid": ROOT},
    "get-user-lastlogin": {"accountjid": ROOT},
    "user-stats": {"accountjid": ROOT},
    "edit-admin": {"adminjids": [BOSS, GHOST, DEPUTY]},  # leaves ROOT out
}


async def connect(harness, jid: str, password: str = PASSWORD):
    client = await slixmpp_client(harness, jid, password)
    client.register_plugin("xep_0050")
    return client


@pytest.fixture
async def world(tmp_path, pki):
    operators = {"admins": [BOSS, ROOT, GHOST]}
    async with running_server(tmp_path, pki, server=operators) as h:
        for local in ("admin", "root", "deputy", "bob"):
            await h.add_user(local)
        boss = await connect(h, BOSS)
        await run(boss, admin("edit-admin"), {"adminjids": [BOSS, ROOT, GHOST, DEPUTY]})
        deputy = await connect(h, DEPUTY)
        root = await connect(h, ROOT)
        try:
            yield h, boss, deputy, root
        finally:
            await disconnect(boss, deputy, root)


async def root_state(harness) -> tuple:
    storage = harness.server.storage
    account = await storage.get_account(ROOT)
    sessions = [str(s.jid) for s in harness.server.sessions.resources(JID.parse(ROOT))]
    admins = await storage.get_setting("admin.admins")
    return account.credentials, account.disabled, sessions, admins


async def test_a_domain_admin_is_refused_every_account_node_against_an_operator(world):
    harness, _boss, deputy, root = world
    before = await root_state(harness)
    full = str(root.boundjid)
    cases = [*AGAINST_ROOT.items(), ("end-user-session", {"accountjids": [full]})]
    for name, values in cases:
        err = await refused(run(deputy, admin(name), values))
        assert (err.type, err.condition) == ("cancel", "forbidden"), name
        assert ROOT in (err.text or ""), name
        assert await root_state(harness) == before, name
    # the operator's own stream is still there and answers
    await root.plugin["xep_0199"].ping(jid=DOMAIN, timeout=5)


async def test_a_domain_admin_cannot_create_an_operator_account(world):
    harness, _boss, deputy, _root = world
    values = {"accountjid": GHOST, "password": "mine now", "password-verify": "mine now"}
    err = await refused(run(deputy, admin("add-user"), values))
    assert err.condition == "forbidden"
    assert await harness.server.storage.get_account(GHOST) is None


async def test_a_mixed_list_is_refused_before_any_effect(world):
    harness, _boss, deputy, _root = world
    err = await refused(run(deputy, admin("disable-user"), {"accountjids": [BOB, ROOT]}))
    assert err.condition == "forbidden"
    assert not (await harness.server.storage.get_account(BOB)).disabled


async def test_the_domain_admin_still_administers_ordinary_accounts(world):
    harness, _boss, deputy, _root = world
    done = await run(deputy, admin("disable-user"), {"accountjids": [BOB]})
    assert done.notes == [("info", f"disabled: {BOB}")]
    assert (await harness.server.storage.get_account(BOB)).disabled
    stats = await run(deputy, admin("user-stats"), {"accountjid": BOB})
    assert stats.value("rostersize") == "0"


async def test_an_operator_acts_on_an_operator(world):
    harness, boss, _deputy, _root = world
    before = (await harness.server.storage.get_account(ROOT)).credentials
    done = await run(boss, admin("change-user-password"), {"accountjid": ROOT, "password": "new"})
    assert done.notes == [("info", f"the password of {ROOT} was changed")]
    assert (await harness.server.storage.get_account(ROOT)).credentials != before
    stats = await run(boss, admin("user-stats"), {"accountjid": ROOT})
    assert stats.value("accountjid") == ROOT
    done = await run(boss, admin("disable-user"), {"accountjids": [ROOT]})
    assert (await harness.server.storage.get_account(ROOT)).disabled
    values = {"accountjid": GHOST, "password": "pw", "password-verify": "pw"}
    assert (await run(boss, admin("add-user"), values)).status == "completed"


async def test_a_domain_admin_command_session_is_refused_at_the_end_not_the_start(world):
    # the form is shown (the node is the admin's); the account is checked when submitted
    _harness, _boss, deputy, _root = world
    first = await command(deputy, admin("change-user-password"))
    assert first.status == "executing"
    err = await refused(
        command(
            deputy, admin("change-user-password"), "complete", first.sessionid,
            values={"accountjid": ROOT.upper(), "password": "x"},
        )
    )  # fmt: skip
    assert err.condition == "forbidden"

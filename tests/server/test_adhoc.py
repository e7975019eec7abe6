"""Ad-hoc commands (XEP-0050) end to end: discovery, multi-stage flows, sessions, every error."""

from __future__ import annotations

import asyncio

import pytest
from vines_server.core.commands import (
    MAX_SESSIONS_PER_REQUESTER,
    Command,
    CommandFailed,
    Context,
    Note,
    Result,
)
from vines_server.xmpp import ns
from vines_server.xmpp.forms import Field, Form

from tests.support.adhoc import command, listed, refused, run
from tests.support.xmpp import DOMAIN, disconnect, running_server, slixmpp_client

FLOW = "urn:test#flow"
ONE = "urn:test#one"
NOW = "urn:test#now"
FAIL = "urn:test#fail"
SECRET = "urn:test#secret"
FT = "urn:test"


def stage_name(ctx: Context) -> Form:
    return Form(
        "form",
        "Name",
        fields=[
            Field("FORM_TYPE", "hidden", values=[FT]),
            Field("name", "text-single", "Your name", required=True),
            Field("flag", "boolean", "A flag"),
        ],
    )


async def stage_color(ctx: Context) -> Form:
    return Form(
        "form",
        f"Hello {ctx.values['name']}",
        fields=[Field("color", "list-single", options=[("Red", "red"), ("Blue", "blue")])],
    )


def stage_who(ctx: Context) -> Form:
    ctx.notes.append(Note("info", "last step"))
    return Form("form", "Who", fields=[Field("who", "jid-multi", required=True)])


async def finish(ctx: Context) -> Result:
    v = ctx.values
    form = Form(
        "result",
        fields=[
            Field("summary", "text-single", values=[f"{v['name']}/{v['flag']}/{v['color']}"]),
            Field("who", "jid-multi", values=v["who"]),
        ],
    )
    return Result.info("done", form)


async def now(ctx: Context) -> Result:
    return Result.info(f"hello {ctx.requester}")


async def fail(ctx: Context) -> Result:
    raise CommandFailed("that went wrong")


def register(harness) -> None:
    registry = harness.server.host.services["adhoc"]
    registry.add(Command(FLOW, "Flow", finish, (stage_name, stage_color, stage_who)))
    registry.add(Command(ONE, "One", finish_one, (stage_name,)))
    registry.add(Command(NOW, "Now", now))
    registry.add(Command(FAIL, "Fail", fail))
    registry.add(
        Command(SECRET, "Secret", now, allowed=lambda requester, service: requester.local == "bob")
    )


async def finish_one(ctx: Context) -> Result:
    return Result.info(f"one {ctx.values['name']} {ctx.values['flag']}")


@pytest.fixture
async def alice(harness):
    register(harness)
    client = await slixmpp_client(harness, f"alice@{DOMAIN}")
    client.register_plugin("xep_0050")
    yield client
    await disconnect(client)


async def test_commands_are_discoverable(harness, alice):
    info = await alice.plugin["xep_0030"].get_info(jid=DOMAIN, timeout=10)
    assert ns.COMMANDS in info["disco_info"]["features"]
    items = await alice.plugin["xep_0050"].get_commands(DOMAIN, timeout=10)
    nodes = {(node, name) for _jid, node, name in items["disco_items"]["items"]}
    assert {(FLOW, "Flow"), (ONE, "One"), (NOW, "Now"), (FAIL, "Fail")} <= nodes
    assert SECRET not in {n for n, _ in nodes}  # filtered by `allowed`
    node_info = await alice.plugin["xep_0030"].get_info(jid=DOMAIN, node=FLOW, timeout=10)
    assert ("automation", "command-node", None, "Flow") in node_info["disco_info"]["identities"]
    assert ns.COMMANDS in node_info["disco_info"]["features"]
    list_info = await alice.plugin["xep_0030"].get_info(jid=DOMAIN, node=ns.COMMANDS, timeout=10)
    assert {i[:2] for i in list_info["disco_info"]["identities"]} == {
        ("automation", "command-list")
    }


async def test_multi_stage_flow_with_prev_and_next(harness, alice):
    first = await command(alice, FLOW)
    assert first.status == "executing" and len(first.sessionid) >= 20
    assert first.actions == ["next"] and first.default == "next"
    assert first.form.title == "Name"
    sid = first.sessionid

    second = await command(alice, FLOW, "next", sid, form=submit_name("Juliet", True))
    assert second.form.title == "Hello Juliet"  # a later stage sees earlier values
    assert second.actions == ["prev", "next"] and second.default == "next"

    back = await command(alice, FLOW, "prev", sid)
    assert back.form.title == "Name" and back.actions == ["next"]
    assert back.form.field("name").values == ["Juliet"]  # earlier answers are shown again
    assert back.form.field("flag").values == ["1"]

    again = await command(alice, FLOW, "next", sid, form=submit_name("Romeo", False))
    assert again.form.title == "Hello Romeo"
    # 'execute' on a running session takes the offered default (next)
    third = await command(
        alice, FLOW, "execute", sid, form=Form("submit", fields=[f("color", "blue")])
    )
    assert third.actions == ["prev", "complete"] and third.default == "complete"
    assert ("info", "last step") in third.notes

    done = await command(
        alice, FLOW, "complete", sid, form=Form("submit", fields=[f("who", "a@x", "b@y")])
    )
    assert done.status == "completed" and done.sessionid == sid
    assert done.notes == [("info", "done")]
    assert done.value("summary") == "Romeo/False/blue"
    assert done.values("who") == ["a@x", "b@y"]

    err = await refused(command(alice, FLOW, "next", sid, form=submit_name("x", False)))
    assert (err.type, err.condition, err.app) == ("cancel", "not-allowed", "session-expired")


async def test_single_stage_and_immediate_commands(harness, alice):
    first = await command(alice, ONE)
    assert first.actions == ["complete"] and first.default == "complete"
    done = await command(alice, ONE, None, first.sessionid, form=submit_name("Ann", True))
    assert done.status == "completed" and done.notes == [("info", "one Ann True")]

    immediate = await command(alice, NOW)
    assert immediate.status == "completed"
    assert immediate.notes == [("info", f"hello alice@{DOMAIN}/{alice.boundjid.resource}")]

    failed = await command(alice, FAIL)
    assert failed.status == "completed" and failed.notes == [("error", "that went wrong")]


async def test_cancel_ends_the_session(harness, alice):
    first = await command(alice, FLOW)
    canceled = await command(alice, FLOW, "cancel", first.sessionid)
    assert canceled.status == "canceled"
    err = await refused(command(alice, FLOW, "next", first.sessionid, form=submit_name("a", False)))
    assert (err.condition, err.app) == ("not-allowed", "session-expired")


async def test_session_ids_are_unique_and_bound_to_the_full_jid(harness, alice):
    bob = await slixmpp_client(harness, f"bob@{DOMAIN}")
    alice2 = await slixmpp_client(harness, f"alice@{DOMAIN}")
    try:
        ids = {(await command(alice, FLOW)).sessionid for _ in range(5)}
        assert len(ids) == 5
        sid = ids.pop()
        for other in (bob, alice2):  # another user, and the same user on another resource
            err = await refused(command(other, FLOW, "next", sid, form=submit_name("x", False)))
            assert (err.type, err.condition, err.app) == ("modify", "bad-request", "bad-sessionid")
        # the owner still can continue: the foreign attempts did not end it
        assert (
            await command(alice, FLOW, "next", sid, form=submit_name("x", False))
        ).status == "executing"
        err = await refused(command(alice, FLOW, "next", "no-such-session"))
        assert (err.condition, err.app) == ("bad-request", "bad-sessionid")
        # a session of another node is unknown to this node
        err = await refused(command(alice, ONE, "complete", sid, form=submit_name("x", False)))
        assert err.app == "bad-sessionid"
    finally:
        await disconnect(bob, alice2)


async def test_sessions_expire(tmp_path, pki):
    async with running_server(tmp_path, pki, deadlines={"adhoc_session": 0.3}) as h:
        await h.add_user("alice")
        register(h)
        client = await slixmpp_client(h, f"alice@{DOMAIN}")
        try:
            first = await command(client, FLOW)
            await asyncio.sleep(0.5)
            err = await refused(
                command(client, FLOW, "next", first.sessionid, form=submit_name("a", False))
            )
            assert (err.type, err.condition, err.app) == (
                "cancel",
                "not-allowed",
                "session-expired",
            )
            # activity keeps a session alive
            second = await command(client, FLOW)
            for _ in range(3):
                await asyncio.sleep(0.15)
                back = await command(
                    client, FLOW, "next", second.sessionid, form=submit_name("a", False)
                )
                back = await command(client, FLOW, "prev", second.sessionid)
            assert back.status == "executing"
        finally:
            await disconnect(client)


async def test_action_errors(harness, alice):
    err = await refused(command(alice, FLOW, "frobnicate"))
    assert (err.type, err.condition, err.app) == ("modify", "bad-request", "malformed-action")
    for action in ("next", "complete", "prev", "cancel"):  # a session starts with execute
        err = await refused(command(alice, FLOW, action))
        assert (err.condition, err.app) == ("bad-request", "bad-action"), action
    first = await command(alice, FLOW)
    err = await refused(command(alice, FLOW, "prev", first.sessionid))
    assert (err.condition, err.app) == ("bad-request", "bad-action")
    err = await refused(
        command(alice, FLOW, "complete", first.sessionid, form=submit_name("a", False))
    )
    assert err.app == "bad-action"  # complete is only offered on the last stage
    err = await refused(command(alice, FLOW, "frobnicate", first.sessionid))
    assert err.app == "malformed-action"
    # the session survived the refused actions
    assert (
        await command(alice, FLOW, "next", first.sessionid, form=submit_name("a", False))
    ).status == "executing"


@pytest.mark.parametrize(
    ("form", "words"),
    [
        (None, "field 'name': is required"),
        (Form("submit", fields=[]), "field 'name': is required"),
        (Form("submit", fields=[Field("FORM_TYPE", None, values=["urn:other"])]), "FORM_TYPE"),
        (Form("form", fields=[Field("name", None, values=["a"])]), "type 'submit'"),
        (
            Form(
                "submit",
                fields=[Field("name", None, values=["a"]), Field("flag", None, values=["maybe"])],
            ),
            "field 'flag'",
        ),
        (Form("submit", fields=[Field("name", None, values=["a", "b"])]), "single value"),
        (Form("submit", fields=[Field("name", None, values=["x" * 70_000])]), "longer than"),
    ],
)
async def test_bad_payload(harness, alice, form, words):
    first = await command(alice, FLOW)
    err = await refused(command(alice, FLOW, "next", first.sessionid, form=form))
    assert (err.type, err.condition, err.app) == ("modify", "bad-request", "bad-payload")
    assert words in (err.text or "")
    # nothing moved: the same stage accepts a good form afterwards
    ok = await command(alice, FLOW, "next", first.sessionid, form=submit_name("a", False))
    assert ok.form.title == "Hello a"


async def test_payload_errors_in_later_stages(harness, alice):
    sid = (await command(alice, FLOW)).sessionid
    await command(alice, FLOW, "next", sid, form=submit_name("a", False))
    err = await refused(
        command(alice, FLOW, "next", sid, form=Form("submit", fields=[f("color", "green")]))
    )
    assert err.app == "bad-payload" and "not one of the options" in err.text
    await command(alice, FLOW, "next", sid, form=Form("submit", fields=[f("color", "red")]))
    err = await refused(
        command(alice, FLOW, "complete", sid, form=Form("submit", fields=[f("who", "@@")]))
    )
    assert err.app == "bad-payload" and "field 'who'" in err.text
    x = Form("submit", fields=[f("who", "a@b")]).to_element()
    err = await refused(
        command(
            alice, FLOW, "complete", sid, form=Form("submit", fields=[f("who", "a@b")]), extra=[x]
        )
    )
    assert err.app == "bad-payload" and "more than one" in err.text
    done = await command(
        alice, FLOW, "complete", sid, form=Form("submit", fields=[f("who", "a@b")])
    )
    assert done.status == "completed"


async def test_other_errors(harness, alice):
    err = await refused(command(alice, "urn:test#nothing"))
    assert (err.type, err.condition) == ("cancel", "item-not-found")
    err = await refused(command(alice, SECRET))
    assert (err.type, err.condition) == ("cancel", "forbidden")
    info_err = None
    try:
        await alice.plugin["xep_0030"].get_info(jid=DOMAIN, node=SECRET, timeout=10)
    except Exception as exc:  # slixmpp IqError
        info_err = exc
    assert info_err is not None and info_err.condition == "forbidden"
    err = await refused(command(alice, NOW, iq_type="get"))
    assert err.condition == "bad-request"
    err = await refused(command(alice, NOW, to=f"bob@{DOMAIN}"))
    assert err.condition == "service-unavailable"  # commands live on the domain


async def test_session_cap_per_requester(harness, alice):
    for _ in range(MAX_SESSIONS_PER_REQUESTER):
        await command(alice, FLOW)
    err = await refused(command(alice, FLOW))
    assert (err.type, err.condition) == ("cancel", "not-allowed")
    assert (await command(alice, NOW)).status == "completed"  # holds no session: runs


async def test_a_listed_command_runs(harness, alice):
    assert FLOW in await listed(alice)
    answer = await run(alice, ONE, {"name": "x"}, form_type=FT)
    assert answer.status == "completed"


def submit_name(name: str, flag: bool) -> Form:
    return Form(
        "submit",
        fields=[
            Field("FORM_TYPE", "hidden", values=[FT]),
            Field("name", None, values=[name]),
            Field("flag", None, values=["1" if flag else "0"]),
        ],
    )


def f(var: str, *values: str) -> Field:
    return Field(var, None, values=list(values))

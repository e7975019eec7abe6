"""Modules that only add ad-hoc commands load at their first use (vines_server.modules.lazy):
until then disco lists their commands as the modules themselves register them (the same
nodes, names, order and who may see them), and the first request for one loads its module."""

from __future__ import annotations

from pathlib import Path

import pytest
from vines_server.modules import lazy
from vines_server.server import Server

from tests.support.xmpp import DOMAIN, server_config


def listing(server: Server) -> list[tuple[str, str, str]]:
    registry = server.host.services["adhoc"]
    return [(c.node, c.name, c.allowed.__name__) for c in registry]


async def opened(tmp_path: Path, pki) -> Server:
    server = Server(server_config(pki, tmp_path, backend="memory"))
    await server.open()
    return server


async def test_declared_commands_are_what_their_modules_register(
    tmp_path: Path, pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    lazy_server = await opened(tmp_path / "lazy", pki)
    registry = lazy_server.host.services["adhoc"]
    declared = listing(lazy_server)
    assert all(registry.declared(node) for m in lazy.COMMANDS for node, _, _ in lazy.COMMANDS[m])

    with monkeypatch.context() as m:
        m.setattr(lazy, "COMMANDS", {})  # every module loaded at start, as before
        eager = listing(await opened(tmp_path / "eager", pki))
    # a module's commands changed: COMMANDS must say what it registers now
    assert declared == eager

    for module in lazy.COMMANDS:  # the first use loads the module; nothing moves
        registry.get(lazy.COMMANDS[module][0][0])
    assert not any(registry.declared(node) for node, _, _ in declared)
    assert listing(lazy_server) == eager


async def test_a_declared_command_runs_and_is_listed_only_to_admins(tmp_path: Path, pki) -> None:
    """Over the wire: an admin lists and runs one, a user sees none of them."""
    from tests.support.xmpp import raw_login, running_server

    async with running_server(tmp_path, pki) as h:
        await h.add_user("admin")
        await h.add_user("alice")
        registry = h.server.host.services["adhoc"]
        node = "http://jabber.org/protocol/admin#get-registered-users-num"
        assert registry.declared(node)
        items = (
            f"<iq type='get' id='i' to='{DOMAIN}'><query xmlns='http://jabber.org/protocol/"
            "disco#items' node='http://jabber.org/protocol/commands'/></iq>"
        )
        alice = await raw_login(h, "alice")
        await alice.send(items)
        assert node.encode() not in await alice.read_until(r"</iq>")
        admin = await raw_login(h, "admin")
        await admin.send(items)
        assert f"node='{node}'".encode() in (await admin.read_until(r"</iq>")).replace(b'"', b"'")
        assert registry.declared(node)  # listing loads nothing
        await admin.send(
            f"<iq type='set' id='c' to='{DOMAIN}'><command xmlns='http://jabber.org/protocol/"
            f"commands' node='{node}' action='execute'/></iq>"
        )
        reply = await admin.read_until(r"</iq>")
        assert b"type='result'" in reply.replace(b'"', b"'")
        assert b"registeredusersnum" in reply
        assert not registry.declared(node)
        alice.close()
        admin.close()

"""Modules that only add ad-hoc commands (XEP-0050/0133) are loaded at their first use.

Until then their commands are declared from `COMMANDS`: disco lists them, with the same name,
to the same requesters (`AdminState.allow_admin` or `allow_operator`), and the first request
for any of them loads the module, whose commands take the declared places. A plain client never
uses them, and their code (~0.1 MB resident) stays out of a fresh server (issue 14).

The modules are the source of truth: `COMMANDS` is what they register, checked by
tests/server/test_lazy_commands.py, which prints the new table when a module changed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from vines_server.core.admins import node
from vines_server.core.commands import Command, Context, Result
from vines_server.xmpp import ns

if TYPE_CHECKING:
    from vines_server.core.api import ModuleHost

V = ns.VINES_ADMIN  # our own nodes; the rest are XEP-0133's (node()'s default)

# module -> (node, name, who may run it: an AdminState method), in registration order
COMMANDS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "userlists": (
        (node("get-registered-users-num"), "Get Number of Registered Users", "allow_admin"),
        (node("get-registered-users-list"), "Get List of Registered Users", "allow_admin"),
        (node("get-disabled-users-num"), "Get Number of Disabled Users", "allow_admin"),
        (node("get-disabled-users-list"), "Get List of Disabled Users", "allow_admin"),
        (node("get-online-users-num"), "Get Number of Online Users", "allow_admin"),
        (node("get-active-users-num"), "Get Number of Active Users", "allow_admin"),
        (node("get-active-users"), "Get List of Active Users", "allow_admin"),
        (node("get-idle-users-num"), "Get Number of Idle Users", "allow_admin"),
        (node("get-idle-users"), "Get List of Idle Users", "allow_admin"),
        (node("get-online-users-list"), "Get List of Online Users", "allow_admin"),
    ),
    "message_admin": ((node("send-message", V), "Send a Message", "allow_admin"),),
    "roster_admin": (
        (node("roster-add", V), "Add a Roster Item", "allow_admin"),
        (node("roster-remove", V), "Remove a Roster Item", "allow_admin"),
    ),
    "stats": (
        (node("stats", V), "Server Statistics", "allow_admin"),
        (node("sessions", V), "List Sessions", "allow_admin"),
    ),
    "federation": (
        (node("s2s", V), "List Server-to-Server Streams", "allow_operator"),
        (node("s2s-close", V), "Close Server-to-Server Streams", "allow_operator"),
    ),
}


async def _not_loaded(ctx: Context) -> Result:
    raise RuntimeError("a declared command runs only after its module was loaded")


def declare(host: ModuleHost, name: str) -> None:
    """Declare the commands of module `name`; the first `get` of one loads the module."""
    api = host.api(name)
    registry, admins = api.use("adhoc"), api.use("admins")
    loaded = False

    def load() -> None:
        nonlocal loaded
        if not loaded:
            loaded = True
            importlib.import_module(f"vines_server.modules.{name}").setup(api)

    for at, title, allowed in COMMANDS[name]:
        registry.declare(Command(at, title, _not_loaded, (), getattr(admins, allowed)), load)

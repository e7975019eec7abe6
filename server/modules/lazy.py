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

from vines_server.core.commands import Command, Context, Result

if TYPE_CHECKING:
    from vines_server.core.api import ModuleHost

A = "http://jabber.org/protocol/admin#"  # XEP-0133 (ns.ADMIN)
V = "urn:vinesctl:admin#"  # our own (ns.VINES_ADMIN)

# module -> (node, name, who may run it: an AdminState method), in registration order
COMMANDS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "userlists": (
        (A + "get-registered-users-num", "Get Number of Registered Users", "allow_admin"),
        (A + "get-registered-users-list", "Get List of Registered Users", "allow_admin"),
        (A + "get-disabled-users-num", "Get Number of Disabled Users", "allow_admin"),
        (A + "get-disabled-users-list", "Get List of Disabled Users", "allow_admin"),
        (A + "get-online-users-num", "Get Number of Online Users", "allow_admin"),
        (A + "get-active-users-num", "Get Number of Active Users", "allow_admin"),
        (A + "get-active-users", "Get List of Active Users", "allow_admin"),
        (A + "get-idle-users-num", "Get Number of Idle Users", "allow_admin"),
        (A + "get-idle-users", "Get List of Idle Users", "allow_admin"),
        (A + "get-online-users-list", "Get List of Online Users", "allow_admin"),
    ),
    "message_admin": ((V + "send-message", "Send a Message", "allow_admin"),),
    "roster_admin": (
        (V + "roster-add", "Add a Roster Item", "allow_admin"),
        (V + "roster-remove", "Remove a Roster Item", "allow_admin"),
    ),
    "stats": (
        (V + "stats", "Server Statistics", "allow_admin"),
        (V + "sessions", "List Sessions", "allow_admin"),
    ),
    "federation": (
        (V + "s2s", "List Server-to-Server Streams", "allow_operator"),
        (V + "s2s-close", "Close Server-to-Server Streams", "allow_operator"),
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

    for node, title, allowed in COMMANDS[name]:
        registry.declare(Command(node, title, _not_loaded, (), getattr(admins, allowed)), load)

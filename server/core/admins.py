"""Who administers what, and the service settings administrators change over XMPP.

Admins are bare JIDs on a domain we host: those in `[server] admins` of vines.toml plus those
added with edit-admin (kept in the store). An admin of a domain administers that domain only;
a JID is never an admin because of its localpart. Admins listed in vines.toml are operators:
only they may run server-wide commands (restart, shutdown, reload), and only they may act on an
operator's account: a domain admin who could reset an operator's password (or create, delete,
disable or kick it) could log in as it and run everything an operator can.

What edit-admin, edit-whitelist, edit-blacklist, the MOTD and the welcome message change is
kept with `storage.set_setting` (JSON), per domain, and merged with vines.toml, which the
server never writes. Values are loaded once, on first use, and written through.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from vines_server.xmpp import ns
from vines_server.xmpp.errors import StanzaError
from vines_server.xmpp.forms import Field, Form
from vines_server.xmpp.jid import JID, JIDError

if TYPE_CHECKING:
    from vines_server.core.api import ModuleAPI

# setting key -> JSON shape
KEYS = {
    "admins": "admin.admins",  # list of bare JIDs
    "allow": "admin.federation-allow",  # {domain: [peer domains]}
    "block": "admin.federation-block",  # {domain: [peer domains]}
    "motd": "admin.motd",  # {domain: text}
    "welcome": "admin.welcome",  # {domain: text}
}


class AdminState:
    def __init__(self, server: ModuleAPI) -> None:
        self.server = server  # what it reads: storage, config, domains
        self._stored: dict[str, Any] | None = None
        self._lock = asyncio.Lock()

    # ---- loading and saving --------------------------------------------------------------

    async def load(self) -> dict[str, Any]:
        if self._stored is None:
            async with self._lock:
                if self._stored is None:
                    stored: dict[str, Any] = {}
                    for name, key in KEYS.items():
                        raw = await self.server.storage.get_setting(key)
                        default: Any = [] if name == "admins" else {}
                        stored[name] = json.loads(raw) if raw else default
                    self._stored = stored
        return self._stored

    async def _save(self, name: str) -> None:
        stored = await self.load()
        value = stored[name]
        await self.server.storage.set_setting(KEYS[name], json.dumps(value) if value else None)

    # ---- admins --------------------------------------------------------------------------

    def configured(self) -> set[str]:
        jids = set()
        for admin in self.server.config.admins:
            try:
                jids.add(str(JID.parse(admin).bare))
            except JIDError:
                continue  # config validation reports these; never an admin
        return jids

    def is_operator(self, requester: JID) -> bool:
        """Listed in vines.toml and on a domain we host: may run server-wide commands."""
        bare = requester.bare
        return (
            bare.local is not None
            and bare.domain in self.server.domains
            and str(bare) in self.configured()
        )

    def is_admin(self, requester: JID, domain: str) -> bool:
        """Administers `domain`: a bare-JID match on that very domain (never by localpart)."""
        bare = requester.bare
        if bare.local is None or bare.domain != domain or domain not in self.server.domains:
            return False
        stored = self._stored["admins"] if self._stored is not None else []
        return str(bare) in self.configured() or str(bare) in stored

    def guard_operators(self, requester: JID, targets: Iterable[JID]) -> None:
        """Refuses (forbidden) a requester who is not an operator acting on an operator's
        account, before any effect."""
        if self.is_operator(requester):
            return
        operators = sorted({str(t.bare) for t in targets} & self.configured())
        if operators:
            raise StanzaError(
                "forbidden",
                f"{', '.join(operators)}: an operator account (vines.toml [server] admins) "
                "can only be changed by an operator",
                type="cancel",
            )

    def allow_admin(self, requester: JID, service: JID) -> bool:
        """A Command's `allowed` for domain administration commands."""
        return self.is_admin(requester, service.domain)

    def allow_operator(self, requester: JID, service: JID) -> bool:
        """A Command's `allowed` for server-wide commands."""
        return self.is_operator(requester) and self.is_admin(requester, service.domain)

    async def admins(self, domain: str) -> tuple[list[str], list[str]]:
        """(from vines.toml, from the store) for one domain."""
        stored = (await self.load())["admins"]
        config = sorted(a for a in self.configured() if a.endswith("@" + domain))
        return config, sorted(a for a in stored if a.endswith("@" + domain))

    async def set_admins(self, domain: str, jids: list[str]) -> None:
        stored = await self.load()
        others = [a for a in stored["admins"] if not a.endswith("@" + domain)]
        mine = sorted(set(jids) - self.configured())
        stored["admins"] = sorted(others + mine)
        await self._save("admins")

    async def forget(self, jid: str) -> None:
        """An account was deleted: its admin grant goes with it."""
        stored = await self.load()
        if jid in stored["admins"]:
            stored["admins"] = [a for a in stored["admins"] if a != jid]
            await self._save("admins")

    # ---- federation lists ----------------------------------------------------------------

    async def peers(self, kind: str, domain: str) -> tuple[list[str], list[str]]:
        """(from vines.toml, from the store) of the allow or block list of a domain."""
        stored = (await self.load())[kind].get(domain, [])
        config = list(self.server.config.federation.allow) if kind == "allow" else []
        return sorted(config), sorted(stored)

    async def set_peers(self, kind: str, domain: str, peers: list[str]) -> None:
        stored = await self.load()
        config = set(self.server.config.federation.allow) if kind == "allow" else set()
        mine = sorted(set(peers) - config)
        if mine:
            stored[kind][domain] = mine
        else:
            stored[kind].pop(domain, None)
        await self._save(kind)

    async def federates(self, domain: str, peer: str) -> bool:
        """Whether `domain` may exchange stanzas with `peer` (for the federation module)."""
        config, stored = await self.peers("allow", domain)
        _, blocked = await self.peers("block", domain)
        return peer not in blocked and (peer in config or peer in stored)

    # ---- messages ------------------------------------------------------------------------

    async def text(self, kind: str, domain: str) -> str | None:
        return (await self.load())[kind].get(domain)

    async def set_text(self, kind: str, domain: str, text: str | None) -> None:
        stored = await self.load()
        if text:
            stored[kind][domain] = text
        else:
            stored[kind].pop(domain, None)
        await self._save(kind)


# ---- forms shared by the admin commands ----------------------------------------------------


def node(name: str, namespace: str = ns.ADMIN) -> str:
    return f"{namespace}#{name}"


def form_type(namespace: str = ns.ADMIN) -> Field:
    return Field("FORM_TYPE", "hidden", values=[namespace])


def admin_form(title: str, *fields: Field, instructions: str | None = None) -> Form:
    """A form of type 'form' with the XEP-0133 FORM_TYPE."""
    return Form("form", title, [instructions] if instructions else [], [form_type(), *fields])


def result_form(title: str, *fields: Field, namespace: str = ns.ADMIN) -> Form:
    return Form("result", title, fields=[form_type(namespace), *fields])

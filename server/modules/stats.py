"""Our own admin nodes: `urn:vinesctl:admin#stats` (server statistics) and `#sessions` (the
sessions of the domain's users with their details). Both are for the domain's admins; the
statistics are server-wide aggregates, the session list shows only that domain's users: in a
cluster, on every node, with a `node` column (another node's session has no stream state here;
its address, TLS and SASL details come from the directory, cluster/directory.py).

Stanza rates are given two ways: the average since start, and the rate since the previous
statistics request (since start for the first one).
"""

from __future__ import annotations

import time
from pathlib import Path

from vines_server.core.admins import AdminState, node, result_form
from vines_server.core.api import ModuleAPI
from vines_server.core.commands import Command, Context, Result
from vines_server.xmpp import ns
from vines_server.xmpp.forms import Field

STATS = node("stats", ns.VINES_ADMIN)
SESSIONS = node("sessions", ns.VINES_ADMIN)


def rss_bytes() -> int | None:
    """Resident set size from /proc/self/status (Linux); None elsewhere."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def single(var: str, label: str, value: object) -> Field:
    return Field(var, "text-single", label, values=[str(value)])


def setup(api: ModuleAPI) -> None:
    state: AdminState = api.use("admins")
    registry = api.use("adhoc")
    # (monotonic, stanzas in, stanzas out) at the last request; before the first, the server's
    # start (this module loads at its first use: vines_server.modules.lazy)
    last = [(time.monotonic() - api.uptime(), 0, 0)]

    def rates() -> tuple[float, float]:
        then, stanzas_in, stanzas_out = last[-1]
        now = time.monotonic()
        total_in, total_out = api.traffic()
        last[:] = [(now, total_in, total_out)]
        elapsed = max(now - then, 1e-6)
        return (total_in - stanzas_in) / elapsed, (total_out - stanzas_out) / elapsed

    async def stats(ctx: Context) -> Result:
        uptime = max(api.uptime(), 1e-6)
        rate_in, rate_out = rates()
        total_in, total_out = api.traffic()
        listeners = api.connections()
        rss = rss_bytes()
        form = result_form(
            "Server statistics",
            single("uptime", "Uptime (seconds)", int(uptime)),
            single("connections", "Open connections", sum(listeners.values())),
            Field(
                "listeners",
                "text-multi",
                "Connections per listener",
                values=[f"{kind}: {n}" for kind, n in sorted(listeners.items())],
            ),
            single("sessions", "Bound sessions", len(api.sessions)),
            single("users", "Users online", len(api.sessions.users())),
            single("accounts", "Registered accounts", await api.storage.count_accounts()),
            single("stanzas_in", "Stanzas in", total_in),
            single("stanzas_out", "Stanzas out", total_out),
            single("stanzas_in_per_second", "Stanzas in per second (recent)", f"{rate_in:.2f}"),
            single("stanzas_out_per_second", "Stanzas out per second (recent)", f"{rate_out:.2f}"),
            single(
                "stanzas_in_avg",
                "Stanzas in per second (since start)",
                f"{total_in / uptime:.2f}",
            ),
            single(
                "stanzas_out_avg",
                "Stanzas out per second (since start)",
                f"{total_out / uptime:.2f}",
            ),
            single("memory_rss", "Memory, resident (bytes)", rss if rss is not None else ""),
            single("store_size", "Store size (bytes)", await api.storage.size_bytes()),
            namespace=ns.VINES_ADMIN,
        )
        return Result(form=form)

    async def sessions(ctx: Context) -> Result:
        domain = ctx.service.domain
        columns = [
            ("jid", "Session"),
            ("ip", "IP address"),
            ("listener", "Listener"),
            ("tls_version", "TLS version"),
            ("cipher", "TLS cipher"),
            ("mechanism", "SASL mechanism"),
            ("since", "Connected since"),
            ("state", "Stream state"),
            ("presence", "Presence"),
        ]
        here = api.config.cluster.node if api.cluster is not None else None
        if here is not None:
            columns.append(("node", "Node"))
        form = result_form("Sessions", namespace=ns.VINES_ADMIN)
        form.reported = [Field(var, "text-single", label) for var, label in columns]
        users = [u for u in await api.online_users() if u.domain == domain]  # every node's
        mine = sorted(
            (s for user in users for s in api.sessions.resources(user)), key=lambda s: str(s.jid)
        )
        for s in mine:
            link_state = getattr(getattr(s.link, "stream", None), "state", None)
            presence = "unavailable"
            if s.presence is not None:
                presence = s.presence.findtext(ns.q(ns.CLIENT, "show")) or "available"
            cells = {
                "jid": str(s.jid),
                "ip": s.info.get("ip"),
                "listener": s.info.get("listener"),
                "tls_version": s.info.get("tls_version"),
                "cipher": s.info.get("cipher"),
                "mechanism": s.info.get("mechanism"),
                "since": s.since.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "state": getattr(link_state, "name", link_state),
                "presence": presence,
            }
            if here is not None:
                cells["node"] = s.info.get("node") or here
            form.items.append(
                [Field(k, None, values=[str(v) if v is not None else ""]) for k, v in cells.items()]
            )
        count = len(mine)
        return Result.info(f"{count} session{'s' if count != 1 else ''} on {domain}", form)

    registry.add(Command(STATS, "Server Statistics", stats, (), state.allow_admin))
    registry.add(Command(SESSIONS, "List Sessions", sessions, (), state.allow_admin))

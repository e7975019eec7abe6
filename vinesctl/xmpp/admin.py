"""Service administration (XEP-0133) as functions over a logged-in session.

Each verb runs the node `http://jabber.org/protocol/admin#<name>` at the service's domain: it
executes, fills the fields it knows in every form shown (FORM_TYPE and defaults travel back as
they came), completes, and returns a plain dataclass. Our own nodes (`urn:vinesctl:admin#...`)
give statistics, the session list and a configuration reload.

Failures are one line with the fix: `forbidden: <jid> is not an administrator of <domain>`,
a node the server does not offer, an error note of the command (e.g. the account exists).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vinesctl.errors import VinesctlError
from vinesctl.output import typed
from vinesctl.xmpp import adhoc
from vinesctl.xmpp.adhoc import AdhocError, Note, Stage

if TYPE_CHECKING:  # the reports' types load with the verb that builds one (admin_results)
    from vinesctl.xmpp.admin_results import (
        Account,
        Cluster,
        Components,
        OnlineUser,
        Reloaded,
        RosterItem,
        S2SStreams,
        Sessions,
        Stats,
        Table,
        UserStats,
    )

ADMIN = "http://jabber.org/protocol/admin"
OURS = "urn:vinesctl:admin"
NS_ROSTER = "jabber:iq:roster"
# what the server says when it has no such command
MISSING = {"item-not-found", "feature-not-implemented", "service-unavailable"}
USER_KINDS = ("registered", "disabled", "online", "active", "idle")


def node_of(name: str) -> str:
    """`add-user` -> the XEP-0133 node; a full node (with ':') stays as it is."""
    return name if ":" in name else f"{ADMIN}#{name}"


class AdminError(VinesctlError):
    def __init__(self, message: str, fix: str | None = None, condition: str = "") -> None:
        self.condition = condition
        super().__init__(message, fix)


class Unsupported(AdminError):
    """The server does not offer this command."""


# ---- results ---------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What a command that changes something said."""

    node: str
    notes: list[Note] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "; ".join(n.text for n in self.notes if n.text)


# ---- running a node --------------------------------------------------------------------------


def _strings(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, bool):
        return ["1" if value else "0"]
    if isinstance(value, list | tuple | set):
        return [str(v) for v in value]
    return [str(value)]


def translate(exc: AdhocError, client: Any, domain: str, node: str) -> VinesctlError:
    me = client.boundjid.bare
    short = node.rpartition("#")[2] or node
    if exc.condition in ("forbidden", "not-authorized"):
        return AdminError(
            f"forbidden: {me} is not an administrator of {domain}",
            "log in as an administrator (--profile, or VINESCTL_JID and VINESCTL_PASSWORD), "
            "or add the account to the server's admins",
            exc.condition,
        )
    if exc.condition in MISSING:
        return Unsupported(
            f"{domain} does not offer the command {short} ({exc.condition})",
            f"see what it offers with 'vinesctl adhoc list --to {domain}'",
            exc.condition,
        )
    if exc.specific in ("bad-payload", "bad-action", "malformed-action") or exc.condition in (
        "bad-request",
        "not-acceptable",
        "jid-malformed",
    ):
        text = exc.text or exc.specific or exc.condition
        return AdminError(f"{short} refused: {text}", "check the values given", exc.condition)
    return AdminError(exc.message, exc.fix or "try again; --debug shows the XML", exc.condition)


async def perform(
    client: Any,
    domain: str,
    name: str,
    values: dict[str, Any] | None = None,
    timeout: float = 15.0,
    fail_on_error_note: bool = True,
    used: set[str] | None = None,
) -> Stage:
    """Runs a node to its end, answering each form with the `values` whose fields it shows
    (their names are added to `used`); returns the last stage. Error notes raise AdminError
    unless fail_on_error_note is False."""
    node = node_of(name)
    answers = {k: _strings(v) for k, v in (values or {}).items()}
    try:
        stage = await adhoc.execute(client, domain, node, timeout)
        seen = 1
        while stage.status == "executing":
            if seen >= adhoc.MAX_STAGES:
                await adhoc.cancel(client, stage, timeout)
                raise AdminError(f"{name} did not finish after {seen} stages", "try --debug")
            shown = stage.form.fields if stage.form else []
            mine = {f.var: answers[f.var] for f in shown if f.var in answers}
            if used is not None:
                used.update(mine)
            try:
                stage = await adhoc.submit(client, stage, mine, stage.forward, timeout)
            except AdhocError:
                await adhoc.cancel(client, stage, timeout)
                raise
            seen += 1
    except AdhocError as exc:
        raise translate(exc, client, domain, node) from None
    if stage.status == "canceled":
        raise AdminError(f"{domain} canceled {name}", "try again; --debug shows the XML")
    if fail_on_error_note and stage.errors:
        raise AdminError(f"{name.rpartition('#')[2] or name}: {'; '.join(stage.errors)}")
    return stage


async def peek(client: Any, domain: str, name: str, timeout: float = 15.0) -> Stage:
    """Executes a node and cancels it at once: the first form with its prefilled values."""
    node = node_of(name)
    try:
        stage = await adhoc.execute(client, domain, node, timeout)
    except AdhocError as exc:
        raise translate(exc, client, domain, node) from None
    await adhoc.cancel(client, stage, timeout)
    if stage.errors:
        raise AdminError(f"{name}: {'; '.join(stage.errors)}")
    return stage


def _outcome(stage: Stage) -> Outcome:
    return Outcome(stage.node, list(stage.notes))


def _result(stage: Stage) -> dict[str, list[str]]:
    return stage.form.values() if stage.form else {}


def _first(values: dict[str, list[str]], *names: str) -> list[str] | None:
    for name in names:
        if name in values:
            return values[name]
    return None


def _lines(values: list[str]) -> list[str]:
    """Values split at newlines (text-multi sent as one value by some servers)."""
    out: list[str] = []
    for v in values:
        out.extend(line for line in v.splitlines() if line.strip())
    return out


# ---- accounts --------------------------------------------------------------------------------


async def add_user(client: Any, domain: str, jid: str, password: str, **extra: str) -> Outcome:
    values = {"accountjid": jid, "password": password, "password-verify": password, **extra}
    return _outcome(await perform(client, domain, "add-user", values))


async def delete_user(client: Any, domain: str, jids: list[str]) -> Outcome:
    return _outcome(await perform(client, domain, "delete-user", {"accountjids": jids}))


async def disable_user(client: Any, domain: str, jids: list[str]) -> Outcome:
    return _outcome(await perform(client, domain, "disable-user", {"accountjids": jids}))


async def reenable_user(client: Any, domain: str, jids: list[str]) -> Outcome:
    return _outcome(await perform(client, domain, "reenable-user", {"accountjids": jids}))


async def end_user_session(client: Any, domain: str, jids: list[str]) -> Outcome:
    return _outcome(await perform(client, domain, "end-user-session", {"accountjids": jids}))


async def change_user_password(client: Any, domain: str, jid: str, password: str) -> Outcome:
    values = {"accountjid": jid, "password": password}
    return _outcome(await perform(client, domain, "change-user-password", values))


def _roster_items(query: ET.Element) -> list[RosterItem]:
    from vinesctl.xmpp.admin_results import RosterItem

    return [
        RosterItem(
            item.get("jid", ""),
            item.get("name") or None,
            item.get("subscription", "none"),
            [g.text or "" for g in item.findall(f"{{{NS_ROSTER}}}group")],
        )
        for item in query.findall(f"{{{NS_ROSTER}}}item")
    ]


async def get_user_roster(client: Any, domain: str, jid: str) -> list[RosterItem]:
    """The roster: a `jabber:iq:roster` query inside the result form (XEP-0133 4.10), or (as
    Prosody sends it) the roster XML as the text of a field."""
    stage = await perform(
        client, domain, "get-user-roster", {"accountjid": jid, "accountjids": jid}
    )
    texts = list(stage.form.payloads) if stage.form else []
    texts += ["\n".join(values).strip() for values in _result(stage).values()]
    for text in texts:
        if not text.startswith("<"):
            continue
        try:
            query = ET.fromstring(text)
        except ET.ParseError:
            continue
        if query.tag == f"{{{NS_ROSTER}}}query":
            return _roster_items(query)
    return []


async def get_user_lastlogin(client: Any, domain: str, jid: str) -> str | None:
    stage = await perform(
        client, domain, "get-user-lastlogin", {"accountjid": jid, "accountjids": jid}
    )
    values = _first(_result(stage), "lastlogin") or []
    return values[0].strip() or None if values else None


async def user_stats(client: Any, domain: str, jid: str) -> UserStats:
    from vinesctl.xmpp.admin_results import UserStats

    stage = await perform(client, domain, "user-stats", {"accountjid": jid, "accountjids": jid})
    values = _result(stage)
    stats = UserStats(jid)
    stats.ipaddresses = _lines(values.pop("ipaddresses", []))
    size = values.pop("rostersize", [])
    stats.rostersize = int(size[0]) if size and size[0].strip().isdigit() else None
    stats.onlineresources = _lines(values.pop("onlineresources", []))
    stats.stanzaspersecond = _number(values.pop("stanzaspersecond", []))
    stats.loginsperminute = _number(values.pop("loginsperminute", []))
    values.pop("accountjid", None)
    values.pop("accountjids", None)
    stats.other = values
    return stats


def _number(values: list[str]) -> float | None:
    value = typed("".join(values))
    return float(value) if isinstance(value, int | float) else None


async def users_num(client: Any, domain: str, kind: str) -> int:
    stage = await perform(client, domain, f"get-{kind}-users-num")
    values = _first(_result(stage), f"{kind}usersnum") or next(iter(_result(stage).values()), [])
    try:
        return int(values[0])
    except (IndexError, ValueError):
        raise AdminError(f"{domain} gave no number for {kind} users", "try --debug") from None


def _list_node(kind: str) -> str:
    return f"get-{kind}-users" if kind in ("active", "idle") else f"get-{kind}-users-list"


async def users_list(
    client: Any, domain: str, kind: str, max_items: str = "none", details: bool = False
) -> list[OnlineUser]:
    """The accounts of `kind` (registered, disabled, online, active, idle). With details (the
    online list of Prosody and ours), each user carries one line per session."""
    from vinesctl.xmpp.admin_results import OnlineUser

    values: dict[str, Any] = {"max_items": max_items}
    if details:
        values["details"] = True
    stage = await perform(client, domain, _list_node(kind), values)
    form = stage.form
    if form is not None and form.items:  # a table of sessions
        users: dict[str, OnlineUser] = {}
        for row in form.items:
            jid = (row.get("jid") or row.get("accountjid") or [""])[0]
            bare = jid.split("/", 1)[0]
            user = users.setdefault(bare, OnlineUser(bare, [] if details else None))
            if user.sessions is not None:
                user.sessions.append(_session(jid, row))
        return list(users.values())
    result = _result(stage)
    result.pop("max_items", None)
    result.pop("details", None)
    raw = _first(result, f"{kind}userjids", "activeuserjids") or next(iter(result.values()), [])
    out: list[OnlineUser] = []
    for line in _lines(raw):
        if line[:1].isspace() or line.lstrip().startswith("- "):
            if out and out[-1].sessions is not None:
                out[-1].sessions.append({"text": line.strip().removeprefix("- ").strip()})
            continue
        out.append(OnlineUser(line.strip(), [] if details else None))
    return out


# session fields that hold numbers (XEP-0133 leaves the columns to the server)
NUMERIC_SESSION_FIELDS = {"priority"}


def _session(jid: str, row: dict[str, list[str]]) -> dict[str, Any]:
    """One session of an online users table: its resource, then each field the server gave."""
    session: dict[str, Any] = {"resource": jid.partition("/")[2] or None}
    for var, values in row.items():
        if var in ("jid", "accountjid"):
            continue
        text = " ".join(values).strip() or None
        session[var] = typed(text) if var in NUMERIC_SESSION_FIELDS else text
    return session


async def accounts(client: Any, domain: str) -> list[Account]:
    """Registered accounts, marked disabled and online where the server offers those lists."""
    from vinesctl.xmpp.admin_results import Account

    rows = [Account(u.jid) for u in await users_list(client, domain, "registered")]
    for kind in ("disabled", "online"):
        try:
            jids = {u.jid.split("/", 1)[0] for u in await users_list(client, domain, kind)}
        except Unsupported:
            continue
        for row in rows:
            setattr(row, kind, row.jid in jids)
    return sorted(rows, key=lambda r: r.jid)


# ---- messages to users -----------------------------------------------------------------------


async def announce(client: Any, domain: str, text: str, subject: str | None = None) -> Outcome:
    values: dict[str, Any] = {"announcement": text}
    if subject:
        values["subject"] = subject
    used: set[str] = set()
    outcome = _outcome(await perform(client, domain, "announce", values, used=used))
    if subject and "subject" not in used:
        outcome.notes.append(Note("warn", f"{domain}'s announce has no subject: sent without"))
    return outcome


async def set_motd(client: Any, domain: str, text: str) -> Outcome:
    return _outcome(await perform(client, domain, "set-motd", {"motd": text}))


async def get_motd(client: Any, domain: str) -> str | None:
    """The current MOTD (None: none set): the prefilled field of edit-motd (then canceled)."""
    return await _prefilled(client, domain, "edit-motd", "motd")


async def get_welcome(client: Any, domain: str) -> str | None:
    """The current welcome message (None: none set): the prefilled field of set-welcome (the
    form of ours and of ejabberd shows it; then canceled)."""
    return await _prefilled(client, domain, "set-welcome", "welcome")


async def _prefilled(client: Any, domain: str, node: str, var: str) -> str | None:
    stage = await peek(client, domain, node)
    field_ = stage.form.field(var) if stage.form else None
    text = "\n".join(field_.values) if field_ else ""
    return text if text.strip() else None


async def edit_motd(client: Any, domain: str, text: str) -> Outcome:
    return _outcome(await perform(client, domain, "edit-motd", {"motd": text}))


async def delete_motd(client: Any, domain: str) -> Outcome:
    return _outcome(await perform(client, domain, "delete-motd"))


async def set_welcome(client: Any, domain: str, text: str) -> Outcome:
    return _outcome(await perform(client, domain, "set-welcome", {"welcome": text}))


async def delete_welcome(client: Any, domain: str) -> Outcome:
    return _outcome(await perform(client, domain, "delete-welcome"))


# ---- lists: admins, federation allow/block ---------------------------------------------------

LISTS = {
    "admin": ("edit-admin", "adminjids"),
    "whitelist": ("edit-whitelist", "whitelistjids"),
    "blacklist": ("edit-blacklist", "blacklistjids"),
}


async def get_list(client: Any, domain: str, which: str) -> list[str]:
    name, var = LISTS[which]
    stage = await peek(client, domain, name)
    field_ = stage.form.field(var) if stage.form else None
    return _lines(field_.values) if field_ else []


async def edit_list(client: Any, domain: str, which: str, jids: list[str]) -> Outcome:
    name, var = LISTS[which]
    return _outcome(await perform(client, domain, name, {var: jids}))


async def edit_admin(client: Any, domain: str, jids: list[str]) -> Outcome:
    return await edit_list(client, domain, "admin", jids)


async def edit_whitelist(client: Any, domain: str, jids: list[str]) -> Outcome:
    return await edit_list(client, domain, "whitelist", jids)


async def edit_blacklist(client: Any, domain: str, jids: list[str]) -> Outcome:
    return await edit_list(client, domain, "blacklist", jids)


# ---- our own nodes ---------------------------------------------------------------------------


def _tables(stage: Stage) -> list[Table]:
    from vinesctl.xmpp.admin_results import Column, Table

    form = stage.form
    if form is None or not (form.reported or form.items):
        return []
    columns = [Column(f.var, f.label) for f in form.reported]
    if not columns:
        seen: dict[str, None] = {}
        for row in form.items:
            seen.update(dict.fromkeys(row))
        columns = [Column(v) for v in seen]
    rows = [{c.var: "\n".join(row.get(c.var, [])) or None for c in columns} for row in form.items]
    return [Table(columns, rows)]


async def stats(client: Any, domain: str, timeout: float = 15.0) -> Stats:
    """Our statistics node when the server offers it, and every XEP-0133 count it offers."""
    from vinesctl.xmpp.admin_results import Stats, Value

    offered = {c.node for c in await adhoc.list_commands(client, domain, timeout)}
    result = Stats(domain)
    if f"{OURS}#stats" in offered:
        stage = await perform(client, domain, f"{OURS}#stats", timeout=timeout)
        for f in stage.form.fields if stage.form else []:
            if not f.var or f.var == "FORM_TYPE" or f.type == "hidden":
                continue
            value = list(f.values) if f.multi else typed(f.value)
            result.values.append(Value(f.var, f.label or f.var, value))
        result.tables = _tables(stage)
    else:
        result.unsupported.append(f"{OURS}#stats")
    if f"{OURS}#cluster" in offered:  # the per-node breakdown
        result.nodes = (await cluster(client, domain)).nodes
    for kind in USER_KINDS:
        node = f"{ADMIN}#get-{kind}-users-num"
        if node not in offered:
            result.unsupported.append(node)
            continue
        result.counts[kind] = await users_num(client, domain, kind)
    if not result.values and not result.counts:
        if f"{ADMIN}#get-online-users-list" in offered:  # Prosody: count the online list
            result.counts["online"] = len(await users_list(client, domain, "online"))
        else:  # nothing for us: say why (forbidden for a non-admin, or not offered)
            await perform(client, domain, f"{OURS}#stats", timeout=timeout)
    return result


async def sessions(client: Any, domain: str) -> Sessions:
    from vinesctl.xmpp.admin_results import Sessions, Table

    stage = await perform(client, domain, f"{OURS}#sessions")
    tables = _tables(stage)
    return Sessions(tables[0] if tables else Table())


async def s2s_streams(client: Any, domain: str) -> S2SStreams:
    from vinesctl.xmpp.admin_results import S2SStreams, Table

    tables = _tables(await perform(client, domain, f"{OURS}#s2s"))
    return S2SStreams(tables[0] if tables else Table())


async def s2s_close(client: Any, domain: str, peer: str) -> Outcome:
    return _outcome(await perform(client, domain, f"{OURS}#s2s-close", {"domain": peer}))


async def reload(client: Any, domain: str) -> Reloaded:
    from vinesctl.xmpp.admin_results import Reloaded

    stage = await perform(client, domain, f"{OURS}#reload")
    values = _result(stage)
    return Reloaded(values.get("changed", []), values.get("restart", []), list(stage.notes))


async def components(client: Any, domain: str) -> Components:
    from vinesctl.xmpp.admin_results import Component, Components

    stage = await perform(client, domain, f"{OURS}#components")
    tables = _tables(stage)
    out = Components()
    for row in tables[0].rows if tables else []:
        load = dict(pair.split("=", 1) for pair in (row.get("load") or "").split() if "=" in pair)
        out.components.append(
            Component(
                domain=row.get("domain") or "",
                name=row.get("name") or None,
                connected=row.get("connected") == "true",
                address=row.get("address") or None,
                since=row.get("since") or None,
                stanzas_in=int(row.get("stanzas_in") or 0),
                stanzas_out=int(row.get("stanzas_out") or 0),
                show=row.get("show") or None,
                load=load or None,
            )
        )
    return out


async def cluster(client: Any, domain: str) -> Cluster:
    """The nodes serving `domain` (our cluster node), each with its figures."""
    from vinesctl.xmpp.admin_results import Cluster, ClusterNode

    stage = await perform(client, domain, f"{OURS}#cluster")
    tables = _tables(stage)
    out = Cluster()
    for row in tables[0].rows if tables else []:
        out.nodes.append(
            ClusterNode(
                name=row.get("name") or "",
                address=row.get("address") or None,
                heartbeat_age=_number([row.get("heartbeat_age") or ""]),
                alive=row.get("alive") == "true",
                sessions=_integer(row.get("sessions")) or 0,
                load=_number([row.get("load") or ""]),
                pid=_integer(row.get("pid")),
            )
        )
    return out


def _integer(text: str | None) -> int | None:
    value = typed(text)
    return value if isinstance(value, int) else None


async def unban(client: Any, domain: str, ip: str) -> Outcome:
    return _outcome(await perform(client, domain, f"{OURS}#unban", {"ip": ip}))


# ---- everyday verbs (our nodes) ---------------------------------------------------------------


async def roster_add(
    client: Any,
    domain: str,
    jid: str,
    contact: str,
    name: str | None,
    groups: list[str],
    subscription: str,
) -> Outcome:
    values = {
        "accountjid": jid,
        "contactjid": contact,
        "name": name or "",
        "groups": groups,
        "subscription": subscription,
    }
    return _outcome(await perform(client, domain, f"{OURS}#roster-add", values))


async def roster_remove(client: Any, domain: str, jid: str, contact: str) -> Outcome:
    values = {"accountjid": jid, "contactjid": contact}
    return _outcome(await perform(client, domain, f"{OURS}#roster-remove", values))


async def send_message(client: Any, domain: str, to: str, body: str) -> Outcome:
    values = {"to": to, "body": body.split("\n")}
    return _outcome(await perform(client, domain, f"{OURS}#send-message", values))

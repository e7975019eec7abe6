"""The wire side of the presence dashboard: the server's presence feed, the online users list
(XEP-0133) as a polling fallback, and the server's load. Ad-hoc commands go through
`vinesctl.xmpp.admin` (and its `adhoc` runner).

The feed (`urn:vinesctl:presence-feed`, the bundled server's; see server/modules/presence_feed.py):
an admin executes the ad-hoc command of that node on the domain; the result form's field `feed`
is the feed id. The server then sends messages from the domain:

    <message from='DOMAIN'><feed xmlns='urn:vinesctl:presence-feed:0' id='ID' seq='N'
        kind='snapshot|delta' [last='true']>
      <forwarded xmlns='urn:xmpp:forward:0'><delay xmlns='urn:xmpp:delay' stamp='ISO'/>
        <presence from='user@domain/res' [type='unavailable']>...</presence></forwarded>...
    </feed></message>

Parsing works on ElementTree elements, so it is tested without a connection.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from xml.etree.ElementTree import Element

from vinesctl.dashboard.model import LoadSample, PresenceEvent
from vinesctl.errors import VinesctlError

NODE_FEED = "urn:vinesctl:presence-feed"
NODE_FEED_STOP = NODE_FEED + "#stop"
NS_FEED = "urn:vinesctl:presence-feed:0"
NS_LOAD = "urn:vinesctl:load:0"
NS_FORWARD = "urn:xmpp:forward:0"
NS_DELAY = "urn:xmpp:delay"
NS_CAPS = "http://jabber.org/protocol/caps"
NS_CLIENT = "jabber:client"


def _q(ns: str, tag: str) -> str:
    return f"{{{ns}}}{tag}"


def parse_stamp(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def parse_presence(el: Element, stamp: datetime | None = None) -> PresenceEvent | None:
    """A `<presence/>` (any namespace prefix of jabber:client) as an event; None without from."""
    jid = el.get("from")
    if not jid:
        return None
    ns = el.tag[1:].split("}")[0] if el.tag.startswith("{") else NS_CLIENT
    ptype = el.get("type", "")
    if ptype not in ("", "unavailable"):
        return None
    try:
        priority = int((el.findtext(_q(ns, "priority")) or "0").strip())
    except ValueError:
        priority = 0
    caps = el.find(_q(NS_CAPS, "c"))
    return PresenceEvent(
        jid=jid,
        available=ptype != "unavailable",
        show=(el.findtext(_q(ns, "show")) or "").strip(),
        status=(el.findtext(_q(ns, "status")) or "").strip(),
        priority=priority,
        client=caps.get("node", "") if caps is not None else "",
        stamp=stamp,
    )


@dataclass
class FeedMessage:
    id: str
    seq: int
    kind: str  # snapshot | delta
    last: bool
    events: list[PresenceEvent] = field(default_factory=list)


def parse_feed(feed: Element) -> FeedMessage | None:
    """A `<feed xmlns='urn:vinesctl:presence-feed:0'/>` element; None when malformed."""
    try:
        seq = int(feed.get("seq", ""))
    except ValueError:
        return None
    kind = feed.get("kind", "")
    if kind not in ("snapshot", "delta") or not feed.get("id"):
        return None
    message = FeedMessage(feed.get("id", ""), seq, kind, feed.get("last") in ("true", "1"))
    for fwd in feed.findall(_q(NS_FORWARD, "forwarded")):
        delay = fwd.find(_q(NS_DELAY, "delay"))
        stamp = parse_stamp(delay.get("stamp") if delay is not None else None)
        for child in fwd:
            if child.tag.endswith("}presence") or child.tag == "presence":
                event = parse_presence(child, stamp)
                if event is not None:
                    message.events.append(event)
    return message


def parse_load(el: Element, show: str = "", status: str = "") -> LoadSample:
    listeners: dict[str, int] = {}
    for listener in el.findall(_q(NS_LOAD, "listener")):
        try:
            listeners[listener.get("name", "?")] = int(listener.get("connections", "0"))
        except ValueError:
            continue
    return LoadSample.from_attrs(dict(el.attrib), listeners, show, status)


class LoadError(VinesctlError):
    """The server gave no load: `condition` is the stanza error (forbidden, service-unavailable)."""

    def __init__(self, condition: str, text: str = "") -> None:
        self.condition = condition
        detail = f"{condition}: {text}" if text else condition
        super().__init__(f"load query failed ({detail})")


# ---- the feed (ad-hoc commands through vinesctl.xmpp.admin) --------------------------------


async def start_feed(client: Any, domain: str, timeout: float = 15) -> str:
    """Starts (or restarts) this session's presence feed; returns the feed id. Raises
    AdminError (with `condition`) when the server refuses."""
    from vinesctl.xmpp import admin

    stage = await admin.perform(client, domain, NODE_FEED, timeout=timeout)
    values = stage.form.values() if stage.form else {}
    feed = [v for v in values.get("feed", []) if v]
    if not feed:
        raise admin.AdminError(f"{domain} started no presence feed (no feed id)", condition="")
    return feed[0]


async def stop_feed(client: Any, domain: str, timeout: float = 5) -> None:
    """Stops this session's feed (it also stops when the session ends)."""
    from vinesctl.xmpp import admin

    await admin.perform(client, domain, NODE_FEED_STOP, timeout=timeout)


# ---- online users (XEP-0133), the polling fallback -----------------------------------------


async def online_users(client: Any, domain: str, timeout: float = 15) -> list[PresenceEvent]:
    """Every online session (with details where the server gives them), else bare JIDs."""
    from vinesctl.xmpp import admin

    values = {"max_items": "none", "details": True}
    stage = await admin.perform(client, domain, "get-online-users-list", values, timeout)
    form = stage.form
    if form is None:
        return []
    rows = [{k: "\n".join(v) for k, v in item.items()} for item in form.items]
    return parse_online(rows, form.values().get("onlineuserjids", []))


def parse_online(rows: list[dict[str, str]], jids: list[str]) -> list[PresenceEvent]:
    """An online users list: reported rows (ours: one per session, with jid, since, show,
    priority) and the `onlineuserjids` values (users the rows did not cover)."""
    events: list[PresenceEvent] = []
    seen: set[str] = set()
    for row in rows:
        jid = row.get("jid", "")
        if not jid:
            continue
        show = row.get("show", "")
        try:
            priority = int(row.get("priority") or 0)
        except ValueError:
            priority = 0
        events.append(
            PresenceEvent(
                jid=jid,
                show="" if show in ("online", "unavailable") else show,
                priority=priority,
                stamp=parse_stamp(row.get("since")),
            )
        )
        seen.add(jid.partition("/")[0].lower())
    events += parse_online_lines(jids, seen)
    return events


# Prosody's details: "user@host" then " - resource: show(priority), IP: [addr]" per session
_PROSODY_SESSION = re.compile(r"^-\s*(?P<res>.*?):\s*(?P<show>[^\s(]+)\s*\((?P<prio>[^)]*)\)")


def parse_online_lines(values: list[str], skip: set[str] | None = None) -> list[PresenceEvent]:
    """The `onlineuserjids` values: one JID per value or line, and where the server adds
    Prosody-style detail lines, one event per session."""
    skip = skip or set()
    events: list[PresenceEvent] = []
    bare: str | None = None
    sessions = 0

    def close() -> None:
        if bare is not None and sessions == 0:
            events.append(PresenceEvent(jid=bare))

    for value in values:
        for line in value.splitlines():
            text = line.strip()
            if not text:
                continue
            match = _PROSODY_SESSION.match(text)
            if match and bare is not None:
                show = match["show"]
                try:
                    priority = int(match["prio"])
                except ValueError:
                    priority = 0
                events.append(
                    PresenceEvent(
                        jid=f"{bare}/{match['res']}",
                        show="" if show in ("available", "online") else show,
                        priority=priority,
                    )
                )
                sessions += 1
                continue
            if text.startswith("-") or " " in text:
                continue
            close()
            bare, sessions = None, 0
            if text.partition("/")[0].lower() in skip:
                continue
            if "/" in text:
                events.append(PresenceEvent(jid=text))
                sessions = 1
            bare = text.partition("/")[0]
    close()
    return events


async def current_load(client: Any, domain: str, timeout: float = 15) -> LoadSample:
    """One reading of the server's load (iq get); LoadError when it has none for us."""
    from slixmpp.exceptions import IqError, IqTimeout

    iq = client.make_iq_get(ito=domain)
    iq.append(Element(_q(NS_LOAD, "load")))
    try:
        reply = await iq.send(timeout=timeout)
    except IqError as exc:
        err = exc.iq["error"]
        raise LoadError(err["condition"] or "error", err["text"] or "") from None
    except IqTimeout:
        raise LoadError("timeout", f"no answer within {timeout:g}s") from None
    el = reply.xml.find(_q(NS_LOAD, "load"))
    if el is None:
        raise LoadError("bad-reply", "no <load/> in the answer")
    return parse_load(el)


async def features(client: Any, jid: str, timeout: float = 15) -> set[str]:
    """disco#info features of `jid` (empty on error)."""
    from slixmpp.exceptions import IqError, IqTimeout

    try:
        info = await client.plugin["xep_0030"].get_info(jid=jid, timeout=timeout)
    except (TimeoutError, IqError, IqTimeout):
        return set()
    return set(info["disco_info"]["features"])

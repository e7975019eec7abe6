"""XEP-0227 (portable import/export of server data): accounts with their SCRAM keys, rosters
with pending subscription requests, vCards, private XML and offline messages.

One document holds `<server-data xmlns='urn:xmpp:pie:0'><host jid=...><user name=...>` for any
number of hosts and users; Prosody's migrator writes one such document per account. Keys travel
as Prosody writes them: `<scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-1'>`
with iter-count, salt, server-key and stored-key (base64). A file that repeats an element for
one mechanism (Prosody appends another at each run) is read with the last one. A plaintext
`password` attribute (older exporters) is turned into keys at once and never stored.

Parsing goes through the server's restricted XML parser (no DTD, entities or processing
instructions; depth and attribute limits). Reading and writing go through the storage protocol.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from xml.etree.ElementTree import Element

from vines_server.storage.base import AccountExists, RosterItem, Storage
from vines_server.xmpp import ns
from vines_server.xmpp.errors import StreamError
from vines_server.xmpp.jid import JID, JIDError
from vines_server.xmpp.parser import ParserLimits, parse_fragment
from vines_server.xmpp.sasl.credentials import HASHES, Credentials, ScramKeys, derive_all
from vines_server.xmpp.stanza import make, serialize

PIE = "urn:xmpp:pie:0"
PIE_SCRAM = "urn:xmpp:pie:0#scram"
_XML_DECLARATION = re.compile(rb"^\s*<\?xml[^>]*\?>")
_SUBSCRIPTIONS = ("none", "to", "from", "both")
MAX_ITERATIONS = 1_000_000  # Prosody's default is 10 000, ejabberd's 4096


class Xep0227Error(ValueError):
    """A document that cannot be imported; the message names the file's problem."""


@dataclass
class UserData:
    jid: str
    credentials: Credentials = field(default_factory=dict)
    roster: list[RosterItem] = field(default_factory=list)
    pending_in: list[tuple[str, str]] = field(default_factory=list)  # (contact, presence XML)
    vcard: str | None = None
    private: dict[str, str] = field(default_factory=dict)  # Clark name -> XML
    offline: list[tuple[str, datetime]] = field(default_factory=list)  # (message XML, stamp)


# ---- reading ------------------------------------------------------------------------------


def parse_document(data: bytes, iterations: int) -> list[UserData]:
    """The users of one XEP-0227 document. `iterations`: for keys derived from a plaintext
    password attribute."""
    body = _XML_DECLARATION.sub(b"", data, count=1)
    limits = ParserLimits(len(body) + 1024, 10 * len(body) + 64, 64, 64)
    try:
        root = parse_fragment(body, default_ns=PIE, limits=limits)
    except StreamError as exc:
        raise Xep0227Error(f"not a well-formed XML document ({exc.condition})") from None
    if root.tag != ns.q(PIE, "server-data"):
        raise Xep0227Error(f"the root element is {root.tag}, not {{{PIE}}}server-data")
    users = []
    for host in root.iter(ns.q(PIE, "host")):
        domain = host.get("jid", "")
        for user in host.findall(ns.q(PIE, "user")):
            users.append(_user(domain, user, iterations))
    return users


def _bare(text: str, what: str) -> str:
    try:
        jid = JID.parse(text)
    except JIDError as exc:
        raise Xep0227Error(f"{what} {text!r} is not a JID ({exc})") from None
    if jid.resource is not None:
        raise Xep0227Error(f"{what} {text!r} has a resource")
    return str(jid)


def _b64(el: Element, name: str, where: str) -> bytes:
    text = (el.findtext(ns.q(PIE_SCRAM, name)) or "").strip()
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise Xep0227Error(f"{where}: <{name}/> is not base64") from None


def _user(domain: str, user: Element, iterations: int) -> UserData:
    jid = _bare(f"{user.get('name', '')}@{domain}", "user")
    data = UserData(jid)
    password = user.get("password")
    if password:
        data.credentials = derive_all(password, iterations)
    for scram in user.findall(ns.q(PIE_SCRAM, "scram-credentials")):
        hash_name = scram.get("mechanism", "").removeprefix("SCRAM-")
        if hash_name not in HASHES:
            continue  # a mechanism we do not serve: nothing to keep
        where = f"{jid} {scram.get('mechanism')}"
        try:
            count = int((scram.findtext(ns.q(PIE_SCRAM, "iter-count")) or "").strip())
        except ValueError:
            raise Xep0227Error(f"{where}: <iter-count/> is not a number") from None
        keys = ScramKeys(
            hash_name,
            _b64(scram, "salt", where),
            count,
            stored_key=_b64(scram, "stored-key", where),
            server_key=_b64(scram, "server-key", where),
        )
        size = hashlib.new(HASHES[hash_name]).digest_size
        if len(keys.stored_key) != size or len(keys.server_key) != size or not keys.salt:
            raise Xep0227Error(f"{where}: keys of the wrong size, or no salt")
        if not 1 <= count <= MAX_ITERATIONS:  # each login would pay for them in CPU
            raise Xep0227Error(f"{where}: {count} iterations, not 1 to {MAX_ITERATIONS}")
        data.credentials[hash_name] = keys  # the last one wins (Prosody appends on each run)
    for query in user.findall(ns.q(ns.ROSTER, "query")):
        data.roster = [_roster_item(jid, item) for item in query.findall(ns.q(ns.ROSTER, "item"))]
    for presence in user.findall(ns.PRESENCE):
        if presence.get("type") == "subscribe" and presence.get("from"):
            contact = _bare(presence.get("from", ""), "subscription request from")
            data.pending_in.append((contact, serialize(presence).decode()))
    vcard = user.find(ns.q(ns.VCARD, "vCard"))
    if vcard is not None:
        data.vcard = serialize(vcard).decode()
    for query in user.findall(ns.q(ns.PRIVATE, "query")):
        for child in query:
            data.private[child.tag] = serialize(child).decode()
    offline = user.find(ns.q(PIE, "offline-messages"))
    for message in offline if offline is not None else ():
        if message.tag == ns.MESSAGE:
            data.offline.append((serialize(message).decode(), _stamp(message, domain)))
    return data


def _roster_item(owner: str, item: Element) -> RosterItem:
    contact = _bare(item.get("jid", ""), f"{owner}'s roster item")
    subscription = item.get("subscription", "none")
    if subscription not in _SUBSCRIPTIONS:
        subscription = "none"  # 'remove' and unknown values carry no state
    return RosterItem(
        contact,
        name=item.get("name") or None,
        subscription=subscription,
        ask=item.get("ask") == "subscribe",
        approved=item.get("approved") in ("true", "1"),
        groups=tuple(dict.fromkeys(g.text or "" for g in item.findall(ns.q(ns.ROSTER, "group")))),
    )


def _stamp(message: Element, domain: str) -> datetime:
    """When the server stored it: its own delay stamp, else the first one, else now."""
    delays = list(message.iter(ns.q(ns.DELAY, "delay")))
    ours = [d for d in delays if d.get("from") == domain] or delays
    for delay in ours:
        try:
            when = datetime.fromisoformat(delay.get("stamp", "").replace("Z", "+00:00"))
        except ValueError:
            continue
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return datetime.now(UTC)


# ---- writing a document -------------------------------------------------------------------


def _stored(xml: str) -> Element:
    data = xml.encode("utf-8")
    return parse_fragment(data, limits=ParserLimits(len(data) + 1024, 10**6, 64, 64))


def user_element(user: UserData) -> Element:
    el = make(ns.q(PIE, "user"), {"name": user.jid.partition("@")[0]})
    for keys in user.credentials.values():
        scram = make(ns.q(PIE_SCRAM, "scram-credentials"), {"mechanism": f"SCRAM-{keys.hash_name}"})
        for name, value in (
            ("iter-count", str(keys.iterations)),
            ("salt", base64.b64encode(keys.salt).decode()),
            ("server-key", base64.b64encode(keys.server_key).decode()),
            ("stored-key", base64.b64encode(keys.stored_key).decode()),
        ):
            scram.append(make(ns.q(PIE_SCRAM, name), text=value))
        el.append(scram)
    if user.roster:
        query = make(ns.q(ns.ROSTER, "query"))
        for item in user.roster:
            attrs = {"jid": item.jid, "subscription": item.subscription}
            if item.name is not None:
                attrs["name"] = item.name
            if item.ask:
                attrs["ask"] = "subscribe"
            if item.approved:
                attrs["approved"] = "true"
            entry = make(ns.q(ns.ROSTER, "item"), attrs)
            for group in item.groups:
                entry.append(make(ns.q(ns.ROSTER, "group"), text=group))
            query.append(entry)
        el.append(query)
    for _contact, xml in user.pending_in:
        el.append(_stored(xml))
    if user.vcard:
        el.append(_stored(user.vcard))
    if user.private:
        query = make(ns.q(ns.PRIVATE, "query"))
        for xml in user.private.values():
            query.append(_stored(xml))
        el.append(query)
    if user.offline:
        box = make(ns.q(PIE, "offline-messages"))
        domain = user.jid.partition("@")[2]
        for xml, stamp in user.offline:
            message = _stored(xml)
            if not any(d.get("from") == domain for d in message.iter(ns.q(ns.DELAY, "delay"))):
                text = stamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                message.append(make(ns.q(ns.DELAY, "delay"), {"from": domain, "stamp": text}))
            box.append(message)
        el.append(box)
    return el


def render_document(users: list[UserData]) -> bytes:
    root = make(ns.q(PIE, "server-data"))
    hosts: dict[str, Element] = {}
    for user in users:
        domain = user.jid.partition("@")[2]
        if domain not in hosts:
            hosts[domain] = make(ns.q(PIE, "host"), {"jid": domain})
            root.append(hosts[domain])
        hosts[domain].append(user_element(user))
    return b"<?xml version='1.0' encoding='utf-8'?>\n" + serialize(root, default_ns=None) + b"\n"


# ---- storage ------------------------------------------------------------------------------


async def read_account(storage: Storage, jid: str) -> UserData:
    account = await storage.get_account(jid)
    if account is None:
        raise Xep0227Error(f"no account {jid}")
    return UserData(
        jid,
        dict(account.credentials),
        await storage.get_roster(jid),
        await storage.get_pending_in(jid),
        await storage.get_vcard(jid),
        await storage.list_private(jid),
        [(m.xml, m.stamp) for m in await storage.list_offline(jid)],
    )


async def write_account(storage: Storage, user: UserData, overwrite: bool) -> bool:
    """Creates the account with all its data; True when it replaced an existing one (only with
    `overwrite`, else AccountExists)."""
    replaced = False
    try:
        await storage.create_account(user.jid, user.credentials)
    except AccountExists:
        if not overwrite:
            raise
        await storage.delete_account(user.jid)
        await storage.create_account(user.jid, user.credentials)
        replaced = True
    for item in user.roster:
        await storage.put_roster_item(user.jid, item)
    for contact, xml in user.pending_in:
        await storage.add_pending_in(user.jid, contact, xml)
    if user.vcard:
        await storage.set_vcard(user.jid, user.vcard)
    for key, xml in user.private.items():
        await storage.set_private(user.jid, key, xml)
    for xml, stamp in user.offline:
        await storage.store_offline(user.jid, xml, stamp)
    return replaced

"""Feature audit from service discovery: which XEPs a domain offers, per compliance suite.

Pure data and logic (no slixmpp): `audit(evidence)` takes what disco found (the domain's
features and identities, its items' identities and features, the account's own features, the
stream features after login, and whether DNS publishes direct TLS) and returns findings grouped
like `prosodyctl check features` and the XEP-0479 compliance suites.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vinesctl.probes.findings import Finding, Status

# namespace -> (XEP or RFC, short name); used by `vinesctl disco` to label features
KNOWN: dict[str, tuple[str, str]] = {
    "http://jabber.org/protocol/disco#info": ("XEP-0030", "Service Discovery (info)"),
    "http://jabber.org/protocol/disco#items": ("XEP-0030", "Service Discovery (items)"),
    "jabber:x:data": ("XEP-0004", "Data Forms"),
    "http://jabber.org/protocol/commands": ("XEP-0050", "Ad-Hoc Commands"),
    "http://jabber.org/protocol/admin": ("XEP-0133", "Service Administration"),
    "jabber:iq:roster": ("RFC 6121", "Roster"),
    "urn:xmpp:features:rosterver": ("RFC 6121", "Roster Versioning"),
    "jabber:iq:version": ("XEP-0092", "Software Version"),
    "jabber:iq:last": ("XEP-0012", "Last Activity"),
    "urn:xmpp:time": ("XEP-0202", "Entity Time"),
    "urn:xmpp:ping": ("XEP-0199", "XMPP Ping"),
    "vcard-temp": ("XEP-0054", "vcard-temp"),
    "urn:xmpp:vcard4": ("XEP-0292", "vCard4 over XMPP"),
    "jabber:iq:private": ("XEP-0049", "Private XML Storage"),
    "msgoffline": ("XEP-0160", "Offline Messages"),
    "http://jabber.org/protocol/offline": ("XEP-0013", "Flexible Offline Message Retrieval"),
    "urn:xmpp:carbons:2": ("XEP-0280", "Message Carbons"),
    "urn:xmpp:carbons:rules:0": ("XEP-0280", "Message Carbons (rules)"),
    "jabber:iq:time": ("XEP-0090", "Legacy Entity Time"),
    "urn:xmpp:features:pre-approval": ("RFC 6121", "Subscription Pre-Approval"),
    "urn:xmpp:blocking": ("XEP-0191", "Blocking Command"),
    "jabber:iq:privacy": ("XEP-0016", "Privacy Lists"),
    "urn:xmpp:mam:2": ("XEP-0313", "Message Archive Management"),
    "urn:xmpp:mam:2#extended": ("XEP-0313", "Message Archive Management (extended)"),
    "urn:xmpp:sm:3": ("XEP-0198", "Stream Management"),
    "urn:xmpp:csi:0": ("XEP-0352", "Client State Indication"),
    "urn:xmpp:push:0": ("XEP-0357", "Push Notifications"),
    "urn:xmpp:http:upload:0": ("XEP-0363", "HTTP File Upload"),
    "http://jabber.org/protocol/bytestreams": ("XEP-0065", "SOCKS5 Bytestreams"),
    "http://jabber.org/protocol/muc": ("XEP-0045", "Multi-User Chat"),
    "http://jabber.org/protocol/pubsub": ("XEP-0060", "Publish-Subscribe"),
    "http://jabber.org/protocol/pubsub#publish": ("XEP-0060", "PubSub: publish"),
    "urn:xmpp:bookmarks:1": ("XEP-0402", "PEP Native Bookmarks"),
    "urn:xmpp:extdisco:2": ("XEP-0215", "External Service Discovery"),
    "jabber:iq:register": ("XEP-0077", "In-Band Registration"),
    "urn:xmpp:sasl-cb:0": ("XEP-0440", "SASL Channel-Binding Type Capability"),
    "urn:xmpp:sasl:2": ("XEP-0388", "Extensible SASL Profile"),
    "urn:xmpp:bind:0": ("XEP-0386", "Bind 2"),
    "urn:xmpp:http:online-meetings:0": ("XEP-0465", "Online meetings"),
    "http://jabber.org/protocol/caps": ("XEP-0115", "Entity Capabilities"),
    "urn:xmpp:invite": ("XEP-0379", "Pre-Authenticated Roster Subscription"),
    "urn:xmpp:reporting:1": ("XEP-0377", "Spam Reporting"),
    "urn:xmpp:occupant-id:0": ("XEP-0421", "Occupant identifiers"),
    "urn:xmpp:pubsub-social-feed:1": ("XEP-0472", "Social Feed"),
    "http://jabber.org/protocol/amp": ("XEP-0079", "Advanced Message Processing"),
    "jabber:iq:search": ("XEP-0055", "Jabber Search"),
    "http://jabber.org/network/serverinfo": ("XEP-0157", "Contact Addresses"),
    "urn:xmpp:serverinfo:0": ("XEP-0485", "PubSub Server Information"),
}


def describe(var: str) -> str:
    """'XEP-0199 XMPP Ping' for a known namespace, '' otherwise."""
    xep = KNOWN.get(var)
    return f"{xep[0]} {xep[1]}" if xep else ""


@dataclass
class Evidence:
    """What disco and the login showed about a domain."""

    domain: str
    server_features: set[str] = field(default_factory=set)
    server_identities: set[tuple[str, str]] = field(default_factory=set)  # (category, type)
    account_features: set[str] = field(default_factory=set)
    account_identities: set[tuple[str, str]] = field(default_factory=set)
    item_features: set[str] = field(default_factory=set)
    item_identities: set[tuple[str, str]] = field(default_factory=set)
    stream_features: set[str] = field(default_factory=set)  # namespaces of <stream:features>
    forms: set[str] = field(default_factory=set)  # FORM_TYPEs of the domain's extended info
    direct_tls: bool | None = None  # _xmpps-client SRV published (None: not checked)
    account_checked: bool = False
    software: str = ""  # the name of the domain's server identity: Vines, Prosody, ejabberd...


@dataclass
class Requirement:
    name: str  # 'Message Carbons (XEP-0280)'
    suite: str  # 'Core', 'IM', 'Mobile', 'Recommended'
    fix: str  # for any server
    prosody: str = ""  # the Prosody module or setting that provides it
    vines: str = ""  # what to do on our bundled server (when it offers the feature at all)
    features: tuple[str, ...] = ()  # any of these disco features on the domain
    account: tuple[str, ...] = ()  # ... or on the account's bare JID
    stream: tuple[str, ...] = ()  # ... or a stream feature namespace
    identity: tuple[str, str] | None = None  # an item (or the domain) with this identity
    form: str = ""  # an extended info FORM_TYPE
    dns_direct_tls: bool = False
    advanced: bool = False  # an "advanced" level requirement: missing is a warning either way


REQUIREMENTS: list[Requirement] = [
    Requirement(
        "Service Discovery (XEP-0030)",
        "Core",
        "load a disco module",
        features=("http://jabber.org/protocol/disco#info",),
    ),
    Requirement(
        "Direct TLS (XEP-0368)",
        "Core",
        "listen for direct TLS (5223) and publish _xmpps-client._tcp SRV records",
        vines="set [listeners] c2s_direct_tls_port in vines.toml and publish "
        "_xmpps-client._tcp SRV records",
        dns_direct_tls=True,
        advanced=True,
    ),
    Requirement(
        "Personal Eventing Protocol (XEP-0163)",
        "Core",
        "enable PEP",
        prosody="mod_pep",
        identity=("pubsub", "pep"),
        advanced=True,
    ),
    Requirement(
        "Roster versioning (RFC 6121)",
        "IM",
        "enable roster versioning",
        stream=("urn:xmpp:features:rosterver",),
        advanced=True,
    ),
    Requirement(
        "Message Carbons (XEP-0280)",
        "IM",
        "enable carbons",
        prosody="mod_carbons",
        features=("urn:xmpp:carbons:2",),
        account=("urn:xmpp:carbons:2",),
    ),
    Requirement(
        "Blocking Command (XEP-0191)",
        "IM",
        "enable blocking",
        prosody="mod_blocklist",
        features=("urn:xmpp:blocking",),
        account=("urn:xmpp:blocking",),
    ),
    Requirement(
        "Multi-User Chat (XEP-0045)",
        "IM",
        "add a MUC component (e.g. conference.DOMAIN)",
        prosody='Component "conference.DOMAIN" "muc"',
        identity=("conference", "text"),
    ),
    Requirement(
        "Stream Management (XEP-0198)",
        "IM",
        "enable stream management",
        prosody="mod_smacks",
        stream=("urn:xmpp:sm:3",),
        features=("urn:xmpp:sm:3",),
    ),
    Requirement(
        "Message Archive Management (XEP-0313)",
        "IM",
        "enable MAM",
        prosody="mod_mam",
        features=("urn:xmpp:mam:2",),
        account=("urn:xmpp:mam:2",),
    ),
    Requirement(
        "vcard-temp (XEP-0054)",
        "IM",
        "enable vCards",
        prosody="mod_vcard_legacy",
        features=("vcard-temp",),
        account=("vcard-temp",),
    ),
    Requirement(
        "Private XML Storage (XEP-0049)",
        "IM",
        "enable private storage",
        prosody="mod_private",
        features=("jabber:iq:private",),
        account=("jabber:iq:private",),
        advanced=True,
    ),
    Requirement(
        "HTTP File Upload (XEP-0363)",
        "IM",
        "add an upload component",
        prosody="http_file_share",
        features=("urn:xmpp:http:upload:0",),
    ),
    Requirement(
        "Client State Indication (XEP-0352)",
        "Mobile",
        "enable CSI",
        prosody="mod_csi_simple",
        stream=("urn:xmpp:csi:0",),
        features=("urn:xmpp:csi:0",),
    ),
    Requirement(
        "Push Notifications (XEP-0357)",
        "Mobile",
        "enable push",
        prosody="mod_cloud_notify",
        features=("urn:xmpp:push:0",),
        account=("urn:xmpp:push:0",),
    ),
    Requirement(
        "XMPP Ping (XEP-0199)",
        "Recommended",
        "enable ping",
        prosody="mod_ping",
        features=("urn:xmpp:ping",),
    ),
    Requirement(
        "Software Version (XEP-0092)",
        "Recommended",
        "enable version",
        features=("jabber:iq:version",),
        advanced=True,
    ),
    Requirement(
        "Offline Messages (XEP-0160)",
        "Recommended",
        "enable offline storage",
        features=("msgoffline",),
        advanced=True,
    ),
    Requirement(
        "Contact Addresses (XEP-0157)",
        "Recommended",
        "publish abuse and admin addresses",
        prosody="contact_info",
        form="http://jabber.org/network/serverinfo",
        advanced=True,
    ),
]


def _present(req: Requirement, ev: Evidence) -> bool | None:
    """True/False, or None when the evidence needed was not gathered."""
    if req.dns_direct_tls:
        return ev.direct_tls
    found = False
    if req.features and set(req.features) & (ev.server_features | ev.item_features):
        found = True
    if req.account and set(req.account) & ev.account_features:
        found = True
    if req.stream and set(req.stream) & ev.stream_features:
        found = True
    if req.identity and req.identity in (
        ev.item_identities | ev.server_identities | ev.account_identities
    ):
        found = True
    if req.form and req.form in ev.forms:
        found = True
    if not found and not ev.account_checked:
        # evidence only visible from an account on the domain itself: not gathered
        if req.identity == ("pubsub", "pep"):
            return None
        if not (req.features or req.identity or req.form):
            return None
    return found


def fix_for(req: Requirement, software: str) -> str:
    """The remedy phrased for the server being checked: ours, Prosody, or any server."""
    name = software.lower()
    if name.startswith("vines"):
        short = req.name.partition(" (")[0]
        return req.vines or f"vines-server does not offer {short}; nothing to configure"
    if name.startswith("prosody") and req.prosody:
        return f"{req.fix} (Prosody: {req.prosody})"
    return req.fix


def audit(ev: Evidence) -> list[Finding]:
    """One finding per requirement: ok when present; warn when missing (a fail only for the
    baseline, disco itself); skip when the evidence was not gathered."""
    out: list[Finding] = []
    for req in REQUIREMENTS:
        present = _present(req, ev)
        fix = fix_for(req, ev.software).replace("DOMAIN", ev.domain)
        if present is None:
            out.append(
                Finding(req.name, Status.SKIP, f"{req.suite}: not checked", "", check="features")
            )
        elif present:
            out.append(
                Finding(req.name, Status.OK, f"{req.suite}: supported", "", check="features")
            )
        else:
            status = Status.FAIL if req.suite == "Core" and not req.advanced else Status.WARN
            detail = f"{req.suite}: missing"
            if req.account and not ev.account_checked:
                detail += " on the domain (its accounts' own features were not checked)"
            out.append(Finding(req.name, status, detail, fix, check="features"))
    return out


def skipped(reason: str, fix: str = "") -> list[Finding]:
    """The audit, every requirement skipped with `reason` (no account, domain unreachable...)."""
    return [Finding("feature audit", Status.SKIP, reason, fix, check="features")]

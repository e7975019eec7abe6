"""The commented `vines.toml` that `vinesctl server init` writes, beside the schema it documents
(config.py): every key the schema accepts appears in it, with a note (a test holds this). The
defaults shown come from the schema's dataclasses, so they cannot drift from what the server
uses; the notes are the one place that explains each key."""

from __future__ import annotations

import json
import re
from dataclasses import MISSING, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vines_server.config import (
    INCLUDE_LINE,
    Deadlines,
    Limits,
    MetricsConfig,
    PresenceConfig,
)

LIMIT_NOTES = {
    "stanza_size": "bytes per stanza after authentication (RFC 6120 minimum: 10000)",
    "preauth_stanza_size": "bytes per stanza before authentication",
    "preauth_elements": "elements per stanza before authentication",
    "elements": "elements per stanza",
    "depth": "XML nesting depth",
    "attributes": "attributes per element",
    "sessions_per_account": "concurrent resources per account, then resource-constraint",
    "auth_failures_per_stream": "failed SASL attempts, then policy-violation",
    "stream_restarts": "stream restarts per connection",
    "offline_quota": "offline messages kept per account",
    "offline_bytes": "bytes of offline messages kept per account",
    "roster_items": "roster items per account, then not-acceptable",
    "private_bytes": "bytes of private XML storage (XEP-0049) per account",
    "directed_presences": "JIDs one session may send directed presence to",
    "subscriptions_per_minute": "subscribe requests per account per minute, then too-many-stanzas",
    "output_bytes": "bytes queued for a client that does not read, then messages go offline",
    "read_rate": (
        "bytes per second one client or s2s connection may send; past it reading pauses (no loss)"
    ),
    "read_burst": "bytes one connection may send at once above read_rate, then reading pauses",
    "sm_unacked": "stanzas sent and not acknowledged (XEP-0198), then policy-violation",
    "sm_unacked_bytes": "bytes sent and not acknowledged (XEP-0198), then policy-violation",
    "pbkdf2_iterations": "SCRAM iterations for new passwords (at least 10000)",
    "connections_per_ip": "open connections per client address, more are refused (XEP-0205)",
    "auth_failures_per_ip": "failed logins per address within auth_ban_seconds, then a ban",
    "auth_ban_seconds": "how long an address stays banned after too many failed logins",
    "ban_exempt": "addresses or networks never banned (the console on this machine)",
}
DEADLINE_NOTES = {
    "tls_handshake": "seconds to finish the TLS handshake",
    "negotiation": "seconds from connect to a bound session",
    "stanza": "seconds to finish a stanza once it started",
    "idle": "seconds of silence before a connection is closed",
    "shutdown": "seconds streams get to close at SIGTERM",
    "hibernate": "seconds idle before a ready stream drops its XML parser (memory)",
    "adhoc_session": "seconds of silence before an ad-hoc command session expires",
    "output_stall": "seconds a client's output may stay full, then policy-violation",
    "resume": "seconds a dropped stream-management session waits to be resumed (XEP-0198)",
}
FEDERATION_NOTES = {
    "ca_file": "PEM trust anchors for peers besides the system store",
    "peers": "per peer: dialback (opt-in, XEP-0220), a static route",
}
#: Examples, not defaults: both keys are absent unless set.
FEDERATION_EXAMPLES = {
    "ca_file": "peers-ca.pem",
    "peers": {"example.net": {"dialback": True, "host": "xmpp.example.net", "port": 5269}},
}
METRICS_NOTES = {
    "port": "HTTP port of GET /metrics (OpenMetrics); false: none, 0: a free one",
    "bind": "addresses it listens on; the figures are not public",
}
PRESENCE_NOTES = {
    "interval": "seconds; at most one load update per interval",
    "capacity": "planned sessions; show becomes away at 80 %, dnd when full",
    "subscribers": "JIDs besides the admins that may subscribe (components)",
}


def _key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else toml_value(name)


def toml_value(value: Any) -> str:
    """A Python default as TOML text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=True)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    return repr(value)


def commented_defaults(cls: type, notes: dict[str, str]) -> str:
    """One `# key = default  # note` line per field of a schema dataclass."""
    defaults = {f.name: f.default for f in fields(cls) if f.default not in (MISSING, None)}
    return commented_lines(defaults, notes)


def commented_lines(values: dict[str, Any], notes: dict[str, str]) -> str:
    """One `# key = value  # note` line per item."""
    lines = []
    for name, default in values.items():
        value = f"# {name} = {toml_value(default)}"
        note = notes.get(name)
        lines.append(f"{value:<36} # {note}" if note else value)
    return "\n".join(lines)


def render_config(
    domain: str, admin: str, bind: str, c2s_port: int, tls_port: int, cert: Path, key: Path
) -> str:
    """The commented vines.toml written by `server init`."""

    def rel(p: Path) -> str:
        return p.name if p.parent == cert.parent else str(p)

    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"""\
# vines.toml: the bundled XMPP server (vines-server).
# Written by 'vinesctl server init' on {now}. The server reads this file at start and
# never rewrites it. Relative paths are relative to the directory of this file.
# Start the server with 'vinesctl server start', check it with 'vinesctl server status'.

# More [domains.NAME] and [components.NAME] tables, one file each ('vinesctl server add-domain'
# writes them); an included file may hold only such tables. Relative to this file's directory.
{INCLUDE_LINE}

[server]
# Bare JIDs of the administrators (XEP-0133 commands). Admin rights come only from this list.
admins = [{toml_value(admin)}]
# debug | info | warning | error
log_level = "info"
# asyncio | uvloop (pip install 'vinesctl[uvloop]') | auto (uvloop when installed)
event_loop = "asyncio"

# One [domains.NAME] table per hosted domain: its certificate chain (PEM, leaf first) and key.
# Clients choose the domain's certificate by SNI. The pair below is self-signed; replace it with
# one from your CA whenever you like (keep the names, or change the paths here).
[domains.{toml_value(domain)}]
certificate = {toml_value(rel(cert))}
key = {toml_value(rel(key))}

[listeners]
# Addresses to listen on: "0.0.0.0" or "::" for every interface.
bind = [{toml_value(bind)}]
# Clients with STARTTLS (always required: there is no plaintext mode). 0 picks a free port.
c2s_port = {c2s_port}
# Clients with direct TLS (XEP-0368, ALPN xmpp-client). 0 picks a free port; false disables it.
c2s_direct_tls_port = {tls_port}
# Other servers (federation) with STARTTLS; listens only while [federation] allows a domain.
s2s_port = 5269
# Other servers with direct TLS (XEP-0368, ALPN xmpp-server), e.g. 5270; false disables it.
s2s_direct_tls_port = false
# External components (XEP-0114), one [components."DOMAIN"] table each (see the end of this file).
# component_port = false  # 5347 is the usual port; false: no component listener
# component_bind = ["127.0.0.1"]  # its own addresses; plaintext is allowed only on loopback
# component_tls = false  # direct TLS on the component port (certificate by SNI)

[storage]
# "sqlite" (durable: committed before success is reported), "postgresql" (durable too, and one
# store for several nodes: pip install 'vinesctl[postgresql]') or "memory" (lost at exit).
backend = "sqlite"
path = "vines.sqlite"
# dsn = "postgresql://vines@127.0.0.1:5432/vines"  # for postgresql; never a password in it
# dsn_password_file = "vines.pgpass"  # the role's password, one line, mode 0600; else PGPASSFILE

[limits]
# Protection against abuse; the defaults (shown) follow the security plan. Uncomment to change.
{commented_defaults(Limits, LIMIT_NOTES)}

[deadlines]
# Seconds; the defaults are shown. Uncomment to change.
{commented_defaults(Deadlines, DEADLINE_NOTES)}

[presence]
# The server's own presence: admins who subscribe to the domain JID get its load (online users,
# stanza rates, CPU, memory) at most once per interval, and only when it moved.
{commented_defaults(PresenceConfig, PRESENCE_NOTES)}

[metrics]
# Figures for Prometheus (sessions, stanzas, logins, store latency, event-loop lag, process):
# scrape http://127.0.0.1:PORT/metrics. A change needs a restart.
{commented_lines({"port": False, "bind": list(MetricsConfig.bind)}, METRICS_NOTES)}

[federation]
# Domains this server may exchange stanzas with. Empty: a closed system; a stanza to any other
# domain comes back to its sender as <not-allowed/>.
allow = []
# A peer must present a certificate valid for its domain from a CA in the system store or in
# ca_file. The certificate above is self-signed: peers that verify certificates refuse it, so
# until you put a CA-signed pair in [domains] (e.g. Let's Encrypt's fullchain.pem and
# privkey.pem), only peers that opted into dialback federate with you. One peer's settings
# can also be written as a table: [federation.peers."example.net"] with the same keys.
{commented_lines(FEDERATION_EXAMPLES, FEDERATION_NOTES)}

# An external component (XEP-0114) per table: uncomment the header and its keys to add one.
# [components."work.example.org"]
# secret_file = "work.secret"  # the shared secret, read from this file; or secret = "..."
# secret = "..."  # the shared secret inline (set one of secret and secret_file); never logged
# name = "Work queue"  # shown in the server's disco#items
# conflict = "kick_new"  # a second connection for the domain: refused, or "kick_old" replaces

# Several nodes serving these domains as one service: uncomment the header and its keys. Every
# node needs the same [domains] and [storage] backend = "postgresql" (a shared store).
# [cluster]
# redis = "redis://127.0.0.1:6379/0"  # the directory and node-to-node channel; Valkey works too
# password_file = "vines.redis-pass"  # Redis's password, one line, mode 0600; never logged
# node = "n1"  # unique per node; default: this host's name and the c2s port
# heartbeat = 1.0  # seconds between two refreshes of this node's liveness key
# ttl = 5.0  # seconds unrefreshed, then the other nodes purge it and its users go unavailable
"""

"""vines.toml -> frozen dataclasses, validated once at start.

Every problem is reported as a ConfigError whose message names the key and the fix, in one line.
Relative paths are resolved against the directory of the config file. The server never writes
this file.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from vines_server.files import sibling_file
from vines_server.xmpp.jid import JID, JIDError, domain_to_ascii, normalize_domainpart


class ConfigError(Exception):
    """One line: which key is wrong and how to fix it."""


@dataclass(frozen=True)
class DomainConfig:
    name: str
    certificate: Path
    key: Path


@dataclass(frozen=True)
class ListenerConfig:
    bind: tuple[str, ...] = ("127.0.0.1",)
    c2s_port: int = 5222  # STARTTLS; 0 picks an ephemeral port
    c2s_direct_tls_port: int | None = 5223  # XEP-0368; None disables it
    s2s_port: int = 5269  # STARTTLS; listens only while federation is configured
    s2s_direct_tls_port: int | None = None  # XEP-0368 ALPN xmpp-server; None (false): off
    component_port: int | None = None  # XEP-0114 (5347 is usual); None: no component listener
    component_bind: tuple[str, ...] = ("127.0.0.1",)
    component_tls: bool = False  # direct TLS on the component port, certificate by SNI


@dataclass(frozen=True)
class StorageConfig:
    backend: str = "sqlite"  # "sqlite" | "postgresql" | "memory"
    path: Path = Path("vines.sqlite")
    # postgresql only: a libpq URI without a password (the password lives in a file, never here)
    dsn: str | None = None
    dsn_password_file: Path | None = None  # one line, the password; else PGPASSFILE is used


@dataclass(frozen=True)
class Limits:
    """Defaults from the security plan, section 7."""

    stanza_size: int = 256 * 1024
    preauth_stanza_size: int = 8 * 1024
    preauth_elements: int = 32
    elements: int = 1024
    depth: int = 64
    attributes: int = 64
    sessions_per_account: int = 10
    auth_failures_per_stream: int = 3
    stream_restarts: int = 32
    offline_quota: int = 1000
    offline_bytes: int = 10 * 1024 * 1024  # per account, of stored XML, beside offline_quota
    roster_items: int = 2000  # per account
    private_bytes: int = 1024 * 1024  # per account, of XEP-0049 private XML
    directed_presences: int = 1000  # per session: JIDs given directed available presence
    subscriptions_per_minute: int = 100  # per account: subscribe requests (XEP-0205)
    pbkdf2_iterations: int = 10_000
    connections_per_ip: int = 64  # XEP-0205: refused at accept beyond this
    auth_failures_per_ip: int = 20  # within auth_ban_seconds, then the IP is banned ...
    auth_ban_seconds: int = 3600  # ... for this long (ejabberd mod_fail2ban)
    output_bytes: int = 1024 * 1024  # stanzas queued for a client that is not reading
    # bytes per second one connection may send, and its burst: past them reading pauses
    read_rate: int = 256 * 1024
    read_burst: int = 1024 * 1024
    # XEP-0198: stanzas and bytes sent to a client and not acknowledged, then policy-violation
    sm_unacked: int = 1000
    sm_unacked_bytes: int = 4 * 1024 * 1024
    # addresses or networks never banned for failed logins: the console on this machine
    ban_exempt: tuple[str, ...] = ("127.0.0.1", "::1")


@dataclass(frozen=True)
class Deadlines:
    """Seconds."""

    tls_handshake: float = 30.0
    negotiation: float = 60.0
    stanza: float = 60.0
    idle: float = 840.0
    shutdown: float = 5.0
    hibernate: float = 10.0  # idle this long, a ready stream drops its XML parser (memory)
    adhoc_session: float = 600.0  # an ad-hoc command session expires after this much silence
    output_stall: float = 60.0  # output full this long: the client is not reading, close it
    resume: float = 300.0  # XEP-0198: a dropped session waits this long to be resumed


@dataclass(frozen=True)
class PresenceConfig:
    """The server's own presence: its load, sent to subscribed admins and allowed JIDs."""

    interval: float = 2.0  # seconds; at most one load update per interval
    capacity: int = 10_000  # sessions the operator plans for; near it, show becomes away
    subscribers: tuple[str, ...] = ()  # JIDs besides admins that may subscribe (components...)


@dataclass(frozen=True)
class PeerConfig:
    """`[federation.peers."domain"]`: what differs for one peer domain."""

    name: str
    dialback: bool = False  # XEP-0220 when its certificate cannot be verified (opt-in)
    host: str | None = None  # a static route instead of DNS (split DNS, tests)
    port: int = 5269


@dataclass(frozen=True)
class FederationConfig:
    allow: tuple[str, ...] = ()
    ca_file: Path | None = None  # trust anchors for peers besides the system store
    peers: dict[str, PeerConfig] = field(default_factory=dict)

    def peer(self, domain: str) -> PeerConfig:
        """The settings for a prepared peer domain (the defaults when it has none)."""
        return self.peers.get(domain) or PeerConfig(domain)

    @property
    def configured(self) -> bool:
        """Federation runs only while it names someone (allowlist or peers): a closed domain
        otherwise, and the s2s code (dnspython, pyOpenSSL, cryptography) is never imported."""
        return bool(self.allow or self.peers)


@dataclass(frozen=True)
class MetricsConfig:
    """`[metrics]`: the OpenMetrics endpoint (GET /metrics over HTTP, for Prometheus)."""

    port: int | None = None  # false (None): no endpoint; 0 picks a free port
    bind: tuple[str, ...] = ("127.0.0.1",)  # the figures are not public: loopback by default


@dataclass(frozen=True)
class ComponentConfig:
    """One external component (XEP-0114): its domain, shared secret and disco name."""

    domain: str
    secret: str = field(repr=False)  # never in logs or reprs
    name: str = ""
    conflict: str = "kick_new"  # a second connection: "kick_new" refuses it, "kick_old" wins


@dataclass(frozen=True)
class ClusterConfig:
    """`[cluster]`: several nodes serving one set of domains over Redis (issue 13). Without a
    `redis` URL there is one node and nothing of Redis is imported."""

    redis: str | None = field(default=None, repr=False)  # may hold the password: never shown
    password_file: Path | None = None  # one line, Redis's password (AUTH); else from the URL
    node: str = ""  # unique per node; default: this host's name and the c2s port
    heartbeat: float = 1.0  # seconds between two refreshes of this node's liveness key
    ttl: float = 5.0  # seconds a node's liveness key lives unrefreshed, then it is purged

    @property
    def enabled(self) -> bool:
        return self.redis is not None


@dataclass(frozen=True)
class Config:
    path: Path | None
    domains: dict[str, DomainConfig]
    admins: tuple[str, ...] = ()
    listeners: ListenerConfig = field(default_factory=ListenerConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    limits: Limits = field(default_factory=Limits)
    deadlines: Deadlines = field(default_factory=Deadlines)
    federation: FederationConfig = field(default_factory=FederationConfig)
    log_level: str = "info"
    presence: PresenceConfig = field(default_factory=PresenceConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    components: dict[str, ComponentConfig] = field(default_factory=dict)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    event_loop: str = "asyncio"  # "asyncio", "uvloop", or "auto" (uvloop when installed)
    # K of `vines-server --node-index K` (one of the nodes `vinesctl server start --nodes N`
    # runs from this config); None for a server on its own. Not a key of vines.toml.
    node_index: int | None = field(default=None, metadata={"toml": False})

    @property
    def directory(self) -> Path:
        return self.path.parent if self.path else Path.cwd()

    def sibling(self, suffix: str) -> Path:
        path = self.path if self.path else Path.cwd() / "vines.toml"
        return sibling_file(path, suffix, self.node_index)


def as_node(config: Config, index: int) -> Config:
    """Node `index` (from 1) of the set `vinesctl server start --nodes N` runs from one config:
    its name is the configured node name plus `-index`, its pid, state and log files carry
    `@index`, and a fixed metrics port moves by index - 1 (node 1 keeps the configured one, so a
    scrape target written for one server stays valid). The client, s2s and component ports stay
    shared (the listeners set SO_REUSEPORT for node sets)."""
    metrics = config.metrics
    if metrics.port:  # 0 picks a free port per node anyway
        metrics = replace(metrics, port=metrics.port + index - 1)
    node = f"{config.cluster.node}-{index}"
    return replace(
        config, node_index=index, metrics=metrics, cluster=replace(config.cluster, node=node)
    )


def check_node_set(config: Config, count: int) -> None:
    """What a set of `count` > 1 nodes from one config needs, else ConfigError naming the key:
    [cluster] redis (the nodes share sessions through it), PostgreSQL storage (every node opens
    the store at once; SQLite is one process's file, memory one process's heap), and fixed
    listener ports (port 0 would give each node a port of its own, not a shared one)."""
    if config.cluster.redis is None:
        raise ConfigError(
            f"{count} nodes need [cluster] redis, through which they share sessions: add "
            '[cluster] redis = "redis://127.0.0.1:6379/0" to vines.toml, or start one node'
        )
    if config.storage.backend != "postgresql":
        raise ConfigError(
            f"{count} nodes need a store they all open: storage.backend is "
            f'"{config.storage.backend}"; set [storage] backend = "postgresql" and dsn'
        )
    lst = config.listeners
    for name in ("c2s_port", "c2s_direct_tls_port", "s2s_port", "s2s_direct_tls_port"):
        if getattr(lst, name) == 0:
            raise ConfigError(
                f"listeners.{name} is 0 (a free port per process): {count} nodes share their "
                "ports, so give it a fixed port"
            )
    if lst.component_port == 0:
        raise ConfigError(
            f"listeners.component_port is 0 (a free port per process): {count} nodes share "
            "their ports, so give it a fixed port"
        )


#: what `server init` writes and `server add-domain` expects: fragments in conf.d/
INCLUDE_LINE = 'include = ["conf.d/*.toml"]'
#: the only tables an included file may add, one sub-table per name
INCLUDABLE = ("domains", "components")
# [server] event_loop: asyncio's own loop (the default: uvloop was not clearly better on the
# benches, see bench/README.md), uvloop (the `uvloop` extra; refused at start when missing), or
# "auto": uvloop when it is installed, else asyncio's loop.
EVENT_LOOPS = ("asyncio", "uvloop", "auto")


def load(path: str | Path) -> Config:
    path = Path(path).expanduser().resolve()
    raw, _ = read_with_includes(path)
    return parse(raw, path)


def _read_toml(path: Path, what: str = "config file") -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"{what} {path} does not exist: create one with 'vinesctl server init'"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML ({exc}): fix the syntax") from None


def read_with_includes(path: Path) -> tuple[dict[str, Any], dict[tuple[str, str], Path]]:
    """vines.toml with the files its top-level `include` globs name (relative to its directory,
    in name order) merged in, and where each [domains.X] / [components.X] table came from. An
    included file may add such tables only; one table defined twice names both files. Paths
    inside any of them stay relative to vines.toml's directory."""
    raw = _read_toml(path)
    patterns = raw.pop("include", [])
    sources = {(t, _same(name)): path for t in INCLUDABLE for name in _table(raw, t)}
    for pattern in _str_list(raw, "include", patterns):
        absolute = Path(pattern).expanduser()
        root, glob = (
            (Path(absolute.anchor), str(absolute.relative_to(absolute.anchor)))
            if absolute.is_absolute()
            else (path.parent, pattern)
        )
        for fragment in sorted(p for p in root.glob(glob) if p.is_file()):
            _merge(raw, sources, fragment.resolve())
    return raw, sources


def _merge(raw: dict, sources: dict[tuple[str, str], Path], fragment: Path) -> None:
    extra = _read_toml(fragment, "included file")
    for key, tables in extra.items():
        if key not in INCLUDABLE or not isinstance(tables, dict):
            raise ConfigError(
                f"{fragment}: {key!r} cannot be set in an included file: "
                f"only [domains.NAME] and [components.NAME] tables; move it to vines.toml"
            )
        target = raw.setdefault(key, {})
        if not isinstance(target, dict):
            raise ConfigError(f"{key} must be a table: write it as [{key}]")
        for name, table in tables.items():
            first = sources.get((key, _same(name)))
            if first is not None:
                raise ConfigError(
                    f"[{key}.{name}] is defined twice, in {first} and in {fragment}: "
                    "keep one of them"
                )
            sources[(key, _same(name))] = fragment
            target[name] = table


def _same(name: str) -> str:
    """A table name as the domain it names (Example.ORG and example.org are one table); a
    malformed one as it is (parse() reports it)."""
    try:
        return normalize_domainpart(name)
    except JIDError:
        return name


def parse(raw: dict[str, Any], path: Path | None = None) -> Config:
    base = path.parent if path else Path.cwd()
    tables = ("server", "domains", "listeners", "storage", "limits", "deadlines", "federation")
    # include: resolved by load()
    _only(raw, "", {*tables, "presence", "metrics", "include", "components", "cluster"})

    server = _table(raw, "server")
    _only(server, "server.", {"admins", "log_level", "event_loop"})
    admins = tuple(_str_list(server, "server.admins", server.get("admins", [])))
    log_level = server.get("log_level", "info")
    if log_level not in ("debug", "info", "warning", "error"):
        raise ConfigError("server.log_level must be one of debug, info, warning, error")
    event_loop = server.get("event_loop", "asyncio")
    if event_loop not in EVENT_LOOPS:
        raise ConfigError(f"server.event_loop must be one of {', '.join(EVENT_LOOPS)}")

    domains_raw = _table(raw, "domains")
    if not domains_raw:
        raise ConfigError(
            "no [domains.<name>] table: add one, e.g. [domains.localhost] with certificate and key"
        )
    domains = {}
    for name, table in domains_raw.items():
        key = f"domains.{name}"
        if not isinstance(table, dict):
            raise ConfigError(f"{key} must be a table with 'certificate' and 'key'")
        _only(table, key + ".", {"certificate", "key"})
        prepared = _domain_name(key, name)
        domains[prepared] = DomainConfig(
            prepared,
            _path(table, key + ".certificate", base),
            _path(table, key + ".key", base),
        )
    for admin in admins:
        _admin_jid(admin, domains)

    lst = _table(raw, "listeners")
    _only(
        lst,
        "listeners.",
        {
            "bind",
            "c2s_port",
            "c2s_direct_tls_port",
            "s2s_port",
            "s2s_direct_tls_port",
            "component_port",
            "component_bind",
            "component_tls",
        },
    )
    bind = lst.get("bind", ["127.0.0.1"])
    bind = [bind] if isinstance(bind, str) else bind
    for address in _str_list(lst, "listeners.bind", bind):
        _bind_address(address)
    listeners = ListenerConfig(
        bind=tuple(_str_list(lst, "listeners.bind", bind)),
        c2s_port=_port(lst, "c2s_port", 5222),
        c2s_direct_tls_port=(
            None
            if lst.get("c2s_direct_tls_port", 5223) is False
            else _port(lst, "c2s_direct_tls_port", 5223)
        ),
        s2s_port=_port(lst, "s2s_port", 5269),
        s2s_direct_tls_port=(
            None
            if lst.get("s2s_direct_tls_port", False) is False
            else _port(lst, "s2s_direct_tls_port", 5270)
        ),
        **_component_listener(lst),
    )
    _distinct_ports(listeners)

    storage = _storage(_table(raw, "storage"), base)

    limits_raw = dict(_table(raw, "limits"))
    ban_exempt = limits_raw.pop("ban_exempt", list(Limits.ban_exempt))
    limits = _numbers(Limits, limits_raw, "limits", integer=True, besides={"ban_exempt"})
    limits = replace(limits, ban_exempt=_networks("limits.ban_exempt", ban_exempt))
    if limits.stanza_size < 10_000:
        raise ConfigError("limits.stanza_size must be at least 10000 (RFC 6120 section 13.12)")
    deadlines = _numbers(Deadlines, _table(raw, "deadlines"), "deadlines", integer=False)

    fed = _table(raw, "federation")
    _only(fed, "federation.", {"allow", "ca_file", "peers"})
    federation = FederationConfig(
        tuple(
            _domain_name("federation.allow", d)
            for d in _str_list(fed, "federation.allow", fed.get("allow", []))
        ),
        _path(fed, "federation.ca_file", base) if "ca_file" in fed else None,
        _peers(fed.get("peers", {})),
    )
    pres = _table(raw, "presence")
    _only(pres, "presence.", {"interval", "capacity", "subscribers"})
    presence = PresenceConfig(
        interval=_positive(pres, "presence.interval", PresenceConfig.interval),
        capacity=int(_positive(pres, "presence.capacity", PresenceConfig.capacity)),
        subscribers=tuple(_str_list(pres, "presence.subscribers", pres.get("subscribers", []))),
    )
    components = _components(_table(raw, "components"), domains, base)
    return Config(
        path,
        domains,
        admins,
        listeners,
        storage,
        limits,
        deadlines,
        federation,
        log_level,
        presence,
        _metrics(_table(raw, "metrics")),
        components,
        _cluster(_table(raw, "cluster"), base, storage, listeners),
        event_loop,
    )


def _metrics(table: dict) -> MetricsConfig:
    _only(table, "metrics.", {"port", "bind"})
    port = table.get("port", False)
    if port is not False:
        port = _port(table, "port", 0, "metrics")
    bind = table.get("bind", list(MetricsConfig.bind))
    for address in _str_list(table, "metrics.bind", bind):
        _bind_address(address, "metrics.bind")
    return MetricsConfig(None if port is False else port, tuple(bind))


def _distinct_ports(listeners: ListenerConfig) -> None:
    """Two listeners on one fixed port: the second bind would fail at start, say it now."""
    seen: dict[int, str] = {}
    for name in (
        "c2s_port",
        "c2s_direct_tls_port",
        "s2s_port",
        "s2s_direct_tls_port",
        "component_port",
    ):
        port = getattr(listeners, name)
        if port:  # None is off, 0 picks a free port
            if port in seen:
                raise ConfigError(
                    f"listeners.{name} {port} is also listeners.{seen[port]}: choose another port"
                )
            seen[port] = name


def _peers(table: Any) -> dict[str, PeerConfig]:
    if not isinstance(table, dict):
        raise ConfigError(
            'federation.peers must be a table: write [federation.peers."example.net"] per peer'
        )
    peers: dict[str, PeerConfig] = {}
    for name, peer in table.items():
        key = f'federation.peers."{name}"'
        if not isinstance(peer, dict):
            raise ConfigError(f"{key} must be a table: write it as [{key}]")
        _only(peer, key + ".", {"dialback", "host", "port"})
        dialback = peer.get("dialback", False)
        if not isinstance(dialback, bool):
            raise ConfigError(f"{key}.dialback must be true or false")
        host = peer.get("host")
        if host is not None:
            host = _host(key + ".host", host)
        port = peer.get("port", PeerConfig.port)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port <= 65535:
            raise ConfigError(f"{key}.port must be a port number 1-65535")
        if "port" in peer and host is None:
            raise ConfigError(f"{key}.port needs {key}.host: add the host to route to")
        prepared = _domain_name(key, name)
        if prepared in peers:
            raise ConfigError(f"{key} repeats federation.peers.{prepared!r}: keep one table")
        peers[prepared] = PeerConfig(prepared, dialback, host, port)
    return peers


def _host(key: str, value: Any) -> str:
    """A host name (A-labels, for DNS and the system resolver) or an IP address."""
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{key} must be a host name or an IP address")
    try:
        return str(ipaddress.ip_address(value.strip("[]")))
    except ValueError:
        pass
    try:
        return domain_to_ascii(value)
    except JIDError as exc:
        raise ConfigError(f"{key}: {value!r} is not a host name or IP address ({exc})") from None


def _component_listener(lst: dict) -> dict[str, Any]:
    """The component listener: off unless a port is given; plaintext only on loopback."""
    port = lst.get("component_port", False)
    bind = lst.get("component_bind", ["127.0.0.1"])
    bind = [bind] if isinstance(bind, str) else bind
    for address in _str_list(lst, "listeners.component_bind", bind):
        _bind_address(address, "listeners.component_bind")
    tls = lst.get("component_tls", False)
    if not isinstance(tls, bool):
        raise ConfigError("listeners.component_tls must be true or false")
    if port is False:
        return {"component_bind": tuple(bind), "component_tls": tls}
    port = _port(lst, "component_port", 5347)
    if not tls and not all(_loopback(address) for address in bind):
        raise ConfigError(
            "listeners.component_tls must be true when listeners.component_bind has a "
            "non-loopback address (component secrets would cross the network in plaintext): "
            'set component_tls = true or bind components to "127.0.0.1"'
        )
    return {"component_port": port, "component_bind": tuple(bind), "component_tls": tls}


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address == "localhost"


def _components(
    raw: dict, domains: dict[str, DomainConfig], base: Path
) -> dict[str, ComponentConfig]:
    components = {}
    for name, table in raw.items():
        key = f'components."{name}"'
        if not isinstance(table, dict):
            raise ConfigError(f"{key} must be a table with secret or secret_file")
        _only(table, key + ".", {"secret", "secret_file", "name", "conflict"})
        domain = _domain_name(key, name)
        if domain in domains:
            raise ConfigError(
                f"{key}: {domain} is a hosted domain ([domains.{domain}]): "
                "give the component a domain of its own, e.g. work." + domain
            )
        if ("secret" in table) == ("secret_file" in table):
            raise ConfigError(f"{key}: set exactly one of secret and secret_file")
        if "secret" in table:
            secret = table["secret"]
            if not isinstance(secret, str) or not secret:
                raise ConfigError(f"{key}.secret must be a non-empty string")
        else:
            path = _path(table, key + ".secret_file", base)
            try:
                secret = path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(
                    f"{key}.secret_file: cannot read {path} ({exc.strerror}): fix the path"
                ) from None
            if not secret:
                raise ConfigError(f"{key}.secret_file: {path} is empty: write the secret in it")
        label = table.get("name", "")
        if not isinstance(label, str):
            raise ConfigError(f"{key}.name must be a string")
        conflict = table.get("conflict", "kick_new")
        if conflict not in ("kick_new", "kick_old"):
            raise ConfigError(f'{key}.conflict must be "kick_new" or "kick_old"')
        components[domain] = ComponentConfig(domain, secret, label, conflict)
    return components


def _admin_jid(admin: str, domains: dict[str, DomainConfig]) -> None:
    example = f"admin@{next(iter(domains))}"
    try:
        jid = JID.parse(admin)
    except JIDError as exc:
        raise ConfigError(
            f"server.admins: {admin!r} is not a JID ({exc}): write a bare JID such as {example}"
        ) from None
    if jid.local is None or jid.resource is not None:
        raise ConfigError(
            f"server.admins: {admin!r} is not a bare JID of an account: write e.g. {example}"
        )
    if jid.domain not in domains:
        raise ConfigError(
            f"server.admins: {admin!r} is not on a hosted domain "
            f'(hosted: {", ".join(sorted(domains))}): fix the JID or add [domains."{jid.domain}"]'
        )


def _bind_address(value: str, key: str = "listeners.bind") -> None:
    """An IP address, or a host name (never a malformed address such as 127.0.0.999)."""
    try:
        ipaddress.ip_address(value)
        return
    except ValueError:
        pass
    labels = value.rstrip(".").split(".")
    numeric = all(label.isdigit() for label in labels)
    name_ok = all(re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?", x) for x in labels)
    if numeric or ":" in value or not name_ok:
        raise ConfigError(
            f'{key}: {value!r} is not an IP address: write e.g. "127.0.0.1", '
            '"0.0.0.0" or "::" (every interface)'
        )


def check_files(config: Config) -> None:
    """What the config names on disk: each domain's certificate and key exist, hold what their
    key says, and belong together; federation.ca_file holds certificates. ConfigError naming
    the key and the fix."""
    import ssl

    ca_file = config.federation.ca_file
    if ca_file is not None:
        try:
            held = ca_file.read_text(encoding="ascii", errors="replace")
        except OSError as exc:
            raise ConfigError(
                f"federation.ca_file: cannot read {ca_file} ({exc.strerror}): fix the path"
            ) from None
        if "BEGIN CERTIFICATE-----" not in held:
            raise ConfigError(
                f"federation.ca_file: {ca_file} holds no PEM certificate: "
                "point it at the CA certificates (PEM) that issue your peers' certificates"
            )

    for domain in config.domains.values():
        where = f"domains.{domain.name}"
        for path, what, marker in (
            (domain.certificate, "certificate", "CERTIFICATE-----"),
            (domain.key, "key", "PRIVATE KEY-----"),
        ):
            if not path.is_file():
                raise ConfigError(
                    f"{where}.{what}: {path} does not exist; "
                    "generate one with 'vinesctl server init' or fix the path"
                )
            try:
                text = path.read_text(encoding="ascii", errors="replace")
            except OSError as exc:
                raise ConfigError(f"{where}.{what}: cannot read {path} ({exc.strerror})") from None
            if marker not in text:
                held = (
                    "a certificate"
                    if "CERTIFICATE-----" in text
                    else "a private key"
                    if "PRIVATE KEY-----" in text
                    else "no PEM data"
                )
                raise ConfigError(
                    f"{where}.{what}: {path} holds {held}, not a PEM {what}: point {what} at the "
                    f"{'private key' if what == 'key' else 'certificate chain'} file"
                )
        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
                domain.certificate, domain.key
            )
        except ssl.SSLError as exc:
            raise ConfigError(
                f"{where}: {domain.key} does not fit {domain.certificate} ({exc.reason or exc}): "
                "use the key the certificate was issued for"
            ) from None


def _positive(table: dict, key: str, default: float) -> float:
    value = table.get(key.rsplit(".", 1)[1], default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"{key} must be a positive number")
    return value


STORAGE_BACKENDS = ("sqlite", "postgresql", "memory")


def _storage(st: dict, base: Path) -> StorageConfig:
    _only(st, "storage.", {"backend", "path", "dsn", "dsn_password_file"})
    backend = st.get("backend", "sqlite")
    if backend not in STORAGE_BACKENDS:
        raise ConfigError(
            f"storage.backend {backend!r} is unknown: use one of {', '.join(STORAGE_BACKENDS)}"
        )
    path = _path(st, "storage.path", base, "vines.sqlite")
    # Like path under postgresql, the dsn keys are kept (checked, unused) under another backend:
    # switching backends is one line.
    dsn = st.get("dsn")
    if dsn is None and backend == "postgresql":
        raise ConfigError(
            'storage.dsn is required with backend = "postgresql", '
            'e.g. "postgresql://vines@127.0.0.1:5432/vines"'
        )
    if dsn is not None:
        if not isinstance(dsn, str) or not dsn:
            raise ConfigError("storage.dsn must be a URI such as postgresql://vines@host/vines")
        _check_dsn(dsn)
    password_file = None
    if "dsn_password_file" in st:
        password_file = _path(st, "storage.dsn_password_file", base)
    return StorageConfig(backend, path, dsn, password_file)


def _cluster(
    table: dict, base: Path, storage: StorageConfig, listeners: ListenerConfig
) -> ClusterConfig:
    _only(table, "cluster.", {"redis", "password_file", "node", "heartbeat", "ttl"})
    if not table:
        return ClusterConfig()
    url = table.get("redis")
    if not isinstance(url, str) or urlsplit(url).scheme not in ("redis", "rediss", "unix"):
        raise ConfigError('cluster.redis must be a URL such as "redis://127.0.0.1:6379/0"')
    if storage.backend != "postgresql":
        # one node's storage cannot be shared: every node must read what the others wrote
        raise ConfigError(
            f'[cluster] needs storage shared by every node: set [storage] backend = "postgresql" '
            f"(not {storage.backend!r})"
        )
    node = table.get("node", f"{socket.gethostname()}-{listeners.c2s_port}")
    if not isinstance(node, str) or not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", node):
        raise ConfigError("cluster.node must be 1-64 letters, digits, '.', '_' or '-'")
    heartbeat = _positive(table, "cluster.heartbeat", ClusterConfig.heartbeat)
    ttl = _positive(table, "cluster.ttl", ClusterConfig.ttl)
    if ttl < 2 * heartbeat:
        raise ConfigError(
            "cluster.ttl must be at least twice cluster.heartbeat: "
            "a late heartbeat would get a live node purged"
        )
    password_file = None
    if "password_file" in table:
        password_file = _path(table, "cluster.password_file", base)
    return ClusterConfig(url, password_file, node, heartbeat, ttl)


def _check_dsn(dsn: str) -> None:
    """A postgresql:// URI without a password: the config file is not the place for a secret,
    and a DSN without one can be shown in errors and logs. Never echoes the value back."""
    parts = urlsplit(dsn)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ConfigError(
            "storage.dsn must be a URI such as postgresql://vines@127.0.0.1:5432/vines"
        )
    if parts.password is not None or re.search(r"(?i)(^|[?&])password=", parts.query):
        raise ConfigError(
            "storage.dsn must not hold a password: put it in storage.dsn_password_file "
            "(or a PGPASSFILE) and remove it from the URI"
        )
    try:
        parts.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError:
        raise ConfigError("storage.dsn has an invalid port: write host:5432") from None


def _table(raw: dict, key: str) -> dict:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{key} must be a table: write it as [{key}]")
    return value


def _only(table: dict, prefix: str, allowed: set[str]) -> None:
    for key in table:
        if key not in allowed:
            raise ConfigError(
                f"unknown key {prefix}{key}: remove it (known: {', '.join(sorted(allowed))})"
            )


def _domain_name(key: str, name: str) -> str:
    """A domain name prepared by the one JID rule (RFC 7622), or ConfigError naming the key."""
    try:
        return normalize_domainpart(name)
    except JIDError as exc:
        raise ConfigError(
            f"{key}: {name!r} is not a valid domain name ({exc}): write one such as example.org"
        ) from None


def _str_list(table: dict, key: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f'{key} must be a list of strings, e.g. ["a", "b"]')
    return value


def _path(table: dict, key: str, base: Path, default: str | None = None) -> Path:
    name = key.rsplit(".", 1)[1]
    value = table.get(name, default)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{key} must be a file path string")
    p = Path(value).expanduser()
    return p if p.is_absolute() else base / p


def _port(table: dict, name: str, default: int, section: str = "listeners") -> int:
    value = table.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise ConfigError(f"{section}.{name} must be a port number 0-65535 (0 picks a free one)")
    return value


def _networks(key: str, value: Any) -> tuple[str, ...]:
    """IP addresses or networks ("10.0.0.0/8"), each checked."""
    for entry in _str_list({}, key, value):
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ConfigError(
                f"{key}: {entry!r} is not an IP address or network: "
                'write e.g. "127.0.0.1", "::1" or "10.0.0.0/8"'
            ) from None
    return tuple(value)


def _numbers(
    cls: type,
    table: dict,
    prefix: str,
    integer: bool,
    besides: frozenset[str] | set[str] = frozenset(),
) -> Any:
    """The numeric fields of `cls` from `table` (the others, `besides`, are parsed apart)."""
    known = {f.name: f for f in fields(cls) if f.name not in besides}
    _only(table, prefix + ".", set(known) | set(besides))
    for name, value in table.items():
        ok = isinstance(value, int) if integer else isinstance(value, int | float)
        if isinstance(value, bool) or not ok or value <= 0:
            kind = "a positive integer" if integer else "a positive number of seconds"
            raise ConfigError(f"{prefix}.{name} must be {kind}")
    return cls(**table)

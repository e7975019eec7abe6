"""vines.toml -> frozen dataclasses, validated once at start.

Every problem is reported as a ConfigError whose message names the key and the fix, in one line.
Relative paths are resolved against the directory of the config file. The server never writes
this file.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from vines_server.xmpp.jid import JIDError, normalize_domainpart


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


@dataclass(frozen=True)
class StorageConfig:
    backend: str = "sqlite"  # "sqlite" | "memory"
    path: Path = Path("vines.sqlite")


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


@dataclass(frozen=True)
class PresenceConfig:
    """The server's own presence: its load, sent to subscribed admins and allowed JIDs."""

    interval: float = 2.0  # seconds; at most one load update per interval
    capacity: int = 10_000  # sessions the operator plans for; near it, show becomes away
    subscribers: tuple[str, ...] = ()  # JIDs besides admins that may subscribe (components...)


@dataclass(frozen=True)
class FederationConfig:
    allow: tuple[str, ...] = ()


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

    @property
    def directory(self) -> Path:
        return self.path.parent if self.path else Path.cwd()

    def sibling(self, suffix: str) -> Path:
        return sibling_file(self.path if self.path else Path.cwd() / "vines.toml", suffix)


def sibling_file(config_path: Path, suffix: str) -> Path:
    """The one naming rule for the files a server keeps next to its vines.toml (the console reads
    them too): vines.toml -> vines.pid, vines.state.json, vines.log."""
    return config_path.with_name(config_path.stem + suffix)


def load(path: str | Path) -> Config:
    path = Path(path).expanduser().resolve()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} does not exist: create one with 'vinesctl server init'"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML ({exc}): fix the syntax") from None
    return parse(raw, path)


def parse(raw: dict[str, Any], path: Path | None = None) -> Config:
    base = path.parent if path else Path.cwd()
    tables = ("server", "domains", "listeners", "storage", "limits", "deadlines", "federation")
    _only(raw, "", {*tables, "presence"})

    server = _table(raw, "server")
    _only(server, "server.", {"admins", "log_level"})
    admins = tuple(_str_list(server, "server.admins", server.get("admins", [])))
    log_level = server.get("log_level", "info")
    if log_level not in ("debug", "info", "warning", "error"):
        raise ConfigError("server.log_level must be one of debug, info, warning, error")

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
        if "@" not in admin or "/" in admin:
            raise ConfigError(f"server.admins: {admin!r} is not a bare JID such as admin@{name}")

    lst = _table(raw, "listeners")
    _only(lst, "listeners.", {"bind", "c2s_port", "c2s_direct_tls_port"})
    bind = lst.get("bind", ["127.0.0.1"])
    bind = [bind] if isinstance(bind, str) else bind
    listeners = ListenerConfig(
        bind=tuple(_str_list(lst, "listeners.bind", bind)),
        c2s_port=_port(lst, "c2s_port", 5222),
        c2s_direct_tls_port=(
            None
            if lst.get("c2s_direct_tls_port", 5223) is False
            else _port(lst, "c2s_direct_tls_port", 5223)
        ),
    )

    st = _table(raw, "storage")
    _only(st, "storage.", {"backend", "path"})
    backend = st.get("backend", "sqlite")
    if backend not in ("sqlite", "memory"):
        raise ConfigError(f"storage.backend {backend!r} is unknown: use 'sqlite' or 'memory'")
    storage = StorageConfig(backend, _path(st, "storage.path", base, "vines.sqlite"))

    limits = _numbers(Limits, _table(raw, "limits"), "limits", integer=True)
    if limits.stanza_size < 10_000:
        raise ConfigError("limits.stanza_size must be at least 10000 (RFC 6120 section 13.12)")
    deadlines = _numbers(Deadlines, _table(raw, "deadlines"), "deadlines", integer=False)

    fed = _table(raw, "federation")
    _only(fed, "federation.", {"allow"})
    federation = FederationConfig(
        tuple(
            _domain_name("federation.allow", d)
            for d in _str_list(fed, "federation.allow", fed.get("allow", []))
        )
    )
    pres = _table(raw, "presence")
    _only(pres, "presence.", {"interval", "capacity", "subscribers"})
    presence = PresenceConfig(
        interval=_positive(pres, "presence.interval", PresenceConfig.interval),
        capacity=int(_positive(pres, "presence.capacity", PresenceConfig.capacity)),
        subscribers=tuple(_str_list(pres, "presence.subscribers", pres.get("subscribers", []))),
    )
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
    )


def _positive(table: dict, key: str, default: float) -> float:
    value = table.get(key.rsplit(".", 1)[1], default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"{key} must be a positive number")
    return value


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
        raise ConfigError(f"{key}: {name!r} is not a valid domain name ({exc})") from None


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


def _port(table: dict, name: str, default: int) -> int:
    value = table.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise ConfigError(f"listeners.{name} must be a port number 0-65535 (0 picks a free one)")
    return value


def _numbers(cls: type, table: dict, prefix: str, integer: bool) -> Any:
    known = {f.name: f for f in fields(cls)}
    _only(table, prefix + ".", set(known))
    for name, value in table.items():
        ok = isinstance(value, int) if integer else isinstance(value, int | float)
        if isinstance(value, bool) or not ok or value <= 0:
            kind = "a positive integer" if integer else "a positive number of seconds"
            raise ConfigError(f"{prefix}.{name} must be {kind}")
    return cls(**table)

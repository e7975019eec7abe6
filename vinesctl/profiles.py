"""Connection profiles in `$XDG_CONFIG_HOME/vinesctl/config.toml` (default `~/.config`).

The file holds secrets (a password or a command printing one), so it is written with mode 0600
in a directory created with mode 0700, atomically (temporary file + rename). Layout:

    default = "localhost"

    [profiles.localhost]
    jid = "admin@localhost"
    server = "127.0.0.1:5222"
    ca = "/home/me/.local/share/vinesctl/localhost/localhost.crt"
    password = "..."
    config = "/home/me/.local/share/vinesctl/localhost/vines.toml"

Only the standard library is imported at module level (tomli_w when saving), so the CLI's
startup stays cheap.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

import click

from vinesctl.errors import UsageError, VinesctlError

CONFIG_NAME = "config.toml"
NO_PROFILE = "no profile: run 'vinesctl server init' or 'vinesctl profile add'"
DEFAULT_PORT = 5222


def config_dir() -> Path:
    """`$XDG_CONFIG_HOME/vinesctl`, or `~/.config/vinesctl` when it is unset or not absolute."""
    base = os.environ.get("XDG_CONFIG_HOME", "")
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".config"
    return root / "vinesctl"


def config_path() -> Path:
    return config_dir() / CONFIG_NAME


@dataclass
class Profile:
    name: str
    jid: str
    server: str | None = None  # "host:port" override; None: the JID's domain (DNS SRV)
    ca: str | None = None  # CA file to trust
    password: str | None = None
    password_command: str | None = None  # a shell command printing the password
    config: str | None = None  # vines.toml of a bundled server

    @property
    def domain(self) -> str:
        return domain_of(self.jid)

    def public(self) -> dict[str, object]:
        """The profile without its secrets (for `profile show/list`)."""
        return {
            "name": self.name,
            "jid": self.jid,
            "server": self.server,
            "ca": self.ca,
            "config": self.config,
            "password": "set" if self.password else "not set",
            "password_command": self.password_command,
        }


_FIELDS = [f.name for f in fields(Profile) if f.name != "name"]


def domain_of(jid: str) -> str:
    """The prepared domain part of a JID (`user@Example.com/res` -> `example.com`)."""
    from vines_server.xmpp.jid import JIDError, normalize_domainpart

    domain = jid.split("/", 1)[0].rpartition("@")[2]
    try:
        return normalize_domainpart(domain)
    except JIDError:
        return domain.lower()  # not a valid name: connecting reports it


def check_domain(name: str) -> str:
    """A domain name prepared by RFC 7622 (IDNA2008 U-labels, the server's own rule), or
    UsageError naming what is wrong."""
    from vines_server.xmpp.jid import JIDError, normalize_domainpart

    try:
        return normalize_domainpart(name.strip())
    except JIDError as exc:
        raise UsageError(
            f"{name!r} is not a valid domain name: {exc}", "give a domain such as example.org"
        ) from None


def check_jid(jid: str) -> str:
    """A bare JID `local@domain` prepared by RFC 7622 (the server's own rule), or UsageError
    naming what is wrong."""
    from vines_server.xmpp.jid import JID, JIDError

    text = jid.strip()
    local, at, domain = text.partition("@")
    if not at or not local or not domain or "/" in text:
        raise UsageError(f"{jid!r} is not a bare JID", "write it as user@example.com")
    try:
        return str(JID.parse(text))
    except JIDError as exc:
        raise UsageError(
            f"{jid!r} is not a valid JID: {exc}", "choose a name without it (RFC 7622)"
        ) from None


def parse_server(value: str) -> tuple[str, int]:
    """`host:port`, `[v6]:port` or `host` (port 5222) -> (host, port); UsageError otherwise."""
    text = value.strip()
    fix = "write it as HOST:PORT, e.g. 127.0.0.1:5222"
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise UsageError(f"server {value!r} is not HOST:PORT", fix)
        port_text = rest[1:] if rest else ""
    elif text.count(":") > 1:  # a bare IPv6 address
        host, port_text = text, ""
    else:
        host, _, port_text = text.partition(":")
    if not host:
        raise UsageError(f"server {value!r} has no host", fix)
    if not port_text:
        return host, DEFAULT_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise UsageError(f"server {value!r} has no valid port (1-65535)", fix)
    return host, int(port_text)


class ProfileStore:
    """All profiles and the name of the default one; `save()` writes them back."""

    def __init__(
        self,
        path: Path | None = None,
        profiles: dict[str, Profile] | None = None,
        default: str | None = None,
    ) -> None:
        self.path = path or config_path()
        self.profiles: dict[str, Profile] = profiles or {}
        self.default = default

    @classmethod
    def load(cls, path: Path | None = None) -> ProfileStore:
        path = path or config_path()
        fix = f"fix or remove {path}"
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls(path)
        except OSError as exc:
            raise VinesctlError(f"cannot read {path} ({exc.strerror})", fix) from None
        except tomllib.TOMLDecodeError as exc:
            raise VinesctlError(f"{path} is not valid TOML ({exc})", fix) from None
        default = raw.get("default")
        table = raw.get("profiles", {})
        if not isinstance(table, dict) or (default is not None and not isinstance(default, str)):
            raise VinesctlError(f"{path} has an unexpected layout", fix)
        profiles = {}
        for name, entry in table.items():
            if not isinstance(entry, dict) or not isinstance(entry.get("jid"), str):
                raise VinesctlError(f"profile {name!r} in {path} has no 'jid'", fix)
            values = {k: entry.get(k) for k in _FIELDS}
            if any(v is not None and not isinstance(v, str) for v in values.values()):
                raise VinesctlError(f"profile {name!r} in {path} has a non-string value", fix)
            profiles[name] = Profile(name=name, **values)
        return cls(path, profiles, default if default in profiles else None)

    def names(self) -> list[str]:
        return sorted(self.profiles)

    def find(self, name: str | None) -> Profile | None:
        """The named profile, or the default one for None; None when there is no such profile."""
        if name is None:
            name = self.default
            if name is None and len(self.profiles) == 1:
                name = next(iter(self.profiles))
        return self.profiles.get(name) if name is not None else None

    def get(self, name: str | None) -> Profile:
        """The named profile (None: the default); UsageError when it does not exist."""
        profile = self.find(name)
        if profile is not None:
            return profile
        if name is not None:
            known = ", ".join(self.names()) or "none"
            raise UsageError(
                f"no profile named {name!r} (known: {known})",
                "see 'vinesctl profile list' or add it with 'vinesctl profile add'",
            )
        if self.profiles:
            raise UsageError(
                "no default profile", "choose one with 'vinesctl profile use NAME' or --profile"
            )
        raise UsageError(NO_PROFILE)

    def add(self, profile: Profile, make_default: bool = False) -> None:
        """Adds or replaces a profile; the first one becomes the default."""
        self.profiles[profile.name] = profile
        if make_default or self.default is None:
            self.default = profile.name

    def remove(self, name: str) -> Profile:
        profile = self.get(name)
        del self.profiles[name]
        if self.default == name:
            self.default = next(iter(self.profiles)) if len(self.profiles) == 1 else None
        return profile

    def set_default(self, name: str) -> None:
        self.get(name)
        self.default = name

    def to_toml(self) -> dict[str, object]:
        data: dict[str, object] = {}
        if self.default is not None:
            data["default"] = self.default
        data["profiles"] = {
            p.name: {k: getattr(p, k) for k in _FIELDS if getattr(p, k) is not None}
            for p in self.profiles.values()
        }
        return data

    def save(self) -> None:
        """Writes the file atomically with mode 0600 (directory 0700)."""
        import tomli_w

        directory = self.path.parent
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            tmp = directory / f".{self.path.name}.{os.getpid()}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.fchmod(fd, 0o600)
                with os.fdopen(fd, "wb") as out:
                    tomli_w.dump(self.to_toml(), out)
                os.replace(tmp, self.path)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise VinesctlError(
                f"cannot write {self.path} ({exc.strerror})",
                f"check the permissions of {directory}",
            ) from None


def selected_name(ctx: click.Context | None = None) -> str | None:
    """The profile chosen with the root `--profile` option or VINESCTL_PROFILE (None: default)."""
    ctx = ctx or click.get_current_context(silent=True)
    if ctx is not None:
        obj = ctx.find_root().obj
        if isinstance(obj, dict) and obj.get("profile"):
            return obj["profile"]
    return os.environ.get("VINESCTL_PROFILE") or None


def current(ctx: click.Context | None = None, required: bool = True) -> Profile | None:
    """The selected profile; with required=False, None when no profile is configured at all
    (an explicitly named but unknown profile is still an error)."""
    store = ProfileStore.load()
    name = selected_name(ctx)
    if not required and name is None:
        return store.find(None)
    return store.get(name)

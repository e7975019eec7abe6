"""A systemd unit for a bundled server's vines.toml (`vinesctl server install-service`).

The server runs in the foreground (`Type=notify`: it reports READY once it listens), SIGHUP
reloads it, and the sandbox lets it write only the config's directory, where its store, pid,
state and log files live. A user unit (`--user`) gets only the options that work without
privileges: the filesystem sandbox needs mount namespaces a user manager may not have.
"""

from __future__ import annotations

import pwd
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

# options a user manager cannot apply without user namespaces are left out of user units
SYSTEM_HARDENING = (
    "ProtectSystem=strict",
    "ProtectHome=read-only",
    "PrivateTmp=yes",
    "PrivateDevices=yes",
    "ProtectKernelTunables=yes",
    "ProtectKernelModules=yes",
    "ProtectControlGroups=yes",
    "RestrictSUIDSGID=yes",
)
COMMON_HARDENING = ("NoNewPrivileges=yes", "LockPersonality=yes", "RestrictRealtime=yes")


@dataclass(frozen=True)
class ServiceUnit:
    name: str  # vines-<domain>.service
    path: Path  # where it is (or would be) written
    user_unit: bool
    config: Path
    text: str

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "path": str(self.path),
            "user": self.user_unit,
            "config": str(self.config),
            "unit": self.text,
        }


def unit_name(config: Path, domains: list[str]) -> str:
    stem = domains[0] if len(domains) == 1 else config.parent.name or config.stem
    return "vines-" + re.sub(r"[^A-Za-z0-9:_.\\-]", "-", stem) + ".service"


def default_path(name: str, user_unit: bool, home: Path) -> Path:
    if user_unit:
        return home / ".config" / "systemd" / "user" / name
    return Path("/etc/systemd/system") / name


def _quote(arg: str) -> str:
    """A systemd command-line word: shell-like quoting, with % and $ escaped for specifiers."""
    return shlex.quote(arg).replace("%", "%%").replace("$", "$$")


def _path_setting(path: Path) -> str:
    """A path in a ReadWritePaths= line (space-separated, so spaces are escaped)."""
    return str(path).replace("\\", "\\\\").replace(" ", "\\x20").replace("%", "%%")


def render_unit(config: Path, domains: list[str], user_unit: bool) -> str:
    directory = config.parent
    exec_start = " ".join(
        _quote(a) for a in (sys.executable, "-m", "vines_server", "--config", str(config))
    )
    service = [
        "Type=notify",
        "NotifyAccess=main",
        f"ExecStart={exec_start}",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
        "RestartSec=2s",
        "TimeoutStopSec=30s",
        f"WorkingDirectory={_path_setting(directory)}",
        "UMask=0077",
    ]
    if not user_unit:
        owner = directory.stat().st_uid
        if owner != 0:  # run as whoever owns the store; root only when root owns it
            service.append(f"User={pwd.getpwuid(owner).pw_name}")
        hardening = list(SYSTEM_HARDENING)
        if any(directory.is_relative_to(t) for t in ("/tmp", "/var/tmp")):
            hardening.remove("PrivateTmp=yes")  # a private /tmp would hide the config
        service += [*hardening, f"ReadWritePaths={_path_setting(directory)}"]
    service += COMMON_HARDENING
    # the user manager has no network-online.target
    network = [] if user_unit else ["After=network-online.target", "Wants=network-online.target"]
    lines = [
        "# written by 'vinesctl server install-service'",
        "[Unit]",
        f"Description=vines XMPP server ({', '.join(domains)})",
        *network,
        "",
        "[Service]",
        *service,
        "",
        "[Install]",
        f"WantedBy={'default.target' if user_unit else 'multi-user.target'}",
        "",
    ]
    return "\n".join(lines)

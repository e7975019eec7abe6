"""A real Prosody for interop tests and benchmarks: its own config, data, pid and log files under a
directory the caller owns, c2s on 127.0.0.1 and an ephemeral port, a certificate from a test CA.

    prosody = ProsodyInstance(tmp_path, domain="prosody.test")
    prosody.start()                    # returns once the c2s port accepts connections
    prosody.register("alice", "secret")
    ...                                # connect to prosody.host:prosody.port, trust prosody.ca_file
    prosody.stop()

Or as a context manager (`with ProsodyInstance(tmp_path) as prosody:`), which starts and stops it.

Accounts: `register()` runs `prosodyctl --config FILE adduser user@domain` and writes the password
twice to its standard input (the "Enter new password" / "Retype new password" prompts), so the
password never appears in argv (`prosodyctl register USER HOST PASSWORD` would put it there, and
any local user can read argv from /proc). It costs ~0.3 s per account (prosodyctl loads the whole
config). `provision()` writes many accounts straight into Prosody's internal storage in the format
of mod_auth_internal_hashed (SCRAM-SHA-1 StoredKey/ServerKey in hex, salt, iteration count), for
benchmarks that need thousands of users; call it before `start()` or while running (Prosody
reads account files on each login).

Nothing here depends on the system's /etc/prosody: Debian's own daemon is never touched.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from vines_server import certs

from tests.support.ports import free_port

PROSODY = shutil.which("prosody") or (
    "/usr/bin/prosody" if os.path.exists("/usr/bin/prosody") else None
)
PROSODYCTL = shutil.which("prosodyctl") or (
    "/usr/bin/prosodyctl" if os.path.exists("/usr/bin/prosodyctl") else None
)

#: Prosody's default PBKDF2 iteration count (mod_auth_internal_hashed `default_iteration_count`).
PROSODY_ITERATIONS = 10_000

#: Modules loaded on every instance (Prosody also auto-loads presence, message, iq, offline, c2s).
BASE_MODULES = (
    "roster",
    "saslauth",
    "tls",
    "disco",
    "ping",
    "version",
    "uptime",
    "time",
    "admin_adhoc",
    "posix",
)


class ProsodyError(RuntimeError):
    pass


def prosody_available() -> str | None:
    """None when prosody and prosodyctl are installed, else the reason they cannot be used."""
    if PROSODY is None or PROSODYCTL is None:
        return "prosody is not installed (Debian package prosody)"
    return None


def _lua(value: object) -> str:
    """A Lua literal for a str, bool, int, or list/tuple of those."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        out = []
        for ch in value:
            if ch in '"\\':
                out.append("\\" + ch)
            elif ch.isprintable() and ch.isascii():
                out.append(ch)
            else:
                out.extend(f"\\{b}" for b in ch.encode("utf-8"))
        return '"' + "".join(out) + '"'
    if isinstance(value, list | tuple):
        return "{ " + "; ".join(_lua(v) for v in value) + " }"
    raise TypeError(f"no Lua literal for {value!r}")


def _encode_path(part: str) -> str:
    """Prosody's datamanager path encoding: every non-alphanumeric byte becomes %xx."""
    return "".join(
        chr(b) if chr(b).isascii() and chr(b).isalnum() else f"%{b:02x}" for b in part.encode()
    )


def hashed_account(
    password: str, iterations: int = PROSODY_ITERATIONS, salt: str | None = None
) -> dict[str, object]:
    """The record mod_auth_internal_hashed stores for a password (SCRAM-SHA-1, RFC 5802)."""
    salt = salt or str(uuid.uuid4())
    salted = hashlib.pbkdf2_hmac("sha1", password.encode(), salt.encode(), iterations)
    client_key = hmac.new(salted, b"Client Key", "sha1").digest()
    now = int(time.time())
    return {
        "stored_key": hashlib.sha1(client_key).hexdigest(),
        "server_key": hmac.new(salted, b"Server Key", "sha1").hexdigest(),
        "salt": salt,
        "iteration_count": iterations,
        "created": now,
        "updated": now,
    }


class ProsodyInstance:
    """One Prosody process with everything under `directory / "prosody"`.

    Attributes once constructed: `host` ("127.0.0.1"), `port` (c2s, STARTTLS), `domain`,
    `ca_file` (the PEM of the CA that signed the domain's certificate), `config_file`,
    `log_file`, `pid_file`, `data_dir`; `s2s_port` when `s2s=True`.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        domain: str = "prosody.test",
        modules: Iterable[str] = (),
        *,
        s2s: bool = False,
        host: str = "127.0.0.1",
        port: int | None = None,
        admins: Iterable[str] | None = None,
        extra_config: str = "",
        log_level: str = "info",
        nameserver: str | None = None,
    ) -> None:
        reason = prosody_available()
        if reason:
            raise ProsodyError(reason)
        self.root = Path(directory) / "prosody"
        self.domain = domain
        self.host = host
        self.modules = tuple(dict.fromkeys((*BASE_MODULES, *modules)))
        self.s2s = s2s
        self.admins = tuple(admins) if admins is not None else (f"admin@{domain}",)
        self.extra_config = extra_config
        self.log_level = log_level
        # Prosody 0.12 without lua-unbound asks only the nameservers of /etc/resolv.conf (port
        # 53) and never reads the hosts file: to make it resolve test domains, it runs in its
        # own mount namespace where /etc/resolv.conf names `nameserver` (a test DNS server).
        self.nameserver = nameserver
        self.port = port or free_port(host)
        self.s2s_port = free_port(host) if s2s else None
        self.data_dir = self.root / "data"
        self.config_file = self.root / "prosody.cfg.lua"
        self.pid_file = self.root / "prosody.pid"
        self.log_file = self.root / "prosody.log"
        self.ca_file = self.root / "ca.crt"
        self.cert_file = self.root / f"{domain}.crt"
        self.key_file = self.root / f"{domain}.key"
        self.iterations = PROSODY_ITERATIONS
        self.process: subprocess.Popen[bytes] | None = None
        self._write_files()

    # files

    def _write_files(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.root / "certs").mkdir(exist_ok=True)  # Prosody indexes a certificates directory
        os.chmod(self.root, 0o700)
        ca_cert, ca_key = certs.make_ca(f"prosody test CA for {self.domain}")
        self.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        cert, key = certs.make_certificate([self.domain], issuer=(ca_cert, ca_key))
        certs.write_pem(cert, key, self.cert_file, self.key_file)
        self.config_file.write_text(self.config_text(), encoding="utf-8")

    def config_text(self) -> str:
        disabled = () if self.s2s else ("s2s",)
        lines = [
            "-- written by tests/support/prosody.py; not Debian's /etc/prosody",
            f"run_as_root = {_lua(os.geteuid() == 0)}",
            "daemonize = false",
            f"pidfile = {_lua(str(self.pid_file))}",
            f"data_path = {_lua(str(self.data_dir))}",
            f"log = {{ {self.log_level} = {_lua(str(self.log_file))} }}",
            'network_backend = "epoll"',
            f"interfaces = {_lua([self.host])}",
            f"local_interfaces = {_lua([self.host])}",
            f"c2s_interfaces = {_lua([self.host])}",
            f"c2s_ports = {{ {self.port} }}",
            "c2s_direct_tls_ports = { }",
            "legacy_ssl_ports = { }",
            "component_ports = { }",
            "http_ports = { }",
            "https_ports = { }",
            f"s2s_ports = {{ {self.s2s_port} }}" if self.s2s else "s2s_ports = { }",
            f"s2s_interfaces = {_lua([self.host])}",
            "c2s_require_encryption = true",
            "s2s_require_encryption = true",
            'authentication = "internal_hashed"',
            'storage = "internal"',
            f"admins = {_lua(self.admins)}",
            f"modules_enabled = {_lua(self.modules)}",
            f"modules_disabled = {_lua(disabled)}",
            f"certificates = {_lua(str(self.root / 'certs'))}",
            f"ssl = {{ certificate = {_lua(str(self.cert_file))}; "
            f"key = {_lua(str(self.key_file))}; cafile = {_lua(str(self.ca_file))} }}",
            self.extra_config,
            "",
            f"VirtualHost {_lua(self.domain)}",
            f"    ssl = {{ certificate = {_lua(str(self.cert_file))}; "
            f"key = {_lua(str(self.key_file))} }}",
            "",
        ]
        return "\n".join(lines)

    # lifecycle

    def start(self, timeout: float = 15.0) -> ProsodyInstance:
        if self.process is not None and self.process.poll() is None:
            return self
        log = open(self.root / "prosody.stdout", "ab")  # noqa: SIM115 (closed in stop())
        self._stdout = log
        argv = [PROSODY, "--config", str(self.config_file), "-F"]
        if self.nameserver is not None:
            resolv = self.root / "resolv.conf"
            resolv.write_text(f"nameserver {self.nameserver}\n")
            argv = [
                "unshare", "--mount", "--propagation", "private", "sh", "-c",
                'mount --bind "$0" /etc/resolv.conf && exec "$@"', str(resolv), *argv,
            ]  # fmt: skip
        self.process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.root,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        # every port it listens on: the s2s port may open after the c2s one
        waiting = [port for port in (self.port, self.s2s_port) if port]
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ProsodyError(
                    f"prosody exited with status {self.process.returncode} during start: "
                    + self._tail()
                )
            try:
                with socket.create_connection((self.host, waiting[0]), timeout=0.5):
                    waiting.pop(0)
                if not waiting:
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise ProsodyError(f"prosody did not accept on {self.host}:{waiting}: {self._tail()}")

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def stop(self, timeout: float = 10.0) -> None:
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        stdout = getattr(self, "_stdout", None)
        if stdout is not None:
            stdout.close()
            self._stdout = None

    def __enter__(self) -> ProsodyInstance:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _tail(self, lines: int = 15) -> str:
        text = []
        for path in (self.root / "prosody.stdout", self.log_file):
            if path.exists():
                text += path.read_text(errors="replace").splitlines()[-lines:]
        return " | ".join(text) or "no log output"

    # accounts

    def register(self, user: str, password: str, timeout: float = 30.0) -> None:
        """Create user@domain with prosodyctl adduser; the password goes through stdin only."""
        jid = user if "@" in user else f"{user}@{self.domain}"
        done = subprocess.run(
            [PROSODYCTL, "--config", str(self.config_file), "adduser", jid],
            input=f"{password}\n{password}\n".encode(),
            capture_output=True,
            timeout=timeout,
            cwd=self.root,
        )
        if done.returncode != 0:
            out = (done.stdout + done.stderr).decode(errors="replace").replace(password, "***")
            raise ProsodyError(
                f"prosodyctl adduser {jid} failed ({done.returncode}): {out.strip()}"
            )

    def provision(
        self, users: Iterable[str], password: str, iterations: int = PROSODY_ITERATIONS
    ) -> int:
        """Write accounts straight into the internal store (fast; one PBKDF2 for all users, each
        record gets the same salt, which changes nothing in what a login costs the server)."""
        record = hashed_account(password, iterations)
        body = (
            "return {\n"
            + "".join(f"\t[{_lua(k)}] = {_lua(v)};\n" for k, v in sorted(record.items()))
            + "};\n"
        )
        directory = self.data_dir / _encode_path(self.domain) / "accounts"
        directory.mkdir(parents=True, exist_ok=True)
        count = 0
        for user in users:
            (directory / f"{_encode_path(user)}.dat").write_text(body, encoding="utf-8")
            count += 1
        return count

"""A real DNS server for tests: dnsmasq on a loopback address and a port the test chooses.

    with Dnsmasq(["srv-host=_xmpp-client._tcp.good.test,xmpp.good.test,5222,10,0",
                  "host-record=xmpp.good.test,127.0.0.1"]) as dns:
        resolver = dns.resolver      # "127.0.0.2:40123"

Lines are dnsmasq options without the leading `--`. Names under `local_domain` that are not in the
zone answer NXDOMAIN (dnsmasq `--local`), nothing is forwarded anywhere.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

DNSMASQ = shutil.which("dnsmasq") or (
    "/usr/sbin/dnsmasq" if os.path.exists("/usr/sbin/dnsmasq") else None
)


def require_tool(name: str, path: str | None) -> str:
    """The tool's path; skip locally when it is missing, fail under CI=true."""
    if path:
        return path
    message = f"{name} is not installed (Debian package {name})"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + "; CI must install it (.ci/run)")
    pytest.skip(message)


def free_port(address: str) -> int:
    """A port free for both UDP and TCP on `address`."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((address, 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((address, port))
                except OSError:
                    continue
            return port
    raise RuntimeError(f"no free port on {address}")


def _answers(address: str, port: int) -> bool:
    """True when something answers a DNS query (any answer) on address:port/udp."""
    query = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x05probe\x04test\x00\x00\x01\x00\x01"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.2)
        try:
            s.sendto(query, (address, port))
            data, _ = s.recvfrom(512)
        except OSError:
            return False
    return data[:2] == b"\x12\x34"


class Dnsmasq:
    def __init__(
        self,
        lines: list[str],
        *,
        address: str = "127.0.0.2",
        port: int | None = None,
        local_domain: str = "test",
    ) -> None:
        self.binary = require_tool("dnsmasq", DNSMASQ)
        self.address = address
        self.port = port or free_port(address)
        self.lines = lines
        self.local_domain = local_domain
        self.proc: subprocess.Popen | None = None
        self._dir = tempfile.TemporaryDirectory(prefix="vinesctl-dnsmasq-")

    @property
    def resolver(self) -> str:
        return f"{self.address}:{self.port}"

    def __enter__(self) -> Dnsmasq:
        conf = Path(self._dir.name) / "zone.conf"
        conf.write_text("\n".join(self.lines) + "\n")
        log = open(Path(self._dir.name) / "dnsmasq.log", "wb")
        args = [
            self.binary,
            "--keep-in-foreground",
            "--no-resolv",
            "--no-hosts",
            "--no-poll",
            "--bind-interfaces",
            f"--listen-address={self.address}",
            f"--port={self.port}",
            f"--local=/{self.local_domain}/",
            f"--conf-file={conf}",
            f"--pid-file={Path(self._dir.name) / 'dnsmasq.pid'}",
            "--log-facility=-",
        ]
        if os.geteuid() == 0:
            args.append("--user=root")
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                text = (Path(self._dir.name) / "dnsmasq.log").read_text(errors="replace")
                raise RuntimeError(f"dnsmasq exited ({self.proc.returncode}): {text.strip()}")
            if _answers(self.address, self.port):
                return self
            time.sleep(0.05)
        self.__exit__()
        raise RuntimeError(f"dnsmasq did not answer on {self.resolver}")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._dir.cleanup()

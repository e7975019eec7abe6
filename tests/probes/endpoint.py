"""A real TLS endpoint speaking just enough XMPP to be probed: stream header, features,
STARTTLS (or direct TLS with ALPN), the post-TLS stream with SASL mechanisms, then close.

Runs in threads on 127.0.0.1:0 with a generated certificate; used as a context manager.
"""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

STREAM = (
    "<?xml version='1.0'?><stream:stream xmlns='{ns}' xmlns:stream="
    "'http://etherx.jabber.org/streams' id='probe' from='{domain}' version='1.0'>"
)
STARTTLS = "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>{required}</starttls>"
SASL = (
    "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
    "<mechanism>SCRAM-SHA-256</mechanism><mechanism>PLAIN</mechanism></mechanisms>"
)


@dataclass
class EndpointConfig:
    cert: Path
    key: Path
    direct: bool = False
    starttls: bool = True
    required: bool = True
    min_version: str | None = None  # 'TLSv1' to accept TLS 1.0
    silent: bool = False  # accept TCP and never answer
    domain: str = "example.test"


def _version(name: str) -> ssl.TLSVersion:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return getattr(ssl.TLSVersion, name.replace(".", "_").replace("TLSv1_", "TLSv1_"))


class Endpoint:
    def __init__(self, config: EndpointConfig, host: str = "127.0.0.1") -> None:
        self.config = config
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(str(config.cert), str(config.key))
        if config.min_version:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                self.ctx.set_ciphers("ALL:@SECLEVEL=0")
                self.ctx.minimum_version = {
                    "TLSv1": ssl.TLSVersion.TLSv1,
                    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
                    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
                }[config.min_version]
        else:
            self.ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if config.direct:
            self.ctx.set_alpn_protocols(["xmpp-client", "xmpp-server"])
        self.sock = socket.create_server((host, 0))
        self.host = host
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> Endpoint:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()

    def _accept(self) -> None:
        self.sock.settimeout(0.1)  # a closed listening socket does not wake accept()
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _read_header(self, conn: socket.socket) -> str:
        buf = b""
        while not re.search(rb"<stream:stream[^>]*>", buf):
            data = conn.recv(4096)
            if not data:
                raise ConnectionError("closed")
            buf += data
        m = re.search(rb"xmlns='([^']*)'", buf)
        return m.group(1).decode() if m else "jabber:client"

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        cfg = self.config
        try:
            if cfg.silent:
                self._stop.wait(30)
                return
            if cfg.direct:
                tls = self.ctx.wrap_socket(conn, server_side=True)
                conn = tls
            else:
                ns = self._read_header(conn)
                head = STREAM.format(ns=ns, domain=cfg.domain)
                feats = STARTTLS.format(required="<required/>" if cfg.required else "")
                if not cfg.starttls:
                    feats = SASL
                conn.sendall(f"{head}<stream:features>{feats}</stream:features>".encode())
                if not cfg.starttls:
                    conn.recv(4096)
                    return
                buf = b""
                while b"starttls" not in buf:
                    data = conn.recv(4096)
                    if not data:
                        return
                    buf += data
                conn.sendall(b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
                conn = self.ctx.wrap_socket(conn, server_side=True)
            ns = self._read_header(conn)
            head = STREAM.format(ns=ns, domain=cfg.domain)
            conn.sendall(f"{head}<stream:features>{SASL}</stream:features>".encode())
            conn.recv(4096)
        except (OSError, ssl.SSLError, ConnectionError):
            pass
        finally:
            with contextlib.suppress(OSError):
                conn.close()

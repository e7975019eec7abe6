"""The lean TLS transport: a plain `asyncio.Protocol` driving a `TLSSession`.

No SSL transport from asyncio is involved (it holds 256 KiB per connection). A protocol owns a
`StreamTLS`, which sits between the socket transport and the XMPP layer:

    class C2SProtocol(asyncio.Protocol):
        def connection_made(self, transport):
            self.io = StreamTLS(transport)
            if direct_tls:                       # XEP-0368 port: TLS from the first byte
                self.io.start_tls(server_ctx)

        def data_received(self, data):
            try:
                app = self.io.data_received(data)   # plaintext before STARTTLS, decrypted after
            except ssl.SSLError:
                self.io.close(notify=False)         # the alert is flushed, then the socket closes
                return
            if app:
                self.stream.feed(app)               # the sans-I/O XMPP core
            if self.io.peer_closed:
                ...                                 # close_notify: finish the stream

        def eof_received(self):
            ...                                     # self.io.eof_received() may raise SSLEOFError

        # XMPP layer output
        def send(self, data):
            self.io.write(data)                     # encrypted once TLS is on

        # STARTTLS: write <proceed/> in plaintext, then switch *before* reading more:
        #     self.io.write(PROCEED); self.io.start_tls(server_ctx, initial=leftover)
        # `leftover` is any bytes the parser received after </starttls> in the same read. They
        # must go to TLS (a pipelined ClientHello), never to the XMPP parser: plaintext sent
        # after <starttls/> is not protected and must not be trusted (CVE-2011-0411 class).

Every call that may produce ciphertext (`start_tls`, `data_received`, `write`, `close`) flushes
`TLSSession.outgoing()` to the socket before it returns, so the caller never has to remember.
"""

from __future__ import annotations

import asyncio
import ssl
import threading

from .tls import TLSInfo, TLSSession

__all__ = ["StreamTLS", "hold_writes", "release_writes"]

# Per thread (a process may run loops in several): the streams holding stanzas back while one
# read is handled (see hold_writes), or None.
_holding = threading.local()


def hold_writes() -> bool:
    """Until release_writes(), what hold() gets for a stream waits and goes out with the rest
    as one TLS record and one socket write. Under load one read carries several stanzas, often
    to one recipient: a record and a system call per stanza cost more than routing it (issue
    14). Returns False, and holds nothing more, when holding already."""
    if getattr(_holding, "streams", None) is not None:
        return False
    _holding.streams = []
    return True


def release_writes() -> None:
    streams, _holding.streams = _holding.streams, None
    for stream in streams:
        try:
            stream.release()
        except ssl.SSLError:  # as a write that fails would: that stream is lost, not the rest
            stream.abort()


class StreamTLS:
    """Plaintext-or-TLS byte pipe over an asyncio transport (composition, not a mixin)."""

    __slots__ = ("_held", "session", "transport")

    def __init__(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.session: TLSSession | None = None
        self._held: list[bytes] | None = None  # plaintext hold() kept back, in order

    @property
    def tls_active(self) -> bool:
        return self.session is not None

    @property
    def handshake_done(self) -> bool:
        return self.session is not None and self.session.handshake_done

    @property
    def peer_closed(self) -> bool:
        return self.session is not None and self.session.peer_closed

    def info(self) -> TLSInfo | None:
        return self.session.info() if self.session is not None else None

    def channel_bindings(self) -> dict[str, bytes]:
        return self.session.channel_bindings() if self.session is not None else {}

    def _flush(self) -> None:
        if self.session is not None:
            out = self.session.outgoing()
            if out and not self.transport.is_closing():
                self.transport.write(out)

    def start_tls(
        self,
        ctx: ssl.SSLContext,
        *,
        server_side: bool = True,
        server_hostname: str | None = None,
        initial: bytes = b"",
        session_class: type[TLSSession] = TLSSession,
    ) -> bytes:
        """Switch to TLS. `initial`: ciphertext already read. Returns any plaintext it held."""
        if self.session is not None:
            raise RuntimeError("TLS is already active on this connection")
        self.session = session_class(ctx, server_side=server_side, server_hostname=server_hostname)
        self._flush()
        return self.data_received(initial) if initial else b""

    def data_received(self, data: bytes) -> bytes:
        """Bytes from the socket -> bytes for the application. Raises ssl.SSLError."""
        if self.session is None:
            return data
        try:
            return self.session.receive(data)
        finally:
            self._flush()  # handshake records, or the alert of a failed handshake

    def eof_received(self) -> bytes:
        """The peer half-closed. Raises ssl.SSLEOFError on a truncated TLS stream."""
        if self.session is None:
            return b""
        try:
            return self.session.receive_eof()
        finally:
            self._flush()

    def write(self, data: bytes) -> None:
        if self._held is not None:
            self.release()  # what was held goes first: a stream's bytes keep their order
        if self.session is None:
            self.transport.write(data)
            return
        self.session.send(data)
        self._flush()

    def hold(self, data: bytes) -> None:
        """write(), or while writes are held (hold_writes) kept back to go out with what this
        stream gets meanwhile."""
        streams = getattr(_holding, "streams", None)
        if streams is None or self.session is None or not self.session.open:
            self.write(data)
        elif self._held is None:
            self._held = [data]
            streams.append(self)
        else:
            self._held.append(data)

    def release(self) -> None:
        """Write what hold() kept back (dropped if the socket is closing, as a write is)."""
        held, self._held = self._held, None
        if held and self.session is not None and not self.transport.is_closing():
            self.session.send(held[0] if len(held) == 1 else b"".join(held))
            self._flush()

    def close_notify(self) -> None:
        """Send TLS close_notify (when TLS is up) but leave the socket open."""
        if self._held is not None:
            self.release()
        if self.session is not None and self.session.handshake_done:
            self.session.close()
            self._flush()

    def close(self, *, notify: bool = True) -> None:
        """Close the socket once its buffer drains (so a pending alert still goes out).

        With `notify` (and TLS up) a close_notify is sent first; pass `notify=False` after a
        fatal TLS error.
        """
        if notify:
            self.close_notify()
        self.transport.close()

    def abort(self) -> None:
        """Drop the connection now, discarding anything not yet written."""
        self.transport.abort()

"""Server memory per idle, handshaken TLS connection: lean `TLSSession` vs asyncio's SSL transport.

    python bench/tls_memory.py [-n 1000] [--mode both|lean|asyncio] [--key-type ec|rsa]

For each mode a fresh server process is started (direct TLS echo, the same `server_context()`),
warmed up, and its RSS read from /proc; then N clients connect, complete the handshake and one
echo round trip, and stay idle. The figure is (RSS after - RSS before) / N, for the server
process only (the clients run in this process, with the lean client).

- lean:    a plain `asyncio.Protocol` driving `TLSSession` (`net/transport.StreamTLS`)
- asyncio: `loop.create_server(..., ssl=ctx)` (asyncio.sslproto, 256 KiB buffer per connection)
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import resource
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from vines_server import certs
from vines_server.net.tls import client_context, server_context
from vines_server.net.transport import StreamTLS

DOMAIN = "bench.example"


def rss_kib() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# -- server process -------------------------------------------------------------------------


class LeanEcho(asyncio.Protocol):
    def __init__(self, ctx: ssl.SSLContext) -> None:
        self.ctx = ctx
        self.io: StreamTLS | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.io = StreamTLS(transport)
        self.io.start_tls(self.ctx)

    def data_received(self, data: bytes) -> None:
        assert self.io is not None
        try:
            app = self.io.data_received(data)
        except ssl.SSLError:
            self.io.close(notify=False)
            return
        if app:
            self.io.write(app)
        if self.io.peer_closed:
            self.io.close()


class PlainEcho(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)  # type: ignore[attr-defined]


async def serve(mode: str, cert: str, key: str) -> None:
    raise_fd_limit()
    loop = asyncio.get_running_loop()
    ctx = server_context({DOMAIN: (Path(cert), Path(key))})
    if mode == "lean":
        server = await loop.create_server(lambda: LeanEcho(ctx), "127.0.0.1", 0, backlog=1024)
    else:
        server = await loop.create_server(PlainEcho, "127.0.0.1", 0, ssl=ctx, backlog=1024)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        if line.strip() == b"rss":
            gc.collect()
            print(f"RSS {rss_kib()}", flush=True)
    server.close()


# -- clients (this process) -----------------------------------------------------------------


class Client(asyncio.Protocol):
    def __init__(self, ctx: ssl.SSLContext) -> None:
        self.ctx = ctx
        self.io: StreamTLS | None = None
        self.echo = b""
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.io = StreamTLS(transport)
        self.io.start_tls(self.ctx, server_side=False, server_hostname=DOMAIN)
        self.io.write(b"ping\n")

    def data_received(self, data: bytes) -> None:
        assert self.io is not None
        try:
            self.echo += self.io.data_received(data)
        except ssl.SSLError as exc:
            if not self.done.done():
                self.done.set_exception(exc)
            return
        if self.echo == b"ping\n" and not self.done.done():
            self.done.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(exc or ConnectionError("closed"))


async def open_clients(port: int, ctx: ssl.SSLContext, count: int) -> list[asyncio.BaseTransport]:
    loop = asyncio.get_running_loop()
    limit = asyncio.Semaphore(64)
    transports: list[asyncio.BaseTransport] = []

    async def one() -> None:
        async with limit:
            transport, proto = await loop.create_connection(lambda: Client(ctx), "127.0.0.1", port)
            await asyncio.wait_for(proto.done, timeout=30)
            transports.append(transport)

    await asyncio.gather(*(one() for _ in range(count)))
    return transports


class ServerProcess:
    def __init__(self, mode: str, cert: Path, key: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", mode, "--cert", str(cert), "--key", str(key)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.port = int(self._expect("PORT"))

    def _expect(self, word: str) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith(word + " "):
            raise RuntimeError(f"server said {line!r}")
        return line.split()[1]

    def rss(self) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.write("rss\n")
        self.proc.stdin.flush()
        return int(self._expect("RSS"))

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


async def measure(mode: str, cert: Path, key: Path, count: int) -> dict[str, float]:
    server = ServerProcess(mode, cert, key)
    ctx = client_context(verify=False)
    try:
        # Warm up: import paths, allocator arenas, the first handshakes.
        warm = await open_clients(server.port, ctx, 50)
        for transport in warm:
            transport.close()
        await asyncio.sleep(0.5)
        before = await asyncio.to_thread(server.rss)
        started = time.perf_counter()
        transports = await open_clients(server.port, ctx, count)
        elapsed = time.perf_counter() - started
        await asyncio.sleep(1.0)
        after = await asyncio.to_thread(server.rss)
        for transport in transports:
            transport.close()
        await asyncio.sleep(0.2)
    finally:
        server.stop()
    return {
        "before_kib": before,
        "after_kib": after,
        "per_conn_kib": (after - before) / count,
        "handshakes_per_s": count / elapsed,
    }


async def run(modes: list[str], count: int, key_type: str) -> None:
    raise_fd_limit()
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = certs.ensure_domain_certificate(DOMAIN, tmp, key_type=key_type)  # type: ignore[arg-type]
        print(f"{count} idle handshaken TLS connections, {key_type} certificate, server RSS:")
        print(f"{'mode':<10}{'before KiB':>12}{'after KiB':>12}{'KiB/conn':>10}{'hs/s':>8}")
        for mode in modes:
            r = await measure(mode, cert, key, count)
            print(
                f"{mode:<10}{r['before_kib']:>12.0f}{r['after_kib']:>12.0f}"
                f"{r['per_conn_kib']:>10.1f}{r['handshakes_per_s']:>8.0f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--connections", type=int, default=1000)
    parser.add_argument("--mode", choices=["both", "lean", "asyncio"], default="both")
    parser.add_argument("--key-type", choices=["ec", "rsa"], default="ec")
    parser.add_argument("--serve", choices=["lean", "asyncio"], help=argparse.SUPPRESS)
    parser.add_argument("--cert", help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve, args.cert, args.key))
        return
    modes = ["lean", "asyncio"] if args.mode == "both" else [args.mode]
    asyncio.run(run(modes, args.connections, args.key_type))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
